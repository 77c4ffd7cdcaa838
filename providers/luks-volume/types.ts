// LuksVolume's types: Args (program side), Inputs, Outputs, Observed, the Step union.
import type * as pulumi from "@pulumi/pulumi";
import type { ConnectionProfile, Environment, HostContext, KernelInputs } from "../kernel";
import type { PbkdfSettings } from "../rules";
import type { DmMapping, KeyslotFacts, LuksMetadata } from "../storage/cryptsetup";

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
export interface LuksVolumeInputs extends KernelInputs {
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

/** Outputs: the inputs as given (so `read` reports the request, and the engine keeps the secret
 *  marks on passphrase/extraPassphrases), plus what the host showed. Defaults are not stored: they
 *  are filled in by `resolveInputs` wherever needed. */
export interface LuksVolumeOutputs extends LuksVolumeInputs {
  readonly uuid: string;
  readonly observed: LuksFacts;
  /** The environment the facts were read in. */
  readonly environment: Environment;
  /** `address:port` the facts were read from. */
  readonly host: string;
}

export interface DiskFact {
  readonly path: string;
  readonly serial: string | null;
  readonly wwn: string | null;
}

/** Which passphrase a step uses: the stack's, one of the extras, or one being retired by an update. */
export type KeyRef = { readonly role: "passphrase" } | { readonly role: "extra"; readonly index: number } | { readonly role: "retired"; readonly index: number };

/** The name a passphrase has in `ctx.keys` ("passphrase", "extra:0", "retired:1"). */
export function keyName(ref: KeyRef): string {
  return ref.role === "passphrase" ? "passphrase" : `${ref.role}:${ref.index}`;
}

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

export type LuksStep =
  | { readonly kind: "randomise"; readonly device: string; readonly disks: DiskPin[]; readonly method: "random-fast" | "urandom"; readonly sizeBytes: number; readonly mayHoldData: boolean; readonly job: string }
  | { readonly kind: "wipeSignatures"; readonly device: string; readonly disks: DiskPin[]; readonly signatures: string[] }
  | { readonly kind: "format"; readonly device: string; readonly disks: DiskPin[]; readonly cipher: string; readonly keySize: number; readonly sectorSize: number; readonly pbkdf: PbkdfSettings; readonly label: string | null }
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
  | { readonly kind: "erase"; readonly device: string; readonly disks: DiskPin[]; readonly uuid: string };

/** Steps and the probe find the passphrases in `ctx.keys`, named by `keyName`. */
export type LuksContext = HostContext;

export const DEFAULT_CIPHER = "aes-xts-plain64";
export const DEFAULT_KEY_SIZE = 512;
export const DEFAULT_SECTOR_SIZE = 512;
export const SECTOR_SIZES = [512, 1024, 2048, 4096];
/** Where a randomisation job keeps its state on the host: /run is tmpfs, so a reboot forgets it. */
export const JOB_DIR_PREFIX = "/run/hetzner-fde/randomise-";
/** Stack config key (namespace hetzner-fde): how often a randomise step polls its job, in ms (tests set it low). */
export const POLL_SETTING = "luksPollMs";
/** Input fields that hold secrets: marked secret by the Resource class, left out of what read returns. */
export const SECRET_INPUTS = ["passphrase", "extraPassphrases"] as const;
