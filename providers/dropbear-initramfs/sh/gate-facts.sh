#!/bin/bash
# DropbearInitramfs: the facts the bootability gate decides on, in one round trip. It changes
# nothing on the host but its cache of the image's records in /run (below).
#   gate-facts.sh ROOT MAC KERNEL [CACHE]
# ROOT is "" on the running system, the mount point of the installed root in rescue (the image is
# unpacked with the root's own unmkinitramfs, in a chroot). KERNEL "" means the newest installed.
# CACHE "renew" unpacks even when the cache holds the image's records, and stores what it read:
# the gate, the last look before a reboot, always opens the image itself.
# Prints one record per line; free text is base64 so no content can break the format:
#   kernel <version>            initrd <path> | initrd -
#   path <relative path>        (every entry of the image's main archive)
#   file <relative path> <b64>  (passwd, dropbear config, conf.d, crypttab, mdadm.conf, authorized_keys)
#   keysha <relative path> <sha256>   (host keys: only a digest ever leaves the host)
#   array <uuid>   nic <name> <module|->   crypttab <b64>   grub <b64>
#   initrdcache hit|miss        (whether the image's records came from the cache below)
set -uo pipefail
export LC_ALL=C
root=$1 mac=$2 kernel=$3 cache=${4:-use}

b64() { base64 -w0 <"$1" 2>/dev/null; }

if [ -z "$kernel" ]; then
	kernel=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | sed 's#.*/vmlinuz-##' | sort -V | tail -n 1)
fi
printf 'kernel %s\n' "${kernel:--}"

# The records read from inside the image. Its status is unmkinitramfs's: a failed unpack is not cached.
initrd_records() {
	local rel base home f k status
	unpacked=$(mktemp -d -p "$root/tmp" hfde-initrd.XXXXXX) || return 1
	rel="/tmp/${unpacked##*/}"
	if [ -n "$root" ]; then
		chroot "$root" unmkinitramfs "$initrd" "$rel/x" >/dev/null 2>&1
	else
		unmkinitramfs "$initrd" "$unpacked/x" >/dev/null 2>&1
	fi
	status=$?
	base="$unpacked/x"
	[ -d "$base/main" ] && base="$base/main"
	(cd "$base" 2>/dev/null && find . -mindepth 1 | sed 's#^\./#path #')
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
	rm -rf "$unpacked"
	return "$status"
}

# Unpacking costs 20-30 s on an emulated lab host and every probe and refresh needs these records,
# so they are kept in /run (a tmpfs, empty after a reboot; in rescue the rescue's own) under the
# file's identity: device, inode, size, and modification and change times to the nanosecond.
# update-initramfs writes a new file and renames it over the old one, and a write in place moves
# the change time, which nothing can set back: either is a miss. The key includes this script's
# digest, so a newer script never reads an older one's records.
initrd_records_cached() {
	local dir=${HFDE_INITRD_FACTS_DIR:-/run/hetzner-fde/initrd-facts} identity name key
	identity=$(stat -c '%d:%i:%s:%y:%z' "$root$initrd" 2>/dev/null) || identity=
	name=$(printf '%s' "$root$initrd" | sha256sum | cut -c1-16)
	key=$(printf '%s\n%s' "$identity" "${BASH_EXECUTION_STRING:-$(cat "$0" 2>/dev/null)}" | sha256sum | cut -c1-16)
	if [ "$cache" != renew ] && [ -n "$identity" ] && [ -f "$dir/$name.$key" ]; then
		echo "initrdcache hit"
		cat "$dir/$name.$key"
		return
	fi
	echo "initrdcache miss"
	if [ -z "$identity" ] || ! (umask 077 && mkdir -p "$dir") 2>/dev/null; then
		initrd_records
		return
	fi
	fresh="$dir/.$name.$$"
	if initrd_records >"$fresh"; then
		cat "$fresh"
		rm -f "$dir/$name".*
		mv -f "$fresh" "$dir/$name.$key"
	else
		cat "$fresh"
		rm -f "$fresh"
	fi
}

initrd="/boot/initrd.img-$kernel"
if [ -n "$kernel" ] && [ -f "$root$initrd" ]; then
	printf 'initrd %s\n' "$initrd"
	unpacked='' fresh=''
	trap 'rm -rf "$unpacked" "$fresh"' EXIT
	initrd_records_cached
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
