# shellcheck shell=bash
# Step 14: GRUB on every target drive, so the machine boots whichever drive the firmware picks
# (or whichever survives), then the GRUB config.

step_install_bootloader() {
  local drive
  if firmware_is_uefi; then
    # --removable: the firmware finds EFI/BOOT/BOOTX64.EFI without an NVRAM entry; the esp is
    # mirrored by md (metadata 1.0) when SWRAID is on, so every drive carries it.
    in_target grub-install --target=x86_64-efi --efi-directory=/boot/efi --removable --no-nvram
  else
    for drive in "${PLAN_DRIVES[@]}"; do
      in_target grub-install --target=i386-pc "$drive"
    done
    remember_grub_install_devices
  fi
  set_lab_kernel_cmdline
  in_target update-grub
}

# Lab only. A Hetzner server's remote console is KVM-over-IP; the lab's is the serial port, so the
# kernel, the initramfs (the cryptroot passphrase prompt) and getty must also write to ttyS0.
# The emulated NVMe needs one command in flight (QEMU 7.2 loses batches through its shadow
# doorbells) and a long I/O timeout (it can stall for minutes on a loaded host): the same
# arguments as the rescue's (LAB_NVME_KERNEL_ARGS in lab/supervisor/qemu-args.ts).
set_lab_kernel_cmdline() {
  local grub_defaults="${RUN_TARGET}/etc/default/grub"
  [[ -f "$grub_defaults" ]] || return 0
  run sed -i 's|^GRUB_CMDLINE_LINUX=.*|GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8 nvme.io_queue_depth=2 nvme_core.io_timeout=300"|' "$grub_defaults"
}

# Later grub-pc upgrades reinstall GRUB to these drives instead of asking.
remember_grub_install_devices() {
  target_has /usr/bin/debconf-set-selections || return 0
  local devices
  printf -v devices '%s, ' "${PLAN_DRIVES[@]}"
  run chroot "$RUN_TARGET" debconf-set-selections < <(printf 'grub-pc grub-pc/install_devices multiselect %s\n' "${devices%, }")
}
