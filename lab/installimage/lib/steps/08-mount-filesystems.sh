# shellcheck shell=bash
# Step 8: mount the new system under /installimage.XXXXX/hdd, parents before children.

step_mount_filesystems() {
  local work device mount fs _uuid entry
  local -a mounts
  work="$(mktemp -d /installimage.XXXXX)"
  RUN_TARGET="${work}/hdd"
  mkdir -p "$RUN_TARGET"
  debug "target root: ${RUN_TARGET}"
  capture_lines mounts plan_mounts
  for entry in "${mounts[@]}"; do
    IFS='|' read -r device mount fs _uuid <<<"$entry"
    mkdir -p "${RUN_TARGET}${mount}"
    if [[ "$fs" == esp ]]; then
      run mount -t vfat "$device" "${RUN_TARGET}${mount}"
    else
      run mount -t "$fs" "$device" "${RUN_TARGET}${mount}"
    fi
  done
}
