# shellcheck shell=bash
# Step 11: in the new system: hostname and hosts, new SSH host keys, fstab, crypttab, mdadm.conf.

step_configure_system() {
  bind_target_system
  block_service_starts
  write_hostname
  new_machine_id
  generate_host_keys
  plan_fstab >"${RUN_TARGET}/etc/fstab"
  write_crypttab
  write_mdadm_conf
  point_apt_at_rescue_mirror
  install_unlock_support
}

# Lab only. The images name the lab mirror at its default port; a lab started on other ports (the
# tests isolate theirs) serves it elsewhere, and the rescue's sources name this boot's mirror.
# Only URLs of a lab mirror (the slirp gateway 10.0.2.2) are rewritten; anything else is the image's.
point_apt_at_rescue_mirror() {
  local mirror file
  mirror=$(grep -o -m1 'http://10\.0\.2\.2:[0-9]*/debian' /etc/apt/sources.list 2>/dev/null) || return 0
  for file in "${RUN_TARGET}/etc/apt/sources.list" "${RUN_TARGET}"/etc/apt/sources.list.d/*.list "${RUN_TARGET}"/etc/apt/sources.list.d/*.sources; do
    [[ -f "$file" ]] || continue
    run sed -i "s|http://10\.0\.2\.2:[0-9]*/debian|${mirror}|g" "$file"
  done
}

# Images ship without a machine-id (every server would share it otherwise).
new_machine_id() {
  target_has /usr/bin/systemd-machine-id-setup || return 0
  rm -f "${RUN_TARGET}/etc/machine-id"
  in_target systemd-machine-id-setup
}

# An image without cryptsetup-initramfs could not unlock its root at boot. Installed with apt,
# from the rescue's package sources when it has them (Hetzner's rescue and images use the same
# mirror; in the lab the rescue's sources name this boot's mirror port), else the image's own.
# update-initramfs is diverted meanwhile so the package's trigger does not build an initramfs
# that step 12 builds anyway (each build costs minutes under emulation).
install_unlock_support() {
  [[ -n "$(plan_crypttab)" ]] || return 0
  target_has /usr/share/initramfs-tools/hooks/cryptroot && return 0
  say "installing cryptsetup-initramfs into the new system (the image lacks it)"
  local -a sources=()
  if [[ -s /etc/apt/sources.list ]]; then
    cp /etc/apt/sources.list "${RUN_TARGET}/tmp/installimage-sources.list"
    sources=(-o Dir::Etc::SourceList=/tmp/installimage-sources.list -o Dir::Etc::SourceParts=/nonexistent)
  fi
  in_target dpkg-divert --local --rename --add /usr/sbin/update-initramfs
  ln -s /bin/true "${RUN_TARGET}/usr/sbin/update-initramfs"
  in_target apt-get "${sources[@]}" update
  in_target apt-get "${sources[@]}" install -y --no-install-recommends cryptsetup-initramfs
  rm -f "${RUN_TARGET}/usr/sbin/update-initramfs" "${RUN_TARGET}/tmp/installimage-sources.list"
  in_target dpkg-divert --local --rename --remove /usr/sbin/update-initramfs
}

# Package scripts run by a post-install script must not start daemons inside the chroot;
# removed again by the finish step.
block_service_starts() {
  printf '#!/bin/sh\n# installimage: no service starts inside the installer chroot\nexit 101\n' \
    >"${RUN_TARGET}/usr/sbin/policy-rc.d"
  chmod 755 "${RUN_TARGET}/usr/sbin/policy-rc.d"
}

write_hostname() {
  local short
  short="$(short_hostname)"
  printf '%s\n' "$short" >"${RUN_TARGET}/etc/hostname"
  local names="$short"
  [[ "$CFG_HOSTNAME" != "$short" ]] && names="${CFG_HOSTNAME} ${short}"
  cat >"${RUN_TARGET}/etc/hosts" <<HOSTS
# written by installimage
127.0.0.1 localhost
127.0.1.1 ${names}

::1 localhost ip6-localhost ip6-loopback
ff02::1 ip6-allnodes
ff02::2 ip6-allrouters
HOSTS
}

# New keys unless -G no. Callers that pin host keys inject their own in a post-install script
# (see README.md, "Installing pre-generated host keys"), which runs after this.
generate_host_keys() {
  if [[ "$OPT_NEW_HOST_KEYS" == no ]]; then
    debug "-G no: keeping the image's SSH host keys"
    return 0
  fi
  rm -f "${RUN_TARGET}"/etc/ssh/ssh_host_*
  in_target ssh-keygen -A
}

write_crypttab() {
  local crypttab
  crypttab="$(plan_crypttab)"
  [[ -n "$crypttab" ]] || return 0
  printf '# <target name> <source device> <key file> <options>\n%s\n' "$crypttab" >"${RUN_TARGET}/etc/crypttab"
}

write_mdadm_conf() {
  is_raid || return 0
  mkdir -p "${RUN_TARGET}/etc/mdadm"
  {
    printf '# mdadm.conf: written by installimage\n'
    printf 'HOMEHOST <system>\nMAILADDR root\n\n'
    mdadm --detail --scan
  } >"${RUN_TARGET}/etc/mdadm/mdadm.conf"
}
