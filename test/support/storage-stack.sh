#!/bin/bash
# The storage stack on a lab server's disks, seen from its rescue system:
#   storage-stack.sh open    assemble the md arrays, open LUKS (passphrase on stdin), activate LVM
#   storage-stack.sh facts   print the stack's identities, one per line, in a stable order
#   storage-stack.sh close   unmount /mnt…, deactivate LVM, close LUKS, stop the arrays
# `close` leaves the disks as a freshly booted rescue finds them, which is what a checkpoint keeps.
set -euo pipefail

md_devices() { ls /dev/md?* 2>/dev/null | grep -E '^/dev/md[0-9]+$' || true; }

open_stack() {
  mdadm --assemble --scan >/dev/null 2>&1 || true
  local dev uuid
  for dev in $(md_devices); do
    cryptsetup isLuks "$dev" || continue
    uuid=$(cryptsetup luksUUID "$dev")
    [ -e "/dev/mapper/luks-$uuid" ] || cryptsetup open --key-file=- "$dev" "luks-$uuid"
  done
  vgchange -ay >/dev/null
}

# UUID and type only: DEVNAME is the kernel's name of the day (md0 after install, md126 after a boot).
fs_id() { blkid -o export -s UUID -s TYPE "$1" | grep -v '^DEVNAME=' | sort | tr '\n' ' '; }

facts() {
  # Array identities from the superblocks (UUID, name, metadata), not the kernel's device numbers.
  mdadm --examine --scan | sed 's/^ARRAY [^ ]* */array /' | sort
  local dev lv
  for dev in $(md_devices); do
    if cryptsetup isLuks "$dev"; then
      echo "luks uuid=$(cryptsetup luksUUID "$dev") keyslots=$(cryptsetup luksDump "$dev" | { grep -cE '^  [0-9]+: luks2' || true; })"
    else
      echo "fs on array: $(fs_id "$dev")"
    fi
  done | sort
  pvs --noheadings -o pv_uuid,vg_name | sed 's/^ */pv /'
  vgs --noheadings -o vg_name,vg_uuid | sed 's/^ */vg /'
  lvs --noheadings --units b -o vg_name,lv_name,lv_uuid,lv_size | sed 's/^ */lv /' | sort
  for lv in $(lvs --noheadings -o lv_path | sort); do
    echo "fs on $lv: $(fs_id "$lv")"
  done
}

close_stack() {
  sync
  local target
  for target in $(findmnt -rn -o TARGET | { grep -E '^/mnt(/|$)' || true; } | sort -r); do umount "$target"; done
  vgchange -an >/dev/null 2>&1 || true
  local name
  for name in $(dmsetup ls --target crypt 2>/dev/null | awk '$2 ~ /^\(/ {print $1}'); do cryptsetup close "$name"; done
  mdadm --stop --scan >/dev/null 2>&1 || true
  sync
}

case "${1:-}" in
  open) open_stack ;;
  facts) facts ;;
  close) close_stack ;;
  *) echo "usage: storage-stack.sh open|facts|close" >&2; exit 2 ;;
esac
