# shellcheck shell=bash
# Helpers the steps share: running commands inside the new system, waiting for devices, and
# working without udev (the rescue may not run udevd; device-mapper then makes its own nodes).

RUN_TARGET=""

# A rescue without a running udevd would make cryptsetup and LVM wait forever for udev events.
configure_udev_expectations() {
  if ! pgrep -x systemd-udevd >/dev/null 2>&1 && ! pgrep -x udevd >/dev/null 2>&1; then
    export DM_DISABLE_UDEV=1
    debug "no udevd running: DM_DISABLE_UDEV=1 (device-mapper creates its own /dev nodes)"
  fi
}

settle_devices() {
  if [[ -z "${DM_DISABLE_UDEV:-}" ]] && command -v udevadm >/dev/null; then
    udevadm settle --timeout=30 >>"$DEBUG_FILE" 2>&1 || true
  fi
}

wait_for_block_device() {
  local device="$1" tries
  for ((tries = 0; tries < 100; tries++)); do
    [[ -b "$device" ]] && return 0
    sleep 0.1
  done
  die "step ${RUN_STEP}: expected block device ${device} to appear, found none after 10 s"
}

# Runs a command inside the new system with a clean, predictable environment.
in_target() {
  run chroot "$RUN_TARGET" /usr/bin/env -i HOME=/root LC_ALL=C TERM=dumb \
    DEBIAN_FRONTEND=noninteractive PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

target_has() {
  local path
  for path in "$@"; do
    [[ -e "${RUN_TARGET}${path}" ]] && return 0
  done
  return 1
}

# /dev, /proc and /sys for grub-install, update-initramfs and ssh-keygen in the chroot; a fresh
# /run so nothing of the rescue's runtime state leaks into the new system.
bind_target_system() {
  mountpoint -q "${RUN_TARGET}/proc" && return 0
  run mount --bind /dev "${RUN_TARGET}/dev"
  run mount --bind /dev/pts "${RUN_TARGET}/dev/pts"
  run mount -t proc proc "${RUN_TARGET}/proc"
  run mount -t sysfs sysfs "${RUN_TARGET}/sys"
  run mount -t tmpfs -o mode=0755 tmpfs "${RUN_TARGET}/run"
  if [[ -d /run/udev ]]; then
    mkdir -p "${RUN_TARGET}/run/udev"
    run mount --bind /run/udev "${RUN_TARGET}/run/udev"
  fi
  if [[ -d /sys/firmware/efi/efivars ]] && [[ -d "${RUN_TARGET}/sys/firmware/efi/efivars" ]]; then
    run mount -t efivarfs efivarfs "${RUN_TARGET}/sys/firmware/efi/efivars"
  fi
}

# Stores the output lines of a command in the named array. A failing command fails the step;
# `mapfile < <(command)` would not notice (a process substitution's exit status is lost).
capture_lines() {
  local -n lines_into="$1"
  shift
  local output
  output="$("$@")"
  lines_into=()
  if [[ -n "$output" ]]; then mapfile -t lines_into <<<"$output"; fi
}

# Unmounts everything at or below a directory, deepest first.
unmount_below() {
  local top="$1" mount_point
  local -a mount_points
  capture_lines mount_points mount_points_below "$top"
  for mount_point in "${mount_points[@]}"; do
    run umount "$mount_point"
  done
}

mount_points_below() {
  local top="$1" all
  all="$(findmnt -nro TARGET)"
  awk -v top="$top" '$0 == top || index($0, top "/") == 1' <<<"$all" | sort -r
}

# The rescue has wget; curl is used when present (Hetzner's rescue has both).
download() {
  local url="$1" output="$2"
  if command -v curl >/dev/null; then
    curl --fail --silent --show-error --location --output "$output" "$url"
  else
    wget --quiet --output-document="$output" "$url"
  fi
}
