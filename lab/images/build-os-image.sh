#!/bin/bash
# Builds an installimage OS image: a Debian root filesystem tarball, named and laid out like
# Hetzner's (Debian-<suite>-latest-amd64-base.tar.gz, paths relative to "./").
#
#   build-os-image.sh <suite> <out-tarball> <deb-cache-dir>
#
# The kernel's module tree is trimmed to what a QEMU guest can use, so update-initramfs inside
# an emulated guest takes seconds instead of many minutes. HFDE_NO_TRIM=1 skips that (used only
# to measure the difference).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"

SUITE=$1 OUT=$2 DEBS=$3
LOG_TAG="image $SUITE"
ARCHIVE=${HFDE_DEBIAN_ARCHIVE:-http://deb.debian.org/debian}
MIRROR_URL=http://10.0.2.2:40081/debian
WORK=$(mktemp -d "$(dirname "$OUT")/.work-$SUITE-XXXXXX")
ROOT=$WORK/root
trap 'chroot_umount_all; rm -rf --one-file-system "$WORK"' EXIT

log "debootstrap $SUITE (minbase)"
run_debootstrap "$SUITE" "$ROOT" "$DEBS" "$ARCHIVE" "ca-certificates"

log "installing the server packages"
chroot_mount "$ROOT"
chroot_bind_debs "$ROOT" "$DEBS"
chroot_deny_services "$ROOT"
strip_docs "$ROOT"
echo "deb $ARCHIVE $SUITE main" >"$ROOT/etc/apt/sources.list"
# grub-pc stays unconfigured: installimage installs GRUB onto the real disks.
echo "grub-pc grub-pc/install_devices multiselect" | in_chroot "$ROOT" debconf-set-selections
in_chroot "$ROOT" apt-get update -qq
# The initramfs is built once, after the module tree is trimmed: the kernel's and the hooks'
# own update-initramfs runs are diverted to a no-op meanwhile (each is a full MODULES=most
# build). unsafe-io: nothing here needs fsync, the tarball is the product.
in_chroot "$ROOT" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs
printf '#!/bin/sh\nexit 0\n' >"$ROOT/usr/sbin/update-initramfs"
chmod 755 "$ROOT/usr/sbin/update-initramfs"
echo force-unsafe-io >"$ROOT/etc/dpkg/dpkg.cfg.d/lab-build-unsafe-io"
# Recommends stay off in the image (lean), but stay on for later installs from the mirror.
in_chroot "$ROOT" apt-get install -y -qq --no-install-recommends \
  $(grep -v -e '^#' -e '^$' "$HERE/os-packages.txt") >"$WORK/apt.log" 2>&1 ||
  { tail -n 40 "$WORK/apt.log" >&2; die "apt-get install failed in the $SUITE chroot"; }
rm -f "$ROOT/etc/dpkg/dpkg.cfg.d/lab-build-unsafe-io" "$ROOT/usr/sbin/update-initramfs"
in_chroot "$ROOT" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs

KVER=$(basename "$(ls -d "$ROOT"/lib/modules/* | sort -V | tail -n 1)")
if [ "${HFDE_NO_TRIM:-0}" != 1 ]; then
  log "trimming kernel modules of $KVER ($(du -sm "$ROOT/lib/modules/$KVER" | cut -f1) MiB)"
  trim_modules "$ROOT" "$KVER" "$HERE/modules-os.txt"
fi
# zstd at level 1 instead of initramfs-tools' default 9: in the lab rescue, level 9 compresses
# this 40 MB cpio in 16.6 s and level 1 in 2.9 s (median, bench/initramfs-zstd.ts), and a lab host
# builds it up to three times per test. The image stays a zstd initrd, read the same way by the gate.
echo COMPRESSLEVEL=1 >"$ROOT/etc/initramfs-tools/conf.d/lab-compress-level"
log "building the initramfs (modules: $(du -sm "$ROOT/lib/modules/$KVER" | cut -f1) MiB)"
in_chroot "$ROOT" update-initramfs -c -k "$KVER" >"$WORK/initramfs.log" 2>&1 ||
  { tail -n 20 "$WORK/initramfs.log" >&2; die "update-initramfs failed in the $SUITE chroot"; }

log "configuring"
echo "deb [trusted=yes] $MIRROR_URL $SUITE main" >"$ROOT/etc/apt/sources.list"
printf 'auto lo\niface lo inet loopback\n\nsource /etc/network/interfaces.d/*\n' >"$ROOT/etc/network/interfaces"
echo localhost >"$ROOT/etc/hostname"
: >"$ROOT/etc/fstab"
# installimage creates host keys and the machine-id per installed server; an image carrying
# them would give every server the same identity.
rm -f "$ROOT"/etc/ssh/ssh_host_* "$ROOT/etc/machine-id" "$ROOT/var/lib/dbus/machine-id"
chroot_allow_services "$ROOT"
# No `apt-get clean`: /var/cache/apt/archives is the shared .deb cache, bind-mounted.
chroot_umount_all
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* \
  "$ROOT"/tmp/* "$ROOT"/var/tmp/* "$ROOT"/root/.bash_history

log "packing $(basename "$OUT") ($(du -sm "$ROOT" | cut -f1) MiB)"
tar --numeric-owner --xattrs --xattrs-include='*' -C "$ROOT" -cf - . | gzip -6 >"$OUT.part"
mv "$OUT.part" "$OUT"
log "$(basename "$OUT"): $(du -m "$OUT" | cut -f1) MiB"
