#!/bin/bash
# DropbearInitramfs's probe: one read-only round trip on the rescue system or the installed system.
#   probe.sh ENV MAC FILE...     (GATE_FACTS holds gate-facts.sh's text)
# ENV is "rescue" or "system". In rescue the installed root is read at /mnt/hetzner-fde-root once
# openRoot mounted it; before that only "rootopen 0" is printed. Records, one per line:
#   rootopen 0|1   osrelease <b64>   pkg <name> <0|1>   filesha <path> <sha256|->
#   modules <module|->  (the NIC block in /etc/initramfs-tools/modules: "-" none, "" empty)
#   newer-than-boot 0|1  running <kernel>  then gate-facts.sh's records for the newest kernel, and,
#   on the system when the running kernel is another one, "@running" and its records.
set -uo pipefail
export LC_ALL=C
env=$1 mac=$2
shift 2
root=
if [ "$env" = rescue ]; then
	root=/mnt/hetzner-fde-root
	if ! mountpoint -q "$root"; then
		echo "rootopen 0"
		exit 0
	fi
fi
echo "rootopen 1"
[ -f "$root/etc/os-release" ] && printf 'osrelease %s\n' "$(base64 -w0 <"$root/etc/os-release")"
for p in dropbear-initramfs cryptsetup-initramfs busybox; do
	status=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${db:Status-Status}' "$p" 2>/dev/null </dev/null)
	[ "$status" = installed ] && echo "pkg $p 1" || echo "pkg $p 0"
done
for f in "$@"; do
	if [ -f "$root$f" ]; then
		printf 'filesha %s %s\n' "$f" "$(sha256sum <"$root$f" | cut -d' ' -f1)"
	else
		printf 'filesha %s -\n' "$f"
	fi
done
m="$root/etc/initramfs-tools/modules"
if grep -qx '# BEGIN hetzner-fde DropbearInitramfs: the NIC driver dropbear needs' "$m" 2>/dev/null; then
	printf 'modules %s\n' "$(sed -n '/^# BEGIN hetzner-fde DropbearInitramfs/,/^# END hetzner-fde/p' "$m" | sed '1d;$d' | head -n 1)"
else
	echo "modules -"
fi
newest=$(ls "$root"/boot/vmlinuz-* 2>/dev/null | sed 's#.*/vmlinuz-##' | sort -V | tail -n 1)
if [ "$env" = system ] && [ -n "$newest" ] && [ -f "/boot/initrd.img-$newest" ]; then
	boot=$(sed -n 's/^btime //p' /proc/stat)
	built=$(stat -c %Y "/boot/initrd.img-$newest")
	[ "$built" -gt "$boot" ] && echo "newer-than-boot 1" || echo "newer-than-boot 0"
	printf 'running %s\n' "$(uname -r)"
fi
bash -c "$GATE_FACTS" gate-facts "$root" "$mac" "$newest" </dev/null
if [ "$env" = system ] && [ "$(uname -r)" != "$newest" ]; then
	echo "@running"
	bash -c "$GATE_FACTS" gate-facts "" "$mac" "$(uname -r)" </dev/null
fi
exit 0
