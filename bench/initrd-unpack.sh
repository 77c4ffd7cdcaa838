#!/bin/bash
# Where a DropbearInitramfs probe's time goes on an installed host: one line per part, seconds.
# Run it on the host: ssh … root@HOST bash -s < bench/initrd-unpack.sh (bench/RESULTS.md, stop 20).
set -u
export LC_ALL=C
k=$(uname -r); i=/boot/initrd.img-$k
now() { date +%s.%N; }
t() { local s e; s=$(now); "$@" >/dev/null 2>&1; e=$(now); awk -v s="$s" -v e="$e" -v w="$*" 'BEGIN { printf "%7.2f s  %s\n", e - s, w }'; }
ls -la "$i"
mount | grep -E ' on /(tmp|run|dev/shm) '
t true
t dpkg-query -W -f='${db:Status-Status}' dropbear-initramfs
t zstd -q -c -t "$i"
t unmkinitramfs --list "$i"
t unmkinitramfs "$i" /tmp/hfde-m1
t find /tmp/hfde-m1 -mindepth 1
t rm -rf /tmp/hfde-m1
t unmkinitramfs "$i" /dev/shm/hfde-m2
t rm -rf /dev/shm/hfde-m2
t mdadm --detail --scan
t base64 -w0 /boot/grub/grub.cfg
