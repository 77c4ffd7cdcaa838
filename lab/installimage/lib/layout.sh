# shellcheck shell=bash
# The layout plan: every decision about devices, partition tables, arrays, LUKS mappings,
# volume groups, filesystems and mounts, computed from the validated config before anything is
# touched. The steps only carry the plan out. Names and UUIDs are decided here too (LUKS and
# filesystem UUIDs are generated now and passed to cryptsetup/mkfs), so fstab and crypttab are
# known before the first write, and validate-only mode can print the whole plan.
#
# Partition tables (Hetzner's rule, made explicit):
#   - MBR ("dos") by default; the /boot partition (else /) gets the boot flag;
#   - GPT when there is an esp, when a drive is larger than 2 TiB, or when there are more than four
#     PARTs (we do not emulate MBR extended partitions);
#   - on GPT, a 1 MiB BIOS boot partition for GRUB's core image sits at 1-2 MiB and takes the
#     number after the last PART, so PART n is always partition n on every drive.

# Drives the install writes to: all with SWRAID 1, else DRIVE1 only (Hetzner leaves the others alone).
layout_drives() {
  if is_raid; then
    printf '%s\n' "${CFG_DRIVES[@]}"
  else
    printf '%s\n' "${CFG_DRIVES[0]}"
  fi
}

layout_label() {
  local i device
  for i in "${!CFG_PART_FS[@]}"; do
    if [[ "${CFG_PART_FS[$i]}" == esp ]]; then printf gpt; return 0; fi
  done
  if ((${#CFG_PART_MOUNT[@]} > 4)); then printf gpt; return 0; fi
  for device in $(layout_drives); do
    if (($(drive_size_mib "$device") > TWO_TIB_MIB)); then printf gpt; return 0; fi
  done
  printf dos
}

layout_first_partition_mib() {
  if [[ "$(layout_label)" == gpt ]]; then printf 2; else printf 1; fi
}

# Per-drive size of PART i (fixed sizes only).
layout_member_mib() {
  local i="$1" array_mib
  array_mib="$(size_to_mib "${CFG_PART_SIZE[$i]}")"
  if is_raid; then
    raid_member_mib "$CFG_SWRAIDLEVEL" "${#CFG_DRIVES[@]}" "$array_mib"
  else
    printf '%s' "$array_mib"
  fi
}

# Usable size of a PART whose members are member_mib each.
layout_array_mib() {
  local member_mib="$1"
  if is_raid; then
    raid_array_mib "$CFG_SWRAIDLEVEL" "${#CFG_DRIVES[@]}" "$member_mib"
  else
    printf '%s' "$member_mib"
  fi
}

# The sfdisk type: GPT and MBR share these shortcuts (L linux, S swap, V lvm, R raid, U esp).
layout_partition_type() {
  local i="$1"
  if is_raid; then printf R; return 0; fi
  case "${CFG_PART_FS[$i]}" in
    esp) printf U ;;
    swap) printf S ;;
    *) if [[ "${CFG_PART_MOUNT[$i]}" == lvm ]]; then printf V; else printf L; fi ;;
  esac
}

# /dev/mapper name of an LV: dashes inside names are doubled by device-mapper.
lv_mapper_device() {
  printf '/dev/mapper/%s-%s' "${1//-/--}" "${2//-/--}"
}

plan_layout() {
  local label first_mib start_mib i j drive boot_index vg
  local -a drives part_start part_mib part_type part_members part_md part_md_metadata
  local -a part_luks_uuid part_dev part_fs_uuid lv_dev lv_fs_uuid
  mapfile -t drives < <(layout_drives)
  label="$(layout_label)"
  first_mib="$(layout_first_partition_mib)"
  start_mib="$first_mib"
  boot_index="$(part_index_of_mount /boot)"
  [[ -n "$boot_index" ]] || boot_index="$(part_index_of_mount /)"
  local -A vg_dev=()

  for i in "${!CFG_PART_MOUNT[@]}"; do
    part_start[i]="$start_mib"
    if [[ "${CFG_PART_SIZE[$i]}" == all ]]; then
      part_mib[i]=""
    else
      part_mib[i]="$(layout_member_mib "$i")"
      start_mib=$((start_mib + part_mib[i]))
    fi
    part_type[i]="$(layout_partition_type "$i")"
    part_members[i]=""
    for drive in "${drives[@]}"; do
      part_members[i]+="${part_members[i]:+ }$(partition_device "$drive" $((i + 1)))"
    done
    local device="${part_members[i]}"
    part_md[i]=""
    part_md_metadata[i]=""
    if is_raid; then
      part_md[i]="/dev/md${i}"
      # The firmware reads an esp as plain FAT, so its RAID superblock must sit at the end.
      if [[ "${CFG_PART_FS[$i]}" == esp ]]; then part_md_metadata[i]="1.0"; else part_md_metadata[i]="1.2"; fi
      device="${part_md[i]}"
    fi
    part_luks_uuid[i]=""
    if [[ "${CFG_PART_CRYPT[$i]}" == 1 ]]; then
      part_luks_uuid[i]="$(new_uuid)"
      device="/dev/mapper/luks-${part_luks_uuid[i]}"
    fi
    part_dev[i]="$device"
    part_fs_uuid[i]=""
    if [[ "${CFG_PART_MOUNT[$i]}" == lvm ]]; then
      vg_dev[${CFG_PART_FS[$i]}]="$device"
    elif [[ "${CFG_PART_FS[$i]}" == esp ]]; then
      part_fs_uuid[i]="$(new_vfat_serial)"
    else
      part_fs_uuid[i]="$(new_uuid)"
    fi
  done
  for j in "${!CFG_LV_VG[@]}"; do
    lv_dev[j]="$(lv_mapper_device "${CFG_LV_VG[$j]}" "${CFG_LV_NAME[$j]}")"
    lv_fs_uuid[j]="$(new_uuid)"
  done

  declare -gra PLAN_DRIVES=("${drives[@]}")
  declare -gr PLAN_LABEL="$label"
  local bios_boot_number=""
  if [[ "$label" == gpt ]]; then bios_boot_number=$((${#CFG_PART_MOUNT[@]} + 1)); fi
  declare -gr PLAN_BIOS_BOOT_NUMBER="$bios_boot_number"
  declare -gr PLAN_BOOTABLE_INDEX="$boot_index"
  declare -gra PLAN_PART_START_MIB=("${part_start[@]}")
  declare -gra PLAN_PART_MIB=("${part_mib[@]}")
  declare -gra PLAN_PART_TYPE=("${part_type[@]}")
  declare -gra PLAN_PART_MEMBERS=("${part_members[@]}")
  declare -gra PLAN_PART_MD=("${part_md[@]}")
  declare -gra PLAN_PART_MD_METADATA=("${part_md_metadata[@]}")
  declare -gra PLAN_PART_LUKS_UUID=("${part_luks_uuid[@]}")
  declare -gra PLAN_PART_DEV=("${part_dev[@]}")
  declare -gra PLAN_PART_FS_UUID=("${part_fs_uuid[@]}")
  declare -gra PLAN_LV_DEV=("${lv_dev[@]}")
  declare -gra PLAN_LV_FS_UUID=("${lv_fs_uuid[@]}")
  local vg_list=""
  for vg in "${!vg_dev[@]}"; do vg_list+="${vg}=${vg_dev[$vg]} "; done
  declare -gr PLAN_VG_PVS="${vg_list% }"
}

new_vfat_serial() {
  local uuid
  uuid="$(new_uuid)"
  uuid="${uuid//-/}"
  printf '%s-%s' "${uuid:0:4}" "${uuid:4:4}" | tr '[:lower:]' '[:upper:]'
}

# Filesystems to create and mount, one "device|mount|fs|uuid" line each, PARTs then LVs.
plan_filesystems() {
  local i j
  for i in "${!CFG_PART_MOUNT[@]}"; do
    [[ "${CFG_PART_MOUNT[$i]}" != lvm ]] || continue
    printf '%s|%s|%s|%s\n' "${PLAN_PART_DEV[$i]}" "${CFG_PART_MOUNT[$i]}" "${CFG_PART_FS[$i]}" "${PLAN_PART_FS_UUID[$i]}"
  done
  for j in "${!CFG_LV_VG[@]}"; do
    printf '%s|%s|%s|%s\n' "${PLAN_LV_DEV[$j]}" "${CFG_LV_MOUNT[$j]}" "${CFG_LV_FS[$j]}" "${PLAN_LV_FS_UUID[$j]}"
  done
}

# Mounted filesystems (no swap), parents before children.
plan_mounts() {
  local entry device mount fs uuid depth
  local -a entries
  capture_lines entries plan_filesystems
  for entry in "${entries[@]}"; do
    IFS='|' read -r device mount fs uuid <<<"$entry"
    if [[ "$mount" == /* ]]; then
      depth="${mount//[!\/]/}"
      if [[ "$mount" == / ]]; then depth=""; fi
      printf '%s|%s|%s|%s|%s\n' "${#depth}" "$device" "$mount" "$fs" "$uuid"
    fi
  done | sort -t'|' -k1,1n -k3,3 | cut -d'|' -f2-
}

plan_fstab() {
  local entry _device mount fs uuid pass
  local -a entries
  printf '# /etc/fstab: written by installimage. <file system> <mount point> <type> <options> <dump> <pass>\n'
  capture_lines entries plan_mounts
  for entry in "${entries[@]}"; do
    IFS='|' read -r _device mount fs uuid <<<"$entry"
    if [[ "$fs" == esp ]]; then
      printf 'UUID=%s %s vfat umask=0077 0 1\n' "$uuid" "$mount"
    else
      if [[ "$mount" == / ]]; then pass=1; else pass=2; fi
      printf 'UUID=%s %s %s defaults 0 %s\n' "$uuid" "$mount" "$fs" "$pass"
    fi
  done
  capture_lines entries plan_filesystems
  for entry in "${entries[@]}"; do
    IFS='|' read -r _device mount fs uuid <<<"$entry"
    if [[ "$fs" == swap ]]; then
      printf 'UUID=%s none swap sw 0 0\n' "$uuid"
    fi
  done
}

plan_crypttab() {
  local i
  for i in "${!CFG_PART_MOUNT[@]}"; do
    if [[ -n "${PLAN_PART_LUKS_UUID[$i]}" ]]; then
      printf 'luks-%s UUID=%s none luks\n' "${PLAN_PART_LUKS_UUID[$i]}" "${PLAN_PART_LUKS_UUID[$i]}"
    fi
  done
}

# Validate-only output: the decisions, for people and for tests.
print_plan() {
  local i j
  printf 'plan: label=%s drives=%s bios_boot_partition=%s firmware=%s\n' "$PLAN_LABEL" "${PLAN_DRIVES[*]}" \
    "${PLAN_BIOS_BOOT_NUMBER:--}" "$(firmware_is_uefi && echo uefi || echo bios)"
  for i in "${!CFG_PART_MOUNT[@]}"; do
    printf 'part %s: start=%sMiB size=%s type=%s members=%s md=%s metadata=%s crypt=%s device=%s mount=%s fs=%s\n' \
      $((i + 1)) "${PLAN_PART_START_MIB[$i]}" "${PLAN_PART_MIB[$i]:-rest}MiB" "${PLAN_PART_TYPE[$i]}" \
      "${PLAN_PART_MEMBERS[$i]// /,}" "${PLAN_PART_MD[$i]:--}" "${PLAN_PART_MD_METADATA[$i]:--}" \
      "$([[ -n "${PLAN_PART_LUKS_UUID[$i]}" ]] && echo "luks-${PLAN_PART_LUKS_UUID[$i]}" || echo -)" \
      "${PLAN_PART_DEV[$i]}" "${CFG_PART_MOUNT[$i]}" "${CFG_PART_FS[$i]}"
  done
  for j in "${!CFG_LV_VG[@]}"; do
    printf 'lv %s/%s: size=%s device=%s mount=%s fs=%s\n' "${CFG_LV_VG[$j]}" "${CFG_LV_NAME[$j]}" \
      "${CFG_LV_SIZE[$j]}" "${PLAN_LV_DEV[$j]}" "${CFG_LV_MOUNT[$j]}" "${CFG_LV_FS[$j]}"
  done
  local line
  while IFS= read -r line; do printf 'fstab: %s\n' "$line"; done < <(plan_fstab)
  while IFS= read -r line; do printf 'crypttab: %s\n' "$line"; done < <(plan_crypttab)
}
