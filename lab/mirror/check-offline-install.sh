#!/bin/bash
# Proves the lab mirror is enough for the resources' installs: unpacks an OS image into a
# scratch chroot, points apt at the mirror only (no DNS in the chroot, so nothing else is
# reachable), then runs `apt-get update && apt-get install -y <packages>` as a server would.
#
#   check-offline-install.sh <os-image-tarball> <mirror-debian-url> <suite> <package>...
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../images/lib.sh
source "$HERE/../images/lib.sh"
LOG_TAG=offline-apt

TARBALL=$1 URL=$2 SUITE=$3
shift 3
WORK=$(mktemp -d)
ROOT=$WORK/root
trap 'chroot_umount_all; rm -rf --one-file-system "$WORK"' EXIT

mkdir -p "$ROOT"
tar --numeric-owner -xzf "$TARBALL" -C "$ROOT"
chroot_mount "$ROOT"
chroot_deny_services "$ROOT"
echo "deb [trusted=yes] $URL $SUITE main" >"$ROOT/etc/apt/sources.list"
: >"$ROOT/etc/resolv.conf"
in_chroot "$ROOT" apt-get update -q
in_chroot "$ROOT" apt-get install -y -q "$@"
in_chroot "$ROOT" dpkg-query -W -f '${Package} ${Status}\n' "$@"
