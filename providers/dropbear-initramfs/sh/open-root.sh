#!/bin/bash
# DropbearInitramfs, in rescue: open the installed root so it can be configured in a chroot.
#   open-root.sh        (the LUKS passphrase on stdin; empty when nothing is encrypted)
# Assembles the arrays, opens every LUKS container that is still closed as luks-<uuid> (the name
# installimage writes into crypttab: cryptsetup-initramfs's hook finds the root's entry by it),
# activates LVM, finds the root filesystem (the one whose fstab mounts it at /), mounts it at
# /mnt/hetzner-fde-root with its /boot (and /boot/efi) and binds /dev, /proc, /sys and /run.
# Every step is guarded, so a re-run after a kill continues where the last one stopped.
set -euo pipefail
export LC_ALL=C
root=/mnt/hetzner-fde-root
pass=$(cat)

mdadm --assemble --scan >/dev/null 2>&1 || true
for dev in $(blkid -t TYPE=crypto_LUKS -o device 2>/dev/null); do
	uuid=$(blkid -s UUID -o value "$dev")
	holders=$(ls "/sys/class/block/$(basename "$(readlink -f "$dev")")/holders" 2>/dev/null | wc -l)
	if [ "$holders" -eq 0 ]; then
		[ -n "$pass" ] || { echo "the LUKS container $dev is closed and no passphrase was given" >&2; exit 1; }
		printf '%s' "$pass" | cryptsetup open --key-file=- "$dev" "luks-$uuid"
	fi
done
unset pass
vgchange -ay >/dev/null 2>&1 || true

mkdir -p "$root"
if ! mountpoint -q "$root"; then
	probe=$(mktemp -d)
	found=
	for dev in $(lsblk -lnpo NAME,FSTYPE | awk '$2 == "ext4" || $2 == "xfs" || $2 == "btrfs" { print $1 }'); do
		mount -o ro "$dev" "$probe" 2>/dev/null || continue
		if [ -f "$probe/etc/os-release" ] && awk '$1 !~ /^#/ && $2 == "/" { ok = 1 } END { exit !ok }' "$probe/etc/fstab" 2>/dev/null; then
			found=$dev
		fi
		umount "$probe"
		[ -n "$found" ] && break
	done
	rmdir "$probe"
	[ -n "$found" ] || { echo "no installed root found: no ext4/xfs/btrfs filesystem holds an etc/fstab that mounts it at /" >&2; exit 1; }
	mount "$found" "$root"
fi

for mp in /boot /boot/efi; do
	src=$(awk -v mp="$mp" '$1 !~ /^#/ && $2 == mp { print $1 }' "$root/etc/fstab" | head -n 1)
	[ -n "$src" ] || continue
	mountpoint -q "$root$mp" && continue
	case "$src" in
	UUID=*) dev=$(blkid -U "${src#UUID=}") ;;
	*) dev=$src ;;
	esac
	mount "$dev" "$root$mp"
done
for fs in dev proc sys run; do
	mountpoint -q "$root/$fs" || mount --bind "/$fs" "$root/$fs"
done
echo "opened $root"
