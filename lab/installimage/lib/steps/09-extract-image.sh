# shellcheck shell=bash
# Step 9: extract the image into the new root, then check it can boot the planned layout (the
# checks need the extracted tree, so they cannot run during validation).

step_extract_image() {
  local image
  image="$(local_image_path)"
  local -a decompress=()
  # pigz decompresses gzip faster than gzip even on one core (reading, inflating and checksumming
  # run in separate threads); tar picks the decompressor by magic otherwise.
  if [[ "$image" =~ \.(tar\.gz|tgz)$ ]] && command -v pigz >/dev/null; then
    decompress=(--use-compress-program=pigz)
  fi
  run tar --extract --file="$image" "${decompress[@]}" --directory="$RUN_TARGET" \
    --numeric-owner --preserve-permissions --xattrs --xattrs-include='*' --acls
  check_image_supports_layout
}

# Images are read from /root/images (a symlink into the NFS/9p share), or downloaded.
local_image_path() {
  if [[ "$CFG_IMAGE" =~ ^(https?|ftp):// ]]; then
    local downloaded
    downloaded="$(dirname "$RUN_TARGET")/${CFG_IMAGE##*/}"
    run download "$CFG_IMAGE" "$downloaded"
    printf '%s' "$downloaded"
  else
    readlink -f "$CFG_IMAGE"
  fi
}

check_image_supports_layout() {
  local missing=()
  target_has /boot/vmlinuz /vmlinuz || compgen -G "${RUN_TARGET}/boot/vmlinuz-*" >/dev/null || missing+=("a kernel (linux-image-amd64)")
  target_has /usr/sbin/update-initramfs || missing+=("initramfs-tools")
  target_has /usr/sbin/grub-install || missing+=("GRUB (grub-pc)")
  [[ "$OPT_NEW_HOST_KEYS" == no ]] || target_has /usr/bin/ssh-keygen || missing+=("openssh-server")
  if is_raid; then target_has /sbin/mdadm /usr/sbin/mdadm || missing+=("mdadm"); fi
  if ((${#CFG_LV_VG[@]} > 0)); then target_has /sbin/lvm /usr/sbin/lvm || missing+=("lvm2"); fi
  if [[ -n "$(plan_crypttab)" ]]; then
    target_has /usr/share/initramfs-tools/hooks/cryptroot /usr/bin/apt-get || missing+=("cryptsetup-initramfs (or apt to install it)")
  fi
  if ((${#missing[@]} > 0)); then
    local joined
    printf -v joined '%s, ' "${missing[@]}"
    die "IMAGE: expected an image with ${joined%, } for this layout, found them missing in ${CFG_IMAGE}"
  fi
}
