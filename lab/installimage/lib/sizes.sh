# shellcheck shell=bash
# Size arithmetic shared by validation and the layout plan. Pure: numbers in, numbers out (MiB).
#
# As on Hetzner, a PART size with SWRAID 1 is the size of the ARRAY, so each member partition
# is the array size divided by the number of data-carrying drives of the level.

readonly TWO_TIB_MIB=$((2 * 1024 * 1024))
# md superblock + data offset (mdadm reserves up to 128 MiB of headroom on large members),
# LUKS2 header (16 MiB) and LVM metadata: subtracted before checking that fixed LV sizes fit,
# so validation does not pass a layout that lvcreate would then refuse half-way through.
readonly STACK_OVERHEAD_MIB=160

# Per-drive partition size for an array of array_mib.
raid_member_mib() {
  local level="$1" drives="$2" array_mib="$3" data_drives
  data_drives="$(raid_data_drives "$level" "$drives")"
  # Ceiling, so the array is never smaller than what the config asked for.
  printf '%s' $(((array_mib + data_drives - 1) / data_drives))
}

# Array size built from members of member_mib.
raid_array_mib() {
  local level="$1" drives="$2" member_mib="$3" data_drives
  data_drives="$(raid_data_drives "$level" "$drives")"
  printf '%s' $((member_mib * data_drives))
}

# How many drives' worth of capacity an array of the level stores. RAID 10 (near-2) keeps two
# copies; with an odd drive count this rounds down, so member sizes err on the large side.
raid_data_drives() {
  local level="$1" drives="$2"
  case "$level" in
    0) printf '%s' "$drives" ;;
    1) printf '1' ;;
    5) printf '%s' $((drives - 1)) ;;
    6) printf '%s' $((drives - 2)) ;;
    10) printf '%s' $((drives / 2)) ;;
  esac
}

raid_min_drives() {
  case "$1" in
    0 | 1) printf '2' ;;
    5) printf '3' ;;
    6 | 10) printf '4' ;;
  esac
}
