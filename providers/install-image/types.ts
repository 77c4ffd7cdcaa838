// InstallImage's constants, types and errors.
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionProfile, HostContext } from "../kernel";
import type { ArrayLine, BlockNode, MdArrayFacts } from "../storage/md";
import type { PartitionSpec, VolumeSpec } from "../rules/layout";
import type { PbkdfSettings } from "../rules/luks";
import type { RaidLevel } from "../rules/size";
import type { SshSession } from "../plumbing/ssh";
import { keepErrorMessage } from "../plumbing/errors";
import type { RootLocation } from "./autosetup";

// ---------------------------------------------------------------------------------------------
// Constants (declared first: the closure serializer cannot resolve a const used above its declaration)

/** Always the full path: `installimage` is only a shell alias in Hetzner's rescue. */
export const INSTALLIMAGE = "/root/.oldroot/nfs/install/installimage";
export const IMAGES_DIR = "/root/.oldroot/nfs/images";
export const AUTOSETUP = "/autosetup";
export const DEBUG_FILE = "/root/debug.txt";
/**
 * Per-boot work directory (tmpfs): installimage's pid, output and exit code, and the record of an
 * install this resource started. It vanishes with the rescue boot, which is the point: data on the
 * drives is "ours to redo" only while the boot that started the install is still up.
 */
export const WORK_DIR = "/run/hetzner-fde-install";
/** Written into the installed root as the last install step; an install without it is unfinished. */
export const MARKER_FILE = "etc/hetzner-fde/install-image.json";
export const HOST_KEY_DROP_IN = "etc/ssh/sshd_config.d/10-hetzner-fde-hostkey.conf";

/** KiB/s for the initial resync (the kernel's default is 200000). */
export const DEFAULT_SPEED_LIMIT_MAX = 2_000_000;
/** KDF for the real passphrase's keyslot: LUKS2's default family, benchmarked on the host. */
export const DEFAULT_CRYPT_PBKDF: PbkdfSettings = { type: "argon2id", iterTimeMs: 2000 };

export const REASSEMBLE_MODES = ["never", "scan", "force"] as const;

/**
 * The LUKS format installimage gives every `crypt` partition: `cryptsetup luksFormat --cipher
 * aes-xts-plain64 --key-size 256` (AES-128 in XTS mode), with nothing in its config to change it.
 * A LuksVolume adopting such a container must ask for exactly this, or it is a mismatch.
 */
export const INSTALLIMAGE_LUKS_FORMAT = { cipher: "aes-xts-plain64", keySize: 256 } as const;
export const MIN_ESP_SIZE_MIB = 256;
/** Under software emulation an install takes 5–8 min; real hardware a few. Generous on purpose. */
export const INSTALL_TIMEOUT_MS = 90 * 60_000;
export const SYSTEM_WAIT_MS = 20 * 60_000;

// ---------------------------------------------------------------------------------------------
// Types

export interface DriveSpec {
  /** Whole disk, e.g. `/dev/nvme0n1`. Changing the drives is a replacement (wipes them). */
  readonly path: string;
  /** Serial as `lsblk -o SERIAL` prints it: the run stops before writing if the disk at `path` has another. */
  readonly serial?: string;
  /** WWN as `lsblk -o WWN` prints it: like serial. */
  readonly wwn?: string;
}

export type ReassembleMode = (typeof REASSEMBLE_MODES)[number];

export interface ResyncSpec {
  /** KiB/s written to /proc/sys/dev/raid/speed_limit_max while the initial sync runs, restored after. Default 2000000. */
  readonly speedLimitMax?: number;
  /**
   * Wait in rescue until the initial sync finished before rebooting. Default false (the sync
   * continues on the installed system). The lab sets it: emulated NVMe under a resync stalls long
   * enough for md to fail a member during the first boot.
   */
  readonly waitBeforeReboot?: boolean;
}

/** Where the installed system answers SSH; defaults to the rescue profile's host and port. */
export interface SystemEndpoint {
  readonly host?: string;
  readonly port?: number;
}

export interface InstallImageArgs {
  /** The rescue system to install from (RescueBoot's `profile`). A new profile is not a new host: only the newest is used to connect. */
  readonly rescue: pulumi.Input<ConnectionProfile>;
  /** Address of the installed system; its host key is the one this resource generates. */
  readonly system?: pulumi.Input<SystemEndpoint>;
  /** Drives to install on (all of them with RAID, exactly one without). Changing them is a replacement. */
  readonly drives: pulumi.Input<pulumi.Input<DriveSpec>[]>;
  /** `{ level: 0|1|5|6|10 }`, or false for a single drive without md. Changing it is a replacement. */
  readonly raid: pulumi.Input<{ level: RaidLevel } | false>;
  /** installimage PARTs: `{ mount: "/boot", fs: "ext4", size: "1G" }`, `{ mount: "lvm", vg: "vg0", size: "all", crypt: true }`, `{ mount: "/boot/efi", fs: "esp", size: "256M" }`. Changing them is a replacement. */
  readonly partitions: pulumi.Input<pulumi.Input<PartitionSpec>[]>;
  /** installimage LVs: `{ vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" }`. Changing them is a replacement. */
  readonly volumes?: pulumi.Input<pulumi.Input<VolumeSpec>[]>;
  /** Image name as in the rescue's images directory, e.g. `Debian-bookworm-latest-amd64-base` (`.tar.gz` optional). Changing it is a replacement. */
  readonly image: pulumi.Input<string>;
  /** Host name (FQDN allowed; /etc/hostname gets the first label). Changed in place. */
  readonly hostname: pulumi.Input<string>;
  /** LUKS passphrase, required iff a partition has `crypt: true`. Reaches the host on stdin only. */
  readonly cryptPassphrase?: pulumi.Input<string>;
  /** KDF for the passphrase's keyslot. Default argon2id, 2 s benchmarked on the host. */
  readonly cryptPbkdf?: pulumi.Input<PbkdfSettings>;
  /** Allow wiping drives that carry data, replacing the install, and wiping on delete. Default false. */
  readonly allowWipe?: pulumi.Input<boolean>;
  /** Reboot into the installed system after the install. Default true; false stays in rescue for more rescue-side steps. */
  readonly reboot?: pulumi.Input<boolean>;
  readonly resync?: pulumi.Input<ResyncSpec>;
  /** What an update does about an array that fell apart: never (report it), scan (`mdadm --assemble --scan`), force (also `--force`). Default never. */
  readonly reassemble?: pulumi.Input<ReassembleMode>;
}

export interface InstallImageInputs {
  readonly rescue: ConnectionProfile;
  readonly system?: SystemEndpoint;
  readonly drives: DriveSpec[];
  readonly raid: { level: RaidLevel } | false;
  readonly partitions: PartitionSpec[];
  readonly volumes?: VolumeSpec[];
  readonly image: string;
  readonly hostname: string;
  readonly cryptPassphrase?: string;
  readonly cryptPbkdf?: PbkdfSettings;
  readonly allowWipe?: boolean;
  readonly reboot?: boolean;
  readonly resync?: ResyncSpec;
  readonly reassemble?: ReassembleMode;
  readonly providerVersion: string;
}

/** Where the last look at the host came from. */
export type ObservedEnvironment = "rescue" | "system" | "initramfs-locked" | "unreachable";

export interface ArrayState {
  readonly device: string;
  readonly level: number | null;
  /** Active members. */
  readonly members: string[];
  /** mdadm's form, `xxxxxxxx:xxxxxxxx:xxxxxxxx:xxxxxxxx`. */
  readonly uuid: string;
  readonly state: string;
  readonly degraded: boolean;
  readonly faultyMembers: string[];
  readonly sync: { readonly action: string; readonly percent: number | null };
}

export interface InstalledLayout {
  readonly arrays: ArrayState[];
  readonly partitions: { readonly device: string; readonly sizeBytes: number; readonly fstype: string | null }[];
  readonly volumeGroups: { readonly name: string; readonly sizeBytes: number; readonly freeBytes: number }[];
  readonly volumes: { readonly vg: string; readonly name: string; readonly sizeBytes: number }[];
  readonly os: { readonly prettyName: string; readonly versionId: string } | null;
}

export interface DriftItem {
  readonly kind: "notAssembled" | "degraded" | "inactive" | "hostname";
  readonly array?: string;
  readonly message: string;
  /** Degraded only: configured drives absent from the host; their members are re-added once they are back. */
  readonly awaiting?: string[];
}

export interface InstallImageOutputs extends Omit<InstallImageInputs, "cryptPassphrase"> {
  /** Random id written into the installed root's marker: the install, not the server. */
  readonly installId: string;
  readonly installedAt: string;
  readonly environment: ObservedEnvironment;
  /** `host:port` the last look came from (or would have). */
  readonly host: string;
  /** SHA256 fingerprints of the installed system's host keys (read from its disk or its sshd). */
  readonly hostKeyFingerprints: string[];
  readonly knownHosts: string[];
  /** The installed system's host name as found, null when it could not be read. */
  readonly observedHostname: string | null;
  readonly layout: InstalledLayout;
  /** The arrays the install created (mdadm's UUID form), kept across reads: how a stopped array is told from none. */
  readonly arrayUuids: string[];
  /** The LUKS containers made by the install, by device and header UUID (the initramfs opens each as `luks-<uuid>`); absent in state recorded before it existed. */
  readonly luks?: { readonly device: string; readonly uuid: string }[];
  readonly drift: DriftItem[];
  /**
   * Configured drive paths that did not exist at the last read (a drive out, and its neighbours
   * renumbered): diff plans against the record, and must not re-add onto a path that is not there.
   * Absent while every path exists.
   */
  readonly missingDrivePaths?: string[];
  /** Reboots create performed (0 with reboot: false). */
  readonly boots: number;
}

/** One configured drive as found. */
export interface DriveFacts {
  readonly path: string;
  readonly exists: boolean;
  readonly sizeBytes: number | null;
  readonly serial: string | null;
  readonly wwn: string | null;
  /** Whether GRUB's boot code is in its first sector. */
  readonly mbrGrub: boolean;
  /** Signatures on the whole disk (partition table type, filesystem…), as wipefs reports them. */
  readonly signatures: string[];
  /** Partitions and what is stacked on them. */
  readonly stacked: BlockNode[];
}

/** The installed root, read from its disk (rescue) or as `/` (installed system). */
export interface InstalledRootFacts {
  readonly device: string;
  readonly hostname: string | null;
  readonly osRelease: Record<string, string>;
  /** `ssh_host_*_key.pub` lines. */
  readonly hostKeys: string[];
  readonly marker: { readonly installId: string; readonly configSha256: string; readonly installedAt: string } | null;
  readonly mdadmConf: string | null;
  readonly fstab: string | null;
  readonly crypttab: string | null;
  /** CRYPTPASSWORD lines left in /installimage.conf and /installimage.debug. */
  readonly cryptLines: number;
}

export interface InstallObserved {
  readonly environment: "rescue" | "system";
  readonly hostname: string;
  readonly firmware: "bios" | "uefi";
  readonly drives: DriveFacts[];
  readonly arrays: MdArrayFacts[];
  /** md devices that exist but are not running (partly assembled, inactive). */
  readonly inactiveArrays: string[];
  /** What the superblocks on all devices describe (`mdadm --examine --scan`). */
  readonly superblocks: ArrayLine[];
  readonly volumeGroups: InstalledLayout["volumeGroups"];
  readonly volumes: InstalledLayout["volumes"];
  readonly knownUuids: string[];
  readonly espLoader: boolean | null;
  readonly root: InstalledRootFacts | null;
  readonly luks: { readonly device: string; readonly uuid: string; readonly open: boolean }[];
  readonly installer: { readonly running: boolean; readonly exitCode: number | null; readonly startedFor: InstallRecord | null };
  /** CRYPTPASSWORD lines left in the rescue's /autosetup and /root/debug.txt. */
  readonly rescueCryptLines: number;
  readonly imageFound: boolean;
  readonly imagesAvailable: string[];
  readonly speedLimitMax: number | null;
}

/**
 * The record of an install this rescue boot started (WORK_DIR/started-for, tmpfs): the config hash
 * and each drive's identity as the host reported it then. Data on a drive is ours to redo without
 * allowWipe only when both match.
 */
export interface InstallRecord {
  readonly configSha256: string;
  readonly drives: { readonly path: string; readonly serial: string | null; readonly wwn: string | null }[];
}

export type InstallImageStep =
  | { readonly kind: "stopInstaller" }
  | { readonly kind: "writeAutosetup"; readonly text: string; readonly crypt: boolean }
  | { readonly kind: "runInstallimage"; readonly drives: DriveSpec[]; readonly configSha256: string; readonly allowWipe: boolean }
  | { readonly kind: "installHostKey"; readonly root: RootLocation; readonly comment: string }
  | { readonly kind: "replacePassphrase"; readonly devices: string[]; readonly pbkdf: PbkdfSettings }
  | { readonly kind: "scrubSecrets"; readonly root: RootLocation }
  | { readonly kind: "writeMarker"; readonly root: RootLocation; readonly configSha256: string }
  | { readonly kind: "setHostname"; readonly hostname: string; readonly root: RootLocation | null }
  | { readonly kind: "reassemble"; readonly arrays: string[]; readonly force: boolean }
  | { readonly kind: "readdMember"; readonly array: string; readonly member: string; readonly uuid: string; readonly pin: DriveSpec; readonly allowWipe: boolean }
  | { readonly kind: "waitForResync"; readonly speedLimitMax: number }
  | { readonly kind: "tuneResync"; readonly speedLimitMax: number }
  /** `system`: the installed system's profile, pinned to the key in its root; null when it boots into an
   *  initramfs that waits for the LUKS passphrase (no SSH until it is typed). `rescue`: the rescue's keys
   *  mean "not rebooted yet". */
  | { readonly kind: "reboot"; readonly rescue: ConnectionProfile; readonly system: ConnectionProfile | null }
  | { readonly kind: "stopStorage"; readonly drives: DriveSpec[] }
  | { readonly kind: "wipeDrives"; readonly drives: DriveSpec[] };

/**
 * How InstallImage holds its host (the kernel's session): SSH, or none while the host cannot be
 * logged into. `awaiting` says where it is then: in the initramfs this run rebooted it into (waiting
 * for the LUKS passphrase), or unreachable (read of a host that is off, or locked).
 */
export interface InstallSession {
  readonly ssh: SshSession | null;
  readonly awaiting: "initramfs" | "unreachable" | null;
  /** SSH commands run (the kernel logs a read's cost with it). */
  readonly commandsRun: number;
  close(): Promise<void>;
}

/**
 * What steps and the probe get. The run's secrets are in `keys`: `passphrase` (the real one),
 * `oneTimePassphrase` (installimage's CRYPTPASSWORD, with crypt) and `hostKeyPrivate` (the installed
 * system's host key, generated for this run; only its public half ever leaves the provider).
 */
export type InstallContext = HostContext<InstallSession>;

/** The host as seen without a login: nothing of the install can be read (the kernel's Observed is this or InstallObserved). */
export interface UnseenHost {
  readonly environment: "initramfs" | "unreachable";
}

export type InstallImageObserved = InstallObserved | UnseenHost;

/** installimage exited non-zero; carries the ERROR: lines of /root/debug.txt. */
export class InstallImageFailed extends Error {
  readonly errors: string[];
  constructor(message: string, errors: string[]) {
    super(message);
    this.name = "InstallImageFailed";
    this.errors = errors;
    keepErrorMessage(this, message);
  }
}

