#!/bin/bash
# Builds the lab rescue system: a Debian 12 root filesystem packed as one initramfs (root in
# RAM, like Hetzner's rescue) plus the Debian kernel that boots it.
#
#   build-rescue.sh <out-dir> <deb-cache-dir> <compressor: zstd|gzip|lz4|xz>
#
# Writes <out-dir>/vmlinuz, <out-dir>/initrd.img and <out-dir>/kernel-version. <out-dir> is a
# temporary directory: the caller renames it into the cache once this script succeeds.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RESCUE_FILES=$(cd "$HERE/../rescue" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
LOG_TAG=rescue

OUT=$1 DEBS=$2 COMPRESSOR=${3:-zstd}
SUITE=bookworm
ARCHIVE=${HFDE_DEBIAN_ARCHIVE:-http://deb.debian.org/debian}
WORK=$OUT/work
ROOT=$WORK/root
trap 'chroot_umount_all' EXIT

mkdir -p "$WORK"
log "debootstrap $SUITE (minbase + rescue packages)"
run_debootstrap "$SUITE" "$ROOT" "$DEBS" "$ARCHIVE" \
  "$(grep -v -e '^#' -e '^$' "$HERE/rescue-packages.txt" | paste -sd,)"

log "fetching the kernel package"
chroot_bind_debs "$ROOT" "$DEBS"
KPKG=$(in_chroot "$ROOT" apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$KPKG" ] || die "cannot resolve linux-image-amd64 to a versioned kernel package"
ls "$DEBS/${KPKG}"_*.deb >/dev/null 2>&1 ||
  in_chroot "$ROOT" sh -c "cd /var/cache/apt/archives && apt-get download -q $KPKG" >/dev/null 2>&1
chroot_umount_all
KDEB=$(ls "$DEBS/${KPKG}"_*.deb | tail -n 1)
dpkg-deb -x "$KDEB" "$WORK/kernel"
KVER=${KPKG#linux-image-}
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
echo "$KVER" >"$OUT/kernel-version"

log "installing trimmed kernel modules for $KVER"
mkdir -p "$ROOT/lib/modules"
cp -a "$WORK/kernel/lib/modules/$KVER" "$ROOT/lib/modules/"
trim_modules "$ROOT" "$KVER" "$HERE/modules-rescue.txt"

log "configuring the rescue system"
install -m 755 "$RESCUE_FILES/rcS" "$ROOT/etc/rescue/rcS" -D
install -m 755 "$RESCUE_FILES/shutdown" "$ROOT/etc/rescue/shutdown"
install -m 644 "$RESCUE_FILES/inittab" "$ROOT/etc/inittab"
install -m 644 "$RESCUE_FILES/sshd_config" "$ROOT/etc/ssh/sshd_config.d/00-rescue.conf"
install -m 644 "$RESCUE_FILES/motd" "$ROOT/etc/motd"
install -m 644 "$RESCUE_FILES/bashrc" "$ROOT/root/.bashrc"
install -m 755 "$RESCUE_FILES/acpi-power-button" "$ROOT/etc/acpi/PWRF/00000080" -D
install -m 755 "$RESCUE_FILES/power-command" "$ROOT/usr/local/sbin/power-command"
for cmd in reboot poweroff halt shutdown systemctl; do
  ln -sf power-command "$ROOT/usr/local/sbin/$cmd"
done
# The kernel starts /init from the initramfs; busybox picks its init applet from that name.
ln -sf /bin/busybox "$ROOT/init"
# Keep the kernel's eth0: Hetzner's rescue names its NIC eth0, and installimage configs do too.
mkdir -p "$ROOT/etc/systemd/network"
ln -sf /dev/null "$ROOT/etc/systemd/network/99-default.link"
echo rescue >"$ROOT/etc/hostname"
echo "deb [trusted=yes] http://10.0.2.2:40081/debian $SUITE main" >"$ROOT/etc/apt/sources.list"
# Host keys come per boot from fw_cfg (or are generated at boot); never bake them in.
rm -f "$ROOT"/etc/ssh/ssh_host_*

log "trimming"
strip_docs "$ROOT"
rm -rf "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/log/*.log \
  "$ROOT/usr/lib/udev/hwdb.bin" "$ROOT"/usr/lib/udev/hwdb.d/* "$ROOT/etc/udev/hwdb.bin" \
  "$ROOT"/usr/share/zoneinfo/right "$ROOT"/usr/share/zoneinfo/posix
find "$ROOT/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} +
rm -rf "$ROOT/usr/lib/python3.11/test" "$ROOT"/usr/lib/python3.11/{idlelib,tkinter,ensurepip,lib2to3,pydoc_data}

log "packing initramfs ($COMPRESSOR, $(du -sm "$ROOT" | cut -f1) MiB uncompressed)"
case "$COMPRESSOR" in
  zstd) compress=(zstd -q -T0 -15) ;;
  gzip) compress=(gzip -6) ;;
  lz4) compress=(lz4 -q -l -9) ;;   # -l: the legacy frame format is the one the kernel decodes
  xz) compress=(xz -T0 --check=crc32) ;;
  *) die "unknown compressor '$COMPRESSOR' (expected zstd, gzip, lz4 or xz)" ;;
esac
(cd "$ROOT" && find . -mount -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) | "${compress[@]}" >"$OUT/initrd.img"
log "initrd.img: $(du -m "$OUT/initrd.img" | cut -f1) MiB"
rm -rf "$WORK"
log "done"
