# shellcheck shell=bash
# Step 4: md arrays, one per PART, with the initial resync suspended for the rest of the install
# (the finish step resumes it). A resync competing with mkfs, tar and GRUB for the same disks
# slows all of them; --assume-clean would instead skip the resync for good and leave mirrors that
# differ in never-written blocks, which a later `check` reports as mismatches.
# Every array gets an internal write-intent bitmap. Hetzner's installimage passes none, but mdadm
# adds one by itself to arrays on members of 100 GB or more, which a real server's root array always
# is; the lab's 10 GiB drives never reach that. With it, a member that was out for a boot comes back
# by re-adding only the regions written meanwhile, as on a real host, instead of a full resync.

readonly SPEED_LIMIT_MAX=/proc/sys/dev/raid/speed_limit_max

step_create_raid() {
  if ! is_raid; then
    debug "SWRAID 0: no arrays"
    return 0
  fi
  local saved_max i level drives="${#PLAN_DRIVES[@]}"
  saved_max="$(<"$SPEED_LIMIT_MAX")"
  # Throttled while creating, so the resync gets nowhere between create and freeze.
  echo 1 >"$SPEED_LIMIT_MAX"
  for i in "${!CFG_PART_MOUNT[@]}"; do
    level="$CFG_SWRAIDLEVEL"
    # shellcheck disable=SC2086 # members are device paths without spaces (validated)
    run mdadm --create "${PLAN_PART_MD[$i]}" --run --level="$level" --raid-devices="$drives" \
      --bitmap=internal --metadata="${PLAN_PART_MD_METADATA[$i]}" --homehost="$(short_hostname)" --name="$i" \
      ${PLAN_PART_MEMBERS[$i]}
    wait_for_block_device "${PLAN_PART_MD[$i]}"
    freeze_resync "${PLAN_PART_MD[$i]}"
    clear_new_array "${PLAN_PART_MD[$i]}"
  done
  echo "$saved_max" >"$SPEED_LIMIT_MAX"
  debug "$(cat /proc/mdstat)"
}

# A new array laid over the old partitions' extents shows what the old array held: an LVM label,
# a LUKS header, a filesystem (step 2 wipes only the partitions' own md superblocks). Without
# systemd, udev's lvm rules run `vgchange -aay` on such a stale VG at once, and its LVs then hold
# the array, so pvcreate cannot open it (a re-run after a killed install met this). So: let udev
# finish, release whatever it stacked on the array, and wipe the array's signatures.
clear_new_array() {
  local array="$1" entry
  local -a tree
  settle_devices
  capture_lines tree holders_first "$array"
  for entry in "${tree[@]}"; do
    [[ "${entry% *}" == "$array" ]] && continue
    debug "stale ${entry##* } ${entry% *} on the new ${array}: released"
    release_device "${entry% *}" "${entry##* }"
  done
  run wipefs --all "$array"
}

freeze_resync() {
  local action="/sys/block/${1##*/}/md/sync_action"
  [[ -w "$action" ]] && echo frozen >"$action"
  return 0
}

resume_resync() {
  local i action
  for i in "${!PLAN_PART_MD[@]}"; do
    [[ -n "${PLAN_PART_MD[$i]}" ]] || continue
    action="/sys/block/${PLAN_PART_MD[$i]##*/}/md/sync_action"
    [[ -w "$action" ]] && echo idle >"$action"
  done
  return 0
}

short_hostname() {
  printf '%s' "${CFG_HOSTNAME%%.*}"
}
