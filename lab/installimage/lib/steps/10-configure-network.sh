# shellcheck shell=bash
# Step 10: network for the installed system. On QEMU's user network that is DHCP on the first
# ethernet interface, written for whichever of ifupdown or systemd-networkd the image uses.
# (Hetzner writes the static main IP; the lab's address comes from QEMU's DHCP server.)

step_configure_network() {
  local interface mac name
  interface="$(rescue_main_interface)"
  mac="$(<"/sys/class/net/${interface}/address")"
  name="$(installed_interface_name "$interface")"
  debug "main interface: ${interface} (${mac}), in the installed system: ${name}"
  if target_has /sbin/ifup /usr/sbin/ifup; then
    write_ifupdown_config "$name"
    pin_interface_name "$mac" "$name"
  else
    write_networkd_config "$mac"
  fi
  copy_resolver_config
}

# The interface of the default route, else the first ethernet device.
rescue_main_interface() {
  local interface
  interface="$(ip -o route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')"
  if [[ -z "$interface" ]]; then
    for interface in /sys/class/net/*; do
      [[ -e "${interface}/device" && "$(<"${interface}/type")" == 1 ]] && break
    done
    interface="${interface##*/}"
  fi
  [[ -e "/sys/class/net/${interface}" ]] || die "step ${RUN_STEP}: expected an ethernet interface in the rescue system, found none"
  printf '%s' "$interface"
}

# The name systemd's default naming policy (onboard, slot, path) gives the interface on the
# installed system, unless its kernel command line turns predictable names off.
installed_interface_name() {
  local interface="$1" key value onboard="" slot="" path=""
  if grep -qs 'net.ifnames=0' "${RUN_TARGET}/etc/default/grub"; then
    printf '%s' "$interface"
    return 0
  fi
  while IFS='=' read -r key value; do
    case "$key" in
      ID_NET_NAME_ONBOARD) onboard="$value" ;;
      ID_NET_NAME_SLOT) slot="$value" ;;
      ID_NET_NAME_PATH) path="$value" ;;
    esac
  done < <(udevadm test-builtin net_id "/sys/class/net/${interface}" 2>/dev/null || true)
  printf '%s' "${onboard:-${slot:-${path:-$interface}}}"
}

write_ifupdown_config() {
  local name="$1"
  cat >"${RUN_TARGET}/etc/network/interfaces" <<CONFIG
# written by installimage
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

auto ${name}
iface ${name} inet dhcp
CONFIG
}

# ifupdown needs the name to match. Pinned to the MAC address so the name cannot change under it:
# in the lab a rescue boot has more PCI devices (9p shares) than a disk boot, which moves the
# NIC's slot and with it its predictable name. (Hetzner does not need this on real hardware.)
pin_interface_name() {
  local mac="$1" name="$2"
  mkdir -p "${RUN_TARGET}/etc/systemd/network"
  cat >"${RUN_TARGET}/etc/systemd/network/10-installimage-mainif.link" <<CONFIG
# written by installimage: keep the name /etc/network/interfaces uses
[Match]
MACAddress=${mac}

[Link]
Name=${name}
CONFIG
}

write_networkd_config() {
  local mac="$1"
  mkdir -p "${RUN_TARGET}/etc/systemd/network"
  cat >"${RUN_TARGET}/etc/systemd/network/10-mainif.network" <<CONFIG
# written by installimage
[Match]
MACAddress=${mac}

[Network]
DHCP=yes
CONFIG
  mkdir -p "${RUN_TARGET}/etc/systemd/system/multi-user.target.wants"
  ln -sf /lib/systemd/system/systemd-networkd.service \
    "${RUN_TARGET}/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
}

# A resolv.conf managed by systemd-resolved (a symlink) is left to it.
copy_resolver_config() {
  [[ -L "${RUN_TARGET}/etc/resolv.conf" ]] && return 0
  [[ -f /etc/resolv.conf ]] && cat /etc/resolv.conf >"${RUN_TARGET}/etc/resolv.conf"
  return 0
}
