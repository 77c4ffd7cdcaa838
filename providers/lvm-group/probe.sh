#!/bin/bash
# LvmGroup's probe (read-only): prints one JSON object with pvs/vgs/lvs (lvm2 JSON reports), each
# requested PV device's size, mount, holders and signatures (wipefs -J), each LV's filesystem
# (blkid, and the size it spans), and the target root's fstab as base64.
# Usage: bash -s -- VG FSTAB_ROOT DEVICE... (FSTAB_ROOT "" = no fstab). Sent on stdin by probe.ts.
vg=$1
fstab_root=$2
shift 2

lvmjson() { "$@" --reportformat json --units b --nosuffix 2>/dev/null || printf '{"report":[{}]}'; }
printf '{"pvs":'; lvmjson pvs -o pv_name,vg_name,pv_uuid,pv_size,pv_major,pv_minor
printf ',"vgs":'; lvmjson vgs -o vg_name,vg_uuid,vg_tags,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count
printf ',"lvs":'; lvmjson lvs -o lv_name,vg_name,lv_uuid,lv_size,lv_path,lv_active -S "vg_name=$vg"

printf ',"devices":['
index=0
for d in "$@"; do
  sep=','; [ "$index" -eq 0 ] && sep=''
  printf '%s{"index":%d' "$sep" "$index"
  if [ -b "$d" ]; then
    printf ',"exists":true,"sizeBytes":%s,"mountedAt":"%s","holders":%s,"signatures":' \
      "$(blockdev --getsize64 "$d")" \
      "$(findmnt -n -o TARGET -S "$d" | head -n1)" \
      "$(find "/sys/class/block/$(basename "$(readlink -f "$d")")/holders" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
    wipefs -J "$d" 2>/dev/null | grep . || printf '{"signatures":[]}'
    printf ',"majMin":"%s"' "$(stat -L -c '%t:%T' "$d")"
  else
    printf ',"exists":false'
  fi
  printf '}'
  index=$((index + 1))
done

printf '],"filesystems":['
sep=''
for lv in $(lvs --noheadings -o lv_name -S "vg_name=$vg" 2>/dev/null); do
  p="/dev/$vg/$lv"; t=''; u=''; s=''; m=''
  if [ -b "$p" ]; then
    t=$(blkid -p -s TYPE -o value "$p" 2>/dev/null | tr -cd 'A-Za-z0-9_.-')
    u=$(blkid -p -s UUID -o value "$p" 2>/dev/null | tr -cd 'A-Za-z0-9_.-')
    m=$(lsblk -n -o MOUNTPOINT "$p" 2>/dev/null | head -n1 | tr -d '"')
    # printf "%.0f", not "%d": mawk (Debian's default awk) caps %d at 2^31-1.
    case "$t" in
      ext2|ext3|ext4) s=$(dumpe2fs -h "$p" 2>/dev/null | awk -F: '/^Block count:/{c=$2} /^Block size:/{b=$2} END{if(c&&b) printf "%.0f", c*b}') ;;
      xfs) s=$(xfs_db -r -c 'sb 0' -c 'p dblocks' -c 'p blocksize' "$p" 2>/dev/null | awk '/^dblocks/{c=$3} /^blocksize/{b=$3} END{if(c&&b) printf "%.0f", c*b}') ;;
    esac
  fi
  printf '%s{"lv":"%s","type":"%s","uuid":"%s","sizeBytes":"%s","mountedAt":"%s"}' "$sep" "$lv" "$t" "$u" "$s" "$m"
  sep=,
done
printf ']'

if [ -n "$fstab_root" ] && [ -d "$fstab_root/etc" ]; then
  printf ',"fstabRootReady":true,"fstab":"%s"' "$(base64 -w0 "$fstab_root/etc/fstab" 2>/dev/null)"
else
  printf ',"fstabRootReady":false,"fstab":null'
fi
printf '}'
