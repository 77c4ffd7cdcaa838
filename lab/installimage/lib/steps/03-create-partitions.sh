# shellcheck shell=bash
# Step 3: the same partition table on every target drive (layout.sh explains MBR vs GPT).

readonly BIOS_BOOT_TYPE="21686148-6E49-6F68-744E-656564454649"

step_create_partitions() {
  local drive script i
  script="$(sfdisk_script)"
  debug "sfdisk script:"$'\n'"${script}"
  for drive in "${PLAN_DRIVES[@]}"; do
    # --wipe-partitions: old data at a new partition's offsets must not look like a signature.
    run sfdisk --quiet --wipe always --wipe-partitions always "$drive" <<<"$script"
  done
  settle_devices
  for i in "${!CFG_PART_MOUNT[@]}"; do
    for drive in ${PLAN_PART_MEMBERS[$i]}; do
      wait_for_block_device "$drive"
    done
  done
}

sfdisk_script() {
  local i line
  printf 'label: %s\n' "$PLAN_LABEL"
  for i in "${!CFG_PART_MOUNT[@]}"; do
    line="start=${PLAN_PART_START_MIB[$i]}MiB, "
    [[ -n "${PLAN_PART_MIB[$i]}" ]] && line+="size=${PLAN_PART_MIB[$i]}MiB, "
    line+="type=${PLAN_PART_TYPE[$i]}"
    [[ "$PLAN_LABEL" == dos && "$i" == "$PLAN_BOOTABLE_INDEX" ]] && line+=", bootable"
    printf '%s\n' "$line"
  done
  if [[ -n "$PLAN_BIOS_BOOT_NUMBER" ]]; then
    printf 'start=1MiB, size=1MiB, type=%s\n' "$BIOS_BOOT_TYPE"
  fi
}
