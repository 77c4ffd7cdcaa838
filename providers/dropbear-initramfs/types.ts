// DropbearInitramfs's types: the args the program passes, the inputs the provider sees, the outputs
// it records, the facts a probe observes (including the gate's facts about a built initrd) and the
// steps a plan is made of.
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionProfile } from "../kernel/host-access";
import type { DistroKey } from "../distro";
import type { Secret } from "../plumbing/secret";

/** Dropbear's port in the initramfs when none is given (the lab forwards its dropbear port to it). */
export const DEFAULT_DROPBEAR_PORT = 2222;
/** sshd's port on the installed system when none is given. */
export const DEFAULT_SSHD_PORT = 22;
/** dropbear -I: a session idle this long is closed, so a forgotten one does not hold the initramfs. */
export const DEFAULT_IDLE_TIMEOUT_SECONDS = 300;
/** Hetzner's IPv6 gateway on every dedicated server. */
export const HETZNER_IPV6_GATEWAY = "fe80::1";

/**
 * One key that may log in to the initramfs. Every key gets no-port-forwarding, no-agent-forwarding
 * and no-X11-forwarding. By default it is also pinned to `command="/bin/cryptroot-unlock"`: the
 * session can do nothing but unlock (interactively with a tty, or from stdin without one).
 * `shell: true` leaves the busybox shell reachable, for rescue work in a half-booted host.
 */
export interface AuthorizedKey {
  /** OpenSSH public key line `<type> <base64> [comment]`. */
  readonly key: string;
  readonly shell?: boolean;
}

/** The initramfs network. The interface is picked by MAC: names differ between initramfs and system. */
export interface InitramfsNetwork {
  /** MAC address of the interface to configure (`aa:bb:cc:dd:ee:ff`). */
  readonly mac: string;
  /** `"dhcp"`, or a static IPv4 address with prefix and its gateway (inside the subnet). */
  readonly ipv4: "dhcp" | { readonly address: string; readonly gateway: string };
  /** Optional static IPv6 (klibc's ipconfig has none; a boot script of ours adds it). Gateway default fe80::1. */
  readonly ipv6?: { readonly address: string; readonly gateway?: string };
}

export interface DropbearInitramfsArgs {
  /** How to reach the host in each environment (rescue, system; an initramfs profile is derived). */
  readonly connection: pulumi.Input<pulumi.Input<ConnectionProfile>[]>;
  /** The installed system's host name: verified after the unlock. */
  readonly hostname: pulumi.Input<string>;
  /** Keys that may log in to dropbear; strings are unlock-only keys. The provider's own key must be among them. */
  readonly authorizedKeys: pulumi.Input<pulumi.Input<string | AuthorizedKey>[]>;
  /** Port dropbear listens on in the initramfs. Default 2222; must differ from `sshdPort`. */
  readonly port?: pulumi.Input<number>;
  /** Port the installed system's sshd listens on. Default 22. */
  readonly sshdPort?: pulumi.Input<number>;
  /** Where the operator dials dropbear, when it differs from the system profile's address and `port` (NAT, the lab's port forward). */
  readonly reach?: pulumi.Input<{ host: string; port: number }>;
  readonly network: pulumi.Input<InitramfsNetwork>;
  /** dropbear -I, seconds. Default 300. */
  readonly idleTimeoutSeconds?: pulumi.Input<number>;
  /** Unlock a host found waiting in its initramfs (and close the loop after create). Default true. */
  readonly unlock?: pulumi.Input<boolean>;
  /** The LUKS passphrase: to open the root in rescue and to unlock. Reaches the host on stdin only. */
  readonly passphrase?: pulumi.Input<string>;
  /** Also reboot, unlock and verify after an update (create always does). Default false. */
  readonly rebootOnUpdate?: pulumi.Input<boolean>;
  /** Remove remote unlock on destroy (the host is then bootable only from the console). Default false: retained. */
  readonly allowWipe?: pulumi.Input<boolean>;
}

export interface DropbearInitramfsInputs {
  readonly connection: ConnectionProfile[];
  readonly hostname: string;
  readonly authorizedKeys: (string | AuthorizedKey)[];
  readonly port?: number;
  readonly sshdPort?: number;
  readonly reach?: { readonly host: string; readonly port: number };
  readonly network: InitramfsNetwork;
  readonly idleTimeoutSeconds?: number;
  readonly unlock?: boolean;
  readonly passphrase?: string;
  readonly rebootOnUpdate?: boolean;
  readonly allowWipe?: boolean;
  readonly providerVersion: string;
  /**
   * Internal, never set by the program: the initramfs host key (dropbear format, base64), generated
   * by the provider at create and carried over from the recorded outputs afterwards.
   */
  readonly hostKeyPrivate?: string;
}

/** One piece the bootability gate found missing or wrong in a built initrd. */
export interface GateProblem {
  /** Short name of the piece: "dropbear", "host key", "authorized_keys", "cryptroot", "mdadm.conf", "mdadm", "lvm", "NIC driver", "network", "GRUB". */
  readonly piece: string;
  /** What is wrong and how to fix it. */
  readonly message: string;
}

/**
 * What the gate reads from one host, after a build (gate.sh prints it; gate.ts parses it).
 * `files` holds the contents of the few files of the image the gate reads (never the host key).
 */
export interface InitrdFacts {
  readonly kernelVersion: string;
  /** Path of the initrd on the host (`/boot/initrd.img-6.1.0-…`); null when the file is missing. */
  readonly initrdPath: string | null;
  /** Every path in the image, relative, without a leading "./" (the main archive after early cpios). */
  readonly listing: readonly string[];
  /** Relative path → text, for etc/passwd, the dropbear config, conf/conf.d/*, cryptroot/crypttab, etc/mdadm/mdadm.conf, authorized_keys. */
  readonly files: Readonly<Record<string, string>>;
  /** sha256 hex of each dropbear host key file in the image, by relative path. */
  readonly hostKeySha256: Readonly<Record<string, string>>;
}

/** The host around the image: what the image must match. */
export interface HostFacts {
  /** md array UUIDs (`mdadm --detail --scan`), in mdadm's colon form. */
  readonly arrayUuids: readonly string[];
  /** The interface with the configured MAC: its name and kernel module (null: built in or no driver link). */
  readonly nic: { readonly name: string; readonly module: string | null } | null;
  /** The installed root's /etc/crypttab. */
  readonly crypttab: string;
  /** /boot/grub/grub.cfg of the installed system. */
  readonly grubCfg: string;
}

/** What the image must hold, rendered from the inputs (see render.ts). */
export interface GateExpectation {
  readonly dropbearConfig: string;
  readonly confd: { readonly name: string; readonly text: string };
  readonly authorizedKeys: string;
  readonly hostKeySha256: string;
  /** Path of the dropbear config inside the image (etc/dropbear/config on Debian 11). */
  readonly imageConfigPath: string;
  /** Boot scripts of ours that must be in the image (relative paths). */
  readonly scripts: readonly string[];
}

/** Where the installed root is, for the steps that write into it: "" on the running system, the mount point in rescue. */
export type RootPath = "" | "/mnt/hetzner-fde-root";
export const RESCUE_ROOT: RootPath = "/mnt/hetzner-fde-root";

/** The closed loop's targets: where dropbear and the installed system's sshd answer, and what to verify. */
export interface LoopTargets {
  readonly initramfs: ConnectionProfile;
  readonly system: ConnectionProfile;
  readonly hostname: string;
}

export type DropbearInitramfsStep =
  /** Rescue: assemble the arrays, open LUKS (passphrase on stdin), activate LVM, mount the installed root and its /boot, bind /dev /proc /sys /run. */
  | { readonly kind: "openRoot"; readonly passphrase: Secret | null }
  /** Write the files (host key among them, hence the records are a Secret) before any build, so one build carries them. */
  | { readonly kind: "writeConfig"; readonly root: RootPath; readonly records: Secret; readonly stale: readonly string[]; readonly module: string | null; readonly paths: readonly string[] }
  /** apt-get install in one run: dpkg's trigger builds the initramfs once, after every hook is in place. */
  | { readonly kind: "installPackages"; readonly root: RootPath; readonly packages: readonly string[] }
  | { readonly kind: "buildInitramfs"; readonly root: RootPath; readonly kernel: string }
  /** Re-read the built image right before anything reboots; refuse with every missing piece. */
  | { readonly kind: "gate"; readonly root: RootPath; readonly mac: string; readonly expectation: GateExpectation }
  | { readonly kind: "closeRoot" }
  /** Reboot, wait for dropbear with the pinned key, unlock (passphrase on stdin), wait for sshd, verify. */
  | { readonly kind: "rebootAndUnlock"; readonly targets: LoopTargets; readonly passphrase: Secret }
  /** The host waits in its initramfs: unlock it and verify (no reboot). */
  | { readonly kind: "unlock"; readonly targets: LoopTargets; readonly passphrase: Secret }
  /** allowWipe delete: remove our files and dropbear-initramfs, rebuild once. */
  | { readonly kind: "removeUnlock"; readonly root: RootPath; readonly paths: readonly string[] };

/** What one probe saw. `files` are sha256 digests of our files as found (null: missing). */
export interface DropbearObserved {
  readonly environment: "rescue" | "system" | "initramfs";
  /** os-release of the installed root; null in the initramfs or when no root was found. */
  readonly osRelease: string | null;
  /** Rescue: whether the installed root is mounted at RESCUE_ROOT (openRoot done). */
  readonly rootOpen: boolean;
  readonly packages: readonly { readonly name: string; readonly installed: boolean }[];
  readonly files: readonly { readonly path: string; readonly sha256: string | null }[];
  /** The newest installed kernel (what GRUB boots by default), null when none was found. */
  readonly newestKernel: string | null;
  /** The module our block in /etc/initramfs-tools/modules names ("" for none, null: no block). */
  readonly modulesBlock: string | null;
  /** The interface with the configured MAC (null: none has it). */
  readonly nic: { readonly name: string; readonly module: string | null } | null;
  /**
   * The newest kernel's image: its gate facts, or, for facts rebuilt from the recorded outputs, the
   * digest of the expectation it matched when it was last read.
   */
  readonly image: { readonly facts: import("./gate").GateFacts } | { readonly matchedDigest: string } | null;
  /** Whether the running system booted before the newest initrd was built (a reboot would use a new image). */
  readonly initrdNewerThanBoot: boolean;
  /** System: the running kernel's image when it is not the newest one (drift is judged on both). */
  readonly runningImage: { readonly facts: import("./gate").GateFacts } | null;
}

export interface DropbearInitramfsOutputs extends Omit<DropbearInitramfsInputs, "passphrase"> {
  /** Dropbear-format private host key, base64: a secret output (additionalSecretOutputs), never in plain state. */
  readonly hostKeyPrivate: string;
  readonly hostKeyPublic: string;
  /** `SHA256:…`: what the stack pins for the initramfs. */
  readonly hostKeyFingerprint: string;
  /** known_hosts line for dropbear (at `reach`, or the system address and `port`). */
  readonly knownHosts: string[];
  /** A ready unlock command; its UserKnownHostsFile holds `knownHosts`. */
  readonly unlockCommand: string;
  /** The initramfs environment's connection profile (for other resources, and for read). */
  readonly initramfsProfile: ConnectionProfile;
  /** Where the last probe read: "system", "initramfs" (the host waits locked) or "rescue". */
  readonly environment: "system" | "initramfs" | "rescue";
  readonly host: string;
  /** What read found wrong: an image without dropbear after a kernel update, a locked host, files changed by hand. */
  readonly drift: string[];
  // What the last probe saw, kept so that `diff` can run the plan against it (recordedFacts).
  readonly distro: DistroKey | null;
  readonly newestKernel: string | null;
  readonly nicModule: string | null;
  readonly fileDigests: { readonly path: string; readonly sha256: string | null }[];
  /** Digest of the gate expectation the newest image matched; null when it did not. */
  readonly imageDigest: string | null;
}
