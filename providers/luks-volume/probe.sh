#!/bin/bash
# LuksVolume's probe (read-only): prints one JSON object with the device's size, the disks beneath it
# (lsblk -s), its signatures (wipefs), blkid, the LUKS2 metadata (never key material), which keyslot
# each passphrase on stdin opens, the device-mapper table, the mapping's status, the crypttab of the
# target root and the state of a randomisation job. Text that may hold anything goes out as base64.
# Usage: bash -c "$(cat probe.sh)" probe DEVICE MAPPER_NAME CRYPTTAB_ROOT JOB_DIR
# stdin: NUL-terminated passphrases to test, or nothing (probe.ts sends it; the script is an argument).
set -u
dev=$1; name=$2; root=$3; job=$4
b64() { base64 -w0; }
printf '{"exists":'
if [ -b "$dev" ]; then
  printf 'true,"size":%s' "$(blockdev --getsize64 "$dev")"
  printf ',"lsblk":%s' "$(lsblk -J -b -s -o PATH,TYPE,SERIAL,WWN "$dev")"
  w=$(wipefs -n -J "$dev"); printf ',"wipefs":%s' "${w:-null}"
  printf ',"blkid":"%s"' "$(blkid -p -o export "$dev" | b64)"
  if cryptsetup isLuks "$dev"; then
    printf ',"luks":%s' "$(cryptsetup luksDump --dump-json-metadata "$dev")"
    printf ',"keys":['; sep=''
    while IFS= read -r -d '' k; do
      slot=null
      if out=$(cryptsetup open --test-passphrase -v --key-file=<(printf '%s' "$k") "$dev" 2>&1); then
        slot=$(printf '%s' "$out" | grep -o 'Key slot [0-9]* unlocked' | head -n1 | tr -cd '0-9'); slot=${slot:-null}
      fi
      printf '%s%s' "$sep" "$slot"; sep=','
    done
    printf ']'
  fi
else
  printf 'false'
fi
printf ',"dm":"%s"' "$(dmsetup info -c --noheadings --separator ' ' -o name,uuid 2>/dev/null | b64)"
printf ',"status":"%s"' "$(cryptsetup status "$name" 2>/dev/null | b64)"
if [ -d "$root/etc" ]; then printf ',"crypttab":"%s"' "$(cat "$root/etc/crypttab" 2>/dev/null | b64)"; fi
running=false
if [ -f "$job/pid" ] && kill -0 "$(cat "$job/pid")" 2>/dev/null; then running=true; fi
printf ',"job":{"running":%s,"device":"%s","rc":"%s"}}' "$running" "$(cat "$job/device" 2>/dev/null | b64)" "$(cat "$job/rc" 2>/dev/null | b64)"
