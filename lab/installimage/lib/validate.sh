# shellcheck shell=bash
# Validation: one function per rule, each printing `ERROR: <keyword>: <expected>, <found>` lines
# and nothing else. validate_config runs them all, so one run reports every mistake, and it runs
# before the first destructive step: a config that fails here leaves the disks untouched.

readonly FILESYSTEMS=" ext2 ext3 ext4 xfs btrfs "
readonly RAID_LEVELS=" 0 1 5 6 10 "
readonly NAME_PATTERN='^[A-Za-z0-9_][A-Za-z0-9_.+-]*$'
readonly HOSTNAME_LABEL='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
readonly IMAGE_EXTENSIONS_PATTERN='\.(tar|tar\.gz|tgz|tar\.bz|tar\.bz2|tbz|tar\.xz|txz|tar\.zst)$'

readonly VALIDATION_RULES=(
  validate_parse_problems
  validate_drives
  validate_swraid
  validate_bootloader
  validate_hostname
  validate_image
  validate_part_fields
  validate_all_only_last
  validate_mount_points_unique
  validate_boot
  validate_root
  validate_esp
  validate_raid_level_needs_boot
  validate_lvs
  validate_crypt
  validate_sizes_fit
  validate_ssh_keys
  validate_post_install
)

# Prints every failure; returns 1 if there was any.
validate_config() {
  local rule output all=""
  for rule in "${VALIDATION_RULES[@]}"; do
    # Each rule returns 0 and reports through its output; a non-zero status is a bug in the rule.
    output="$("$rule")"
    [[ -n "$output" ]] && all+="${output}"$'\n'
  done
  [[ -z "$all" ]] && return 0
  printf '%s' "$all"
  return 1
}

error() {
  local keyword="$1"
  shift
  printf 'ERROR: %s: %s\n' "$keyword" "$*"
}

part_label() {
  printf 'PART %s (line %s)' "${CFG_PART_MOUNT[$1]}" "${CFG_PART_LINE[$1]}"
}

lv_label() {
  printf 'LV %s/%s (line %s)' "${CFG_LV_VG[$1]}" "${CFG_LV_NAME[$1]}" "${CFG_LV_LINE[$1]}"
}

# Index of the PART mounted at $1, or nothing.
part_index_of_mount() {
  local i
  for i in "${!CFG_PART_MOUNT[@]}"; do
    [[ "${CFG_PART_MOUNT[$i]}" == "$1" ]] && { printf '%s' "$i"; return 0; }
  done
  return 0
}

lv_index_of_mount() {
  local j
  for j in "${!CFG_LV_MOUNT[@]}"; do
    [[ "${CFG_LV_MOUNT[$j]}" == "$1" ]] && { printf '%s' "$j"; return 0; }
  done
  return 0
}

is_raid() {
  [[ "$CFG_SWRAID" == 1 ]]
}

validate_parse_problems() {
  local problem
  for problem in "${CFG_PROBLEMS[@]}"; do
    printf 'ERROR: %s\n' "$problem"
  done
}

validate_drives() {
  local i number device
  local -A listed_as=()
  if ((${#CFG_DRIVES[@]} == 0)); then
    error DRIVE1 "expected at least 'DRIVE1 <device>' (e.g. DRIVE1 /dev/nvme0n1), found no DRIVE line"
    return
  fi
  for i in "${!CFG_DRIVES[@]}"; do
    number="${CFG_DRIVE_NUMBERS[$i]}"
    device="${CFG_DRIVES[$i]}"
    if ((number != i + 1)); then
      error "DRIVE${number}" "expected DRIVE$((i + 1)) next (drives are numbered 1, 2, 3… in ascending order without gaps), found DRIVE${number}"
    fi
    if [[ -n "${listed_as[$device]:-}" ]]; then
      error "DRIVE${number}" "expected a drive not listed before, found ${device} again (already DRIVE${listed_as[$device]})"
      continue
    fi
    listed_as[$device]="$number"
    if [[ ! "$device" =~ ^/dev/[A-Za-z0-9._/-]+$ ]]; then
      error "DRIVE${number}" "expected a device path like /dev/nvme0n1 or /dev/sda, found '${device}'"
    elif ! drive_exists "$device"; then
      error "DRIVE${number}" "expected an existing block device, found no block device at ${device} (lsblk lists the drives)"
    fi
  done
}

validate_swraid() {
  case "$CFG_SWRAID" in
    0 | 1) ;;
    *) error SWRAID "expected 0 or 1, found '${CFG_SWRAID}'"; return ;;
  esac
  if [[ "$RAID_LEVELS" != *" ${CFG_SWRAIDLEVEL} "* ]]; then
    error SWRAIDLEVEL "expected one of 0 1 5 6 10, found '${CFG_SWRAIDLEVEL}'"
    return
  fi
  is_raid || return 0
  local needed drives="${#CFG_DRIVES[@]}"
  needed="$(raid_min_drives "$CFG_SWRAIDLEVEL")"
  if ((drives < needed)); then
    error SWRAIDLEVEL "RAID ${CFG_SWRAIDLEVEL} needs at least ${needed} drives, found ${drives} (DRIVE lines); add drives, pick another level, or set SWRAID 0"
  fi
}

validate_bootloader() {
  [[ "$CFG_BOOTLOADER" == grub ]] || error BOOTLOADER "expected 'grub' (the only bootloader installimage installs), found '${CFG_BOOTLOADER}'"
}

validate_hostname() {
  if [[ -z "$CFG_HOSTNAME" ]]; then
    error HOSTNAME "expected 'HOSTNAME <name>' in the config or -n <name>, found neither"
  elif ((${#CFG_HOSTNAME} > 253)) || [[ ! "$CFG_HOSTNAME" =~ ^${HOSTNAME_LABEL}(\.${HOSTNAME_LABEL})*$ ]]; then
    error HOSTNAME "expected a host name of letters, digits, '-' and '.' (e.g. host1.example.com), found '${CFG_HOSTNAME}'"
  fi
}

validate_image() {
  local image="$CFG_IMAGE" name
  if [[ -z "$image" ]]; then
    error IMAGE "expected the image to install, e.g. 'IMAGE /root/images/Debian-bookworm-latest-amd64-base.tar.gz', found no IMAGE line"
    return
  fi
  name="${image##*/}"
  if [[ ! "$name" =~ $IMAGE_EXTENSIONS_PATTERN ]]; then
    error IMAGE "expected a tar archive (.tar .tar.gz .tgz .tar.bz2 .tar.xz .tar.zst), found '${name}'"
  fi
  if [[ "$name" =~ -(arm64|32|i386)- ]]; then
    error IMAGE "expected an amd64 image for this $(uname -m) machine, found '${BASH_REMATCH[1]}' in '${name}'"
  elif [[ ! "$name" =~ -(amd64|64)- ]]; then
    error IMAGE "expected the architecture in the image name (…-amd64-…, e.g. Debian-bookworm-latest-amd64-base.tar.gz), found '${name}'"
  fi
  if [[ ! "$image" =~ ^(https?|ftp):// && ! -f "$image" ]]; then
    error IMAGE "expected an existing image file (images are in /root/images/), found nothing at ${image}"
  fi
}

validate_size_field() {
  local keyword="$1" size="$2"
  [[ "$size" == all ]] && return 0
  local mib
  if ! mib="$(size_to_mib "$size")" || ((mib == 0)); then
    error "$keyword" "expected a size in MiB or with M/G/T (e.g. 1024M, 20G) or 'all', found '${size}'"
  fi
}

validate_part_fields() {
  local i mount fs label
  for i in "${!CFG_PART_MOUNT[@]}"; do
    mount="${CFG_PART_MOUNT[$i]}"
    fs="${CFG_PART_FS[$i]}"
    label="$(part_label "$i")"
    validate_size_field "$label" "${CFG_PART_SIZE[$i]}"
    case "$mount" in
      lvm)
        [[ "$fs" =~ $NAME_PATTERN ]] || error "$label" "expected a volume group name after 'lvm' (e.g. vg0), found '${fs}'"
        ;;
      swap)
        [[ "$fs" == swap ]] || error "$label" "expected 'PART swap swap <size>', found filesystem '${fs}'"
        ;;
      btrfs.*)
        error "$label" "expected a mount point, 'lvm' or 'swap'; btrfs subvolume groups are not emulated by the lab installimage"
        ;;
      /*)
        if [[ "$fs" == esp ]]; then
          [[ "$mount" == /boot/efi ]] || error "$label" "expected the esp partition at /boot/efi, found '${mount}'"
        elif [[ "$FILESYSTEMS" != *" ${fs} "* ]]; then
          error "$label" "expected a filesystem out of ext2 ext3 ext4 xfs btrfs (or esp for /boot/efi), found '${fs}'"
        fi
        ;;
      *)
        error "$label" "expected a mount point (absolute path), 'lvm' or 'swap', found '${mount}'"
        ;;
    esac
  done
}

validate_all_only_last() {
  local i last=$((${#CFG_PART_SIZE[@]} - 1))
  for i in "${!CFG_PART_SIZE[@]}"; do
    if [[ "${CFG_PART_SIZE[$i]}" == all ]] && ((i != last)); then
      error "$(part_label "$i")" "expected 'all' only on the last PART, found it before $(part_label $((i + 1)))"
    fi
  done
  local j k
  for j in "${!CFG_LV_SIZE[@]}"; do
    [[ "${CFG_LV_SIZE[$j]}" == all ]] || continue
    for ((k = j + 1; k < ${#CFG_LV_SIZE[@]}; k++)); do
      if [[ "${CFG_LV_VG[$k]}" == "${CFG_LV_VG[$j]}" ]]; then
        error "$(lv_label "$j")" "expected 'all' only on the last LV of volume group ${CFG_LV_VG[$j]}, found it before $(lv_label "$k")"
        break
      fi
    done
  done
  return 0
}

validate_mount_points_unique() {
  local -A seen=()
  local i j mount
  for i in "${!CFG_PART_MOUNT[@]}"; do
    mount="${CFG_PART_MOUNT[$i]}"
    [[ "$mount" == /* ]] || continue
    if [[ -n "${seen[$mount]:-}" ]]; then
      error "$(part_label "$i")" "expected each mount point once, found ${mount} already used by ${seen[$mount]}"
    fi
    seen[$mount]="$(part_label "$i")"
  done
  for j in "${!CFG_LV_MOUNT[@]}"; do
    mount="${CFG_LV_MOUNT[$j]}"
    [[ "$mount" == /* ]] || continue
    if [[ -n "${seen[$mount]:-}" ]]; then
      error "$(lv_label "$j")" "expected each mount point once, found ${mount} already used by ${seen[$mount]}"
    fi
    seen[$mount]="$(lv_label "$j")"
  done
}

# Minimum size check for a PART or LV with a fixed size ('all' is checked in validate_sizes_fit).
check_minimum() {
  local label="$1" size="$2" minimum="$3" what="$4" mib
  [[ "$size" == all ]] && return 0
  mib="$(size_to_mib "$size")" || return 0
  if ((mib < minimum)); then
    error "$label" "expected at least ${minimum}M for ${what}, found ${size}"
  fi
}

validate_boot() {
  local i j
  j="$(lv_index_of_mount /boot)"
  if [[ -n "$j" ]]; then
    error "$(lv_label "$j")" "expected /boot on a plain PART (GRUB must read the kernel before LVM is up), found /boot on LVM; use e.g. 'PART /boot ext4 1G'"
  fi
  i="$(part_index_of_mount /boot)"
  [[ -n "$i" ]] || return 0
  local label
  label="$(part_label "$i")"
  [[ "${CFG_PART_FS[$i]}" == xfs ]] && error "$label" "expected ext2/ext3/ext4 for /boot, found xfs (not supported for /boot)"
  [[ "${CFG_PART_CRYPT[$i]}" == 1 ]] && error "$label" "expected /boot unencrypted (GRUB loads the kernel and initramfs from it), found 'crypt'"
  check_minimum "$label" "${CFG_PART_SIZE[$i]}" 200 /boot
}

validate_root() {
  local i j
  i="$(part_index_of_mount /)"
  j="$(lv_index_of_mount /)"
  if [[ -z "$i" && -z "$j" ]]; then
    error "PART /" "expected a root filesystem (a PART or LV mounted at /), found none"
    return
  fi
  [[ -n "$i" ]] && check_minimum "$(part_label "$i")" "${CFG_PART_SIZE[$i]}" 1500 /
  [[ -n "$j" ]] && check_minimum "$(lv_label "$j")" "${CFG_LV_SIZE[$j]}" 1500 /
  return 0
}

validate_esp() {
  local i label count=0
  for i in "${!CFG_PART_FS[@]}"; do
    [[ "${CFG_PART_FS[$i]}" == esp ]] || continue
    count=$((count + 1))
    label="$(part_label "$i")"
    ((count > 1)) && error "$label" "expected at most one esp partition, found another"
    [[ "${CFG_PART_SIZE[$i]}" == all ]] && error "$label" "expected a fixed esp size of at least 256M, found 'all'"
    [[ "${CFG_PART_CRYPT[$i]}" == 1 ]] && error "$label" "expected the esp unencrypted (the firmware reads it), found 'crypt'"
    check_minimum "$label" "${CFG_PART_SIZE[$i]}" 256 "the EFI system partition"
  done
  for i in "${!CFG_LV_FS[@]}"; do
    [[ "${CFG_LV_FS[$i]}" == esp ]] && error "$(lv_label "$i")" "expected the esp as a plain PART, found it on LVM"
  done
  if ((count == 0)) && firmware_is_uefi; then
    error "PART /boot/efi" "this machine boots with UEFI: expected 'PART /boot/efi esp 256M' (or larger), found none"
  fi
  return 0
}

validate_raid_level_needs_boot() {
  is_raid || return 0
  case "$CFG_SWRAIDLEVEL" in
    0 | 5 | 6 | 10) ;;
    *) return 0 ;;
  esac
  if [[ -z "$(part_index_of_mount /boot)" ]]; then
    error SWRAIDLEVEL "RAID ${CFG_SWRAIDLEVEL} needs a separate 'PART /boot …' (GRUB boots only from RAID 1 or plain partitions), found no PART /boot"
  fi
}

validate_lvs() {
  local -A vg_part=() seen_lv=()
  local i j vg label mount fs
  for i in "${!CFG_PART_MOUNT[@]}"; do
    if [[ "${CFG_PART_MOUNT[$i]}" == lvm ]]; then
      vg="${CFG_PART_FS[$i]}"
      [[ -n "${vg_part[$vg]:-}" ]] && error "$(part_label "$i")" "expected one 'PART lvm ${vg}', found another one"
      vg_part[$vg]="$i"
    fi
  done
  for j in "${!CFG_LV_VG[@]}"; do
    vg="${CFG_LV_VG[$j]}"
    label="$(lv_label "$j")"
    mount="${CFG_LV_MOUNT[$j]}"
    fs="${CFG_LV_FS[$j]}"
    [[ -n "${vg_part[$vg]:-}" ]] || error "$label" "expected a 'PART lvm ${vg} <size|all>' line for its volume group, found none"
    [[ "${CFG_LV_NAME[$j]}" =~ $NAME_PATTERN ]] || error "$label" "expected a logical volume name of letters, digits and _.+-, found '${CFG_LV_NAME[$j]}'"
    [[ -n "${seen_lv[$vg/${CFG_LV_NAME[$j]}]:-}" ]] && error "$label" "expected each LV name once per volume group, found it again"
    seen_lv[$vg/${CFG_LV_NAME[$j]}]=1
    validate_size_field "$label" "${CFG_LV_SIZE[$j]}"
    if [[ "$mount" == swap ]]; then
      [[ "$fs" == swap ]] || error "$label" "expected filesystem 'swap' for a swap LV, found '${fs}'"
    elif [[ "$mount" != /* ]]; then
      error "$label" "expected a mount point (absolute path) or 'swap', found '${mount}'"
    elif [[ "$FILESYSTEMS" != *" ${fs} "* ]]; then
      error "$label" "expected a filesystem out of ext2 ext3 ext4 xfs btrfs, found '${fs}'"
    fi
  done
  if ((${#CFG_LV_VG[@]} > 0)) && [[ -n "$(lv_index_of_mount /)" && -z "$(part_index_of_mount /boot)" ]]; then
    error LV "with / on LVM, expected 'PART /boot …' as a plain partition (GRUB reads the kernel from it), found none"
  fi
}

validate_crypt() {
  local i
  [[ -n "$CFG_CRYPTPASSWORD" ]] && return 0
  for i in "${!CFG_PART_CRYPT[@]}"; do
    if [[ "${CFG_PART_CRYPT[$i]}" == 1 ]]; then
      error CRYPTPASSWORD "expected 'CRYPTPASSWORD <password>' because $(part_label "$i") has 'crypt', found none"
      return
    fi
  done
}

# Runs only when the drives and sizes are otherwise valid: it needs their numbers.
validate_sizes_fit() {
  [[ -z "$(validate_drives)$(validate_swraid)$(validate_part_fields)$(validate_lvs)" ]] || return 0
  ((${#CFG_PART_MOUNT[@]} > 0)) || { error PART "expected at least one PART line, found none"; return; }
  local smallest_mib="" smallest_device="" device mib
  for device in $(layout_drives); do
    mib="$(drive_size_mib "$device")"
    [[ -z "$smallest_mib" ]] || ((mib < smallest_mib)) && smallest_mib="$mib" && smallest_device="$device"
  done
  local used_mib
  used_mib="$(layout_first_partition_mib)"
  local i last_all=""
  for i in "${!CFG_PART_SIZE[@]}"; do
    if [[ "${CFG_PART_SIZE[$i]}" == all ]]; then
      last_all="$i"
    else
      used_mib=$((used_mib + $(layout_member_mib "$i")))
    fi
  done
  if ((used_mib + 1 > smallest_mib)); then
    error PART "expected the partitions to fit on the smallest drive (${smallest_device}, ${smallest_mib} MiB), found ${used_mib} MiB per drive of fixed sizes"
    return
  fi
  local -A vg_mib=()
  for i in "${!CFG_PART_SIZE[@]}"; do
    if [[ "$i" == "$last_all" ]]; then
      mib="$(layout_array_mib "$((smallest_mib - used_mib - 1))")"
      [[ "${CFG_PART_MOUNT[$i]}" == / ]] && ((mib < 1500)) && error "$(part_label "$i")" "expected at least 1500M for /, found only ${mib} MiB left for 'all'"
      [[ "${CFG_PART_MOUNT[$i]}" == /boot ]] && ((mib < 200)) && error "$(part_label "$i")" "expected at least 200M for /boot, found only ${mib} MiB left for 'all'"
    else
      mib="$(size_to_mib "${CFG_PART_SIZE[$i]}")"
    fi
    [[ "${CFG_PART_MOUNT[$i]}" == lvm ]] && vg_mib[${CFG_PART_FS[$i]}]=$((mib - STACK_OVERHEAD_MIB))
  done
  local vg fixed j
  for vg in "${!vg_mib[@]}"; do
    fixed=0
    for j in "${!CFG_LV_VG[@]}"; do
      [[ "${CFG_LV_VG[$j]}" == "$vg" && "${CFG_LV_SIZE[$j]}" != all ]] && fixed=$((fixed + $(size_to_mib "${CFG_LV_SIZE[$j]}")))
    done
    if ((fixed > vg_mib[$vg])); then
      error "LV ${vg}" "expected the LVs of ${vg} to fit in about ${vg_mib[$vg]} MiB, found ${fixed} MiB of fixed sizes"
      continue
    fi
    for j in "${!CFG_LV_VG[@]}"; do
      if [[ "${CFG_LV_VG[$j]}" == "$vg" && "${CFG_LV_SIZE[$j]}" == all && "${CFG_LV_MOUNT[$j]}" == / ]] && ((vg_mib[$vg] - fixed < 1500)); then
        error "$(lv_label "$j")" "expected at least 1500M for /, found only about $((vg_mib[$vg] - fixed)) MiB left for 'all'"
      fi
    done
  done
  return 0
}

validate_ssh_keys() {
  local source="$CFG_SSHKEYS_URL"
  [[ -n "$source" && ! "$source" =~ ^(https?|ftp):// ]] || return 0
  [[ -f "$source" ]] || error SSHKEYS_URL "expected a URL or an existing file of public keys, found nothing at ${source}"
}

validate_post_install() {
  [[ -n "$OPT_POST_INSTALL" ]] || return 0
  [[ -f "$(post_install_script_path)" ]] || error "-x" "expected an existing post-install script, found nothing at $(post_install_script_path)"
}
