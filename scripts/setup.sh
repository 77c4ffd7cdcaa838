#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs for the tests and the lab, then the npm deps.
# Run as root (or with sudo): it uses apt-get. The packages come from lab/host-tools.txt, the one
# list of host tools (test/unit/host-tools.test.ts keeps it complete).
#
#   bash scripts/setup.sh                   install, then npm ci
#   bash scripts/setup.sh --print-packages  print the apt packages, one a line, and do nothing
set -euo pipefail
cd "$(dirname "$0")/.."

# Column 2 of every entry; "-" marks a tool that is not from Debian (optional).
mapfile -t APT_PACKAGES < <(awk '!/^#/ && NF >= 3 && $2 != "-" { print $2 }' lab/host-tools.txt | sort -u)
[ "${#APT_PACKAGES[@]}" -gt 0 ] || { echo "setup.sh: no packages found in lab/host-tools.txt" >&2; exit 1; }

if [ "${1:-}" = --print-packages ]; then
  printf '%s\n' "${APT_PACKAGES[@]}"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >/dev/null
echo "apt: installed ${APT_PACKAGES[*]}"

npm ci --no-audit --no-fund
