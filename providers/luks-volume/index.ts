// LuksVolume: a LUKS2 container on a block device (usually /dev/md1, or a partition of the mirror
// disk), opened under a mapper name and recorded in /etc/crypttab of a target root ("/" on a
// running system, "/mnt" under rescue). It holds the data, so it never destroys any by surprise,
// never lets the passphrase reach argv, logs, errors or plaintext state, converges when re-run
// after a crash, and reports drift (keyslots added by hand, crypttab lines removed) on refresh.
//
// Module order, as in every resource: types, validate, plan/diff, probe, steps, provider, resource.

import * as pulumi from "@pulumi/pulumi";
import {
  addKeyCommand,
  closeCommand,
  convertKeyCommand,
  DmMapping,
  eraseCommand,
  formatCommand,
  HFDE_SUBSYSTEM,
  headerBackupCommand,
  KeyslotFacts,
  killSlotCommand,
  LuksMetadata,
  openCommand,
  parseBlkidExport,
  parseCryptStatus,
  parseDmsetupInfo,
  parseLuksMetadata,
  parseWipefsTypes,
  refreshCommand,
  setLabelCommand,
  twoKeys,
  unlockedSlot,
} from "../storage/cryptsetup";
import { keepErrorMessage } from "../plumbing/errors";
import { ConnectionProfile, Environment, openFirstReachable, SSH_PRIVATE_KEY_CONFIG, validateProfiles } from "../kernel/host-access";
import {
  CheckFailure,
  checkResult,
  isUnknown,
  jsonSafe,
  PROVIDER_VERSION,
  providerVersionChanged,
  ResourceModule,
  runPlan,
  runStep,
  StepContext,
  withSecretInputs,
} from "../kernel/resource";
import { checkCipher, checkPbkdf, checkSerial, checkWwn, PbkdfSettings, PBKDF_TYPES, passphraseWeaknesses, RuleIssue } from "../rules";
import { redact, Secret } from "../plumbing/secret";
import { sh, ShellCommand } from "../plumbing/shell";
import { probe as runProbe, SshSession } from "../plumbing/ssh";

// ---------------------------------------------------------------------------------------------
// Types

export type WipeMethod = "none" | "random-fast" | "urandom";
export const WIPE_METHODS: readonly WipeMethod[] = ["none", "random-fast", "urandom"];

/** A disk beneath the device (an md member, or the disk of a partition), pinned by serial or WWN. */
export interface DiskPin {
  readonly serial?: string;
  readonly wwn?: string;
}

export interface CrypttabSettings {
  /** Root whose etc/crypttab gets the line: "/" on a running system, e.g. "/mnt" under rescue. Default "/". */
  readonly root?: string;
  /** Options after the key-file field. Default ["luks"]. `discard` comes from the `discard` input. */
  readonly options?: readonly string[];
}

export interface LuksVolumeArgs {
  /** How to reach the host in each environment (rescue, initramfs, system); whichever answers is used. */
  readonly connection: pulumi.Input<pulumi.Input<ConnectionProfile>[]>;
  /** The block device, e.g. /dev/md1 or /dev/nvme1n1p2. Changing it REPLACES the volume (data destroyed; needs allowWipe). */
  readonly device: pulumi.Input<string>;
  /** Disks that must lie beneath `device` (md members, or a partition's disk); a mismatch stops before any write. */
  readonly disks?: pulumi.Input<pulumi.Input<DiskPin>[]>;
  /** dm name the volume is opened as (/dev/mapper/<name>). Changing it renames the open mapping in place. */
  readonly mapperName: pulumi.Input<string>;
  /** The passphrase (secret). Changing it rotates the key in place: add, prove, kill the old slot. */
  readonly passphrase: pulumi.Input<string>;
  /** Further passphrases, one keyslot each (secret). Slots opened by none of the passphrases are killed. */
  readonly extraPassphrases?: pulumi.Input<pulumi.Input<string>[]>;
  /** Default "aes-xts-plain64". Changing it REPLACES the volume. */
  readonly cipher?: pulumi.Input<string>;
  /** Bits; default 512 (AES-256 in XTS). Changing it REPLACES the volume. */
  readonly keySize?: pulumi.Input<number>;
  /** 512 or 4096 (bytes); default 512. Changing it REPLACES the volume. */
  readonly sectorSize?: pulumi.Input<number>;
  /** Key derivation; default argon2id benchmarked by cryptsetup (about 2 s, up to 1 GiB). Changed in place. */
  readonly pbkdf?: pulumi.Input<PbkdfSettings>;
  /** LUKS2 label; updated in place. Unset: left as found. */
  readonly label?: pulumi.Input<string>;
  /** Pass TRIM through the mapping (crypttab `discard`, live refresh). Default false: TRIM reveals which blocks are free. */
  readonly discard?: pulumi.Input<boolean>;
  readonly crypttab?: pulumi.Input<CrypttabSettings>;
  /** Randomise the device before formatting. Default "none". "random-fast" runs near disk speed. */
  readonly wipe?: pulumi.Input<WipeMethod>;
  /** Take over an existing container after proving the passphrase opens it. Default false. */
  readonly adopt?: pulumi.Input<boolean>;
  /** Allow destroying data: formatting over signatures, replacements, and luksErase on delete. Default false. */
  readonly allowWipe?: pulumi.Input<boolean>;
  /** Where delete writes luksHeaderBackup on the host before luksErase. Default /root/luks-header-<mapperName>.img
   *  (in RAM under rescue: copy it off before rebooting). */
  readonly headerBackupPath?: pulumi.Input<string>;
}

/** Inputs as the provider receives them (resolved, plain). */
export interface LuksVolumeInputs {
  readonly connection: ConnectionProfile[];
  readonly device: string;
  readonly disks?: DiskPin[];
  readonly mapperName: string;
  readonly passphrase: string;
  readonly extraPassphrases?: string[];
  readonly cipher?: string;
  readonly keySize?: number;
  readonly sectorSize?: number;
  readonly pbkdf?: PbkdfSettings;
  readonly label?: string;
  readonly discard?: boolean;
  readonly crypttab?: CrypttabSettings;
  readonly wipe?: WipeMethod;
  readonly adopt?: boolean;
  readonly allowWipe?: boolean;
  readonly headerBackupPath?: string;
  readonly providerVersion: string;
}

/** Inputs with every default filled in: what plan and outputs work with. */
export interface LuksDesired {
  readonly connection: ConnectionProfile[];
  readonly device: string;
  readonly disks: DiskPin[];
  readonly mapperName: string;
  readonly passphrase: string;
  readonly extraPassphrases: string[];
  readonly cipher: string;
  readonly keySize: number;
  readonly sectorSize: number;
  readonly pbkdf: PbkdfSettings;
  readonly label: string | null;
  readonly discard: boolean;
  readonly crypttab: { readonly root: string; readonly options: string[] };
  readonly wipe: WipeMethod;
  readonly adopt: boolean;
  readonly allowWipe: boolean;
  readonly headerBackupPath: string;
  readonly providerVersion: string;
}

/** What the host showed (never key material: keyslots are numbers and KDF parameters only). */
export interface LuksFacts {
  readonly cipher: string;
  readonly keySize: number;
  readonly sectorSize: number;
  readonly label: string | null;
  readonly subsystem: string | null;
  readonly keyslots: KeyslotFacts[];
  /** Name the container is open as, or null when closed. */
  readonly openAs: string | null;
  /** Whether the live mapping passes discards down (null when closed). */
  readonly discardsActive: boolean | null;
  /** The crypttab line for this volume (matched by name or UUID), or null. */
  readonly crypttabLine: string | null;
  readonly disks: DiskFact[];
}

export interface LuksVolumeOutputs extends LuksDesired {
  readonly uuid: string;
  readonly observed: LuksFacts;
  /** The environment the facts were read in. */
  readonly environment: Environment;
}

export interface DiskFact {
  readonly path: string;
  readonly serial: string | null;
  readonly wwn: string | null;
}

/** Which passphrase a step uses: the stack's, one of the extras, or one being retired by an update. */
export type KeyRef = { readonly role: "passphrase" } | { readonly role: "extra"; readonly index: number } | { readonly role: "retired"; readonly index: number };

/** Slots each tested passphrase opens (null: opens none). */
export interface KeyTests {
  readonly passphrase: number | null;
  readonly extras: (number | null)[];
  readonly retired: (number | null)[];
}

export interface RandomiseJob {
  readonly running: boolean;
  readonly device: string | null;
  readonly exitCode: number | null;
}

export interface LuksObserved {
  readonly exists: boolean;
  readonly sizeBytes: number | null;
  readonly disks: DiskFact[];
  /** wipefs signature types on the device ("crypto_LUKS", "ext4", "LVM2_member", "gpt", …). */
  readonly signatures: string[];
  readonly luks: { readonly uuid: string; readonly label: string | null; readonly subsystem: string | null; readonly metadata: LuksMetadata } | null;
  readonly mappings: DmMapping[];
  /** `cryptsetup status` of the desired mapper name. */
  readonly status: { readonly active: boolean; readonly discards: boolean };
  /** crypttab lines of the target root; null when <root>/etc does not exist. */
  readonly crypttab: string[] | null;
  /** null when passphrases were not tested (refresh never runs a KDF). */
  readonly keys: KeyTests | null;
  readonly randomise: RandomiseJob;
}

/** Plan input: the desired state plus what kind of run this is. */
export interface LuksPlanInput extends LuksDesired {
  /** create may format; update never does (that is a replacement). */
  readonly phase: "create" | "update";
  /** How many retired passphrases the probe tested (old ones an update rotates away from). */
  readonly retiredCount: number;
}

export type LuksStep =
  | { readonly kind: "randomise"; readonly device: string; readonly method: "random-fast" | "urandom"; readonly sizeBytes: number; readonly mayHoldData: boolean; readonly job: string }
  | { readonly kind: "wipeSignatures"; readonly device: string; readonly signatures: string[] }
  | { readonly kind: "format"; readonly device: string; readonly cipher: string; readonly keySize: number; readonly sectorSize: number; readonly pbkdf: PbkdfSettings; readonly label: string | null }
  | { readonly kind: "addKey"; readonly device: string; readonly key: KeyRef; readonly authorizedBy: KeyRef; readonly pbkdf: PbkdfSettings }
  | { readonly kind: "convertKey"; readonly device: string; readonly key: KeyRef; readonly pbkdf: PbkdfSettings }
  | { readonly kind: "killSlot"; readonly device: string; readonly slot: number; readonly keep: KeyRef; readonly reason: "retired" | "unknown" }
  | { readonly kind: "setLabel"; readonly device: string; readonly label: string }
  | { readonly kind: "open"; readonly device: string; readonly name: string; readonly discard: boolean }
  | { readonly kind: "rename"; readonly from: string; readonly to: string }
  | { readonly kind: "refreshDiscard"; readonly name: string; readonly discard: boolean }
  | { readonly kind: "writeCrypttab"; readonly root: string; readonly device: string; readonly name: string; readonly options: string[] }
  // Delete only:
  | { readonly kind: "close"; readonly name: string }
  | { readonly kind: "removeCrypttab"; readonly root: string; readonly name: string; readonly uuid: string }
  | { readonly kind: "headerBackup"; readonly device: string; readonly uuid: string; readonly file: string }
  | { readonly kind: "erase"; readonly device: string; readonly uuid: string };

export interface LuksContext extends StepContext {
  readonly session: SshSession;
  readonly keys: { readonly passphrase: Secret; readonly extras: Secret[]; readonly retired: Secret[] };
  /** Whether probe tests the passphrases (a KDF run each): create/update yes, refresh/delete no. */
  readonly testKeys: boolean;
  /** Where progress lines of long steps (randomise) go. */
  readonly report: (message: string) => void;
  readonly pollMs: number;
}

/** The plan cannot proceed without destroying or misattributing data; the message says what to set. */
export class LuksRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LuksRefusedError";
    keepErrorMessage(this, message);
  }
}

export const DEFAULT_CIPHER = "aes-xts-plain64";
export const DEFAULT_KEY_SIZE = 512;
export const DEFAULT_SECTOR_SIZE = 512;
export const SECTOR_SIZES = [512, 1024, 2048, 4096];
/** Where a randomisation job keeps its state on the host: /run is tmpfs, so a reboot forgets it. */
export const JOB_DIR_PREFIX = "/run/hetzner-fde/randomise-";

// ---------------------------------------------------------------------------------------------
// validate (pure; check runs it before any connection)

export function resolveInputs(inputs: LuksVolumeInputs): LuksDesired {
  return {
    connection: inputs.connection,
    device: inputs.device,
    disks: inputs.disks ?? [],
    mapperName: inputs.mapperName,
    passphrase: inputs.passphrase,
    extraPassphrases: inputs.extraPassphrases ?? [],
    cipher: inputs.cipher ?? DEFAULT_CIPHER,
    keySize: inputs.keySize ?? DEFAULT_KEY_SIZE,
    sectorSize: inputs.sectorSize ?? DEFAULT_SECTOR_SIZE,
    pbkdf: inputs.pbkdf ?? { type: "argon2id" },
    label: inputs.label ?? null,
    discard: inputs.discard ?? false,
    crypttab: { root: inputs.crypttab?.root ?? "/", options: [...(inputs.crypttab?.options ?? ["luks"])] },
    wipe: inputs.wipe ?? "none",
    adopt: inputs.adopt ?? false,
    allowWipe: inputs.allowWipe ?? false,
    headerBackupPath: inputs.headerBackupPath ?? `/root/luks-header-${inputs.mapperName}.img`,
    providerVersion: inputs.providerVersion,
  };
}

export function validate(inputs: LuksVolumeInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (property: string, reason: string | undefined): void => {
    if (reason) failures.push({ property, reason });
  };
  const known = (value: unknown): boolean => value !== undefined && !isUnknown(value);
  const fromRules = (prefix: string, issues: RuleIssue[]): void => {
    for (const issue of issues) fail([prefix, ...issue.path].filter((p) => p !== "").join("."), issue.message);
  };

  if (!isUnknown(inputs.connection)) failures.push(...validateProfiles(inputs.connection, "connection"));
  if (!isUnknown(inputs.device)) fail("device", checkDevicePath(inputs.device));
  if (known(inputs.disks)) {
    if (!Array.isArray(inputs.disks)) fail("disks", `expected a list of {serial} or {wwn} pins, found ${JSON.stringify(inputs.disks)}`);
    else inputs.disks.forEach((pin, i) => fail(`disks[${i}]`, checkDiskPin(pin)));
  }
  if (!isUnknown(inputs.mapperName)) fail("mapperName", checkMapperName(inputs.mapperName));
  if (!isUnknown(inputs.passphrase)) fail("passphrase", checkPassphrase(inputs.passphrase));
  if (known(inputs.extraPassphrases)) {
    if (!Array.isArray(inputs.extraPassphrases)) fail("extraPassphrases", "expected a list of passphrases");
    else {
      inputs.extraPassphrases.forEach((extra, i) => {
        if (isUnknown(extra)) return;
        fail(`extraPassphrases[${i}]`, checkPassphrase(extra));
        if (extra === inputs.passphrase) fail(`extraPassphrases[${i}]`, "is the same as passphrase; each keyslot needs its own passphrase, remove the duplicate");
        else if (inputs.extraPassphrases!.indexOf(extra) !== i) fail(`extraPassphrases[${i}]`, `is the same as extraPassphrases[${inputs.extraPassphrases!.indexOf(extra)}]; remove the duplicate`);
      });
    }
  }
  const cipher = inputs.cipher ?? DEFAULT_CIPHER;
  const keySize = inputs.keySize ?? DEFAULT_KEY_SIZE;
  if (!isUnknown(cipher) && !isUnknown(keySize)) fromRules("", checkCipher(cipher, keySize));
  if (known(inputs.sectorSize) && !SECTOR_SIZES.includes(inputs.sectorSize!)) {
    fail("sectorSize", `expected one of ${SECTOR_SIZES.join(", ")} bytes, found ${JSON.stringify(inputs.sectorSize)}`);
  }
  if (known(inputs.pbkdf)) failures.push(...validatePbkdf(inputs.pbkdf!));
  if (known(inputs.label)) fail("label", checkLabel(inputs.label!));
  if (known(inputs.discard) && typeof inputs.discard !== "boolean") fail("discard", `expected true or false, found ${JSON.stringify(inputs.discard)}`);
  if (known(inputs.crypttab)) failures.push(...validateCrypttab(inputs.crypttab!));
  if (known(inputs.wipe) && !WIPE_METHODS.includes(inputs.wipe!)) {
    fail("wipe", `expected one of ${WIPE_METHODS.join(", ")}, found ${JSON.stringify(inputs.wipe)}`);
  }
  if (inputs.adopt === true && known(inputs.wipe) && inputs.wipe !== "none") {
    fail("wipe", `adopt takes over an existing container as is, so it cannot randomise the device first; found wipe: "${inputs.wipe}" with adopt: true. Remove one of them`);
  }
  for (const flag of ["adopt", "allowWipe"] as const) {
    if (known(inputs[flag]) && typeof inputs[flag] !== "boolean") fail(flag, `expected true or false, found ${JSON.stringify(inputs[flag])}`);
  }
  if (known(inputs.headerBackupPath)) fail("headerBackupPath", checkHostFilePath(inputs.headerBackupPath!));
  return failures;
}

/**
 * Changes that replace the container, and so destroy everything inside it, refused without
 * allowWipe. `olds` are the previous INPUTS (what check receives), empty on create.
 */
export function validateReplacement(olds: Partial<LuksVolumeInputs>, news: LuksVolumeInputs): CheckFailure[] {
  if (olds.device === undefined || news.allowWipe === true) return [];
  const before = resolveInputs(olds as LuksVolumeInputs);
  const after = resolveInputs(news);
  const changed = REPLACING_FIELDS.filter((field) => !isUnknown(after[field]) && before[field] !== after[field]);
  return changed.map((field) => ({
    property: field,
    reason:
      `changing ${field} from ${JSON.stringify(before[field])} to ${JSON.stringify(after[field])} replaces the LUKS container on ${before.device}: ` +
      `its header, keyslots and everything inside /dev/mapper/${before.mapperName} (LVM, filesystems, files) would be destroyed. ` +
      `Set allowWipe: true to accept that, or keep ${field} at ${JSON.stringify(before[field])}`,
  }));
}

const REPLACING_FIELDS = ["device", "cipher", "keySize", "sectorSize"] as const;

function checkDevicePath(device: unknown): string | undefined {
  if (typeof device !== "string") return `expected a block device path like /dev/md1, found ${JSON.stringify(device)}`;
  if (!device.startsWith("/dev/")) return `expected a block device path under /dev (e.g. /dev/md1, /dev/nvme1n1p2), found "${device}"`;
  if (!/^\/dev\/[A-Za-z0-9._:+@/-]+$/.test(device) || device.includes("/../") || device.endsWith("/")) {
    return `expected a device path of letters, digits and ._:+@-/ only, found "${device}"`;
  }
  if (device.startsWith("/dev/mapper/")) return `expected the device that holds the LUKS header, found the mapping "${device}"; name the device beneath it`;
  return undefined;
}

function checkDiskPin(pin: DiskPin): string | undefined {
  if (pin === null || typeof pin !== "object" || (pin.serial === undefined && pin.wwn === undefined)) {
    return `expected {serial} and/or {wwn} of a disk beneath the device, found ${JSON.stringify(pin)}`;
  }
  if (pin.serial !== undefined) {
    const reason = checkSerial(pin.serial);
    if (reason) return `serial: ${reason}`;
  }
  // NVMe namespaces without an EUI/NGUID report "nvme.<vid>-<serial hex>-<model hex>-<nsid>" (QEMU does).
  if (pin.wwn !== undefined && checkWwn(pin.wwn) !== undefined && !/^nvme\.[0-9a-f]{4}-[0-9a-f-]+$/i.test(pin.wwn)) {
    return `wwn: ${checkWwn(pin.wwn)}`;
  }
  return undefined;
}

function checkMapperName(name: unknown): string | undefined {
  if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,126}$/.test(name)) {
    return `expected 1-127 of A-Z a-z 0-9 _ . + - starting with a letter or digit (it becomes /dev/mapper/<name> and a crypttab field), found ${JSON.stringify(name)}`;
  }
  if (name === "control") return `"control" is /dev/mapper/control, the device-mapper's own node; choose another name such as "cryptroot"`;
  return undefined;
}

function checkPassphrase(passphrase: unknown): string | undefined {
  if (typeof passphrase !== "string") return "expected a passphrase string; set it with `pulumi config set --secret`";
  const reasons = passphraseWeaknesses(passphrase);
  // The reasons describe the passphrase's shape, never its content.
  return reasons.length === 0 ? undefined : `is too weak: it ${reasons.join("; it ")}. Choose a passphrase with at least 16 characters from several classes, or 24+ characters of random words`;
}

function validatePbkdf(pbkdf: PbkdfSettings): CheckFailure[] {
  if (pbkdf === null || typeof pbkdf !== "object") return [{ property: "pbkdf", reason: `expected {type, memoryKiB?, iterations?, parallelism?, iterTimeMs?}, found ${JSON.stringify(pbkdf)}` }];
  if (!PBKDF_TYPES.includes(pbkdf.type)) return [{ property: "pbkdf.type", reason: `expected one of ${PBKDF_TYPES.join(", ")}, found ${JSON.stringify(pbkdf.type)}` }];
  const failures: CheckFailure[] = [];
  for (const field of ["memoryKiB", "iterations", "parallelism", "iterTimeMs"] as const) {
    const value = pbkdf[field];
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) failures.push({ property: `pbkdf.${field}`, reason: `expected a positive whole number, found ${JSON.stringify(value)}` });
  }
  if (failures.length > 0) return failures;
  return checkPbkdf(pbkdf).map((issue) => ({ property: ["pbkdf", ...issue.path].join("."), reason: issue.message }));
}

function checkLabel(label: string): string | undefined {
  if (typeof label !== "string") return `expected text, found ${JSON.stringify(label)}`;
  // LUKS2 keeps the label in a 48-byte field with a terminating NUL.
  if (Buffer.byteLength(label) > 47) return `expected at most 47 bytes (the LUKS2 header field), found ${Buffer.byteLength(label)}`;
  if (hasControlCharacter(label)) return "expected printable characters only, found a control character";
  return undefined;
}

function hasControlCharacter(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function validateCrypttab(crypttab: CrypttabSettings): CheckFailure[] {
  const failures: CheckFailure[] = [];
  if (crypttab.root !== undefined && !isUnknown(crypttab.root)) {
    const reason = checkHostDirPath(crypttab.root);
    if (reason) failures.push({ property: "crypttab.root", reason });
  }
  if (crypttab.options !== undefined && !isUnknown(crypttab.options)) {
    if (!Array.isArray(crypttab.options)) return [...failures, { property: "crypttab.options", reason: `expected a list like ["luks", "initramfs"], found ${JSON.stringify(crypttab.options)}` }];
    crypttab.options.forEach((option, i) => {
      const at = `crypttab.options[${i}]`;
      if (typeof option !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9_.:=/+-]*$/.test(option)) {
        failures.push({ property: at, reason: `expected one crypttab option word (no spaces or commas), found ${JSON.stringify(option)}` });
      } else if (option === "discard") {
        failures.push({ property: at, reason: 'set discard: true instead of a "discard" option, so the live mapping follows it too' });
      }
    });
  }
  return failures;
}

function checkHostDirPath(path: unknown): string | undefined {
  if (typeof path !== "string" || !path.startsWith("/")) return `expected an absolute directory like "/" or "/mnt", found ${JSON.stringify(path)}`;
  if (path.split("/").includes("..") || /\s/.test(path) || hasControlCharacter(path)) return `expected a plain absolute path without "..", spaces or control characters, found ${JSON.stringify(path)}`;
  return undefined;
}

function checkHostFilePath(path: string): string | undefined {
  const reason = checkHostDirPath(path);
  if (reason) return reason;
  if (path.endsWith("/")) return `expected a file path, found the directory "${path}"`;
  if (/^\/(dev|proc|sys)\//.test(path)) return `expected a regular file path, found "${path}" under /dev, /proc or /sys`;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// plan / diff (pure)

/** The crypttab line this volume should have. */
export function crypttabLine(name: string, uuid: string, options: readonly string[], discard: boolean): string {
  const all = [...options, ...(discard ? ["discard"] : [])];
  return `${name} UUID=${uuid} none ${all.length > 0 ? all.join(",") : "luks"}`;
}

/** The line of `lines` that belongs to this volume: same mapper name or same UUID. */
export function findCrypttabLine(lines: readonly string[], name: string, uuid: string | null): string | null {
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === "" || fields[0].startsWith("#")) continue;
    if (fields[0] === name || (uuid !== null && fields[1] === `UUID=${uuid}`)) return fields.join(" ");
  }
  return null;
}

const normaliseLine = (line: string | null): string | null => (line === null ? null : line.trim().split(/\s+/).join(" "));

export function plan(observed: LuksObserved, desired: LuksPlanInput): LuksStep[] {
  if (!observed.exists) {
    throw new LuksRefusedError(`${desired.device} does not exist on the host; assemble the array (mdadm --assemble --scan) or create the partition, or correct device`);
  }
  refuseUnpinnedDisks(observed, desired);
  if (observed.crypttab === null) {
    throw new LuksRefusedError(`crypttab root ${desired.crypttab.root} has no etc/ directory; mount the target root there first, or set crypttab.root to "/"`);
  }

  const device = desired.device;
  const steps: LuksStep[] = [];
  const reformat = needsFormat(observed, desired);
  if (reformat) {
    steps.push(...formatSteps(observed, desired));
  } else {
    steps.push(...keySteps(observed, desired));
    const luks = observed.luks!;
    if (desired.label !== null && luks.label !== desired.label) steps.push({ kind: "setLabel", device, label: desired.label });
  }

  const uuid = reformat ? null : observed.luks!.uuid;
  const openAs = uuid === null ? undefined : observed.mappings.find((m) => m.luksUuid === uuid);
  const byName = observed.mappings.find((m) => m.name === desired.mapperName);
  if (byName && (uuid === null || byName.luksUuid !== uuid)) {
    throw new LuksRefusedError(
      `mapper name "${desired.mapperName}" is already in use by another device-mapper device${byName.luksUuid ? ` (LUKS ${byName.luksUuid})` : ""}; close it (cryptsetup close ${desired.mapperName}) or choose another mapperName`,
    );
  }
  if (!openAs) {
    steps.push({ kind: "open", device, name: desired.mapperName, discard: desired.discard });
  } else {
    if (openAs.name !== desired.mapperName) steps.push({ kind: "rename", from: openAs.name, to: desired.mapperName });
    const discardsActive = openAs.name === desired.mapperName ? observed.status.discards : null;
    if (discardsActive !== desired.discard) steps.push({ kind: "refreshDiscard", name: desired.mapperName, discard: desired.discard });
  }

  const wanted = uuid === null ? null : crypttabLine(desired.mapperName, uuid, desired.crypttab.options, desired.discard);
  const present = normaliseLine(findCrypttabLine(observed.crypttab, desired.mapperName, uuid));
  if (wanted === null || present !== wanted) {
    steps.push({ kind: "writeCrypttab", root: desired.crypttab.root, device, name: desired.mapperName, options: withDiscard(desired) });
  }
  return steps;
}

function withDiscard(desired: LuksDesired): string[] {
  return [...desired.crypttab.options, ...(desired.discard ? ["discard"] : [])];
}

function refuseUnpinnedDisks(observed: LuksObserved, desired: LuksDesired): void {
  desired.disks.forEach((pin, i) => {
    const match = observed.disks.some(
      (disk) => (pin.serial === undefined || disk.serial === pin.serial) && (pin.wwn === undefined || (disk.wwn ?? "").toLowerCase() === pin.wwn.toLowerCase()),
    );
    if (!match) {
      const found = observed.disks.map((d) => `${d.path} (serial ${d.serial ?? "none"}, wwn ${d.wwn ?? "none"})`).join(", ") || "no disks";
      throw new LuksRefusedError(
        `disks[${i}] ${JSON.stringify(pin)} is not beneath ${desired.device}, which sits on ${found}; the device may have been renumbered or a disk swapped. Nothing was written. Correct device or disks`,
      );
    }
  });
}

/** Whether the device must be (re)formatted, refusing when that would destroy data not ours to destroy. */
function needsFormat(observed: LuksObserved, desired: LuksPlanInput): boolean {
  const luks = observed.luks;
  const device = desired.device;
  const others = observed.signatures.filter((s) => s !== "crypto_LUKS");
  if (luks === null) {
    if (desired.phase === "update") {
      throw new LuksRefusedError(`the LUKS header on ${device} is gone (signatures now: ${observed.signatures.join(", ") || "none"}); refresh to drop the volume from the stack, then run up to create it again`);
    }
    if (desired.adopt) throw new LuksRefusedError(`adopt is set but ${device} holds no LUKS header (signatures: ${others.join(", ") || "none"}); unset adopt to format it`);
    if (others.length > 0 && !desired.allowWipe && !randomiseUnderway(observed, desired)) {
      throw new LuksRefusedError(
        `${device} holds ${others.join(", ")} signatures, so it may hold data; nothing was written. Set allowWipe: true to format over it, or point device at a blank device`,
      );
    }
    return true;
  }
  const keys = observed.keys;
  const opens = keys !== null && [keys.passphrase, ...keys.extras, ...keys.retired].some((slot) => slot !== null);
  const ours = luks.subsystem === HFDE_SUBSYSTEM;
  const mismatch = layoutMismatch(luks.metadata, desired);
  if (desired.phase === "update") {
    if (!opens) throw new LuksRefusedError(`none of the configured passphrases (nor the one being replaced) opens the container on ${device} (UUID ${luks.uuid}); set passphrase to one that does`);
    return false;
  }
  if (opens && (ours || desired.adopt) && mismatch.length === 0) return false;
  if (desired.allowWipe) return true;
  if (!opens) {
    throw new LuksRefusedError(
      `${device} holds a LUKS container (UUID ${luks.uuid}) that the passphrase does not open; nothing was written. Set allowWipe: true to format over it, or set passphrase to one that opens it and adopt: true`,
    );
  }
  if (mismatch.length > 0) {
    throw new LuksRefusedError(`the LUKS container on ${device} (UUID ${luks.uuid}) differs from the inputs: ${mismatch.join("; ")}. Set those inputs to match to ${ours ? "resume" : "adopt"} it, or allowWipe: true to format over it`);
  }
  throw new LuksRefusedError(
    `${device} holds a LUKS container (UUID ${luks.uuid}) that opens with the passphrase but was not created by hetzner-fde; set adopt: true to take it over as is (allowWipe: true would format over it)`,
  );
}

function layoutMismatch(metadata: LuksMetadata, desired: LuksDesired): string[] {
  const out: string[] = [];
  if (metadata.cipher !== desired.cipher) out.push(`cipher is ${metadata.cipher}, not ${desired.cipher}`);
  if (metadata.keySizeBits !== desired.keySize) out.push(`keySize is ${metadata.keySizeBits}, not ${desired.keySize}`);
  if (metadata.sectorSize !== desired.sectorSize) out.push(`sectorSize is ${metadata.sectorSize}, not ${desired.sectorSize}`);
  return out;
}

function randomiseUnderway(observed: LuksObserved, desired: LuksDesired): boolean {
  return observed.randomise.device === desired.device && (observed.randomise.running || observed.randomise.exitCode !== null);
}

function formatSteps(observed: LuksObserved, desired: LuksPlanInput): LuksStep[] {
  const device = desired.device;
  const steps: LuksStep[] = [];
  const job = observed.randomise;
  const randomised = job.device === device && !job.running && job.exitCode === 0;
  const mayHoldData = observed.signatures.length > 0;
  if (desired.wipe !== "none" && !randomised) {
    steps.push({ kind: "randomise", device, method: desired.wipe, sizeBytes: observed.sizeBytes ?? 0, mayHoldData, job: JOB_DIR_PREFIX + desired.mapperName });
  } else if (mayHoldData) {
    steps.push({ kind: "wipeSignatures", device, signatures: observed.signatures });
  }
  steps.push({ kind: "format", device, cipher: desired.cipher, keySize: desired.keySize, sectorSize: desired.sectorSize, pbkdf: desired.pbkdf, label: desired.label });
  desired.extraPassphrases.forEach((_, index) => steps.push({ kind: "addKey", device, key: { role: "extra", index }, authorizedBy: { role: "passphrase" }, pbkdf: desired.pbkdf }));
  return steps;
}

/** Add missing keys, re-derive keys whose KDF differs, then kill retired and unknown slots (add before kill, always). */
function keySteps(observed: LuksObserved, desired: LuksPlanInput): LuksStep[] {
  const keys = observed.keys;
  if (keys === null) return [];
  const device = desired.device;
  const steps: LuksStep[] = [];
  const opening: KeyRef[] = [
    ...(keys.passphrase !== null ? [{ role: "passphrase" } as const] : []),
    ...keys.extras.flatMap((slot, index) => (slot !== null ? [{ role: "extra", index } as const] : [])),
    ...keys.retired.flatMap((slot, index) => (slot !== null ? [{ role: "retired", index } as const] : [])),
  ];
  if (keys.passphrase === null) steps.push({ kind: "addKey", device, key: { role: "passphrase" }, authorizedBy: opening[0], pbkdf: desired.pbkdf });
  keys.extras.forEach((slot, index) => {
    if (slot === null) steps.push({ kind: "addKey", device, key: { role: "extra", index }, authorizedBy: { role: "passphrase" }, pbkdf: desired.pbkdf });
  });
  const slotKdf = new Map(observed.luks!.metadata.keyslots.map((k) => [k.slot, k.kdf]));
  const desiredSlots: [KeyRef, number | null][] = [[{ role: "passphrase" }, keys.passphrase], ...keys.extras.map((slot, index): [KeyRef, number | null] => [{ role: "extra", index }, slot])];
  for (const [key, slot] of desiredSlots) {
    const kdf = slot === null ? undefined : slotKdf.get(slot);
    if (kdf && !kdfMatches(kdf, desired.pbkdf)) steps.push({ kind: "convertKey", device, key, pbkdf: desired.pbkdf });
  }
  const wanted = new Set(desiredSlots.map(([, slot]) => slot).filter((s): s is number => s !== null));
  keys.retired.forEach((slot) => {
    if (slot !== null && !wanted.has(slot)) steps.push({ kind: "killSlot", device, slot, keep: { role: "passphrase" }, reason: "retired" });
  });
  const retired = new Set(keys.retired.filter((s): s is number => s !== null));
  for (const { slot } of observed.luks!.metadata.keyslots) {
    if (!wanted.has(slot) && !retired.has(slot)) steps.push({ kind: "killSlot", device, slot, keep: { role: "passphrase" }, reason: "unknown" });
  }
  return steps;
}

/** Only what the stack pins is compared: an iter-time (benchmarked) cost cannot be checked afterwards. */
export function kdfMatches(kdf: KeyslotFacts["kdf"], desired: PbkdfSettings): boolean {
  if (kdf.type !== desired.type) return false;
  if (desired.iterations !== undefined && kdf.iterations !== desired.iterations) return false;
  if (desired.memoryKiB !== undefined && kdf.memoryKiB !== desired.memoryKiB) return false;
  if (desired.parallelism !== undefined && kdf.parallelism !== desired.parallelism) return false;
  return true;
}

/** Why an update is needed (empty: none). Pure: old outputs + new inputs, no SSH (preview stays offline). */
export function changeReasons(olds: LuksVolumeOutputs, newsRaw: LuksVolumeInputs): string[] {
  const news = resolveInputs(newsRaw);
  const facts = olds.observed;
  const reasons: string[] = [];
  const add = (when: boolean, reason: string): void => {
    if (when) reasons.push(reason);
  };
  add(isUnknown(newsRaw.passphrase) || olds.passphrase !== news.passphrase, "passphrase rotated");
  add(isUnknown(newsRaw.extraPassphrases) || JSON.stringify(olds.extraPassphrases ?? []) !== JSON.stringify(news.extraPassphrases), "extra passphrases changed");
  add(facts.keyslots.length !== 1 + news.extraPassphrases.length, `${facts.keyslots.length} keyslots in use, ${1 + news.extraPassphrases.length} configured`);
  add(facts.keyslots.some((k) => !kdfMatches(k.kdf, news.pbkdf)), "keyslot key derivation differs from pbkdf");
  add(news.label !== null && facts.label !== news.label, "label differs");
  add(facts.openAs !== news.mapperName, facts.openAs === null ? "not open" : `open as ${facts.openAs}, not ${news.mapperName}`);
  add(facts.openAs !== null && facts.discardsActive !== news.discard, "discard setting of the live mapping differs");
  const wanted = crypttabLine(news.mapperName, olds.uuid, news.crypttab.options, news.discard);
  add(normaliseLine(facts.crypttabLine) !== wanted || olds.crypttab?.root !== news.crypttab.root, facts.crypttabLine === null ? "crypttab line missing" : "crypttab line differs");
  add(providerVersionChanged(olds, news), "provider version changed");
  // Inputs without an effect on the host still update the stored outputs (delete and read use them).
  for (const field of ["connection", "disks", "wipe", "adopt", "allowWipe", "headerBackupPath", "pbkdf"] as const) {
    add(JSON.stringify(olds[field]) !== JSON.stringify(news[field]), `${field} changed`);
  }
  return reasons;
}

/** Fields whose change replaces the container (compared with what the host showed, so re-encryption by hand shows too). */
export function replacedFields(olds: LuksVolumeOutputs, newsRaw: LuksVolumeInputs): string[] {
  const news = resolveInputs(newsRaw);
  const out: string[] = [];
  if (!isUnknown(newsRaw.device) && olds.device !== news.device) out.push("device");
  if (!isUnknown(newsRaw.cipher) && olds.observed.cipher !== news.cipher) out.push("cipher");
  if (!isUnknown(newsRaw.keySize) && olds.observed.keySize !== news.keySize) out.push("keySize");
  if (!isUnknown(newsRaw.sectorSize) && olds.observed.sectorSize !== news.sectorSize) out.push("sectorSize");
  return out;
}

// Not named `diff`: the closure serializer would bind that name to the provider method.
export function compareOutputs(olds: LuksVolumeOutputs, news: LuksVolumeInputs): pulumi.dynamic.DiffResult {
  const replaces = replacedFields(olds, news);
  // Old and new container would occupy the same device: the old one must go first.
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };
  return { changes: changeReasons(olds, news).length > 0 };
}

/** What delete does: close, drop the crypttab line, and erase only when allowed (after a header backup). */
export function planDelete(observed: LuksObserved, outputs: LuksVolumeOutputs): LuksStep[] {
  const steps: LuksStep[] = [];
  const openAs = observed.mappings.find((m) => m.luksUuid === outputs.uuid);
  if (openAs) steps.push({ kind: "close", name: openAs.name });
  if (observed.crypttab !== null && findCrypttabLine(observed.crypttab, outputs.mapperName, outputs.uuid) !== null) {
    steps.push({ kind: "removeCrypttab", root: outputs.crypttab.root, name: outputs.mapperName, uuid: outputs.uuid });
  }
  const ours = observed.luks !== null && observed.luks.uuid === outputs.uuid;
  if (ours && outputs.allowWipe) {
    steps.push({ kind: "headerBackup", device: outputs.device, uuid: outputs.uuid, file: outputs.headerBackupPath });
    if (observed.luks!.metadata.keyslots.length > 0) steps.push({ kind: "erase", device: outputs.device, uuid: outputs.uuid });
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// probe (one read-only round trip)

export interface ProbeSubject {
  readonly device: string;
  readonly mapperName: string;
  readonly crypttab: { readonly root: string };
}

/** The probe script. stdin: NUL-terminated passphrases to test, or nothing. */
export function probeScript(subject: ProbeSubject): ShellCommand {
  const script = sh`set -u
dev=${subject.device}; name=${subject.mapperName}; root=${subject.crypttab.root}; job=${JOB_DIR_PREFIX + subject.mapperName}
b64() { base64 -w0; }
printf '{"exists":'
if [ -b "$dev" ]; then
  printf 'true,"size":%s' "$(blockdev --getsize64 "$dev")"
  printf ',"lsblk":%s' "$(lsblk -J -b -s -o PATH,TYPE,SERIAL,WWN "$dev")"
  w=$(wipefs -n -J "$dev"); printf ',"wipefs":%s' "\${w:-null}"
  printf ',"blkid":"%s"' "$(blkid -p -o export "$dev" | b64)"
  if cryptsetup isLuks "$dev"; then
    printf ',"luks":%s' "$(cryptsetup luksDump --dump-json-metadata "$dev")"
    printf ',"keys":['; sep=''
    while IFS= read -r -d '' k; do
      slot=null
      if out=$(cryptsetup open --test-passphrase -v --key-file=<(printf '%s' "$k") "$dev" 2>&1); then
        slot=$(printf '%s' "$out" | grep -o 'Key slot [0-9]* unlocked' | head -n1 | tr -cd '0-9'); slot=\${slot:-null}
      fi
      printf '%s%s' "$sep" "$slot"; sep=','
    done
    printf ']'
  fi
else
  printf 'false'
fi
printf ',"dm":"%s"' "$(dmsetup info -c --noheadings --separator ' ' -o name,uuid 2>/dev/null | b64)"
printf ',"status":"%s"' "$(cryptsetup status "$name" 2>/dev/null | b64)"
if [ -d "$root/etc" ]; then printf ',"crypttab":"%s"' "$(cat "$root/etc/crypttab" 2>/dev/null | b64)"; fi
running=false
if [ -f "$job/pid" ] && kill -0 "$(cat "$job/pid")" 2>/dev/null; then running=true; fi
printf ',"job":{"running":%s,"device":"%s","rc":"%s"}}' "$running" "$(cat "$job/device" 2>/dev/null | b64)" "$(cat "$job/rc" 2>/dev/null | b64)"
`;
  return sh`bash -c ${script.text}`;
}

interface RawProbe {
  exists: boolean;
  size?: number;
  lsblk?: unknown;
  wipefs?: unknown;
  blkid?: string;
  luks?: unknown;
  keys?: (number | null)[];
  dm: string;
  status: string;
  crypttab?: string;
  job: { running: boolean; device: string; rc: string };
}

const fromBase64 = (text: string | undefined): string => Buffer.from(text ?? "", "base64").toString("utf8");

/** Turns the probe's JSON into typed facts. `keyCounts` says how the tested passphrases split into roles. */
export function parseProbe(json: unknown, keyCounts: { extras: number; retired: number } | null): LuksObserved {
  const raw = json as RawProbe;
  if (raw === null || typeof raw !== "object" || typeof raw.exists !== "boolean") throw new Error(`expected {"exists": …}, found ${JSON.stringify(json)?.slice(0, 100)}`);
  const blkid = parseBlkidExport(fromBase64(raw.blkid));
  const luks =
    raw.luks !== undefined && raw.luks !== null
      ? { uuid: blkid.UUID ?? "", label: blkid.LABEL ?? null, subsystem: blkid.SUBSYSTEM ?? null, metadata: parseLuksMetadata(raw.luks) }
      : null;
  if (luks !== null && !/^[0-9a-f-]{36}$/.test(luks.uuid)) throw new Error(`blkid printed no LUKS UUID for a LUKS device (found ${JSON.stringify(luks.uuid)})`);
  const slots = raw.keys ?? [];
  const keys =
    keyCounts === null || luks === null
      ? null
      : {
          passphrase: slots[0] ?? null,
          extras: Array.from({ length: keyCounts.extras }, (_, i) => slots[1 + i] ?? null),
          retired: Array.from({ length: keyCounts.retired }, (_, i) => slots[1 + keyCounts.extras + i] ?? null),
        };
  const status = parseCryptStatus(fromBase64(raw.status));
  const rc = fromBase64(raw.job?.rc).trim();
  const jobDevice = fromBase64(raw.job?.device).trim();
  return {
    exists: raw.exists,
    sizeBytes: typeof raw.size === "number" ? raw.size : null,
    disks: raw.lsblk ? disksOf(raw.lsblk) : [],
    signatures: raw.wipefs ? parseWipefsTypes(raw.wipefs) : [],
    luks,
    mappings: parseDmsetupInfo(fromBase64(raw.dm)),
    status: { active: status.active, discards: status.discards },
    crypttab: raw.crypttab === undefined ? null : fromBase64(raw.crypttab).split("\n"),
    keys,
    randomise: { running: raw.job?.running === true, device: jobDevice === "" ? null : jobDevice, exitCode: /^\d+$/.test(rc) ? Number(rc) : null },
  };
}

/** Every `type: disk` node of `lsblk -J -s` (the devices beneath), deduplicated. */
export function disksOf(lsblk: unknown): DiskFact[] {
  const found = new Map<string, DiskFact>();
  const walk = (nodes: unknown): void => {
    if (!Array.isArray(nodes)) return;
    for (const node of nodes as { path?: string; type?: string; serial?: string | null; wwn?: string | null; children?: unknown }[]) {
      if (node.type === "disk" && node.path) found.set(node.path, { path: node.path, serial: node.serial?.trim() || null, wwn: node.wwn?.trim() || null });
      walk(node.children);
    }
  };
  walk((lsblk as { blockdevices?: unknown })?.blockdevices);
  return [...found.values()];
}

export async function probe(ctx: LuksContext, subject: ProbeSubject): Promise<LuksObserved> {
  const keys = ctx.testKeys ? [ctx.keys.passphrase, ...ctx.keys.extras, ...ctx.keys.retired] : [];
  const stdin = keys.length > 0 ? new Secret(keys.map((k) => `${k.reveal()}\0`).join("")) : undefined;
  const counts = ctx.testKeys ? { extras: ctx.keys.extras.length, retired: ctx.keys.retired.length } : null;
  return runProbe(ctx.session, probeScript(subject), (json) => parseProbe(json, counts), { stdin, secrets: keys, timeoutMs: 600_000 });
}

// ---------------------------------------------------------------------------------------------
// steps (the only effects; each guarded so a re-run converges)

function keyOf(ctx: LuksContext, ref: KeyRef): Secret {
  const key = ref.role === "passphrase" ? ctx.keys.passphrase : ref.role === "extra" ? ctx.keys.extras[ref.index] : ctx.keys.retired[ref.index];
  if (!key) throw new Error(`no ${ref.role} passphrase #${"index" in ref ? ref.index : 0} is configured`);
  return key;
}

/** Fails (exit 3, naming what holds it) when anything sits on top of the device: an open mapping, an md array, LVM. */
function refuseIfHeld(device: string): ShellCommand {
  return sh`held=$(ls "/sys/class/block/$(basename "$(readlink -f ${device})")/holders" 2>/dev/null); if [ -n "$held" ]; then echo "${device} is in use by $held; close or stop it first" >&2; exit 3; fi`;
}

/** Fails (exit 3) when the device carries any signature: the plan thought it blank, the host must agree. */
function refuseIfNotBlank(device: string): ShellCommand {
  return sh`sigs=$(wipefs -n -o TYPE --noheadings ${device} | tr '\n' ' '); if [ -n "$sigs" ]; then echo "${device} now holds $sigs; refusing to overwrite it (re-run to re-plan)" >&2; exit 3; fi`;
}

async function randomise(ctx: LuksContext, step: Extract<LuksStep, { kind: "randomise" }>): Promise<void> {
  const job = step.job;
  const state = await ctx.session.exec(sh`if [ -f ${job}/pid ] && kill -0 "$(cat ${job}/pid)" 2>/dev/null; then echo running; fi`);
  if (state.stdout.trim() !== "running") await ctx.session.exec(randomiseStartCommand(step, job));
  await followRandomise(ctx, step, job);
}

/**
 * Starts the randomisation as a detached job, so it survives a dropped SSH connection and a
 * re-run can follow it instead of starting over. random-fast writes zeros through a throwaway
 * plain dm-crypt mapping keyed with 64 bytes of /dev/urandom read by cryptsetup on stdin (the key
 * never exists outside the kernel); the ciphertext is indistinguishable from random data.
 */
export function randomiseStartCommand(
  step: { device: string; method: "random-fast" | "urandom"; mayHoldData: boolean },
  job: string,
  // AES-XTS wins wherever the CPU has AES instructions (every server this targets); the benchmark
  // also tries Adiantum, which is faster where AES is emulated in software.
  throwaway: { cipher: string; keyBytes: number } = { cipher: "aes-xts-plain64", keyBytes: 64 },
): ShellCommand {
  const wipeName = `hfde-wipe-${job.slice(job.lastIndexOf("randomise-") + "randomise-".length)}`;
  const target = step.method === "random-fast" ? `/dev/mapper/${wipeName}` : step.device;
  const source = step.method === "random-fast" ? "/dev/zero" : "/dev/urandom";
  const open = step.method === "random-fast"
    ? sh`cryptsetup close ${wipeName} 2>/dev/null; head -c ${throwaway.keyBytes} /dev/urandom | cryptsetup open --type plain --cipher ${throwaway.cipher} --key-size ${throwaway.keyBytes * 8} --key-file=- ${step.device} ${wipeName} || { echo 90 > ${job}/rc; exit 0; }`
    : sh`true`;
  const close = step.method === "random-fast" ? sh`cryptsetup close ${wipeName}` : sh`true`;
  // dd stops with "No space left on device" at the end of the device: that is success.
  const body = sh`${open}
dd if=${source} of=${target} bs=4M oflag=direct status=progress 2>${job}/progress; r=$?
grep -q 'No space left on device' ${job}/progress && r=0
sync; ${close}; echo $r > ${job}/rc`;
  const guards = step.mayHoldData ? sh`true` : refuseIfNotBlank(step.device);
  // The preparation is its own statement: a trailing `&` would background the whole && list.
  return sh`${refuseIfHeld(step.device)}; ${guards}; { mkdir -p ${job} && rm -f ${job}/rc ${job}/progress && printf '%s' ${step.device} > ${job}/device; } || exit 1
setsid nohup bash -c ${body.text} </dev/null >/dev/null 2>&1 & echo $! > ${job}/pid`;
}

async function followRandomise(ctx: LuksContext, step: Extract<LuksStep, { kind: "randomise" }>, job: string): Promise<void> {
  let lastReport = 0;
  for (;;) {
    const poll = await ctx.session.exec(sh`cat ${job}/rc 2>/dev/null; echo; tr '\\r' '\\n' < ${job}/progress 2>/dev/null | grep copied | tail -n1`);
    const [rc, progress = ""] = poll.stdout.split("\n");
    const line = parseDdProgress(progress, step.sizeBytes);
    if (rc.trim() !== "") {
      if (rc.trim() !== "0") throw new Error(`randomising ${step.device} (${step.method}) failed with exit ${rc.trim()}; last progress: ${progress || "none"}`);
      ctx.report(`randomise ${step.device} (${step.method}) finished${line ? `: ${line}` : ""}`);
      return;
    }
    if (line && Date.now() - lastReport >= 10_000) {
      ctx.report(`randomise ${step.device} (${step.method}): ${line}`);
      lastReport = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, ctx.pollMs));
  }
}

/** "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 7 s, 153 MB/s" → "1.1 GB of 4.3 GB (25%), 153 MB/s". */
export function parseDdProgress(line: string, totalBytes: number): string | null {
  const match = /^(\d+) bytes .*copied, ([\d.]+) s, ([\d.,]+ [kMGT]?B\/s)/.exec(line.trim());
  if (!match) return null;
  const done = Number(match[1]);
  const pct = totalBytes > 0 ? ` (${Math.min(100, Math.floor((done / totalBytes) * 100))}%)` : "";
  return `${formatBytes(done)} of ${formatBytes(totalBytes)}${pct}, ${match[3]}`;
}

function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

async function wipeSignatures(ctx: LuksContext, step: Extract<LuksStep, { kind: "wipeSignatures" }>): Promise<void> {
  await ctx.session.exec(sh`${refuseIfHeld(step.device)}; wipefs -a -q ${step.device}`);
}

async function format(ctx: LuksContext, step: Extract<LuksStep, { kind: "format" }>): Promise<void> {
  const command = formatCommand({ ...step, keySizeBits: step.keySize, label: step.label ?? undefined, subsystem: HFDE_SUBSYSTEM });
  await ctx.session.exec(sh`${refuseIfHeld(step.device)}; ${refuseIfNotBlank(step.device)}; ${command}`, { stdin: ctx.keys.passphrase, timeoutMs: 900_000 });
}

async function addKey(ctx: LuksContext, step: Extract<LuksStep, { kind: "addKey" }>): Promise<void> {
  const added = keyOf(ctx, step.key);
  // A kill after luksAddKey but before the next probe must not add the key twice.
  if ((await unlockedSlot(ctx.session, step.device, added)) !== null) return;
  const existing = keyOf(ctx, step.authorizedBy);
  await ctx.session.exec(addKeyCommand(step.device, step.pbkdf), { stdin: twoKeys(existing, added), secrets: [existing, added], timeoutMs: 900_000 });
  if ((await unlockedSlot(ctx.session, step.device, added)) === null) {
    throw new Error(`luksAddKey on ${step.device} reported success, but the new passphrase opens no keyslot`);
  }
}

async function convertKey(ctx: LuksContext, step: Extract<LuksStep, { kind: "convertKey" }>): Promise<void> {
  await ctx.session.exec(convertKeyCommand(step.device, step.pbkdf), { stdin: keyOf(ctx, step.key), timeoutMs: 900_000 });
}

async function killSlot(ctx: LuksContext, step: Extract<LuksStep, { kind: "killSlot" }>): Promise<void> {
  const keep = keyOf(ctx, step.keep);
  // Prove, right before killing, that the key we keep opens a different slot: never kill the last way in.
  const kept = await unlockedSlot(ctx.session, step.device, keep);
  if (kept === null) throw new LuksRefusedError(`refusing to kill keyslot ${step.slot} on ${step.device}: the passphrase to keep opens no slot`);
  if (kept === step.slot) throw new LuksRefusedError(`refusing to kill keyslot ${step.slot} on ${step.device}: it is the slot the passphrase to keep opens`);
  const present = await ctx.session.exec(sh`cryptsetup luksDump --dump-json-metadata ${step.device}`);
  if (!(String(step.slot) in (JSON.parse(present.stdout) as { keyslots: object }).keyslots)) return; // already gone: converged
  // cryptsetup itself verifies again that `keep` opens a slot other than this one.
  await ctx.session.exec(killSlotCommand(step.device, step.slot), { stdin: keep, timeoutMs: 900_000 });
}

async function setLabel(ctx: LuksContext, step: Extract<LuksStep, { kind: "setLabel" }>): Promise<void> {
  await ctx.session.exec(setLabelCommand(step.device, step.label));
}

async function open(ctx: LuksContext, step: Extract<LuksStep, { kind: "open" }>): Promise<void> {
  await ctx.session.exec(openCommand(step.device, step.name, step.discard), { stdin: ctx.keys.passphrase, timeoutMs: 900_000 });
}

async function rename(ctx: LuksContext, step: Extract<LuksStep, { kind: "rename" }>): Promise<void> {
  // dmsetup renames a mapping that is in use (LVM on top keeps working); cryptsetup has no rename.
  await ctx.session.exec(sh`dmsetup rename ${step.from} ${step.to}`);
}

async function refreshDiscard(ctx: LuksContext, step: Extract<LuksStep, { kind: "refreshDiscard" }>): Promise<void> {
  await ctx.session.exec(refreshCommand(step.name, step.discard), { stdin: ctx.keys.passphrase, timeoutMs: 900_000 });
}

async function writeCrypttab(ctx: LuksContext, step: Extract<LuksStep, { kind: "writeCrypttab" }>): Promise<void> {
  // The UUID is read on the host: right after luksFormat the plan could not know it. Other lines
  // (and comments) are kept; the new file replaces the old one atomically.
  const file = `${step.root.replace(/\/+$/, "")}/etc/crypttab`;
  const options = step.options.length > 0 ? step.options.join(",") : "luks";
  await ctx.session.exec(sh`set -e; uuid=$(cryptsetup luksUUID ${step.device}); f=${file}; tmp="$f.hfde-tmp"
{ if [ -f "$f" ]; then awk -v n=${step.name} -v u="UUID=$uuid" '$1 != n && $2 != u' "$f"; fi; printf '%s UUID=%s none %s\n' ${step.name} "$uuid" ${options}; } > "$tmp"
chmod 0644 "$tmp"; mv "$tmp" "$f"`);
}

async function close(ctx: LuksContext, step: Extract<LuksStep, { kind: "close" }>): Promise<void> {
  await ctx.session.exec(closeCommand(step.name));
}

async function removeCrypttab(ctx: LuksContext, step: Extract<LuksStep, { kind: "removeCrypttab" }>): Promise<void> {
  const file = `${step.root.replace(/\/+$/, "")}/etc/crypttab`;
  await ctx.session.exec(sh`set -e; f=${file}; tmp="$f.hfde-tmp"; [ -f "$f" ] || exit 0
awk -v n=${step.name} -v u=${`UUID=${step.uuid}`} '$1 != n && $2 != u' "$f" > "$tmp"; chmod 0644 "$tmp"; mv "$tmp" "$f"`);
}

async function headerBackup(ctx: LuksContext, step: Extract<LuksStep, { kind: "headerBackup" }>): Promise<void> {
  // A backup already there from a killed earlier delete is fine if it is this container's header.
  const existing = await ctx.session.exec(sh`if [ -e ${step.file} ]; then cryptsetup luksUUID ${step.file} 2>/dev/null || echo not-luks; fi`);
  const found = existing.stdout.trim();
  if (found === step.uuid) return;
  if (found !== "") throw new LuksRefusedError(`header backup file ${step.file} already exists and holds ${found === "not-luks" ? "no LUKS header" : `the header of ${found}`}; move it away or set headerBackupPath`);
  await ctx.session.exec(sh`mkdir -p "$(dirname ${step.file})" && ${headerBackupCommand(step.device, step.file)} && chmod 0600 ${step.file}`);
}

async function erase(ctx: LuksContext, step: Extract<LuksStep, { kind: "erase" }>): Promise<void> {
  // Re-check right before the irreversible part: the header is still ours and the backup is there.
  await ctx.session.exec(
    sh`[ "$(cryptsetup luksUUID ${step.device})" = ${step.uuid} ] || { echo "${step.device} no longer holds LUKS ${step.uuid}" >&2; exit 3; }; ${eraseCommand(step.device)}`,
  );
}

export const steps = {
  randomise,
  wipeSignatures,
  format,
  addKey,
  convertKey,
  killSlot,
  setLabel,
  open,
  rename,
  refreshDiscard,
  writeCrypttab,
  close,
  removeCrypttab,
  headerBackup,
  erase,
};

// validate sees the raw inputs (defaults not yet filled in), plan the resolved ones; the
// conformance type has one Inputs parameter, so validate is viewed through the resolved type here.
const validateInputs = validate as unknown as (inputs: LuksPlanInput) => CheckFailure[];
export const module = { validate: validateInputs, plan, probe, steps } satisfies ResourceModule<LuksPlanInput, LuksVolumeOutputs, LuksObserved, LuksStep, LuksContext>;

// ---------------------------------------------------------------------------------------------
// provider

/** Outputs: the (defaulted) inputs echoed under their own keys, so the engine keeps secret marks on
 *  passphrase/extraPassphrases, plus what the host showed. */
export function buildOutputs(desired: LuksDesired, observed: LuksObserved, environment: Environment): LuksVolumeOutputs {
  const luks = observed.luks;
  if (luks === null) throw new Error(`${desired.device} holds no LUKS header after the run`);
  const openAs = observed.mappings.find((m) => m.luksUuid === luks.uuid)?.name ?? null;
  return jsonSafe(
    {
      ...desired,
      uuid: luks.uuid,
      environment,
      observed: {
        cipher: luks.metadata.cipher,
        keySize: luks.metadata.keySizeBits,
        sectorSize: luks.metadata.sectorSize,
        label: luks.label,
        subsystem: luks.subsystem,
        keyslots: luks.metadata.keyslots,
        openAs,
        discardsActive: openAs !== null && openAs === desired.mapperName ? observed.status.discards : null,
        crypttabLine: observed.crypttab === null ? null : normaliseLine(findCrypttabLine(observed.crypttab, desired.mapperName, luks.uuid)),
        disks: observed.disks,
      },
    },
    "outputs",
  );
}

const SECRET_INPUTS = ["passphrase", "extraPassphrases"] as const;

class LuksVolumeProvider implements pulumi.dynamic.ResourceProvider<LuksVolumeInputs, LuksVolumeOutputs> {
  // From the stack config in configure; never in a resource's inputs or state.
  private privateKey: Secret | undefined = undefined;
  // Test hook: how often a randomise step polls its job.
  private pollMs = 5000;

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    const key = req.config.get(SSH_PRIVATE_KEY_CONFIG);
    if (key !== undefined) this.privateKey = new Secret(key);
    const poll = req.config.get("luksPollMs");
    if (poll !== undefined) this.pollMs = Number(poll);
  }

  async check(olds: LuksVolumeInputs, news: LuksVolumeInputs): Promise<pulumi.dynamic.CheckResult<LuksVolumeInputs>> {
    return checkResult(news, [...validate(news), ...validateReplacement(olds ?? {}, news)]);
  }

  async diff(_id: string, olds: LuksVolumeOutputs, news: LuksVolumeInputs): Promise<pulumi.dynamic.DiffResult> {
    return compareOutputs(olds, news);
  }

  async create(inputs: LuksVolumeInputs): Promise<pulumi.dynamic.CreateResult<LuksVolumeOutputs>> {
    const outs = await this.converge(resolveInputs(inputs), "create", []);
    return { id: `${outs.connection[0].host}:${outs.uuid}`, outs };
  }

  async update(_id: string, olds: LuksVolumeOutputs, news: LuksVolumeInputs): Promise<pulumi.dynamic.UpdateResult<LuksVolumeOutputs>> {
    const desired = resolveInputs(news);
    const wanted = [desired.passphrase, ...desired.extraPassphrases];
    // Passphrases the stack used before and no longer lists: their slots are rotated away.
    const retired = [olds.passphrase, ...(olds.extraPassphrases ?? [])].filter((p) => typeof p === "string" && !wanted.includes(p));
    return { outs: await this.converge(desired, "update", retired) };
  }

  async read(id: string, props?: LuksVolumeOutputs): Promise<pulumi.dynamic.ReadResult<LuksVolumeOutputs>> {
    // Import sends neither props nor inputs (pulumi-dynamic.md §3); adopt: true is the way in.
    if (!props?.device) throw new Error(`LuksVolume ${id}: read needs the stored outputs; import is not supported, use adopt: true`);
    return this.withHost(props, [], false, async (ctx, environment) => {
      const observed = await probe(ctx, props);
      if (!observed.exists) {
        throw new Error(`LuksVolume ${id}: ${props.device} does not exist in the ${environment} environment; assemble the array there (mdadm --assemble --scan) and refresh again`);
      }
      if (observed.luks === null || observed.luks.uuid !== props.uuid) return {}; // container gone: the engine drops it
      const outs = buildOutputs(props, observed, environment);
      // Inputs returned by read are stored as given: leave the secret ones out rather than store them in plain text.
      const inputs: Record<string, unknown> = { ...inputsOf(outs) };
      for (const key of SECRET_INPUTS) delete inputs[key];
      return { id, props: outs, inputs: jsonSafe(inputs, "inputs") as unknown as LuksVolumeOutputs };
    });
  }

  async delete(_id: string, props: LuksVolumeOutputs): Promise<void> {
    await this.withHost(props, [], false, async (ctx) => {
      const observed = await probe(ctx, props);
      await runPlan(ctx, planDelete(observed, props), steps);
      const log = ctx.log ?? pulumi.log;
      if (!props.allowWipe && observed.luks?.uuid === props.uuid) {
        log.info(`[LuksVolume ${ctx.host}] left the LUKS header on ${props.device} (UUID ${props.uuid}) in place: the data stays readable with the passphrase. Set allowWipe: true before destroying to erase it`);
      } else if (props.allowWipe && observed.luks?.uuid === props.uuid) {
        log.info(`[LuksVolume ${ctx.host}] erased the keyslots of ${props.device}; header backup at ${props.headerBackupPath} on the host`);
      }
    });
  }

  private async converge(desired: LuksDesired, phase: "create" | "update", retired: string[]): Promise<LuksVolumeOutputs> {
    return this.withHost(desired, retired, true, async (ctx, environment) => {
      const observed = await runStep(ctx, "probe", () => probe(ctx, desired));
      await runPlan(ctx, plan(observed, { ...desired, phase, retiredCount: retired.length }), steps);
      const final = await probe({ ...ctx, testKeys: false }, desired);
      return buildOutputs(desired, final, environment);
    });
  }

  private async withHost<T>(
    subject: LuksDesired,
    retired: string[],
    testKeys: boolean,
    fn: (ctx: LuksContext, environment: Environment) => Promise<T>,
  ): Promise<T> {
    if (this.privateKey === undefined) throw new Error(`LuksVolume: no SSH private key; set it with \`pulumi config set --secret ${SSH_PRIVATE_KEY_CONFIG} < key-file\``);
    const keys = {
      passphrase: new Secret(subject.passphrase),
      extras: (subject.extraPassphrases ?? []).map((p) => new Secret(p)),
      retired: retired.map((p) => new Secret(p)),
    };
    const secrets = [keys.passphrase, ...keys.extras, ...keys.retired, this.privateKey];
    const { session, profile } = await openFirstReachable(subject.connection, this.privateKey);
    const host = `${profile.host}:${profile.port}`;
    const ctx = {
      resource: "LuksVolume",
      host: `${subject.mapperName} ${host}`,
      secrets,
      session,
      keys,
      testKeys,
      pollMs: this.pollMs,
      report: (message: string) => pulumi.log.info(redact(`[LuksVolume ${subject.mapperName} ${host}] ${message}`, secrets)),
    };
    try {
      return await fn(ctx, profile.environment);
    } finally {
      await session.close();
    }
  }
}

function inputsOf(outs: LuksVolumeOutputs): LuksDesired {
  const { uuid: _uuid, observed: _observed, environment: _environment, ...inputs } = outs;
  return inputs;
}

// One instance for every LuksVolume, so the closure serializer's per-object cache hits.
const provider = new LuksVolumeProvider();

// ---------------------------------------------------------------------------------------------
// resource

export class LuksVolume extends pulumi.dynamic.Resource {
  declare readonly uuid: pulumi.Output<string>;
  declare readonly device: pulumi.Output<string>;
  declare readonly mapperName: pulumi.Output<string>;
  declare readonly observed: pulumi.Output<LuksFacts>;
  declare readonly environment: pulumi.Output<Environment>;
  declare readonly headerBackupPath: pulumi.Output<string>;

  constructor(name: string, args: LuksVolumeArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { ...withSecretInputs(args, SECRET_INPUTS), providerVersion: PROVIDER_VERSION, uuid: undefined, observed: undefined, environment: undefined };
    super(provider, name, props, { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...SECRET_INPUTS] }, "hetzner-fde", "LuksVolume");
  }
}
