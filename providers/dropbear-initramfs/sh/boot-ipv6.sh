#!/bin/sh
# hetzner-fde, initramfs init-premount: static IPv6 for dropbear. klibc's ipconfig (Debian's
# configure_networking) has no IPv6, so once dropbear's premount has brought the IPv4 side up in
# the background (it writes /run/net-<dev>.conf), this adds the address and the default route on
# that device. The init-bottom script of ours stops it and removes both before the system starts.
PREREQ="dropbear"
prereqs() { echo "$PREREQ"; }
case "$1" in
prereqs) prereqs; exit 0 ;;
esac

[ -r /conf/conf.d/hetzner-fde ] && . /conf/conf.d/hetzner-fde
[ -n "${HFDE_IPV6_ADDRESS:-}" ] || exit 0

(
	i=0
	while [ "$i" -lt 180 ]; do
		for f in /run/net-*.conf; do
			[ -e "$f" ] || continue
			dev="${f#/run/net-}"
			dev="${dev%.conf}"
			ip -6 addr add "$HFDE_IPV6_ADDRESS" dev "$dev"
			ip -6 route add default via "${HFDE_IPV6_GATEWAY:-fe80::1}" dev "$dev"
			echo "$dev" >/run/hetzner-fde-ipv6.dev
			exit 0
		done
		sleep 1
		i=$((i + 1))
	done
) </dev/null >/dev/null 2>&1 &
echo $! >/run/hetzner-fde-ipv6.pid
exit 0
