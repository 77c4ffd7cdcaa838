// Debian 11, 12 and 13. The only dropbear difference is the directory (see adapter.ts); the
// initramfs network is klibc's ipconfig everywhere, and the stock servers run ifupdown.
import type { DistroAdapter, DropbearLayout } from "./adapter";

const VARIABLES = { options: "DROPBEAR_OPTIONS", ifdown: "IFDOWN", shutdownTimeout: "DROPBEAR_SHUTDOWN_TIMEOUT" } as const;

function layout(dir: string, configName: string, packageVersion: string): DropbearLayout {
  return {
    dir,
    configFile: `${dir}/${configName}`,
    authorizedKeysFile: `${dir}/authorized_keys`,
    hostKeyFiles: { ed25519: `${dir}/dropbear_ed25519_host_key`, others: ["rsa", "ecdsa", "dss"].map((t) => `${dir}/dropbear_${t}_host_key`) },
    variables: VARIABLES,
    packageVersion,
  };
}

const PACKAGES = ["dropbear-initramfs", "cryptsetup-initramfs", "busybox"] as const;

// ipconfig writes /run/net-<dev>.conf; nothing in the installed system reads it, so nothing is left to undo.
const KLIBC = { networkTool: "klibc-ipconfig", runLeftovers: [] } as const;

export const DEBIAN_11: DistroAdapter = {
  key: "debian-11",
  name: "Debian 11 (bullseye)",
  osId: "debian",
  versionId: "11",
  codename: "bullseye",
  packages: PACKAGES,
  dropbear: layout("/etc/dropbear-initramfs", "config", "2020.81-3"),
  initramfs: KLIBC,
  systemNetwork: "ifupdown",
};

export const DEBIAN_12: DistroAdapter = {
  key: "debian-12",
  name: "Debian 12 (bookworm)",
  osId: "debian",
  versionId: "12",
  codename: "bookworm",
  packages: PACKAGES,
  dropbear: layout("/etc/dropbear/initramfs", "dropbear.conf", "2022.83-1"),
  initramfs: KLIBC,
  systemNetwork: "ifupdown",
};

export const DEBIAN_13: DistroAdapter = {
  key: "debian-13",
  name: "Debian 13 (trixie)",
  osId: "debian",
  versionId: "13",
  codename: "trixie",
  packages: PACKAGES,
  dropbear: layout("/etc/dropbear/initramfs", "dropbear.conf", "2025.89-1"),
  initramfs: KLIBC,
  systemNetwork: "ifupdown",
};

export { layout as dropbearLayout };
