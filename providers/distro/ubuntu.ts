// Ubuntu 22.04 and 24.04: dropbear-initramfs from Debian (2020.81-5 and 2024.84-1, both with the
// /etc/dropbear/initramfs layout), Ubuntu's own configure_networking (iproute2 + dhclient) that
// also writes /run/netplan/<dev>.yaml, and netplan (networkd renderer) on the installed system.
import type { DistroAdapter } from "./adapter";
import { dropbearLayout } from "./debian";

const PACKAGES = ["dropbear-initramfs", "cryptsetup-initramfs", "busybox"] as const;

// Left in /run by the initramfs and moved into the real root: netplan ranks /run/netplan above
// /etc/netplan, so the initramfs's address would win over the system's own config.
const UBUNTU_INITRAMFS = { networkTool: "iproute2-dhclient", runLeftovers: ["/run/netplan/*.yaml"] } as const;

export const UBUNTU_2204: DistroAdapter = {
  key: "ubuntu-22.04",
  name: "Ubuntu 22.04 (jammy)",
  osId: "ubuntu",
  versionId: "22.04",
  codename: "jammy",
  packages: PACKAGES,
  dropbear: dropbearLayout("/etc/dropbear/initramfs", "dropbear.conf", "2020.81-5"),
  initramfs: UBUNTU_INITRAMFS,
  systemNetwork: "netplan",
};

export const UBUNTU_2404: DistroAdapter = {
  key: "ubuntu-24.04",
  name: "Ubuntu 24.04 (noble)",
  osId: "ubuntu",
  versionId: "24.04",
  codename: "noble",
  packages: PACKAGES,
  dropbear: dropbearLayout("/etc/dropbear/initramfs", "dropbear.conf", "2024.84-1"),
  initramfs: UBUNTU_INITRAMFS,
  systemNetwork: "netplan",
};
