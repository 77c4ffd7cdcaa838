# shellcheck shell=bash
# Step 2: delete the partitions. Signatures inside the old partitions (md superblocks, LUKS
# headers, LVM labels, filesystems) are wiped first: a new partition starting where an old one
# did would otherwise bring an old array or VG back to life when the kernel scans it.

step_delete_partitions() {
  local drive partition
  local -a partitions
  for drive in "${PLAN_DRIVES[@]}"; do
    capture_lines partitions partitions_of "$drive"
    for partition in "${partitions[@]}"; do
      run wipefs --all "$partition"
    done
    run wipefs --all "$drive"
    run blockdev --rereadpt "$drive"
  done
}

partitions_of() {
  local tree
  tree="$(lsblk -nrpo NAME,TYPE "$1")"
  awk '$2 == "part" { print $1 }' <<<"$tree"
}
