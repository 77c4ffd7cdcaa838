# Shared helpers for the lab image build scripts. Sourced, never executed.
# Every script runs as root on the host; chroots are native (not emulated), so they are fast.

log() { printf '[%s +%ss] %s\n' "${LOG_TAG:-images}" "$((SECONDS))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Mount the pseudo filesystems a package's maintainer scripts expect, and remember them so
# cleanup can unmount them even when the build dies half-way.
CHROOT_MOUNTS=()
chroot_mount() {
  local root=$1
  mount -t proc proc "$root/proc" && CHROOT_MOUNTS+=("$root/proc")
  mount -t sysfs sysfs "$root/sys" && CHROOT_MOUNTS+=("$root/sys")
  mount --bind /dev "$root/dev" && CHROOT_MOUNTS+=("$root/dev")
  mount -t devpts devpts "$root/dev/pts" -o newinstance,ptmxmode=0666 && CHROOT_MOUNTS+=("$root/dev/pts")
}

# Bind the shared .deb cache into the chroot so apt downloads land in (and are served from) it.
chroot_bind_debs() {
  local root=$1 debs=$2
  mkdir -p "$root/var/cache/apt/archives"
  mount --bind "$debs" "$root/var/cache/apt/archives" && CHROOT_MOUNTS+=("$root/var/cache/apt/archives")
}

chroot_umount_all() {
  local i
  for ((i = ${#CHROOT_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -l "${CHROOT_MOUNTS[$i]}" 2>/dev/null || true
  done
  CHROOT_MOUNTS=()
}

# Maintainer scripts must not start daemons on the build host.
chroot_deny_services() {
  printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
  chmod 755 "$1/usr/sbin/policy-rc.d"
}
chroot_allow_services() { rm -f "$1/usr/sbin/policy-rc.d"; }

in_chroot() {
  local root=$1; shift
  LC_ALL=C DEBIAN_FRONTEND=noninteractive chroot "$root" "$@"
}

# debootstrap with the shared .deb cache, so a rebuild downloads nothing already fetched.
run_debootstrap() {
  local suite=$1 root=$2 debs=$3 mirror=$4 include=$5
  mkdir -p "$debs"
  debootstrap --variant=minbase --arch=amd64 --cache-dir="$debs" \
    --include="$include" "$suite" "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
    { tail -n 30 "$root.debootstrap.log" >&2; die "debootstrap $suite failed (full log: $root.debootstrap.log)"; }
}

# Kernel modules: keep only what a QEMU guest with virtio/NVMe/AHCI can use. Takes a root, a
# kernel version and a file of extended regexes over paths relative to lib/modules/<ver>/
# ("!regex" excludes), removes every other module, then adds back the dependencies of what was
# kept (modules.dep lists them transitively).
trim_modules() {
  local root=$1 kver=$2 keep_patterns=$3
  local moddir=$root/lib/modules/$kver keep
  keep=$(mktemp)
  depmod -b "$root" "$kver"
  # Lines starting with "!" exclude what an earlier line included.
  (cd "$moddir" && find kernel -name '*.ko*' |
    grep -E -f <(grep -v -e '^#' -e '^$' -e '^!' "$keep_patterns") |
    grep -v -E -f <(sed -n 's/^!//p' "$keep_patterns"; echo '^$')) >"$keep" || true
  # Add transitive dependencies of each kept module.
  awk -F':' 'NR==FNR { want[$0]=1; next } ($1 in want) { print $1; n=split($2, d, " "); for (i=1;i<=n;i++) print d[i] }' \
    "$keep" "$moddir/modules.dep" | sort -u >"$keep.all"
  (cd "$moddir" && find kernel -name '*.ko*' | sort) | comm -23 - "$keep.all" | (cd "$moddir" && xargs -r rm -f)
  find "$moddir/kernel" -type d -empty -delete
  rm -f "$keep" "$keep.all"
  depmod -b "$root" "$kver"
}

# Drop documentation, manuals and translations: nobody reads them in a lab guest, and every byte
# of the rescue is decompressed under emulation on each boot.
strip_docs() {
  local root=$1
  rm -rf "$root"/usr/share/{doc,man,info,lintian,linda,bug,groff}/* 2>/dev/null || true
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'locale.alias' -exec rm -rf {} + 2>/dev/null || true
  # Keep future package installs from bringing them back.
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  cat >"$root/etc/dpkg/dpkg.cfg.d/01-lab-nodoc" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
CFG
}
