#!/bin/bash
# DropbearInitramfs, in rescue: before the reboot, undo what open-root.sh did, deepest first:
# unmount the chroot's binds and the root, deactivate LVM, close LUKS and stop the arrays. A clean
# stop matters: an array the rescue leaves dirty resyncs through the first boot of the system.
set -uo pipefail
root=/mnt/hetzner-fde-root
sync
for mp in $(findmnt -rn -o TARGET | grep -E "^$root(/|$)" | sort -r); do
	umount "$mp" || umount -l "$mp"
done
# Nothing of the installed system may stay in use: other mounts of its devices too (e.g. /mnt).
for mp in $(findmnt -rn -o TARGET,SOURCE | awk '$2 ~ "^/dev/(mapper|md)" { print $1 }' | sort -r); do
	umount "$mp" 2>/dev/null || umount -l "$mp"
done
swapoff -a 2>/dev/null
vgchange -an >/dev/null 2>&1
for name in $(dmsetup ls --target crypt 2>/dev/null | awk '{ print $1 }'); do
	cryptsetup close "$name" 2>/dev/null
done
mdadm --stop --scan >/dev/null 2>&1
sync
exit 0
