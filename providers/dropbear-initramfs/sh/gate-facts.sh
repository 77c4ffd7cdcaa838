#!/bin/bash
# DropbearInitramfs: the facts the bootability gate decides on, read-only, in one round trip.
#   gate-facts.sh ROOT MAC KERNEL
# ROOT is "" on the running system, the mount point of the installed root in rescue (the image is
# unpacked with the root's own unmkinitramfs, in a chroot). KERNEL "" means the newest installed.
# Prints one record per line; free text is base64 so no content can break the format:
#   kernel <version>            initrd <path> | initrd -
#   path <relative path>        (every entry of the image's main archive)
#   file <relative path> <b64>  (passwd, dropbear config, conf.d, crypttab, mdadm.conf, authorized_keys)
#   keysha <relative path> <sha256>   (host keys: only a digest ever leaves the host)
#   array <uuid>   nic <name> <module|->   crypttab <b64>   grub <b64>
set -uo pipefail
export LC_ALL=C
root=$1 mac=$2 kernel=$3

b64() { base64 -w0 <"$1" 2>/dev/null; }

if [ -z "$kernel" ]; then
	kernel=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | sed 's#.*/vmlinuz-##' | sort -V | tail -n 1)
fi
printf 'kernel %s\n' "${kernel:--}"

initrd="/boot/initrd.img-$kernel"
if [ -n "$kernel" ] && [ -f "$root$initrd" ]; then
	printf 'initrd %s\n' "$initrd"
	tmp=$(mktemp -d -p "$root/tmp" hfde-initrd.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	rel="/tmp/${tmp##*/}"
	if [ -n "$root" ]; then
		chroot "$root" unmkinitramfs "$initrd" "$rel/x" >/dev/null 2>&1
	else
		unmkinitramfs "$initrd" "$tmp/x" >/dev/null 2>&1
	fi
	base="$tmp/x"
	[ -d "$base/main" ] && base="$base/main"
	(cd "$base" && find . -mindepth 1 | sed 's#^\./#path #')
	for f in etc/passwd etc/dropbear/config etc/dropbear/dropbear.conf cryptroot/crypttab etc/mdadm/mdadm.conf "$base"/conf/conf.d/*; do
		f="${f#"$base"/}"
		[ -f "$base/$f" ] && printf 'file %s %s\n' "$f" "$(b64 "$base/$f")"
	done
	home=$(sed -n 's/^root:[^:]*:[^:]*:[^:]*:[^:]*:\([^:]*\):.*/\1/p' "$base/etc/passwd" 2>/dev/null | head -n 1)
	if [ -n "$home" ] && [ -f "$base$home/.ssh/authorized_keys" ]; then
		printf 'file %s %s\n' "${home#/}/.ssh/authorized_keys" "$(b64 "$base$home/.ssh/authorized_keys")"
	fi
	for k in "$base"/etc/dropbear/dropbear_*_host_key; do
		[ -f "$k" ] && printf 'keysha %s %s\n' "${k#"$base"/}" "$(sha256sum <"$k" | cut -d' ' -f1)"
	done
else
	printf 'initrd -\n'
fi

mdadm --detail --scan 2>/dev/null | sed -n 's/.*UUID=\([0-9a-fA-F:]*\).*/array \1/p'

for dev in /sys/class/net/*; do
	[ "$(cat "$dev/address" 2>/dev/null)" = "$mac" ] || continue
	module=-
	[ -e "$dev/device/driver/module" ] && module=$(basename "$(readlink -f "$dev/device/driver/module")")
	printf 'nic %s %s\n' "${dev##*/}" "$module"
done

[ -f "$root/etc/crypttab" ] && printf 'crypttab %s\n' "$(b64 "$root/etc/crypttab")"
[ -f "$root/boot/grub/grub.cfg" ] && printf 'grub %s\n' "$(b64 "$root/boot/grub/grub.cfg")"
exit 0
