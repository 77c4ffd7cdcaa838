#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs for the tests and the lab, then the npm deps.
# Run as root (or with sudo): it uses apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
APT_PACKAGES=(
  # a real OpenSSH server for the SSH layer's tests
  openssh-server openssh-client
  # the lab: emulated servers, their firmware and disk images
  qemu-system-x86 qemu-utils ovmf
  # the lab's image builds and local Debian mirror
  debootstrap cpio lz4 zstd xz-utils pigz dpkg-dev util-linux
  # host-side tools the lab builder uses on disk images
  mdadm cryptsetup lvm2
  # dropbearkey: the unit test that reads back the initramfs host key DropbearInitramfs writes
  dropbear-bin
)
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
echo "apt: installed ${APT_PACKAGES[*]}"

npm ci --no-audit --no-fund
