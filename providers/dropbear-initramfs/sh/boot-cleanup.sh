#!/bin/sh
# hetzner-fde, initramfs init-bottom: leave nothing of the initramfs network to the installed
# system. dropbear's own init-bottom (IFDOWN="*") has already taken the links down and flushed
# their addresses and routes; this runs after it and removes what remains:
# - our IPv6 helper, if it is still waiting, and the IPv6 address/route it added;
# - /run/netplan/*.yaml, which Ubuntu's configure_networking writes and netplan would rank above
#   /etc/netplan once /run moves into the real root (absent on Debian).
PREREQ="dropbear"
prereqs() { echo "$PREREQ"; }
case "$1" in
prereqs) prereqs; exit 0 ;;
esac

[ "${BOOT:-local}" = nfs ] && exit 0

if [ -r /run/hetzner-fde-ipv6.pid ]; then
	kill "$(cat /run/hetzner-fde-ipv6.pid)" 2>/dev/null
	rm -f /run/hetzner-fde-ipv6.pid
fi
if [ -r /run/hetzner-fde-ipv6.dev ]; then
	dev="$(cat /run/hetzner-fde-ipv6.dev)"
	ip -6 route flush dev "$dev" 2>/dev/null
	ip -6 addr flush dev "$dev" 2>/dev/null
	ip link set dev "$dev" down 2>/dev/null
	rm -f /run/hetzner-fde-ipv6.dev
fi
rm -f /run/netplan/*.yaml
exit 0
