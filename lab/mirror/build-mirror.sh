#!/bin/bash
# Adds one suite to the lab's local Debian mirror: the packages in mirror-packages.txt plus
# everything apt would fetch to install them on a server made from the OS image, resolved by
# apt itself inside that image, then indexed with dpkg-scanpackages.
#
#   build-mirror.sh <mirror-debian-dir> <suite> <os-image-tarball> <deb-cache-dir>
#
# Result: <dir>/pool/<suite>/*.deb, <dir>/dists/<suite>/main/binary-amd64/Packages{,.gz},
# <dir>/dists/<suite>/Release. Unsigned: the images' sources say [trusted=yes] (lab only).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../images/lib.sh
source "$HERE/../images/lib.sh"

DEST=$1 SUITE=$2 TARBALL=$3 DEBS=$4
LOG_TAG="mirror $SUITE"
ARCHIVE=${HFDE_DEBIAN_ARCHIVE:-http://deb.debian.org/debian}
mkdir -p "$DEST"
WORK=$(mktemp -d "$DEST/../.work-$SUITE-XXXXXX")
ROOT=$WORK/root
trap 'chroot_umount_all; rm -rf --one-file-system "$WORK"' EXIT

log "unpacking $(basename "$TARBALL") to resolve dependencies against it"
mkdir -p "$ROOT" "$DEBS"
tar --numeric-owner -xzf "$TARBALL" -C "$ROOT"
chroot_mount "$ROOT"
echo "deb $ARCHIVE $SUITE main" >"$ROOT/etc/apt/sources.list"
in_chroot "$ROOT" apt-get update -qq

mapfile -t PACKAGES < <(grep -v -e '^#' -e '^$' "$HERE/mirror-packages.txt")
# Resolve while the chroot's package cache is still empty: apt leaves already-downloaded
# packages out of --print-uris. --reinstall lists the requested packages the image has, too.
in_chroot "$ROOT" apt-get install -y -qq --reinstall --print-uris "${PACKAGES[@]}" >"$WORK/uris" 2>"$WORK/apt.log" ||
  { tail -n 30 "$WORK/apt.log" >&2; die "apt could not resolve the mirror packages for $SUITE"; }
awk -F"'" '/^'"'"'http/ { split($3, f, " "); print f[1] }' "$WORK/uris" >"$WORK/files"
[ -s "$WORK/files" ] || die "apt resolved no packages for $SUITE"
chroot_bind_debs "$ROOT" "$DEBS"
in_chroot "$ROOT" apt-get install -y -qq --reinstall --download-only "${PACKAGES[@]}" >>"$WORK/apt.log" 2>&1 ||
  { tail -n 30 "$WORK/apt.log" >&2; die "apt could not download the mirror packages for $SUITE"; }

POOL=$DEST/pool/$SUITE
mkdir -p "$POOL"
# apt's cache names encode the epoch as "%3a"; pool names carry no epoch (as on Debian's
# mirrors), which keeps escaping out of the URLs.
while read -r file; do
  cp "$DEBS/$file" "$POOL/$(sed -E 's/_[0-9]+%3a/_/' <<<"$file")"
done <"$WORK/files"
log "$(wc -l <"$WORK/files") packages in pool/$SUITE"

INDEX=dists/$SUITE/main/binary-amd64
mkdir -p "$DEST/$INDEX"
(cd "$DEST" && dpkg-scanpackages --multiversion "pool/$SUITE" /dev/null 2>/dev/null) >"$DEST/$INDEX/Packages"
gzip -9kn "$DEST/$INDEX/Packages"
{
  echo "Origin: hetzner-fde lab"
  echo "Label: hetzner-fde lab mirror"
  echo "Suite: $SUITE"
  echo "Codename: $SUITE"
  echo "Date: $(LC_ALL=C date -u -R)"
  echo "Architectures: amd64"
  echo "Components: main"
  echo "Description: packages the hetzner-fde resources install, with their dependencies"
  echo "SHA256:"
  for f in main/binary-amd64/Packages main/binary-amd64/Packages.gz; do
    printf ' %s %s %s\n' "$(sha256sum "$DEST/dists/$SUITE/$f" | cut -d' ' -f1)" "$(stat -c %s "$DEST/dists/$SUITE/$f")" "$f"
  done
} >"$DEST/dists/$SUITE/Release"
log "indexed"
