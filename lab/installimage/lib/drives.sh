# shellcheck shell=bash
# Facts about the target drives. The only place that asks the kernel about them, so validate-only
# mode can substitute INSTALLIMAGE_FAKE_DRIVES ('/dev/nvme0n1:20G,/dev/nvme1n1:20G') and tests
# need no loop devices or root.

declare -gA FAKE_DRIVE_MIB=()

load_fake_drives() {
  [[ "$OPT_VALIDATE_ONLY" == 1 && -n "${INSTALLIMAGE_FAKE_DRIVES:-}" ]] || return 0
  local entry device size mib
  local -a entries
  IFS=, read -r -a entries <<<"$INSTALLIMAGE_FAKE_DRIVES"
  for entry in "${entries[@]}"; do
    device="${entry%%:*}"
    size="${entry#*:}"
    mib="$(size_to_mib "$size")" || die "INSTALLIMAGE_FAKE_DRIVES: expected '<device>:<size>' like /dev/nvme0n1:20G, found '${entry}'"
    FAKE_DRIVE_MIB[$device]="$mib"
  done
}

drive_exists() {
  local device="$1"
  if ((${#FAKE_DRIVE_MIB[@]} > 0)); then
    [[ -n "${FAKE_DRIVE_MIB[$device]:-}" ]]
  else
    [[ -b "$device" ]]
  fi
}

drive_size_mib() {
  local device="$1" bytes
  if ((${#FAKE_DRIVE_MIB[@]} > 0)); then
    printf '%s' "${FAKE_DRIVE_MIB[$device]}"
  else
    bytes="$(blockdev --getsize64 "$device")"
    printf '%s' $((bytes / 1024 / 1024))
  fi
}

# /dev/sda + 1 → /dev/sda1; /dev/nvme0n1 + 1 → /dev/nvme0n1p1 (the kernel adds `p` after a digit).
partition_device() {
  local drive="$1" number="$2"
  if [[ "$drive" =~ [0-9]$ ]]; then
    printf '%sp%s' "$drive" "$number"
  else
    printf '%s%s' "$drive" "$number"
  fi
}

# UEFI when the rescue itself booted through UEFI, as on Hetzner (the firmware the machine has).
# With fake drives, INSTALLIMAGE_FAKE_FIRMWARE=bios|uefi (default bios) stands in for the machine.
firmware_is_uefi() {
  if ((${#FAKE_DRIVE_MIB[@]} > 0)); then
    [[ "${INSTALLIMAGE_FAKE_FIRMWARE:-bios}" == uefi ]]
  else
    [[ -d /sys/firmware/efi ]]
  fi
}

new_uuid() {
  cat /proc/sys/kernel/random/uuid
}
