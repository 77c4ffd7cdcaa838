// What differs between the supported releases for remote unlock through dropbear in the initramfs.
// One adapter per release (debian.ts, ubuntu.ts) fills this in as data; the code that writes files
// and checks the built image reads it and never asks "which distro is this?" itself.
//
// Facts behind the fields (read from the packages themselves: dropbear-initramfs 2022.83 and
// 2025.89, initramfs-tools 0.142 and 0.148, cryptsetup-initramfs 2.6 and 2.7; Ubuntu's from its
// initramfs-tools sources):
// - dropbear-initramfs 2020.81-4 (Debian 12+, Ubuntu 22.04+) moved /etc/dropbear-initramfs/config to
//   /etc/dropbear/initramfs/dropbear.conf; Debian 11 ships 2020.81-3 and still reads the old place.
//   Both read DROPBEAR_OPTIONS, IFDOWN and DROPBEAR_SHUTDOWN_TIMEOUT from that file, copy every
//   dropbear_{rsa,ecdsa,ed25519}_host_key of the directory into the image, and take authorized_keys
//   from the same directory. Their postinst generates host keys only when none is there yet.
// - cryptsetup-initramfs is its own package from Debian 10 / Ubuntu 19.10 on (before, cryptsetup
//   carried the hooks); it brings /bin/cryptroot-unlock into the image and writes cryptroot/crypttab.
// - dropbear-initramfs's conf-hooks.d forces BUSYBOX=y (the full busybox: `ip`, `ps`, `usleep`,
//   which cryptroot-unlock and the init-bottom cleanup need); we set it too, so a conf.d that says
//   otherwise cannot win by name order.
// - The initramfs network comes from IP= (conf.d or the ip= kernel parameter), the device from
//   BOOTIF=01-<mac> when IP= names none. Debian's configure_networking runs klibc's ipconfig (IPv4
//   only: no IPv6 through ip=); Ubuntu's runs iproute2/dhclient and also writes
//   /run/netplan/<dev>.yaml, which netplan ranks above /etc/netplan after the switch to the real root.
// - dropbear's init-bottom brings every interface matching IFDOWN ("*" by default) down and flushes
//   its addresses and routes, so ifupdown's `ifup` does not fail with "Address already assigned" and
//   networkd starts from a clean link. What is left is the netplan file above (Ubuntu).

export type DistroKey = "debian-11" | "debian-12" | "debian-13" | "ubuntu-22.04" | "ubuntu-24.04";

/** How the installed system configures its own network after the switch from the initramfs. */
export type SystemNetwork = "ifupdown" | "netplan" | "systemd-networkd";

/** Who configures the network inside the initramfs (configure_networking). */
export type InitramfsNetworkTool = "klibc-ipconfig" | "iproute2-dhclient";

export interface DropbearLayout {
  /** Directory the dropbear hook reads keys and config from. */
  readonly dir: string;
  /** The boot scripts' config file (shell assignments). */
  readonly configFile: string;
  readonly authorizedKeysFile: string;
  /** Host key files the hook copies; only the ed25519 one is ours, the others are removed. */
  readonly hostKeyFiles: { readonly ed25519: string; readonly others: readonly string[] };
  /** Variable names the boot scripts read from `configFile`. */
  readonly variables: { readonly options: "DROPBEAR_OPTIONS"; readonly ifdown: "IFDOWN"; readonly shutdownTimeout: "DROPBEAR_SHUTDOWN_TIMEOUT" };
  /** The dropbear-initramfs version the release ships (for messages and docs). */
  readonly packageVersion: string;
}

export interface DistroAdapter {
  readonly key: DistroKey;
  /** "Debian 12 (bookworm)". */
  readonly name: string;
  /** os-release ID and VERSION_ID this adapter answers for. */
  readonly osId: "debian" | "ubuntu";
  readonly versionId: string;
  readonly codename: string;
  /**
   * Packages remote unlock needs. Installing them all in one apt run lets dpkg's trigger build the
   * initramfs once, after every hook is in place (each postinst's `update-initramfs -u` defers to it).
   */
  readonly packages: readonly string[];
  readonly dropbear: DropbearLayout;
  readonly initramfs: {
    readonly networkTool: InitramfsNetworkTool;
    /** Files the initramfs network leaves under /run that the installed system would act on. */
    readonly runLeftovers: readonly string[];
  };
  /** The installed system's network stack on this release's stock server images. */
  readonly systemNetwork: SystemNetwork;
}
