#!/bin/bash
# InstallImage's probe (read-only): prints one JSON document with the drives (lsblk, wipefs, first
# sector), md arrays (mdadm --detail --export + sysfs), superblocks (mdadm --examine --scan), LVM,
# every UUID (blkid), the installed root (mounted read-only without journal replay when it is not
# mounted), the ESP loader, the state of an installimage run this resource started, and
# CRYPTPASSWORD leftovers (counted, never printed). Free text is base64 so no output breaks the JSON.
# Usage: bash -s -- WORK_DIR INSTALLIMAGE MARKER_FILE AUTOSETUP DEBUG_FILE IMAGE IMAGES_DIR ROOT ROOT_CRYPT ESP DRIVE_COUNT DRIVE... CRYPT_DEVICE...
# (ROOT_CRYPT yes|no; ESP "" = none). Sent on stdin by probe.ts.
W=$1 installimage=$2 marker_file=$3 autosetup=$4 debug_file=$5 image=$6 images_dir=$7 root=$8 root_crypt=$9 esp=${10} drive_count=${11}
shift 11
drives=("${@:1:$drive_count}")
crypt_devices=("${@:$((drive_count + 1))}")

t() { printf '%s' "$1" | base64 -w0; }
t1() { base64 -w0; }
f() { if [ -r "$1" ]; then base64 -w0 < "$1"; fi; }

printf '{"hostname":"%s","rescue":%s,"firmware":"%s"' "$(t "$(hostname)")" "$([ -x "$installimage" ] && echo true || echo false)" "$([ -d /sys/firmware/efi ] && echo uefi || echo bios)"
printf ',"drives":['
sep=''
for d in "${drives[@]}"; do
  printf '%s{"path":"%s"' "$sep" "$(t "$d")"
  if [ -b "$d" ]; then
    printf ',"exists":true,"grub":%s,"wipefs":"%s","lsblk":' "$(dd if="$d" bs=512 count=1 2>/dev/null | grep -a -c GRUB)" "$(wipefs -n -J "$d" 2>/dev/null | t1)"
    lsblk -J -b -o NAME,PATH,TYPE,SIZE,SERIAL,WWN,FSTYPE,MOUNTPOINT "$d" 2>/dev/null || printf null
  else printf ',"exists":false'; fi
  printf '}'
  sep=,
done

printf '],"arrays":['; sep=''
for a in /sys/block/md*/md; do
  [ -d "$a" ] || continue
  n=$(basename "$(dirname "$a")"); dev=/dev/$n
  rd() { head -n1 "$a/$1" 2>/dev/null; }
  devs=$(for m in "$a"/dev-*; do [ -d "$m" ] && printf '%s %s %s\n' "${m##*/dev-}" "$(cat "$m/state" 2>/dev/null)" "$(cat "$m/slot" 2>/dev/null)"; done | t1)
  printf '%s{"device":"%s","export":"%s","devs":"%s","arrayState":"%s","degraded":"%s","syncAction":"%s","syncCompleted":"%s","syncSpeed":"%s","raidDisks":"%s"}' "$sep" "$dev" "$(mdadm --detail --export "$dev" 2>/dev/null | t1)" "$devs" "$(rd array_state)" "$(rd degraded)" "$(rd sync_action)" "$(rd sync_completed)" "$(rd sync_speed)" "$(rd raid_disks)"
  sep=,
done
printf '],"examine":"%s","blkid":"%s"' "$(mdadm --examine --scan 2>/dev/null | t1)" "$(blkid -o export 2>/dev/null | t1)"
printf ',"vgs":'; vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free 2>/dev/null || printf '{"report":[{}]}'
printf ',"lvs":'; lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_size 2>/dev/null || printf '{"report":[{}]}'

printf ',"luks":['; sep=''
for c in "${crypt_devices[@]}"; do
  u=$(blkid -p -s UUID -o value "$c" 2>/dev/null); ty=$(blkid -p -s TYPE -o value "$c" 2>/dev/null)
  printf '%s{"device":"%s","type":"%s","uuid":"%s","open":%s}' "$sep" "$(t "$c")" "$(t "$ty")" "$(t "$u")" "$([ -n "$u" ] && [ -b "/dev/mapper/luks-$u" ] && echo true || echo false)"
  sep=,
done
printf ']'

r=$root
if [ "$root_crypt" = yes ]; then r="/dev/mapper/luks-$(blkid -p -s UUID -o value "$r" 2>/dev/null)"; fi
R=''; mounted=''
# Mounted already (as / on the installed system)? Matched by major:minor, whatever the path spelling.
mnt() { mm=$(lsblk -dn -o MAJ:MIN "$1" 2>/dev/null | tr -d ' '); [ -n "$mm" ] && findmnt -rn -o TARGET,MAJ:MIN | awk -v m="$mm" '$2 == m {print $1; exit}'; }
if [ -b "$r" ]; then
  R=$(mnt "$r")
  if [ -z "$R" ]; then
    mkdir -p "$W/probe-root"
    case "$(blkid -p -s TYPE -o value "$r" 2>/dev/null)" in ext*) o=ro,noload ;; xfs) o=ro,norecovery ;; *) o=ro ;; esac
    if mount -o "$o" "$r" "$W/probe-root" 2>/dev/null; then R="$W/probe-root"; mounted=1; fi
  fi
fi
if [ -n "$R" ]; then
  printf ',"root":{"device":"%s","hostname":"%s","osRelease":"%s","hostKeys":"%s","marker":"%s","mdadmConf":"%s","hasMdadmConf":%s,"fstab":"%s","hasFstab":%s,"crypttab":"%s","cryptLines":%s}' \
    "$(t "$r")" "$(f "$R/etc/hostname")" "$(f "$R/etc/os-release")" "$(cat "$R"/etc/ssh/ssh_host_*_key.pub 2>/dev/null | t1)" "$(f "$R/$marker_file")" \
    "$(f "$R/etc/mdadm/mdadm.conf")" "$([ -f "$R/etc/mdadm/mdadm.conf" ] && echo true || echo false)" "$(f "$R/etc/fstab")" "$([ -f "$R/etc/fstab" ] && echo true || echo false)" "$(f "$R/etc/crypttab")" \
    "$(cat "$R/installimage.conf" "$R/installimage.debug" 2>/dev/null | grep -c CRYPTPASSWORD)"
else printf ',"root":null'; fi
[ -n "$mounted" ] && umount "$W/probe-root"

printf ',"espLoader":'
if [ -n "$esp" ] && [ -d /sys/firmware/efi ] && [ -b "$esp" ]; then
  E=$(mnt "$esp"); em=''
  if [ -z "$E" ]; then mkdir -p "$W/probe-esp"; mount -o ro "$esp" "$W/probe-esp" 2>/dev/null && E="$W/probe-esp" && em=1; fi
  if [ -n "$E" ] && [ -f "$E/EFI/BOOT/BOOTX64.EFI" ]; then printf true; else printf false; fi
  [ -n "$em" ] && umount "$W/probe-esp"
else printf null; fi

running=false; p=$(cat "$W/pid" 2>/dev/null)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then running=true; fi
printf ',"installer":{"running":%s,"rc":"%s","startedFor":"%s"}' "$running" "$(cat "$W/rc" 2>/dev/null)" "$(f "$W/started-for")"
printf ',"rescueCryptLines":%s' "$(cat "$autosetup" "$debug_file" 2>/dev/null | grep -c CRYPTPASSWORD)"
# The names are only shown in the error that lists the images available.
# shellcheck disable=SC2012
printf ',"imageFound":%s,"images":"%s"' "$([ -f "$image" ] && echo true || echo false)" "$(ls "$images_dir" 2>/dev/null | t1)"
printf ',"speedLimitMax":"%s"}' "$(cat /proc/sys/dev/raid/speed_limit_max 2>/dev/null)"
