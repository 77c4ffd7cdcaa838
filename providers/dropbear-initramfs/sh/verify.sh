#!/bin/bash
# DropbearInitramfs: after the unlock, on the installed system, read back what "booted as
# configured" means. Prints one record per line (state 1 = as configured):
#   array <uuid> 0|1      every ARRAY of /etc/mdadm/mdadm.conf is assembled
#   luks <name> 0|1       every /etc/crypttab mapping is open
#   mount <target> 0|1    every fstab entry without noauto is mounted (swap: active)
#   hostname <name>       hostname -f, then /etc/hostname
set -uo pipefail
export LC_ALL=C
running=$(mdadm --detail --scan 2>/dev/null)
for uuid in $(sed -n 's/^ARRAY.*UUID=\([0-9a-fA-F:]*\).*/\1/p' /etc/mdadm/mdadm.conf 2>/dev/null); do
	case "$running" in *"UUID=$uuid"*) echo "array $uuid 1" ;; *) echo "array $uuid 0" ;; esac
done
while read -r name _; do
	case "$name" in '' | \#*) continue ;; esac
	[ -e "/dev/mapper/$name" ] && echo "luks $name 1" || echo "luks $name 0"
done </etc/crypttab
swaps=$(swapon --show=NAME --noheadings 2>/dev/null | xargs -r -n1 readlink -f)
while read -r src target type opts _; do
	case "$src" in '' | \#*) continue ;; esac
	case ",$opts," in *,noauto,*) continue ;; esac
	if [ "$type" = swap ]; then
		dev=$(readlink -f "$(findfs "$src" 2>/dev/null || echo "$src")")
		case " $(echo $swaps) " in *" $dev "*) echo "mount swap:$src 1" ;; *) echo "mount swap:$src 0" ;; esac
	else
		findmnt -n "$target" >/dev/null && echo "mount $target 1" || echo "mount $target 0"
	fi
done </etc/fstab
printf 'hostname %s\n' "$(hostname -f 2>/dev/null || hostname)"
[ -f /etc/hostname ] && printf 'hostname %s\n' "$(cat /etc/hostname)"
exit 0
