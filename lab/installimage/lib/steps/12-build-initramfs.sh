# shellcheck shell=bash
# Step 12: the initramfs, built once for all kernels after fstab, crypttab and mdadm.conf exist.
# Under emulation this is the most expensive step; nothing else in the install triggers a rebuild.

step_build_initramfs() {
  if compgen -G "${RUN_TARGET}/boot/initrd.img-*" >/dev/null; then
    in_target update-initramfs -u -k all
  else
    in_target update-initramfs -c -k all
  fi
}
