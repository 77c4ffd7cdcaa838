#!/bin/bash
# DropbearInitramfs, in rescue: unmount what open-root.sh mounted (deepest first) before the reboot.
set -uo pipefail
root=/mnt/hetzner-fde-root
sync
for mp in $(findmnt -rn -o TARGET | grep -E "^$root(/|$)" | sort -r); do
	umount "$mp" || umount -l "$mp"
done
sync
