# shellcheck shell=bash
# Step 6: physical volumes, volume groups and logical volumes.

step_create_lvm() {
  local entry vg device j
  for entry in $PLAN_VG_PVS; do
    vg="${entry%%=*}"
    device="${entry#*=}"
    run pvcreate --force --force --yes "$device"
    run vgcreate --yes "$vg" "$device"
  done
  for j in "${!CFG_LV_VG[@]}"; do
    if [[ "${CFG_LV_SIZE[$j]}" == all ]]; then
      run lvcreate --yes --wipesignatures y --extents 100%FREE --name "${CFG_LV_NAME[$j]}" "${CFG_LV_VG[$j]}"
    else
      run lvcreate --yes --wipesignatures y --size "$(size_to_mib "${CFG_LV_SIZE[$j]}")m" --name "${CFG_LV_NAME[$j]}" "${CFG_LV_VG[$j]}"
    fi
    wait_for_block_device "${PLAN_LV_DEV[$j]}"
  done
}
