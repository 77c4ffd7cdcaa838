# shellcheck shell=bash
# Step 1: release the target drives. Everything stacked on them (mounts, swap, LVs, LUKS
# mappings, md arrays) is stopped, holders first; nothing on other drives is touched, and the
# rescue's own 9p mounts are left alone.

step_stop_storage() {
  configure_udev_expectations
  local drive
  for drive in "${PLAN_DRIVES[@]}"; do
    release_drive "$drive"
  done
}

release_drive() {
  local drive="$1" entry
  local -a tree
  # lsblk prints a tree parents first; reversed, every holder comes before what it holds.
  mapfile -t tree < <(lsblk -nrpo NAME,TYPE "$drive" | tac)
  for entry in "${tree[@]}"; do
    release_device "${entry% *}" "${entry##* }"
  done
}

release_device() {
  local device="$1" type="$2" mount_point
  # An array spans several drives, so it is met once per drive; the second time it is gone.
  [[ -b "$device" ]] || return 0
  while read -r mount_point; do
    [[ -n "$mount_point" ]] && run umount "$mount_point"
  done < <(findmnt -nrlo TARGET --source "$device" | sort -r)
  if is_active_swap "$device"; then
    run swapoff "$device"
  fi
  case "$type" in
    lvm | dm) run dmsetup remove "$device" ;;
    crypt) run cryptsetup close "${device##*/}" ;;
    raid*) run mdadm --stop "$device" ;;
  esac
}

is_active_swap() {
  local device swap_device
  device="$(readlink -f "$1")"
  while read -r swap_device _; do
    [[ "$(readlink -f "$swap_device")" == "$device" ]] && return 0
  done < <(tail -n +2 /proc/swaps)
  return 1
}
