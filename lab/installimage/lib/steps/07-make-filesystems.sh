# shellcheck shell=bash
# Step 7: filesystems and swap, with the UUIDs the plan chose (fstab is written from the plan).

step_make_filesystems() {
  local device mount fs uuid
  local -a filesystems
  capture_lines filesystems plan_filesystems
  local entry
  for entry in "${filesystems[@]}"; do
    IFS='|' read -r device mount fs uuid <<<"$entry"
    case "$fs" in
      ext2 | ext3 | ext4) run "mkfs.${fs}" -F -q -U "$uuid" "$device" ;;
      xfs) run mkfs.xfs -f -q -m uuid="$uuid" "$device" ;;
      btrfs) run mkfs.btrfs -f -q -U "$uuid" "$device" ;;
      swap) run mkswap -U "$uuid" "$device" ;;
      esp) run mkfs.vfat -F 32 -i "${uuid//-/}" "$device" ;;
    esac
  done
}
