#!/bin/bash
# DropbearInitramfs: write the dropbear and initramfs-tools configuration into a root.
#   configure.sh ROOT MODULES_FILE BEGIN END MODULE STALE_FILE...
# ROOT is "" on the running system, the mount point of the installed root in rescue. stdin holds
# one record per line, "<mode> <absolute path> <base64 content>" (the host key among them, which is
# why the files come on stdin and never in argv). Every file is written to a temporary name and
# renamed, so a killed run leaves the old file or the new one, never half of one. STALE_FILE are
# removed (host keys we did not generate: dropbear would present them too). The NIC driver goes
# into a marked block of MODULES_FILE, replacing the block a previous run wrote; MODULE "" removes it.
set -euo pipefail
root=$1 modules_file=$2 begin=$3 end=$4 module=$5
shift 5

while read -r mode path data; do
	[ -n "${path:-}" ] || continue
	dest="$root$path"
	mkdir -p "$(dirname "$dest")"
	(
		umask 077
		printf '%s' "$data" | base64 -d >"$dest.hfde-tmp"
	)
	chmod "$mode" "$dest.hfde-tmp"
	mv -f "$dest.hfde-tmp" "$dest"
done

for stale in "$@"; do
	rm -f "$root$stale"
done

m="$root$modules_file"
mkdir -p "$(dirname "$m")"
touch "$m"
awk -v b="$begin" -v e="$end" '$0 == b { skip = 1 } !skip { print } $0 == e { skip = 0 }' "$m" >"$m.hfde-tmp"
if [ -n "$module" ]; then
	printf '%s\n%s\n%s\n' "$begin" "$module" "$end" >>"$m.hfde-tmp"
fi
chmod 644 "$m.hfde-tmp"
mv -f "$m.hfde-tmp" "$m"
sync
