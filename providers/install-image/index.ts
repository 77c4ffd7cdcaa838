// InstallImage: Hetzner's installimage, run in the rescue system from a typed layout, with what the
// manual procedure leaves out done around it:
//
// - The `/autosetup` file is rendered from the inputs (users never write it), and installimage runs
//   detached on the host so a dropped connection cannot kill it half-way; its output is streamed to
//   the log by polling, and on failure the `ERROR:` lines of /root/debug.txt become the error.
// - The installed system's host key is generated here and installed before the first boot, so it
//   is pinned from the start (no trust on first use); only its public half is ever kept.
// - With `crypt`, installimage gets a random one-time passphrase (it writes CRYPTPASSWORD in plain
//   text into /autosetup and the new system's /installimage.conf); the real one goes into a new
//   keyslot through stdin, the one-time slot is killed and every CRYPTPASSWORD line is scrubbed.
// - Nothing is destroyed by surprise: drives are matched by serial/WWN before anything is written,
//   drives that carry data are refused without `allowWipe`, and any layout change is a replacement
//   that `check` refuses without `allowWipe`, naming what would be lost.
// - A killed run converges: the plan comes from a fresh probe every round; an install counts as
//   done only when the marker written as its last step is on the disk, and data on the drives is
//   "ours to redo" only while the rescue boot that started the install is still up.
// - Before rebooting, the installed system must be bootable as far as rescue can tell (GRUB on
//   every drive, mdadm.conf matching the arrays, every fstab/crypttab UUID present).

import * as pulumi from "@pulumi/pulumi";
import { ensureKey, retireKey } from "../storage/cryptsetup";
import { keepErrorMessage } from "../plumbing/errors";
import { ConnectionProfile, openFirstReachable, ReachedHost, SSH_PRIVATE_KEY_CONFIG, validateProfiles } from "../kernel/host-access";
import { generateEd25519KeyPair, knownHostsLine, parsePublicKey, sha256Fingerprint } from "../plumbing/keys";
import {
  ArrayLine,
  BlockNode,
  MdArrayFacts,
  blkidUuids,
  bootProblems,
  descendants,
  formatMdUuid,
  isDegraded,
  normalizeMdUuid,
  parseArrayLines,
  parseLsblk,
  parseMdArray,
} from "../storage/md";
import {
  CheckFailure,
  PROVIDER_VERSION,
  ResourceModule,
  StepContext,
  checkResult,
  isUnknown,
  jsonSafe,
  providerVersionChanged,
  runPlan,
  runStep,
  withSecretInputs,
} from "../kernel/resource";
import { checkDiskPath, checkSerial, checkWwn, normalizeWwn } from "../rules/device";
import { formatPath } from "../rules/issue";
import { parseImageName } from "../rules/image";
import { PartitionSpec, VolumeSpec, checkLayout } from "../rules/layout";
import { PbkdfSettings, checkPbkdf, PBKDF_TYPES } from "../rules/luks";
import { checkEndpointAddress, checkHostname, checkPort } from "../rules/network";
import { PASSPHRASE_RULE, passphraseWeaknesses } from "../rules/passphrase";
import { RAID_LEVELS, RaidLevel, minDrivesFor } from "../rules/size";
import { redact, Secret } from "../plumbing/secret";
import { ShellCommand, joinShell, sh } from "../plumbing/shell";
import { bootRescue, desiredFromRecipe, MISSING_ROBOT_ACCESS, RescueDesired, rescueContext, RobotAccess, robotAccessFromConfig } from "../rescue-boot";
import { EndpointObservation, SshSession, connect, observeEndpoint, probe as runProbe } from "../plumbing/ssh";

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

const REASSEMBLE_MODES = ["never", "scan", "force"] as const;
const MIN_ESP_SIZE_MIB = 256;
/** Under software emulation an install takes 5–8 min; real hardware a few. Generous on purpose. */
const INSTALL_TIMEOUT_MS = 90 * 60_000;
const SYSTEM_WAIT_MS = 20 * 60_000;

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
  readonly logicalVolumes?: pulumi.Input<pulumi.Input<VolumeSpec>[]>;
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
  readonly logicalVolumes?: VolumeSpec[];
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
  readonly logicalVolumes: { readonly vg: string; readonly name: string; readonly sizeBytes: number }[];
  readonly os: { readonly prettyName: string; readonly versionId: string } | null;
}

export interface DriftItem {
  readonly kind: "notAssembled" | "degraded" | "inactive" | "hostname";
  readonly array?: string;
  readonly message: string;
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
  readonly drift: DriftItem[];
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
  readonly logicalVolumes: InstalledLayout["logicalVolumes"];
  readonly knownUuids: string[];
  readonly espLoader: boolean | null;
  readonly root: InstalledRootFacts | null;
  readonly luks: { readonly device: string; readonly uuid: string; readonly open: boolean }[];
  readonly installer: { readonly running: boolean; readonly exitCode: number | null; readonly startedFor: string | null };
  /** CRYPTPASSWORD lines left in the rescue's /autosetup and /root/debug.txt. */
  readonly rescueCryptLines: number;
  readonly imageFound: boolean;
  readonly imagesAvailable: string[];
  readonly speedLimitMax: number | null;
  /** Array UUIDs the last create/read recorded (from the outputs; none on create): they tell a stopped array from none. */
  readonly recordedArrays: string[];
}

export type InstallImageStep =
  | { readonly kind: "stopInstaller" }
  | { readonly kind: "writeAutosetup"; readonly text: string; readonly crypt: boolean }
  | { readonly kind: "runInstallimage"; readonly drives: DriveSpec[]; readonly configSha256: string; readonly allowWipe: boolean }
  | { readonly kind: "installHostKey"; readonly root: RootLocation }
  | { readonly kind: "replacePassphrase"; readonly devices: string[] }
  | { readonly kind: "scrubSecrets"; readonly root: RootLocation }
  | { readonly kind: "writeMarker"; readonly root: RootLocation; readonly configSha256: string }
  | { readonly kind: "setHostname"; readonly hostname: string; readonly root: RootLocation | null }
  | { readonly kind: "reassemble"; readonly arrays: string[]; readonly force: boolean }
  | { readonly kind: "readdMember"; readonly array: string; readonly member: string; readonly uuid: string }
  | { readonly kind: "waitForResync"; readonly speedLimitMax: number }
  | { readonly kind: "tuneResync"; readonly speedLimitMax: number }
  | { readonly kind: "reboot" }
  | { readonly kind: "stopStorage"; readonly drives: DriveSpec[] }
  | { readonly kind: "wipeDrives"; readonly drives: DriveSpec[] };

export interface InstallContext extends StepContext {
  readonly session: SshSession;
  /** The installed system's host key pair for this run (only the public half ever leaves the provider). */
  readonly hostKey: { readonly private: Secret; readonly public: string };
  /** installimage's CRYPTPASSWORD for this run, null without crypt. */
  readonly oneTimePassphrase: Secret | null;
  readonly passphrase: Secret | null;
  readonly pbkdf: PbkdfSettings;
  readonly installId: string;
  /** Streams progress lines (installimage output, resync progress) to the log. */
  readonly progress: (line: string) => void;
  readonly pollMs: number;
}

/** Something the plan will not do without permission, or cannot do; the message says what to change. */
export class InstallImageRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InstallImageRefusal";
    keepErrorMessage(this, message);
  }
}

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

// ---------------------------------------------------------------------------------------------
// validate (pure; check)

export function validate(inputs: InstallImageInputs): CheckFailure[] {
  return [
    ...validateRescue(inputs.rescue),
    ...validateSystem(inputs.system),
    ...validateDrives(inputs.drives),
    ...validateRaid(inputs.raid, inputs.drives),
    ...validateLayout(inputs),
    ...validateImage(inputs.image),
    ...validateHostnameInput(inputs.hostname),
    ...validateCrypt(inputs),
    ...validateOptions(inputs),
  ];
}

function validateRescue(rescue: unknown): CheckFailure[] {
  if (isUnknown(rescue)) return [];
  if (rescue === null || typeof rescue !== "object" || Array.isArray(rescue)) {
    return [{ property: "rescue", reason: `expected a connection profile {environment: "rescue", host, port, user, hostKeyFingerprints} (RescueBoot's profile output), found ${JSON.stringify(rescue)}` }];
  }
  const failures = validateProfiles([rescue], "rescue").map((f) => ({ ...f, property: f.property.replace(/^rescue\[0\]/, "rescue") }));
  const env = (rescue as ConnectionProfile).environment;
  if (env !== undefined && env !== "rescue" && failures.every((f) => f.property !== "rescue.environment")) {
    failures.push({ property: "rescue.environment", reason: `expected "rescue" (installimage runs in the rescue system), found "${env}"` });
  }
  return failures;
}

function validateSystem(system: unknown): CheckFailure[] {
  if (system === undefined || isUnknown(system)) return [];
  if (system === null || typeof system !== "object") return [{ property: "system", reason: `expected {host?, port?}, found ${JSON.stringify(system)}` }];
  const failures: CheckFailure[] = [];
  const { host, port } = system as SystemEndpoint;
  if (host !== undefined && !isUnknown(host)) {
    const reason = typeof host === "string" ? checkEndpointAddress(host) : `expected an address, found ${JSON.stringify(host)}`;
    if (reason) failures.push({ property: "system.host", reason });
  }
  if (port !== undefined && !isUnknown(port)) {
    const reason = typeof port === "number" ? checkPort(port) : `expected a port number, found ${JSON.stringify(port)}`;
    if (reason) failures.push({ property: "system.port", reason });
  }
  return failures;
}

export function validateDrives(drives: unknown): CheckFailure[] {
  if (isUnknown(drives)) return [];
  if (!Array.isArray(drives) || drives.length === 0) {
    return [{ property: "drives", reason: `expected at least one drive like { path: "/dev/nvme0n1", serial: "S4EW…" }, found ${JSON.stringify(drives)}` }];
  }
  const failures: CheckFailure[] = [];
  const firstIndex = (key: "path" | "serial" | "wwn", value: string, i: number) =>
    drives.findIndex((d: DriveSpec, j) => j < i && d && typeof d[key] === "string" && (key === "wwn" ? normalizeWwn(d[key] as string) === normalizeWwn(value) : d[key] === value));
  drives.forEach((drive: DriveSpec, i) => {
    const at = `drives[${i}]`;
    if (drive === null || typeof drive !== "object") {
      failures.push({ property: at, reason: `expected { path, serial?, wwn? }, found ${JSON.stringify(drive)}` });
      return;
    }
    if (!isUnknown(drive.path)) {
      const reason = typeof drive.path === "string" ? checkDiskPath(drive.path) : `expected a device path like /dev/nvme0n1, found ${JSON.stringify(drive.path)}`;
      if (reason) failures.push({ property: `${at}.path`, reason });
      else {
        const twin = firstIndex("path", drive.path, i);
        if (twin >= 0) failures.push({ property: `${at}.path`, reason: `"${drive.path}" is listed twice (also drives[${twin}]); list each drive once` });
      }
    }
    for (const key of ["serial", "wwn"] as const) {
      const value = drive[key];
      if (value === undefined || isUnknown(value)) continue;
      const reason = typeof value !== "string" ? `expected a string, found ${JSON.stringify(value)}` : key === "serial" ? checkSerial(value) : checkWwn(value);
      if (reason) failures.push({ property: `${at}.${key}`, reason });
      else {
        const twin = firstIndex(key, value, i);
        if (twin >= 0) failures.push({ property: `${at}.${key}`, reason: `${key} "${value}" is also drives[${twin}]'s: the same disk cannot be listed twice under two paths` });
      }
    }
  });
  return failures;
}

function validateRaid(raid: unknown, drives: unknown): CheckFailure[] {
  if (isUnknown(raid)) return [];
  const count = Array.isArray(drives) && !isUnknown(drives) ? drives.length : null;
  if (raid === false) {
    if (count !== null && count > 1) {
      return [{ property: "raid", reason: `without RAID installimage installs on one drive and leaves the others alone, but ${count} drives are listed; list only the drive to install on, or set raid: { level: 1 }` }];
    }
    return [];
  }
  if (raid === null || typeof raid !== "object" || !("level" in raid)) {
    return [{ property: "raid", reason: `expected { level: ${RAID_LEVELS.join("|")} } or false (no md RAID), found ${JSON.stringify(raid)}` }];
  }
  const level = (raid as { level: unknown }).level;
  if (isUnknown(level)) return [];
  if (!RAID_LEVELS.includes(level as RaidLevel)) return [{ property: "raid.level", reason: `expected one of ${RAID_LEVELS.join(", ")}, found ${JSON.stringify(level)}` }];
  const needed = minDrivesFor(level as RaidLevel);
  if (count !== null && count < needed) {
    return [{ property: "raid.level", reason: `RAID ${level} needs at least ${needed} drives, found ${count}; add drives or choose RAID 1` }];
  }
  return [];
}

function validateLayout(inputs: InstallImageInputs): CheckFailure[] {
  const { partitions, logicalVolumes, raid, drives } = inputs;
  if (isUnknown(partitions) || isUnknown(logicalVolumes)) return [];
  if (!Array.isArray(partitions) || partitions.length === 0) {
    return [{ property: "partitions", reason: `expected installimage PARTs like [{ mount: "/boot", fs: "ext4", size: "1G" }, { mount: "lvm", vg: "vg0", size: "all" }], found ${JSON.stringify(partitions)}` }];
  }
  if (logicalVolumes !== undefined && !Array.isArray(logicalVolumes)) {
    return [{ property: "logicalVolumes", reason: `expected a list of { vg, name, mount, fs, size }, found ${JSON.stringify(logicalVolumes)}` }];
  }
  if (containsUnknown(partitions) || containsUnknown(logicalVolumes ?? [])) return [];
  const members = Array.isArray(drives) ? drives.length : 1;
  const raidSpec = raid && typeof raid === "object" && RAID_LEVELS.includes(raid.level) ? { level: raid.level, members } : null;
  const issues = checkLayout(
    { partitions, volumes: logicalVolumes ?? [], raid: raidSpec, memberSizesBytes: Array.from({ length: members }, () => undefined) },
    { requireEncryptedRoot: false },
  );
  const failures = issues.map((issue) => ({ property: formatPath(issue.path).replace(/^volumes/, "logicalVolumes"), reason: issue.message }));
  partitions.forEach((part, i) => {
    // The rule's own minimum applies to /boot/efi mounts; an esp elsewhere is caught there too.
    if (part.fs === "esp" && /^\d+M$/.test(part.size) && parseInt(part.size, 10) < MIN_ESP_SIZE_MIB && !failures.some((f) => f.property === `partitions[${i}].size`)) {
      failures.push({ property: `partitions[${i}].size`, reason: `expected an EFI system partition of at least ${MIN_ESP_SIZE_MIB}M, found ${part.size}` });
    }
  });
  return failures;
}

/** The image name without an archive suffix (`.tar.gz` is accepted and dropped). */
export function imageBaseName(image: string): string {
  return image.replace(/\.tar\.gz$/, "");
}

function validateImage(image: unknown): CheckFailure[] {
  if (isUnknown(image)) return [];
  if (typeof image !== "string") return [{ property: "image", reason: `expected an image name like Debian-bookworm-latest-amd64-base, found ${JSON.stringify(image)}` }];
  const parsed = parseImageName(imageBaseName(image));
  return parsed.ok ? [] : [{ property: "image", reason: parsed.reason }];
}

function validateHostnameInput(hostname: unknown): CheckFailure[] {
  if (isUnknown(hostname)) return [];
  const reason = typeof hostname === "string" ? checkHostname(hostname) : `expected a host name, found ${JSON.stringify(hostname)}`;
  return reason ? [{ property: "hostname", reason }] : [];
}

/** Whether any partition asks for encryption. */
export function usesCrypt(partitions: readonly PartitionSpec[] | undefined): boolean {
  return Array.isArray(partitions) && partitions.some((p) => p && p.crypt === true);
}

function validateCrypt(inputs: InstallImageInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const passphrase = inputs.cryptPassphrase;
  if (!isUnknown(inputs.partitions) && Array.isArray(inputs.partitions)) {
    const crypt = usesCrypt(inputs.partitions);
    if (crypt && passphrase === undefined) {
      failures.push({ property: "cryptPassphrase", reason: "a partition has crypt: true, so a passphrase is needed; set it with `pulumi config set --secret` and pass it here" });
    }
    if (!crypt && passphrase !== undefined && !isUnknown(passphrase)) {
      failures.push({ property: "cryptPassphrase", reason: "no partition has crypt: true, so the passphrase would be unused; remove it or set crypt: true on the lvm partition" });
    }
  }
  if (passphrase !== undefined && !isUnknown(passphrase)) {
    if (typeof passphrase !== "string") failures.push({ property: "cryptPassphrase", reason: "expected a string" });
    else {
      const weak = passphraseWeaknesses(passphrase);
      if (weak.length > 0) failures.push({ property: "cryptPassphrase", reason: `the passphrase ${weak.join("; ")}. Expected ${PASSPHRASE_RULE}` });
    }
  }
  const pbkdf = inputs.cryptPbkdf;
  if (pbkdf !== undefined && !isUnknown(pbkdf)) {
    if (!pbkdf || !PBKDF_TYPES.includes(pbkdf.type)) failures.push({ property: "cryptPbkdf.type", reason: `expected one of ${PBKDF_TYPES.join(", ")}, found ${JSON.stringify(pbkdf?.type)}` });
    else failures.push(...checkPbkdf(pbkdf).map((issue) => ({ property: `cryptPbkdf.${formatPath(issue.path)}`, reason: issue.message })));
  }
  return failures;
}

function validateOptions(inputs: InstallImageInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  for (const flag of ["allowWipe", "reboot"] as const) {
    const value = inputs[flag];
    if (value !== undefined && !isUnknown(value) && typeof value !== "boolean") failures.push({ property: flag, reason: `expected true or false, found ${JSON.stringify(value)}` });
  }
  const mode = inputs.reassemble;
  if (mode !== undefined && !isUnknown(mode) && !REASSEMBLE_MODES.includes(mode)) {
    failures.push({ property: "reassemble", reason: `expected one of ${REASSEMBLE_MODES.join(", ")}, found ${JSON.stringify(mode)}` });
  }
  const resync = inputs.resync;
  if (resync !== undefined && !isUnknown(resync)) {
    const max = resync?.speedLimitMax;
    if (max !== undefined && !isUnknown(max) && !(Number.isSafeInteger(max) && max >= 1000)) {
      failures.push({ property: "resync.speedLimitMax", reason: `expected KiB/s as a whole number of at least 1000 (the kernel's default is 200000), found ${JSON.stringify(max)}` });
    }
    const wait = resync?.waitBeforeReboot;
    if (wait !== undefined && !isUnknown(wait) && typeof wait !== "boolean") failures.push({ property: "resync.waitBeforeReboot", reason: `expected true or false, found ${JSON.stringify(wait)}` });
  }
  return failures;
}

// Value by value: `news` also carries __provider, whose code text contains the sentinel itself.
function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  return value !== null && typeof value === "object" && Object.values(value).some(containsUnknown);
}

// ---------------------------------------------------------------------------------------------
// The layout on the host (pure): device names, the /autosetup text

/** Partition `n` of a disk, the way the kernel names it: nvme0n1p1, sda1, …/by-id/x-part1. */
export function partitionDevice(drive: string, n: number): string {
  if (drive.startsWith("/dev/disk/")) return `${drive}-part${n}`;
  return /\d$/.test(drive) ? `${drive}p${n}` : `${drive}${n}`;
}

/** The block device PART i lives on: its md array with RAID, else the partition of the one drive. */
export function partDevice(inputs: Pick<InstallImageInputs, "drives" | "raid">, index: number): string {
  return inputs.raid ? `/dev/md${index}` : partitionDevice(inputs.drives[0].path, index + 1);
}

/** Where the installed root lives: an LV, or a partition (possibly inside LUKS, resolved on the host). */
export type RootLocation = { readonly kind: "lv"; readonly device: string } | { readonly kind: "part"; readonly device: string; readonly crypt: boolean };

export function rootLocation(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions" | "logicalVolumes">): RootLocation {
  const lv = (inputs.logicalVolumes ?? []).find((v) => v.mount === "/");
  if (lv) return { kind: "lv", device: `/dev/${lv.vg}/${lv.name}` };
  const index = inputs.partitions.findIndex((p) => p.mount === "/");
  return { kind: "part", device: partDevice(inputs, index), crypt: inputs.partitions[index]?.crypt === true };
}

/** The devices installimage puts LUKS on. */
export function cryptDevices(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string[] {
  return inputs.partitions.flatMap((p, i) => (p.crypt ? [partDevice(inputs, i)] : []));
}

export function espDevice(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string | null {
  const index = inputs.partitions.findIndex((p) => p.fs === "esp");
  return index < 0 ? null : partDevice(inputs, index);
}

/** Path of the image file in the rescue's images directory. */
export function imagePath(image: string): string {
  return `${IMAGES_DIR}/${imageBaseName(image)}.tar.gz`;
}

/**
 * installimage's config for the inputs, without CRYPTPASSWORD (the step appends the one-time
 * passphrase on the host's stdin). Deterministic: its hash identifies the install.
 */
export function renderAutosetup(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions" | "logicalVolumes" | "image" | "hostname">): string {
  const lines = [
    "# written by hetzner-fde InstallImage; do not edit: the stack renders it",
    ...inputs.drives.map((d, i) => `DRIVE${i + 1} ${d.path}`),
    `SWRAID ${inputs.raid ? 1 : 0}`,
    ...(inputs.raid ? [`SWRAIDLEVEL ${inputs.raid.level}`] : []),
    "BOOTLOADER grub",
    `HOSTNAME ${inputs.hostname}`,
    ...inputs.partitions.map((p) => `PART ${p.mount} ${p.mount === "lvm" ? p.vg : p.fs} ${p.size}${p.crypt ? " crypt" : ""}`),
    ...(inputs.logicalVolumes ?? []).map((lv) => `LV ${lv.vg} ${lv.name} ${lv.mount} ${lv.fs} ${lv.size}`),
    `IMAGE ${imagePath(inputs.image)}`,
  ];
  return lines.join("\n") + "\n";
}

export function sha256Hex(text: string): string {
  // Required here rather than imported at the top: the closure serializer then captures it by reference.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require("crypto") as typeof import("crypto");
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** What identifies an install: the rendered config (drives, layout, image, hostname at install time). */
export function configSha256(inputs: Parameters<typeof renderAutosetup>[0]): string {
  return sha256Hex(renderAutosetup({ ...inputs, hostname: "-" }));
}

// ---------------------------------------------------------------------------------------------
// plan (pure): observed + desired → the steps still to run

/** How the plan treats the observed host: a create may install and reboot; an update never does. */
export type PlanMode = "create" | "update";

/** Whether the pins of every drive match what the host reports; a message per mismatch. */
export function pinMismatches(drives: readonly DriveSpec[], observed: readonly DriveFacts[]): string[] {
  const problems: string[] = [];
  for (const drive of drives) {
    const facts = observed.find((d) => d.path === drive.path);
    if (!facts || !facts.exists) {
      problems.push(`${drive.path} does not exist on the host`);
      continue;
    }
    if (drive.serial !== undefined && facts.serial !== drive.serial) problems.push(`${drive.path} has serial ${JSON.stringify(facts.serial)}, expected "${drive.serial}"`);
    if (drive.wwn !== undefined && (facts.wwn === null || normalizeWwn(facts.wwn) !== normalizeWwn(drive.wwn))) problems.push(`${drive.path} has WWN ${JSON.stringify(facts.wwn)}, expected "${drive.wwn}"`);
  }
  return problems;
}

/** What is on the drives that an install would destroy, one phrase per drive; empty for blank drives. */
export function dataOnDrives(observed: InstallObserved, drives: readonly DriveSpec[]): string[] {
  return drives.flatMap((drive) => {
    const facts = observed.drives.find((d) => d.path === drive.path);
    if (!facts || !facts.exists) return [];
    const parts = facts.stacked.filter((n) => n.type === "part");
    const upper = facts.stacked.filter((n) => n.type !== "part").map((n) => `${n.type} ${n.path}`);
    const what = [
      ...facts.signatures.map((s) => `a ${s} signature`),
      ...(parts.length > 0 ? [`${parts.length} partition(s) (${parts.map((p) => (p.fstype ? `${p.path} ${p.fstype}` : p.path)).join(", ")})`] : []),
      ...[...new Set(upper)],
    ];
    return what.length > 0 ? [`${drive.path}: ${what.join(", ")}`] : [];
  });
}

/**
 * The steps still to run. A create installs (unless the marker of this exact install is on the
 * disk), checks the result can boot, and reboots; an update only fixes the hostname and, when
 * asked, the arrays. Throws InstallImageRefusal for what it will not do (wrong drive, data without
 * allowWipe, a fallen-apart array without reassemble, a system that would not boot).
 */
export function plan(observed: InstallObserved, desired: InstallImageInputs, mode: PlanMode = "create"): InstallImageStep[] {
  const sha = configSha256(desired);
  const installed = observed.root?.marker?.configSha256 === sha;
  if (!installed) {
    if (mode === "update" || observed.environment !== "rescue") {
      const where = observed.environment === "rescue" ? "on the drives" : `on the running system (${observed.hostname})`;
      throw new InstallImageRefusal(
        `the install this resource recorded is not ${where}${observed.root?.marker ? " (the marker belongs to another layout)" : " (no hetzner-fde marker in the installed root)"}; ` +
          `to install again, boot rescue (bump RescueBoot's generation) and replace this resource (set allowWipe: true)`,
      );
    }
    return planInstall(observed, desired, sha);
  }
  return [...planFixes(observed, desired), ...(mode === "create" ? planFinish(observed, desired) : [])];
}

function planInstall(observed: InstallObserved, desired: InstallImageInputs, sha: string): InstallImageStep[] {
  const pins = pinMismatches(desired.drives, observed.drives);
  if (pins.length > 0) throw new InstallImageRefusal(`refusing to install: ${pins.join("; ")}. Nothing was written; fix drives (path, serial, wwn) to name the intended disks`);
  if (!observed.imageFound) {
    throw new InstallImageRefusal(`image ${imagePath(desired.image)} is not in the rescue system; available: ${observed.imagesAvailable.join(", ") || "none"}. Fix image`);
  }
  const ours = observed.installer.startedFor !== null;
  const data = dataOnDrives(observed, desired.drives);
  if (data.length > 0 && !ours && desired.allowWipe !== true) {
    throw new InstallImageRefusal(`refusing to install over data: ${data.join("; ")}. Nothing was written; set allowWipe: true to wipe these drives`);
  }
  const root = rootLocation(desired);
  const crypt = usesCrypt(desired.partitions);
  return [
    ...(observed.installer.running ? [{ kind: "stopInstaller" } as const] : []),
    { kind: "writeAutosetup", text: renderAutosetup(desired), crypt },
    { kind: "runInstallimage", drives: desired.drives, configSha256: sha, allowWipe: desired.allowWipe === true || ours || data.length === 0 },
    { kind: "installHostKey", root },
    ...(crypt ? [{ kind: "replacePassphrase", devices: cryptDevices(desired) } as const, { kind: "scrubSecrets", root } as const] : []),
    { kind: "writeMarker", root, configSha256: sha },
  ];
}

/** Hostname and arrays: what an update (or a converging create) repairs. */
function planFixes(observed: InstallObserved, desired: InstallImageInputs): InstallImageStep[] {
  const steps: InstallImageStep[] = [];
  const drift = driftOf(observed, desired, observed.recordedArrays);
  const broken = drift.filter((d) => d.kind === "notAssembled" || d.kind === "inactive");
  if (broken.length > 0) {
    const mode = desired.reassemble ?? "never";
    if (mode === "never") {
      throw new InstallImageRefusal(`${broken.map((d) => d.message).join("; ")}. Set reassemble: "scan" to run mdadm --stop and --assemble --scan (or "force" to add --force)`);
    }
    steps.push({ kind: "reassemble", arrays: [...observed.inactiveArrays], force: mode === "force" });
    return steps; // members and hostname are judged again once the arrays are back
  }
  if ((desired.reassemble ?? "never") !== "never") {
    // An array already rebuilding is left alone: its new member is not "active" yet, and removing
    // it to add it again would restart the rebuild forever.
    for (const array of observed.arrays.filter((a) => isDegraded(a) && a.sync.action !== "recover")) {
      const index = Number(/(\d+)$/.exec(array.device)?.[1] ?? -1);
      if (!desired.raid || index < 0 || index >= desired.partitions.length) continue;
      const active = array.members.filter((m) => m.role === "active").map((m) => m.device);
      for (const drive of desired.drives) {
        const member = partitionDevice(drive.path, index + 1);
        if (!active.includes(member)) steps.push({ kind: "readdMember", array: array.device, member, uuid: array.uuid });
      }
    }
  }
  const root = observed.environment === "system" ? null : rootLocation(desired);
  if (observed.root && observed.root.hostname !== shortHostname(desired.hostname)) steps.push({ kind: "setHostname", hostname: desired.hostname, root });
  return steps;
}

/** After a finished install, in rescue: scrub leftovers, the boot check, the resync wait, the reboot. */
function planFinish(observed: InstallObserved, desired: InstallImageInputs): InstallImageStep[] {
  const speedLimitMax = desired.resync?.speedLimitMax ?? DEFAULT_SPEED_LIMIT_MAX;
  if (observed.environment !== "rescue") {
    const syncing = observed.arrays.some((a) => a.sync.action === "resync" || a.sync.action === "recover");
    return syncing && observed.speedLimitMax !== speedLimitMax ? [{ kind: "tuneResync", speedLimitMax }] : [];
  }
  const steps: InstallImageStep[] = [];
  if (observed.rescueCryptLines > 0 || (observed.root?.cryptLines ?? 0) > 0) steps.push({ kind: "scrubSecrets", root: rootLocation(desired) });
  const problems = bootProblemsOf(observed, desired);
  if (problems.length > 0) throw new InstallImageRefusal(`the installed system would not boot, so it was not rebooted: ${problems.join("; ")}`);
  if (desired.reboot === false) return steps;
  if (desired.resync?.waitBeforeReboot && observed.arrays.some((a) => a.sync.action !== "idle")) steps.push({ kind: "waitForResync", speedLimitMax });
  steps.push({ kind: "reboot" });
  return steps;
}

/** The boot check on observed facts. */
export function bootProblemsOf(observed: InstallObserved, desired: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string[] {
  if (!observed.root) return [`the installed root (${rootDeviceHint(desired)}) could not be read`];
  return bootProblems({
    firmware: observed.firmware,
    mbrGrub: desired.drives.map((d) => ({ drive: d.path, grub: observed.drives.find((f) => f.path === d.path)?.mbrGrub === true })),
    espLoader: observed.espLoader,
    mdadmConf: observed.root.mdadmConf,
    fstab: observed.root.fstab,
    crypttab: observed.root.crypttab,
    knownUuids: observed.knownUuids,
    arrayUuids: observed.arrays.map((a) => a.uuid),
    raid: desired.raid !== false,
    crypt: usesCrypt(desired.partitions),
  });
}

function rootDeviceHint(desired: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string {
  const index = desired.partitions.findIndex((p) => p.mount === "/");
  return index >= 0 ? partDevice(desired, index) : "an LV";
}

export function shortHostname(hostname: string): string {
  return hostname.split(".")[0];
}

// ---------------------------------------------------------------------------------------------
// Drift (pure)

/**
 * How the host differs from the install: arrays that fell apart (superblocks present, array not
 * running), inactive or degraded arrays (a failed or removed member), a changed host name.
 * `recordedUuids` are the arrays the last create/read saw; they tell a stopped array from none.
 */
export function driftOf(observed: InstallObserved, desired: Pick<InstallImageInputs, "raid" | "partitions" | "hostname">, recordedUuids: readonly string[]): DriftItem[] {
  const drift: DriftItem[] = [];
  if (desired.raid) {
    const running = observed.arrays.map((a) => a.uuid);
    // The arrays of this install: as recorded, else what the superblocks describe (other disks'
    // arrays are no business of this resource once the install is recorded).
    const recorded = recordedUuids.map(normalizeMdUuid);
    const onDisk = recorded.length > 0 ? recorded : [...new Set(observed.superblocks.map((s) => s.uuid))];
    for (const uuid of onDisk.filter((u) => !running.includes(u))) {
      const line = observed.superblocks.find((s) => s.uuid === uuid);
      drift.push({ kind: "notAssembled", array: line?.device ?? formatMdUuid(uuid), message: `array ${line?.device ?? ""} (UUID ${formatMdUuid(uuid)}) fell apart: its members carry superblocks but it is not assembled`.replace("array  (", "array (") });
    }
    for (const device of observed.inactiveArrays) drift.push({ kind: "inactive", array: device, message: `array ${device} is inactive (partly assembled)` });
    for (const array of observed.arrays) {
      if (array.state === "inactive") {
        drift.push({ kind: "inactive", array: array.device, message: `array ${array.device} is inactive` });
        continue;
      }
      if (!isDegraded(array)) continue;
      // A rebuild onto every member is the cure under way, not drift (the layout shows its progress).
      if (array.sync.action === "recover" && array.members.filter((m) => m.role === "active").length === array.raidDisks) continue;
      const active = array.members.filter((m) => m.role === "active").length;
      const faulty = array.members.filter((m) => m.role === "faulty").map((m) => m.device);
      drift.push({
        kind: "degraded",
        array: array.device,
        message: `array ${array.device} is degraded: ${active} of ${array.raidDisks} members active${faulty.length > 0 ? `, failed: ${faulty.join(", ")}` : ", a member is missing"}`,
      });
    }
    const expected = desired.partitions.length;
    if (observed.superblocks.length === 0 && recordedUuids.length === 0 && observed.arrays.length < expected && observed.environment === "system") {
      drift.push({ kind: "notAssembled", message: `${expected - observed.arrays.length} of ${expected} arrays are missing` });
    }
  }
  const found = observed.root?.hostname ?? null;
  if (found !== null && found !== shortHostname(desired.hostname)) {
    drift.push({ kind: "hostname", message: `host name is "${found}", expected "${shortHostname(desired.hostname)}"` });
  }
  return drift;
}

// ---------------------------------------------------------------------------------------------
// diff (pure, no SSH)

/** Inputs whose change destroys the install: a replacement, old one deleted first (same drives). */
export const REPLACING_INPUTS = ["drives", "raid", "partitions", "logicalVolumes", "image"] as const;

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** `crypt` lives in partitions, so a crypt change is a partitions change. */
export function replacedInputs(olds: Partial<InstallImageInputs>, news: InstallImageInputs): (typeof REPLACING_INPUTS)[number][] {
  return REPLACING_INPUTS.filter((key) => {
    if (containsUnknown(news[key])) return true;
    if (key === "image") return imageBaseName(olds.image ?? "") !== imageBaseName(news.image ?? "");
    return !sameValue(olds[key], news[key]);
  });
}

/** What a replacement would destroy, from the old inputs: drives, arrays, VGs and LVs. */
export function describeLoss(olds: Pick<InstallImageInputs, "drives" | "raid" | "partitions" | "logicalVolumes">): string {
  const drives = olds.drives.map((d) => `${d.path}${d.serial ? ` (serial ${d.serial})` : d.wwn ? ` (WWN ${d.wwn})` : ""}`).join(", ");
  const arrays = olds.raid ? olds.partitions.map((p, i) => `/dev/md${i} (${p.mount === "lvm" ? `VG ${p.vg}` : p.mount})`).join(", ") : "";
  const vgs = [...new Set((olds.logicalVolumes ?? []).map((lv) => lv.vg))].map((vg) => `VG ${vg} with LVs ${(olds.logicalVolumes ?? []).filter((lv) => lv.vg === vg).map((lv) => `${lv.name} (${lv.mount})`).join(", ")}`);
  return [`drives ${drives}`, ...(arrays ? [`arrays ${arrays}`] : []), ...vgs].join("; ");
}

/** check: a replacement wipes the drives, so it needs allowWipe; the failure lists what would be lost. */
export function validateReplacement(olds: Partial<InstallImageInputs> | undefined, news: InstallImageInputs): CheckFailure[] {
  if (!olds || !Array.isArray(olds.drives) || !Array.isArray(olds.partitions) || news.allowWipe === true) return [];
  const changed = replacedInputs(olds, news).filter((key) => !containsUnknown(news[key]));
  if (changed.length === 0) return [];
  return [
    {
      property: changed[0],
      reason: `changing ${changed.join(", ")} reinstalls the server and destroys everything on it: ${describeLoss(olds as InstallImageInputs)}. Set allowWipe: true to allow it`,
    },
  ];
}

/**
 * diff: a layout/image change is a replacement, old one first (both want the same drives); a
 * hostname change, drift the last read saw, a changed setting or connection profile is an update.
 * A profile change updates no host: the update only stores the newest profile, which delete and
 * refresh must use (they get the stored outputs, not the program's inputs).
 */
export function compareOutputs(olds: InstallImageOutputs, news: InstallImageInputs): pulumi.dynamic.DiffResult {
  const replaces = replacedInputs(olds, news);
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };
  const settings = ["hostname", "rescue", "system", "allowWipe", "reboot", "resync", "reassemble", "cryptPbkdf"] as const;
  const changed = providerVersionChanged(olds, news) || settings.some((key) => containsUnknown(news[key]) || !sameValue(olds[key], news[key]));
  return { changes: changed || (olds.drift ?? []).length > 0 };
}

// ---------------------------------------------------------------------------------------------
// probe (one read-only round trip)

/** What the probe needs to know about the layout to find things. */
export interface ProbeSubject {
  readonly drives: readonly DriveSpec[];
  readonly raid: InstallImageInputs["raid"];
  readonly partitions: readonly PartitionSpec[];
  readonly logicalVolumes?: readonly VolumeSpec[];
  readonly image: string;
}

/**
 * One script, one JSON document: the drives (lsblk, wipefs, first sector), md arrays (mdadm
 * --detail --export + sysfs), superblocks (mdadm --examine --scan), LVM, every UUID (blkid), the
 * installed root (mounted read-only without journal replay when it is not mounted), the ESP loader,
 * the state of an installimage run this resource started, and CRYPTPASSWORD leftovers (counted,
 * never printed). Free text is base64 so no output can break the JSON.
 */
export function probeScript(subject: ProbeSubject): ShellCommand {
  const root = rootLocation({ ...subject, drives: [...subject.drives], partitions: [...subject.partitions], logicalVolumes: subject.logicalVolumes ? [...subject.logicalVolumes] : undefined });
  const esp = espDevice({ drives: [...subject.drives], raid: subject.raid, partitions: [...subject.partitions] });
  const crypt = cryptDevices({ drives: [...subject.drives], raid: subject.raid, partitions: [...subject.partitions] });
  const drives = subject.drives.map(
    (d, i) => sh`d=${d.path}; printf '%s{"path":"%s"' ${i === 0 ? "" : ","} "$(t "$d")"
if [ -b "$d" ]; then
  printf ',"exists":true,"grub":%s,"wipefs":"%s","lsblk":' "$(dd if="$d" bs=512 count=1 2>/dev/null | grep -a -c GRUB)" "$(wipefs -n -J "$d" 2>/dev/null | t1)"
  lsblk -J -b -o NAME,PATH,TYPE,SIZE,SERIAL,WWN,FSTYPE,MOUNTPOINT "$d" 2>/dev/null || printf null
else printf ',"exists":false'; fi
printf '}'`,
  );
  const luks = crypt.map(
    (dev, i) => sh`c=${dev}; u=$(blkid -p -s UUID -o value "$c" 2>/dev/null); ty=$(blkid -p -s TYPE -o value "$c" 2>/dev/null)
printf '%s{"device":"%s","type":"%s","uuid":"%s","open":%s}' ${i === 0 ? "" : ","} "$(t "$c")" "$(t "$ty")" "$(t "$u")" "$([ -n "$u" ] && [ -b "/dev/mapper/luks-$u" ] && echo true || echo false)"`,
  );
  return joinShell(
    [
      sh`W=${WORK_DIR}
t() { printf '%s' "$1" | base64 -w0; }
t1() { base64 -w0; }
f() { if [ -r "$1" ]; then base64 -w0 < "$1"; fi; }
printf '{"hostname":"%s","rescue":%s,"firmware":"%s"' "$(t "$(hostname)")" "$([ -x ${INSTALLIMAGE} ] && echo true || echo false)" "$([ -d /sys/firmware/efi ] && echo uefi || echo bios)"
printf ',"drives":['`,
      ...drives,
      sh`printf '],"arrays":['; sep=''
for a in /sys/block/md*/md; do
  [ -d "$a" ] || continue
  n=$(basename "$(dirname "$a")"); dev=/dev/$n
  rd() { cat "$a/$1" 2>/dev/null | head -n1; }
  devs=$(for m in "$a"/dev-*; do [ -d "$m" ] && printf '%s %s %s\\n' "\${m##*/dev-}" "$(cat "$m/state" 2>/dev/null)" "$(cat "$m/slot" 2>/dev/null)"; done | t1)
  printf '%s{"device":"%s","export":"%s","devs":"%s","arrayState":"%s","degraded":"%s","syncAction":"%s","syncCompleted":"%s","syncSpeed":"%s","raidDisks":"%s"}' "$sep" "$dev" "$(mdadm --detail --export "$dev" 2>/dev/null | t1)" "$devs" "$(rd array_state)" "$(rd degraded)" "$(rd sync_action)" "$(rd sync_completed)" "$(rd sync_speed)" "$(rd raid_disks)"
  sep=,
done
printf '],"examine":"%s","blkid":"%s"' "$(mdadm --examine --scan 2>/dev/null | t1)" "$(blkid -o export 2>/dev/null | t1)"
printf ',"vgs":'; vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free 2>/dev/null || printf '{"report":[{}]}'
printf ',"lvs":'; lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_size 2>/dev/null || printf '{"report":[{}]}'
printf ',"luks":['`,
      ...luks,
      sh`printf ']'
r=${root.device}
if [ ${root.kind === "part" && root.crypt ? "yes" : "no"} = yes ]; then r="/dev/mapper/luks-$(blkid -p -s UUID -o value "$r" 2>/dev/null)"; fi
R=''; mounted=''
# Mounted already (as / on the installed system)? Matched by major:minor, whatever the path spelling.
mnt() { mm=$(lsblk -dn -o MAJ:MIN "$1" 2>/dev/null | tr -d ' '); [ -n "$mm" ] && findmnt -rn -o TARGET,MAJ:MIN | awk -v m="$mm" '$2 == m {print $1; exit}'; }
if [ -b "$r" ]; then
  R=$(mnt "$r")
  if [ -z "$R" ]; then
    mkdir -p "$W/probe-root"
    case "$(blkid -p -s TYPE -o value "$r" 2>/dev/null)" in ext*) o=ro,noload ;; xfs) o=ro,norecovery ;; *) o=ro ;; esac
    if mount -o "$o" "$r" "$W/probe-root" 2>/dev/null; then R="$W/probe-root"; mounted=1; fi
  fi
fi
if [ -n "$R" ]; then
  printf ',"root":{"device":"%s","hostname":"%s","osRelease":"%s","hostKeys":"%s","marker":"%s","mdadmConf":"%s","hasMdadmConf":%s,"fstab":"%s","hasFstab":%s,"crypttab":"%s","cryptLines":%s}' \
    "$(t "$r")" "$(f "$R/etc/hostname")" "$(f "$R/etc/os-release")" "$(cat "$R"/etc/ssh/ssh_host_*_key.pub 2>/dev/null | t1)" "$(f "$R/"${MARKER_FILE})" \
    "$(f "$R/etc/mdadm/mdadm.conf")" "$([ -f "$R/etc/mdadm/mdadm.conf" ] && echo true || echo false)" "$(f "$R/etc/fstab")" "$([ -f "$R/etc/fstab" ] && echo true || echo false)" "$(f "$R/etc/crypttab")" \
    "$(cat "$R/installimage.conf" "$R/installimage.debug" 2>/dev/null | grep -c CRYPTPASSWORD)"
else printf ',"root":null'; fi
[ -n "$mounted" ] && umount "$W/probe-root"
e=${esp ?? ""}; printf ',"espLoader":'
if [ -n "$e" ] && [ -d /sys/firmware/efi ] && [ -b "$e" ]; then
  E=$(mnt "$e"); em=''
  if [ -z "$E" ]; then mkdir -p "$W/probe-esp"; mount -o ro "$e" "$W/probe-esp" 2>/dev/null && E="$W/probe-esp" && em=1; fi
  if [ -n "$E" ] && [ -f "$E/EFI/BOOT/BOOTX64.EFI" ]; then printf true; else printf false; fi
  [ -n "$em" ] && umount "$W/probe-esp"
else printf null; fi
running=false; p=$(cat "$W/pid" 2>/dev/null)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then running=true; fi
printf ',"installer":{"running":%s,"rc":"%s","startedFor":"%s"}' "$running" "$(cat "$W/rc" 2>/dev/null)" "$(cat "$W/started-for" 2>/dev/null)"
printf ',"rescueCryptLines":%s' "$(cat ${AUTOSETUP} ${DEBUG_FILE} 2>/dev/null | grep -c CRYPTPASSWORD)"
printf ',"imageFound":%s,"images":"%s"' "$([ -f ${imagePath(subject.image)} ] && echo true || echo false)" "$(ls ${IMAGES_DIR} 2>/dev/null | t1)"
printf ',"speedLimitMax":"%s"}' "$(cat /proc/sys/dev/raid/speed_limit_max 2>/dev/null)"`,
    ],
    ";",
  );
}

/** The probe's JSON, as printed (base64 fields still encoded). */
export interface RawInstallProbe {
  hostname: string;
  rescue: boolean;
  firmware: "bios" | "uefi";
  drives: { path: string; exists: boolean; grub?: number; wipefs?: string; lsblk?: unknown }[];
  arrays: { device: string; export: string; devs?: string; arrayState: string; degraded: string; syncAction: string; syncCompleted: string; syncSpeed: string; raidDisks: string }[];
  examine: string;
  blkid: string;
  vgs: { report: Array<{ vg?: Array<Record<string, string>> }> };
  lvs: { report: Array<{ lv?: Array<Record<string, string>> }> };
  luks: { device: string; type: string; uuid: string; open: boolean }[];
  root: null | { device: string; hostname: string; osRelease: string; hostKeys: string; marker: string; mdadmConf: string; hasMdadmConf: boolean; fstab: string; hasFstab: boolean; crypttab: string; cryptLines: number };
  espLoader: boolean | null;
  installer: { running: boolean; rc: string; startedFor: string };
  rescueCryptLines: number;
  imageFound: boolean;
  images: string;
  speedLimitMax: string;
}

function b64(text: string | undefined | null): string {
  return text ? Buffer.from(text, "base64").toString("utf8") : "";
}

/** `KEY="value"` lines of os-release → map. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return out;
}

export function parseInstallProbe(json: unknown): InstallObserved {
  const raw = json as RawInstallProbe;
  if (!raw || typeof raw !== "object" || !Array.isArray(raw.drives) || !Array.isArray(raw.arrays)) {
    throw new Error(`expected {hostname, drives:[…], arrays:[…], …}, found ${JSON.stringify(json)?.slice(0, 200)}`);
  }
  const drives = raw.drives.map((d): DriveFacts => {
    const path = b64(d.path);
    if (!d.exists) return { path, exists: false, sizeBytes: null, serial: null, wwn: null, mbrGrub: false, signatures: [], stacked: [] };
    const tree = d.lsblk ? parseLsblk(d.lsblk)[0] : undefined;
    const wipefs = b64(d.wipefs);
    const signatures = wipefs ? ((JSON.parse(wipefs) as { signatures?: { type: string }[] }).signatures ?? []).map((s) => s.type) : [];
    return {
      path,
      exists: true,
      sizeBytes: tree?.sizeBytes ?? null,
      serial: tree?.serial ?? null,
      wwn: tree?.wwn ?? null,
      mbrGrub: (d.grub ?? 0) > 0,
      signatures: [...new Set(signatures)],
      stacked: tree ? descendants(tree) : [],
    };
  });
  const arrays: MdArrayFacts[] = [];
  const inactiveArrays: string[] = [];
  for (const a of raw.arrays) {
    const text = b64(a.export);
    if (!/MD_UUID=/.test(text) || a.arrayState === "inactive" || a.arrayState === "clear") {
      inactiveArrays.push(a.device);
      continue;
    }
    arrays.push(parseMdArray(a.device, text, { ...a, devs: b64(a.devs) }));
  }
  const rootRaw = raw.root;
  const markerText = rootRaw ? b64(rootRaw.marker) : "";
  let marker: InstalledRootFacts["marker"] = null;
  if (markerText.trim() !== "") {
    try {
      const m = JSON.parse(markerText) as { installId?: string; configSha256?: string; installedAt?: string };
      if (m.installId && m.configSha256) marker = { installId: m.installId, configSha256: m.configSha256, installedAt: m.installedAt ?? "" };
    } catch {
      marker = null; // a torn marker is no marker: the install did not finish
    }
  }
  const root: InstalledRootFacts | null = rootRaw
    ? {
        device: b64(rootRaw.device),
        hostname: b64(rootRaw.hostname).trim() || null,
        osRelease: parseOsRelease(b64(rootRaw.osRelease)),
        hostKeys: b64(rootRaw.hostKeys).split("\n").map((l) => l.trim()).filter((l) => l !== ""),
        marker,
        mdadmConf: rootRaw.hasMdadmConf ? b64(rootRaw.mdadmConf) : null,
        fstab: rootRaw.hasFstab ? b64(rootRaw.fstab) : null,
        crypttab: b64(rootRaw.crypttab) || null,
        cryptLines: Number(rootRaw.cryptLines) || 0,
      }
    : null;
  const lvmRows = <K extends "vg" | "lv">(report: { report: Array<Partial<Record<K, Array<Record<string, string>>>>> } | undefined, key: K) =>
    (report?.report ?? []).flatMap((section) => section[key] ?? []);
  const rc = raw.installer?.rc?.trim() ?? "";
  return {
    environment: raw.rescue ? "rescue" : "system",
    hostname: b64(raw.hostname).trim(),
    firmware: raw.firmware === "uefi" ? "uefi" : "bios",
    drives,
    arrays,
    inactiveArrays,
    superblocks: parseArrayLines(b64(raw.examine)),
    volumeGroups: lvmRows(raw.vgs, "vg").map((vg) => ({ name: vg.vg_name, sizeBytes: Number(vg.vg_size), freeBytes: Number(vg.vg_free) })),
    logicalVolumes: lvmRows(raw.lvs, "lv").map((lv) => ({ vg: lv.vg_name, name: lv.lv_name, sizeBytes: Number(lv.lv_size) })),
    knownUuids: blkidUuids(b64(raw.blkid)),
    espLoader: raw.espLoader === true ? true : raw.espLoader === false ? false : null,
    root,
    luks: (raw.luks ?? []).filter((l) => b64(l.type) === "crypto_LUKS").map((l) => ({ device: b64(l.device), uuid: b64(l.uuid), open: l.open === true })),
    installer: { running: raw.installer?.running === true, exitCode: /^\d+$/.test(rc) ? Number(rc) : null, startedFor: raw.installer?.startedFor?.trim() || null },
    rescueCryptLines: Number(raw.rescueCryptLines) || 0,
    imageFound: raw.imageFound === true,
    imagesAvailable: b64(raw.images).split("\n").filter((l) => l.trim() !== ""),
    speedLimitMax: /^\d+$/.test(raw.speedLimitMax?.trim() ?? "") ? Number(raw.speedLimitMax.trim()) : null,
    recordedArrays: [],
  };
}

export async function probe(ctx: InstallContext, subject: InstallImageInputs | InstallImageOutputs): Promise<InstallObserved> {
  return runProbe(ctx.session, probeScript(subject), parseInstallProbe, { timeoutMs: 5 * 60_000 });
}

// ---------------------------------------------------------------------------------------------
// steps (the only effects; each guarded so a re-run converges)

/** Shell that sets `$r` to the root's block device (opening nothing: a crypt root must already be open). */
function resolveRoot(root: RootLocation): ShellCommand {
  const crypt = root.kind === "part" && root.crypt ? "yes" : "no";
  return sh`r=${root.device}
if [ ${crypt} = yes ]; then r="/dev/mapper/luks-$(blkid -p -s UUID -o value "$r" 2>/dev/null)"; fi
[ -b "$r" ] || { echo "the installed root $r is not there (arrays stopped, or LUKS closed?)" >&2; exit 3; }`;
}

/** Shell that mounts the installed root read-write at `$M` (unmounted again on exit). */
function mountRoot(root: RootLocation): ShellCommand {
  return sh`set -e
${resolveRoot(root)}
M=${`${WORK_DIR}/root`}; mkdir -p "$M"
if ! mountpoint -q "$M"; then mount "$r" "$M"; trap 'umount "$M"' EXIT; fi`;
}

async function stopInstaller(ctx: InstallContext): Promise<void> {
  // installimage runs in its own session (setsid), so its pid is its process group.
  await ctx.session.exec(sh`W=${WORK_DIR}; p=$(cat "$W/pid" 2>/dev/null); [ -n "$p" ] || exit 0
kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done
kill -KILL -- "-$p" 2>/dev/null; rm -f "$W/pid" "$W/rc"; true`);
}

async function writeAutosetup(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "writeAutosetup" }>): Promise<void> {
  if (step.crypt && !ctx.oneTimePassphrase) throw new Error("the layout encrypts, but no one-time passphrase was made for installimage");
  // The one-time passphrase goes in on stdin: it is never part of a command line.
  const text = step.crypt && ctx.oneTimePassphrase ? `${step.text}CRYPTPASSWORD ${ctx.oneTimePassphrase.reveal()}\n` : step.text;
  // Removed first: `cat >` into an existing file would keep that file's (maybe wider) mode.
  await ctx.session.exec(sh`rm -f ${AUTOSETUP} && umask 077 && cat > ${AUTOSETUP}`, { stdin: new Secret(text) });
}

/** Pin checks and the data guard, on the host, right before installimage is started. */
function preInstallGuard(step: Extract<InstallImageStep, { kind: "runInstallimage" }>): ShellCommand {
  const pins = step.drives.map((d) => {
    const serial = d.serial === undefined ? sh`` : sh`s=$(lsblk -dn -o SERIAL ${d.path} | tr -d ' '); [ "$s" = ${d.serial} ] || { echo ${`${d.path} has serial`} "$s, expected" ${d.serial} >&2; exit 3; }`;
    const wwn = d.wwn === undefined ? sh`` : sh`w=$(lsblk -dn -o WWN ${d.path} | tr -d ' ' | tr A-F a-f); [ "$w" = ${normalizeWwn(d.wwn)} ] || { echo ${`${d.path} has WWN`} "$w, expected" ${d.wwn} >&2; exit 3; }`;
    return sh`[ -b ${d.path} ] || { echo ${`${d.path} does not exist`} >&2; exit 3; }
${serial}
${wwn}`;
  });
  const data = step.allowWipe
    ? sh`true`
    : sh`for d in ${step.drives.map((d) => d.path)}; do
  if [ -n "$(lsblk -n -o NAME "$d" | tail -n +2)" ] || [ -n "$(wipefs -n "$d" 2>/dev/null)" ]; then echo "$d carries data since the probe; not installing without allowWipe" >&2; exit 3; fi
done`;
  return joinShell([...pins, data], "&&");
}

async function runInstallimage(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "runInstallimage" }>): Promise<void> {
  const W = WORK_DIR;
  const inner = sh`TERM=xterm ${INSTALLIMAGE} -a -c ${AUTOSETUP} > ${`${W}/log`} 2>&1; echo $? > ${`${W}/rc`}`;
  // Detached in its own session: a dropped connection or a killed provider cannot stop it half-way
  // through a partition table; the next run finds it by its pid and stops it before starting over.
  await ctx.session.exec(sh`W=${W}; mkdir -p "$W" && chmod 700 "$W" && rm -f "$W/rc" "$W/log" "$W/pid"
${preInstallGuard(step)} || exit 3
printf '%s' ${step.configSha256} > "$W/started-for"
setsid sh -c ${inner.text} </dev/null >/dev/null 2>&1 &
echo $! > "$W/pid"`);
  await followInstaller(ctx);
}

/** Streams installimage's output to the log until it exits; on failure, its ERROR: lines become the error. */
async function followInstaller(ctx: InstallContext): Promise<void> {
  const started = Date.now();
  let offset = 0;
  let partial = "";
  for (;;) {
    // Exit code and liveness first, output second: when the exit code is there, the output read
    // after it is complete.
    const result = await ctx.session.exec(sh`W=${WORK_DIR}
rc=$(cat "$W/rc" 2>/dev/null); p=$(cat "$W/pid" 2>/dev/null); alive=dead; [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=run
printf '%s\\036%s\\036' "$rc" "$alive"
tail -c +${offset + 1} "$W/log" 2>/dev/null | head -c 65536`);
    const [rcText = "", alive = "", ...rest] = result.stdout.split("\u001e");
    const rc = rcText.trim();
    const chunk = rest.join("\u001e");
    const bytes = Buffer.byteLength(chunk, "utf8");
    offset += bytes;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") ctx.progress(`installimage: ${line}`);
    if (bytes >= 65536) continue; // more output is waiting
    if (rc !== "") {
      if (partial.trim() !== "") ctx.progress(`installimage: ${partial}`);
      if (rc === "0") return;
      const debug = await ctx.session.exec(sh`grep -a '^ERROR:' ${DEBUG_FILE} | tail -n 20`, { okExitCodes: [0, 1] });
      const errors = debug.stdout.split("\n").filter((l) => l.trim() !== "");
      throw new InstallImageFailed(
        `installimage exited ${rc}: ${errors.length > 0 ? errors.join(" | ") : `no ERROR: line in ${DEBUG_FILE}; read it on the host`}. Nothing is marked installed; fix the inputs and run up again`,
        errors,
      );
    }
    if (alive !== "run") throw new InstallImageFailed(`installimage stopped without an exit code (killed?); run up again to start over`, []);
    if (Date.now() - started > INSTALL_TIMEOUT_MS) throw new InstallImageFailed(`installimage still running after ${INSTALL_TIMEOUT_MS / 60_000} min; look at ${WORK_DIR}/log on the host`, []);
    await new Promise((resolve) => setTimeout(resolve, ctx.pollMs));
  }
}

async function installHostKey(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "installHostKey" }>): Promise<void> {
  // Private key on stdin only; the other key types go, so sshd presents exactly the pinned key.
  await ctx.session.exec(
    sh`${mountRoot(step.root)}
umask 077
rm -f "$M"/etc/ssh/ssh_host_*
cat > "$M/etc/ssh/ssh_host_ed25519_key"
printf '%s\\n' ${ctx.hostKey.public.trim()} > "$M/etc/ssh/ssh_host_ed25519_key.pub"
chmod 600 "$M/etc/ssh/ssh_host_ed25519_key"; chmod 644 "$M/etc/ssh/ssh_host_ed25519_key.pub"
mkdir -p "$M/etc/ssh/sshd_config.d"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\\n' > "$M/"${HOST_KEY_DROP_IN}; chmod 644 "$M/"${HOST_KEY_DROP_IN}`,
    { stdin: ctx.hostKey.private },
  );
}

async function replacePassphrase(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "replacePassphrase" }>): Promise<void> {
  if (!ctx.oneTimePassphrase || !ctx.passphrase) throw new Error("replacing installimage's passphrase needs both the one-time and the real passphrase");
  for (const device of step.devices) {
    // ensureKey proves the real passphrase opens a slot; retireKey kills the one-time slot only then.
    await ensureKey(ctx.session, device, ctx.oneTimePassphrase, ctx.passphrase, ctx.pbkdf);
    await retireKey(ctx.session, device, ctx.oneTimePassphrase, ctx.passphrase);
  }
}

async function scrubSecrets(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "scrubSecrets" }>): Promise<void> {
  const known = [ctx.oneTimePassphrase, ctx.passphrase].filter((s): s is Secret => s !== null);
  const files = sh`${AUTOSETUP} ${DEBUG_FILE} "$M/installimage.conf" "$M/installimage.debug" ${`${WORK_DIR}/log`}`;
  // Then prove it: neither passphrase is left in any of them (patterns on stdin, names printed, never lines).
  const verify =
    known.length === 0
      ? sh`true`
      : sh`set --; for f in ${files}; do if [ -f "$f" ]; then set -- "$@" "$f"; fi; done
if [ $# -gt 0 ] && grep -a -l -F -f - "$@"; then echo "a passphrase is still in the files above" >&2; exit 3; fi`;
  await ctx.session.exec(
    sh`${mountRoot(step.root)}
for f in ${files}; do if [ -f "$f" ]; then sed -i '/CRYPTPASSWORD/d' "$f"; fi; done
${verify}`,
    { stdin: new Secret(known.map((s) => s.reveal()).join("\n") + "\n") },
  );
}

async function writeMarker(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "writeMarker" }>): Promise<void> {
  const marker = JSON.stringify({ installId: ctx.installId, configSha256: step.configSha256, installedAt: new Date().toISOString(), providerVersion: PROVIDER_VERSION });
  await ctx.session.exec(
    sh`${mountRoot(step.root)}
mkdir -p "$M/etc/hetzner-fde"
cat > "$M/"${MARKER_FILE}.tmp && mv "$M/"${MARKER_FILE}.tmp "$M/"${MARKER_FILE} && sync`,
    { stdin: marker + "\n" },
  );
}

async function setHostname(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "setHostname" }>): Promise<void> {
  const short = shortHostname(step.hostname);
  const names = step.hostname === short ? short : `${step.hostname} ${short}`;
  const where = step.root ? mountRoot(step.root) : sh`set -e; M=''`;
  const live = step.root ? sh`true` : sh`hostname ${short}`;
  await ctx.session.exec(sh`${where}
n=${names}
printf '%s\\n' ${short} > "$M/etc/hostname"
if grep -q '^127[.]0[.]1[.]1[[:space:]]' "$M/etc/hosts"; then sed -i "s/^127[.]0[.]1[.]1[[:space:]].*/127.0.1.1 $n/" "$M/etc/hosts"; else echo "127.0.1.1 $n" >> "$M/etc/hosts"; fi
${live}`);
}

async function reassemble(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "reassemble" }>): Promise<void> {
  // Exit 1/2 ("nothing to assemble") is judged by the next probe, not here.
  await ctx.session.exec(sh`for a in ${step.arrays}; do mdadm --stop "$a" || true; done
mdadm --assemble --scan ${step.force ? "--force" : []}`, { okExitCodes: [0, 1, 2] });
}

async function readdMember(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "readdMember" }>): Promise<void> {
  // Only a partition that is blank or already carries THIS array's superblock is ever added.
  await ctx.session.exec(sh`a=${step.array}; m=${step.member}
[ -b "$m" ] || { echo "$m does not exist" >&2; exit 3; }
su=$(mdadm --examine --export "$m" 2>/dev/null | sed -n 's/^MD_UUID=//p' | tr -d ':-' | tr A-F a-f)
if [ -n "$su" ] && [ "$su" != ${step.uuid} ]; then echo "$m carries the superblock of another array ($su); not adding it to $a" >&2; exit 3; fi
mdadm "$a" --remove "$m" >/dev/null 2>&1 || true
mdadm "$a" --re-add "$m" 2>/dev/null || mdadm "$a" --add "$m"`);
}

async function waitForResync(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "waitForResync" }>): Promise<void> {
  const file = "/proc/sys/dev/raid/speed_limit_max";
  const old = (await ctx.session.exec(sh`cat ${file}`)).stdout.trim();
  await ctx.session.exec(sh`echo ${step.speedLimitMax} > ${file}`);
  try {
    for (;;) {
      // /proc/mdstat as well: an array whose resync waits behind another's (resync=DELAYED) may read idle in sysfs.
      const state = await ctx.session.exec(sh`for a in /sys/block/md*/md; do n=$(basename "$(dirname "$a")"); printf '%s %s %s %s\\n' "$n" "$(cat "$a/sync_action")" "$(cat "$a/sync_completed")" "$(cat "$a/sync_speed")"; done
grep -c -E 'resync|recovery' /proc/mdstat || true`);
      const lines = state.stdout.trim().split("\n");
      const pending = Number(lines.pop() ?? "0");
      const busy = lines.filter((l) => /\S+ (resync|recover|check|repair)\b/.test(l));
      if (busy.length === 0 && !(pending > 0)) return;
      ctx.progress(`resync (speed_limit_max ${step.speedLimitMax}): ${busy.map((l) => describeSyncLine(l)).join("; ")}`);
      await new Promise((resolve) => setTimeout(resolve, ctx.pollMs * 3));
    }
  } finally {
    if (/^\d+$/.test(old)) await ctx.session.exec(sh`echo ${old} > ${file}`);
  }
}

/** `md1 resync 1024 / 4096 5000` → `md1 resync 25.0% at 5000 KiB/s`. */
export function describeSyncLine(line: string): string {
  const [name, action, done, , total, speed] = line.trim().split(/\s+/);
  const percent = Number(total) > 0 ? `${((100 * Number(done)) / Number(total)).toFixed(1)}%` : "?";
  return `${name} ${action} ${percent}${speed && /^\d+$/.test(speed) ? ` at ${speed} KiB/s` : ""}`;
}

async function tuneResync(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "tuneResync" }>): Promise<void> {
  // A watcher on the host restores the old limit when the sync ends, so create need not wait hours.
  const restore = sh`while grep -q -E 'resync|recovery' /proc/mdstat; do sleep 10; done; echo "$OLD" > /proc/sys/dev/raid/speed_limit_max`;
  const result = await ctx.session.exec(sh`f=/proc/sys/dev/raid/speed_limit_max; old=$(cat "$f")
grep -q -E 'resync|recovery' /proc/mdstat || exit 0
echo ${step.speedLimitMax} > "$f"
OLD="$old" setsid sh -c ${restore.text} </dev/null >/dev/null 2>&1 &
echo "$old"; grep -E 'resync|recovery' /proc/mdstat`);
  const [old, ...progress] = result.stdout.trim().split("\n");
  ctx.progress(`initial resync: speed_limit_max ${old} → ${step.speedLimitMax} until it ends (then restored); ${progress.map((l) => l.trim()).join("; ")}`);
}

async function reboot(ctx: InstallContext): Promise<void> {
  await ctx.session.exec(sh`sync; setsid sh -c 'sleep 2; reboot' </dev/null >/dev/null 2>&1 &`);
}

async function stopStorage(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "stopStorage" }>): Promise<void> {
  // Deepest first (lsblk lists parents first, so reversed), a few rounds for stacks md → LUKS → LVM.
  await ctx.session.exec(sh`ds=${step.drives.map((d) => d.path)}
for round in 1 2 3 4 5; do
  lsblk -n -r -o PATH,TYPE,MOUNTPOINT $ds 2>/dev/null | tac | while read -r p ty mp; do
    case "$mp" in "") ;; "[SWAP]") swapoff "$p" 2>/dev/null ;; *) umount "$p" 2>/dev/null ;; esac
    case "$ty" in lvm) lvchange -an "$p" 2>/dev/null || dmsetup remove "$p" 2>/dev/null ;; crypt) cryptsetup close "$p" 2>/dev/null ;; raid*) mdadm --stop "$p" >/dev/null 2>&1 ;; esac
  done
done
left=$(lsblk -n -r -o PATH,TYPE $ds 2>/dev/null | awk '$2 != "disk" && $2 != "part"' | sort -u)
[ -z "$left" ] || { echo "still in use on the drives: $left" >&2; exit 3; }`);
}

async function wipeDrives(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "wipeDrives" }>): Promise<void> {
  // Pins are checked again right before the first write (same guard as the install).
  const guard = preInstallGuard({ kind: "runInstallimage", drives: step.drives, configSha256: "", allowWipe: true });
  await ctx.session.exec(sh`${guard} || exit 3
for d in ${step.drives.map((d) => d.path)}; do
  for p in $(lsblk -n -r -o PATH,TYPE "$d" | awk '$2 == "part" {print $1}'); do mdadm --zero-superblock "$p" >/dev/null 2>&1; wipefs -a -q "$p"; done
  wipefs -a -q "$d"
  dd if=/dev/zero of="$d" bs=1M count=2 conv=fsync status=none
  blockdev --rereadpt "$d" 2>/dev/null || partprobe "$d" 2>/dev/null || true
done`);
}

export const steps = {
  stopInstaller,
  writeAutosetup,
  runInstallimage,
  installHostKey,
  replacePassphrase,
  scrubSecrets,
  writeMarker,
  setHostname,
  reassemble,
  readdMember,
  waitForResync,
  tuneResync,
  reboot,
  stopStorage,
  wipeDrives,
};

/** Where the host was when delete looked at the rescue profile's address (no login). */
export type Whereabouts =
  | { readonly kind: "rescue" | "system" | "unreachable" }
  | { readonly kind: "unknown-key"; readonly fingerprint: string };

export function whereaboutsOf(observation: EndpointObservation, props: Pick<InstallImageOutputs, "rescue" | "hostKeyFingerprints">): Whereabouts {
  if (observation.kind === "none" || observation.hostKey === null) return { kind: "unreachable" };
  const fingerprint = observation.hostKey.fingerprint;
  if (props.rescue.hostKeyFingerprints.includes(fingerprint)) return { kind: "rescue" };
  if (props.hostKeyFingerprints.includes(fingerprint)) return { kind: "system" };
  return { kind: "unknown-key", fingerprint };
}

/** How delete gets to a rescue to wipe from: the stored one while it answers, else a fresh boot through Robot. */
export type WipeAccess =
  | { readonly kind: "storedRescue" }
  | { readonly kind: "bootRescue"; readonly desired: RescueDesired; readonly bootedAfter: string | null; readonly why: string };

export function planWipeAccess(
  whereabouts: Whereabouts,
  props: Pick<InstallImageOutputs, "rescue" | "installedAt" | "providerVersion">,
  robotConfigured: boolean,
): WipeAccess {
  if (whereabouts.kind === "rescue") return { kind: "storedRescue" };
  const { host, port } = props.rescue;
  const why =
    whereabouts.kind === "unknown-key" ? `${host}:${port} presents ${whereabouts.fingerprint}, neither the stored rescue's key nor the installed system's`
    : whereabouts.kind === "system" ? `the host runs its installed system (${host}:${port} presents its pinned key)`
    : `nothing answers SSH on ${host}:${port} (powered off, or waiting in its initramfs)`;
  const recipe = props.rescue.robot;
  if (recipe === undefined || recipe === null) {
    throw new InstallImageRefusal(
      `wiping needs the rescue system, but ${why}, and the stored rescue profile carries no Robot recipe to boot one (it did not come from RescueBoot). ` +
        "Pass RescueBoot's profile as `rescue` and run up (this stores it), or boot rescue yourself and store its profile, then destroy again. Nothing was written",
    );
  }
  if (!robotConfigured) {
    throw new InstallImageRefusal(`wiping needs the rescue system, but ${why}, and booting one needs Robot: ${MISSING_ROBOT_ACCESS}. Nothing was written`);
  }
  // A rescue booted after the install is one an earlier, killed delete asked for: adopted, not reset again.
  const bootedAfter = props.installedAt !== "" ? props.installedAt : null;
  return { kind: "bootRescue", desired: desiredFromRecipe(recipe, { host, port }, props.providerVersion), bootedAfter, why };
}

/**
 * Why a create could not start. Create installs only from the rescue it was given: it never resets a
 * server on its own, because a server found running something else may be someone's live system.
 */
export function rescueGoneOnCreate(rescue: ConnectionProfile, cause: unknown): string {
  const why = cause instanceof Error ? cause.message : String(cause);
  return (
    `create installs from the rescue system at ${rescue.host}:${rescue.port}, which did not answer with its pinned key (${why.split("\n").join(" ")}). ` +
    "Bump RescueBoot's generation and run up again: a fresh rescue boots and the install starts there. " +
    "If an earlier run of this create was interrupted after it rebooted into the installed system, the finished install is found on the drives and only completed (no reinstall)"
  );
}

/** Delete with allowWipe: only from rescue, only the configured drives, matched by their pins. */
export function planDelete(observed: InstallObserved, olds: Pick<InstallImageOutputs, "drives" | "allowWipe">): InstallImageStep[] {
  if (olds.allowWipe !== true) throw new InstallImageRefusal("allowWipe is false");
  if (observed.environment !== "rescue") {
    throw new InstallImageRefusal(`wiping needs the rescue system, but the host runs its installed system (${observed.hostname}); run destroy again (it boots rescue through Robot when the host is not in it)`);
  }
  const pins = pinMismatches(olds.drives, observed.drives);
  if (pins.length > 0) throw new InstallImageRefusal(`refusing to wipe: ${pins.join("; ")}. Nothing was written`);
  return [
    { kind: "stopStorage", drives: olds.drives },
    { kind: "wipeDrives", drives: olds.drives },
  ];
}

export const module = { validate, plan, probe, steps } satisfies ResourceModule<InstallImageInputs, InstallImageOutputs, InstallObserved, InstallImageStep, InstallContext>;

// ---------------------------------------------------------------------------------------------
// outputs (pure)

/** The inputs as stored in outputs: everything but the passphrase. */
export function inputsOf(inputs: InstallImageInputs | InstallImageOutputs): Omit<InstallImageInputs, "cryptPassphrase"> {
  const { rescue, system, drives, raid, partitions, logicalVolumes, image, hostname, cryptPbkdf, allowWipe, reboot, resync, reassemble, providerVersion } = inputs;
  return jsonSafe({ rescue, system, drives, raid, partitions, logicalVolumes, image, hostname, cryptPbkdf, allowWipe, reboot, resync, reassemble, providerVersion }, "inputs");
}

export function systemEndpoint(inputs: Pick<InstallImageInputs, "rescue" | "system">): { host: string; port: number } {
  return { host: inputs.system?.host ?? inputs.rescue.host, port: inputs.system?.port ?? inputs.rescue.port };
}

export function layoutOf(observed: InstallObserved, drives: readonly DriveSpec[]): InstalledLayout {
  const release = observed.root?.osRelease ?? {};
  return {
    arrays: observed.arrays.map((a) => ({
      device: a.device,
      level: a.level,
      members: a.members.filter((m) => m.role === "active").map((m) => m.device),
      uuid: formatMdUuid(a.uuid),
      state: a.state,
      degraded: isDegraded(a),
      faultyMembers: a.members.filter((m) => m.role === "faulty").map((m) => m.device),
      sync: { action: a.sync.action, percent: a.sync.percent },
    })),
    partitions: observed.drives
      .filter((d) => drives.some((x) => x.path === d.path))
      .flatMap((d) => d.stacked.filter((n) => n.type === "part").map((n) => ({ device: n.path, sizeBytes: n.sizeBytes, fstype: n.fstype }))),
    volumeGroups: observed.volumeGroups,
    logicalVolumes: observed.logicalVolumes,
    os: release.PRETTY_NAME ? { prettyName: release.PRETTY_NAME, versionId: release.VERSION_ID ?? "" } : null,
  };
}

export interface OutputContext {
  readonly environment: ObservedEnvironment;
  readonly host: string;
  readonly boots: number;
  /** Kept when the observation cannot say (root unreadable, host unreachable). */
  readonly previous?: InstallImageOutputs;
}

export function outputsFrom(inputs: InstallImageInputs | InstallImageOutputs, observed: InstallObserved, at: OutputContext): InstallImageOutputs {
  const endpoint = systemEndpoint(inputs);
  const keys = observed.root?.hostKeys.map((line) => parsePublicKey(line)) ?? [];
  const marker = observed.root?.marker ?? null;
  const arrayUuids = at.previous && at.previous.arrayUuids?.length > 0 ? at.previous.arrayUuids : observed.arrays.map((a) => formatMdUuid(a.uuid));
  return jsonSafe(
    {
      ...inputsOf(inputs),
      installId: marker?.installId ?? at.previous?.installId ?? "",
      installedAt: marker?.installedAt ?? at.previous?.installedAt ?? "",
      environment: at.environment,
      host: at.host,
      hostKeyFingerprints: keys.length > 0 ? keys.map((k) => sha256Fingerprint(k)) : at.previous?.hostKeyFingerprints ?? [],
      knownHosts: keys.length > 0 ? keys.map((k) => knownHostsLine(endpoint.host, endpoint.port, k)) : at.previous?.knownHosts ?? [],
      observedHostname: observed.root?.hostname ?? at.previous?.observedHostname ?? null,
      layout: layoutOf(observed, inputs.drives),
      arrayUuids,
      drift: driftOf(observed, inputs, at.previous ? arrayUuids : []),
      boots: at.boots,
    },
    "outputs",
  );
}

// ---------------------------------------------------------------------------------------------
// provider

/** Rounds of probe → plan → apply: install, finish + reboot, resync on the system, converged. */
const MAX_ROUNDS = 6;

class InstallImageProvider implements pulumi.dynamic.ResourceProvider<InstallImageInputs, InstallImageOutputs> {
  // From the stack config in configure; never in a resource's inputs or state.
  private privateKey: Secret | undefined = undefined;
  // Only delete uses Robot: to boot rescue when the host is not in it.
  private robot: RobotAccess | null = null;
  // Test hook: how often installimage's output is polled.
  private pollMs = 5000;

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    const key = req.config.get(SSH_PRIVATE_KEY_CONFIG);
    if (key !== undefined) this.privateKey = new Secret(key);
    this.robot = robotAccessFromConfig((name) => req.config.get(name));
    const poll = req.config.get("installImagePollMs");
    if (poll !== undefined) this.pollMs = Number(poll);
  }

  async check(olds: InstallImageInputs, news: InstallImageInputs): Promise<pulumi.dynamic.CheckResult<InstallImageInputs>> {
    return checkResult(news, [...validate(news), ...validateReplacement(olds, news)]);
  }

  async diff(_id: string, olds: InstallImageOutputs, news: InstallImageInputs): Promise<pulumi.dynamic.DiffResult> {
    return compareOutputs(olds, news);
  }

  async create(inputs: InstallImageInputs): Promise<pulumi.dynamic.CreateResult<InstallImageOutputs>> {
    const outs = await this.converge(inputs, "create", undefined);
    return { id: outs.installId, outs };
  }

  async update(_id: string, olds: InstallImageOutputs, news: InstallImageInputs): Promise<pulumi.dynamic.UpdateResult<InstallImageOutputs>> {
    const hostWork = olds.hostname !== news.hostname || (olds.observedHostname !== null && olds.observedHostname !== shortHostname(news.hostname)) || (olds.drift ?? []).length > 0;
    // Settings and connection profiles are stored, not applied: they change nothing on the host.
    if (!hostWork) return { outs: jsonSafe({ ...olds, ...inputsOf(news) }, "outputs") };
    return { outs: await this.converge(news, "update", olds) };
  }

  async read(id: string, props?: InstallImageOutputs): Promise<pulumi.dynamic.ReadResult<InstallImageOutputs>> {
    if (!props?.installId) throw new Error(`InstallImage ${id}: read needs the stored outputs; import is not supported`);
    const key = this.requireKey();
    let reached;
    try {
      reached = await openFirstReachable(this.profiles(props), key, { preferred: ["system", "rescue"] });
    } catch (error) {
      if (error instanceof Error && error.name === "HostKeyMismatchError") throw error;
      // Not drift: a host waiting in its initramfs, or off, still holds the install.
      return { id, props: jsonSafe({ ...props, environment: "unreachable" as const }, "outputs"), inputs: inputsOf(props) as InstallImageOutputs };
    }
    const ctx = this.context(reached.session, `${reached.profile.host}:${reached.profile.port}`, null, null, props);
    try {
      const observed = await probe(ctx, props);
      const marker = observed.root?.marker;
      if (marker && marker.installId !== props.installId) return {}; // another install took these drives
      if (!marker && observed.root && observed.environment === "rescue" && observed.arrays.length === 0 && dataOnDrives(observed, props.drives).length === 0) return {}; // wiped
      const outs = outputsFrom(props, observed, { environment: observed.environment, host: ctx.host, boots: props.boots, previous: props });
      return { id, props: outs, inputs: inputsOf(props) as InstallImageOutputs };
    } finally {
      await reached.session.close();
    }
  }

  async delete(_id: string, props: InstallImageOutputs): Promise<void> {
    if (props.allowWipe !== true) {
      throw new InstallImageRefusal(
        `refusing to delete InstallImage ${props.hostname}: deleting wipes ${describeLoss(props)}, and allowWipe is false. ` +
          "Set allowWipe: true and run up first, or drop the resource from the state (pulumi state delete) to keep the data",
      );
    }
    const key = this.requireKey();
    const reached = await this.rescueToWipeFrom(props, key);
    const ctx = this.context(reached.session, `${reached.profile.host}:${reached.profile.port}`, null, null, props);
    try {
      const observed = await runStep(ctx, "probe", () => probe(ctx, props));
      await runPlan(ctx, planDelete(observed, props), steps);
    } finally {
      await reached.session.close();
    }
  }

  /** The stored rescue while it still runs; otherwise a fresh rescue booted through Robot with RescueBoot's steps. */
  private async rescueToWipeFrom(props: InstallImageOutputs, key: Secret): Promise<ReachedHost> {
    const whereabouts = whereaboutsOf(await observeEndpoint(props.rescue.host, props.rescue.port), props);
    const access = planWipeAccess(whereabouts, props, this.robot !== null);
    if (access.kind === "storedRescue") return openFirstReachable([props.rescue], key);
    const ctx = rescueContext(this.robot!, key, access.desired.serverNumber, `InstallImage ${props.hostname}`);
    ctx.report(`wiping needs the rescue system, but ${access.why}: booting rescue through Robot (server ${access.desired.serverNumber}, reset "${access.desired.resetType}")`);
    const booted = await bootRescue(ctx, access.desired, access.bootedAfter);
    return openFirstReachable([booted.profile], key);
  }

  /** Probe, plan, apply until the plan is empty, following the host through its reboot. */
  private async converge(inputs: InstallImageInputs, mode: PlanMode, olds: InstallImageOutputs | undefined): Promise<InstallImageOutputs> {
    const key = this.requireKey();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const crypt = usesCrypt(inputs.partitions);
    const oneTime = crypt ? new Secret(crypto.randomBytes(24).toString("base64url")) : null;
    const passphrase = inputs.cryptPassphrase !== undefined ? new Secret(inputs.cryptPassphrase) : null;
    const profiles = mode === "create" ? [inputs.rescue] : this.profiles({ ...inputs, hostKeyFingerprints: olds?.hostKeyFingerprints ?? [] });
    const reached = await openFirstReachable(profiles, key, { preferred: ["system", "rescue"] }).catch((error: unknown) => {
      throw mode === "create" ? new InstallImageRefusal(rescueGoneOnCreate(inputs.rescue, error)) : error;
    });
    let session = reached.session;
    let ctx = this.context(session, `${reached.profile.host}:${reached.profile.port}`, oneTime, passphrase, inputs);
    let boots = olds?.boots ?? 0;
    let lastObserved: InstallObserved | null = null;
    try {
      for (let round = 1; round <= MAX_ROUNDS; round++) {
        const probed = await runStep(ctx, "probe", () => probe(ctx, inputs));
        const observed = { ...probed, recordedArrays: olds?.arrayUuids ?? [] };
        const todo = plan(observed, inputs, mode);
        if (todo.length === 0) return outputsFrom(inputs, observed, { environment: observed.environment, host: ctx.host, boots, previous: olds });
        lastObserved = observed;
        await runPlan(ctx, todo, steps);
        if (!todo.some((s) => s.kind === "reboot")) continue;
        boots++;
        await session.close();
        if (crypt) {
          // No SSH until the passphrase is typed (dropbear comes with a later resource): the
          // outputs are what rescue saw just before the reboot.
          ctx.progress("rebooted; the installed system now waits in its initramfs for the LUKS passphrase");
          return outputsFrom(inputs, lastObserved, { environment: "initramfs-locked", host: ctx.host, boots, previous: olds });
        }
        const system = this.systemProfile(inputs, lastObserved);
        session = await runStep(ctx, "waitForSystem", () => this.waitForSystem(ctx, system, inputs.rescue.hostKeyFingerprints));
        ctx = { ...ctx, session, host: `${system.host}:${system.port}` };
      }
      throw new Error(`InstallImage ${inputs.hostname}: not converged after ${MAX_ROUNDS} rounds of probe and apply; run up again, and report it if it persists`);
    } finally {
      await session.close();
    }
  }

  private systemProfile(inputs: InstallImageInputs, observed: InstallObserved): ConnectionProfile {
    const endpoint = systemEndpoint(inputs);
    const fingerprints = (observed.root?.hostKeys ?? []).map((line) => sha256Fingerprint(parsePublicKey(line)));
    if (fingerprints.length === 0) throw new Error("the installed root has no SSH host key to pin; not waiting for an sshd that cannot be verified");
    return { environment: "system", host: endpoint.host, port: endpoint.port, user: "root", hostKeyFingerprints: fingerprints };
  }

  /** Waits for the installed system's sshd with its pinned key; the rescue's key means "not rebooted yet". */
  private async waitForSystem(ctx: InstallContext, profile: ConnectionProfile, rescueKeys: readonly string[]): Promise<SshSession> {
    const started = Date.now();
    let lastReport = 0;
    for (;;) {
      let why: string;
      try {
        return await connect(
          { host: profile.host, port: profile.port, user: profile.user, privateKey: this.requireKey(), hostKey: { expect: profile.hostKeyFingerprints }, label: `system ${profile.host}:${profile.port}` },
          { maxAttempts: 1, budgetMs: 20_000, attemptTimeoutMs: 20_000 },
        );
      } catch (error) {
        if (error instanceof Error && error.name === "HostKeyMismatchError") {
          const observed = (error as Error & { observed?: { fingerprint?: string } }).observed?.fingerprint ?? "";
          if (!rescueKeys.includes(observed)) throw error; // neither rescue nor our key: not our host
          why = "rescue still answering";
        } else why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      }
      const elapsed = Date.now() - started;
      if (elapsed > SYSTEM_WAIT_MS) throw new Error(`the installed system did not answer SSH with its pinned key within ${SYSTEM_WAIT_MS / 60_000} min (last: ${why}); look at the server's console`);
      if (elapsed - lastReport >= 30_000) {
        ctx.progress(`waiting for the installed system on ${profile.host}:${profile.port} (${Math.round(elapsed / 1000)} s): ${why}`);
        lastReport = elapsed;
      }
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }

  private profiles(outs: Pick<InstallImageOutputs, "rescue" | "system" | "hostKeyFingerprints">): ConnectionProfile[] {
    const endpoint = systemEndpoint(outs);
    const system: ConnectionProfile[] = outs.hostKeyFingerprints.length > 0 ? [{ environment: "system", host: endpoint.host, port: endpoint.port, user: "root", hostKeyFingerprints: outs.hostKeyFingerprints }] : [];
    return [...system, outs.rescue];
  }

  private context(session: SshSession, host: string, oneTime: Secret | null, passphrase: Secret | null, inputs: InstallImageInputs | InstallImageOutputs): InstallContext {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const pair = generateEd25519KeyPair(`root@${shortHostname(inputs.hostname)}`);
    const hostKey = { private: new Secret(pair.private), public: pair.public };
    const secrets = [this.requireKey(), hostKey.private, ...(oneTime ? [oneTime] : []), ...(passphrase ? [passphrase] : [])];
    const log = pulumi.log;
    const label = `[InstallImage ${host}]`;
    return {
      resource: "InstallImage",
      host,
      secrets,
      session,
      hostKey,
      oneTimePassphrase: oneTime,
      passphrase,
      pbkdf: inputs.cryptPbkdf ?? DEFAULT_CRYPT_PBKDF,
      installId: crypto.randomUUID(),
      progress: (line: string) => void log.info(redact(`${label} ${line}`, secrets)),
      pollMs: this.pollMs,
    };
  }

  private requireKey(): Secret {
    if (!this.privateKey) throw new Error('InstallImage: no SSH private key; set it with `pulumi config set --secret hetzner-fde:sshPrivateKey "$(cat key)"`');
    return this.privateKey;
  }
}

// One instance for every InstallImage, so the closure serializer's per-object cache hits.
const provider = new InstallImageProvider();

// ---------------------------------------------------------------------------------------------
// resource

export class InstallImage extends pulumi.dynamic.Resource {
  declare readonly installId: pulumi.Output<string>;
  declare readonly installedAt: pulumi.Output<string>;
  declare readonly environment: pulumi.Output<ObservedEnvironment>;
  declare readonly host: pulumi.Output<string>;
  declare readonly hostname: pulumi.Output<string>;
  declare readonly image: pulumi.Output<string>;
  declare readonly hostKeyFingerprints: pulumi.Output<string[]>;
  declare readonly knownHosts: pulumi.Output<string[]>;
  declare readonly observedHostname: pulumi.Output<string | null>;
  declare readonly layout: pulumi.Output<InstalledLayout>;
  declare readonly arrayUuids: pulumi.Output<string[]>;
  declare readonly drift: pulumi.Output<DriftItem[]>;
  declare readonly boots: pulumi.Output<number>;

  constructor(name: string, args: InstallImageArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = { installId: undefined, installedAt: undefined, environment: undefined, host: undefined, hostKeyFingerprints: undefined, knownHosts: undefined, observedHostname: undefined, layout: undefined, arrayUuids: undefined, drift: undefined, boots: undefined };
    super(provider, name, { ...withSecretInputs(args, ["cryptPassphrase"]), providerVersion: PROVIDER_VERSION, ...outputs }, opts, "hetzner-fde", "InstallImage");
  }
}
