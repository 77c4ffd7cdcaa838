# shellcheck shell=bash
# Step 1: release the target drives. Everything stacked on them (mounts, swap, LVs, LUKS
# mappings, md arrays) is stopped, holders first; nothing on other drives is touched, and the
# rescue's own 9p mounts are left alone.

step_stop_storage() {
  configure_udev_expectations
  local drive entry mount_point
  local -a tree devices=() mount_points=() all_mount_points=()
  for drive in "${PLAN_DRIVES[@]}"; do
    capture_lines tree holders_first "$drive"
    devices+=("${tree[@]}")
  done
  # Unmount first, deepest path first: a root on one array may hold /boot from another.
  for entry in "${devices[@]}"; do
    capture_lines mount_points mount_points_of "${entry% *}"
    all_mount_points+=("${mount_points[@]}")
  done
  capture_lines all_mount_points deepest_first "${all_mount_points[@]}"
  for mount_point in "${all_mount_points[@]}"; do
    run umount "$mount_point"
  done
  for entry in "${devices[@]}"; do
    release_device "${entry% *}" "${entry##* }"
  done
}

# lsblk prints a tree parents first; reversed, every holder comes before what it holds.
holders_first() {
  local tree
  tree="$(lsblk -nrpo NAME,TYPE "$1")"
  tac <<<"$tree"
}

deepest_first() {
  (($# > 0)) || return 0
  printf '%s\n' "$@" | sort -ru
}

release_device() {
  local device="$1" type="$2"
  # An array spans several drives, so it is met once per drive; the second time it is gone.
  [[ -b "$device" ]] || return 0
  if is_active_swap "$device"; then
    run swapoff "$device"
  fi
  case "$type" in
    lvm | dm) run dmsetup remove "$device" ;;
    crypt) run cryptsetup close "${device##*/}" ;;
    raid*) run mdadm --stop "$device" ;;
  esac
}

# findmnt exits 1 when the device is not mounted, which is the common case.
mount_points_of() {
  findmnt -nro TARGET --source "$1" | sort -r || true
}

is_active_swap() {
  local device swap_device
  device="$(readlink -f "$1")"
  while read -r swap_device _; do
    [[ "$swap_device" == Filename ]] && continue
    [[ "$(readlink -f "$swap_device")" == "$device" ]] && return 0
  done </proc/swaps
  return 1
}
