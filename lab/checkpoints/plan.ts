// Pure decisions of the checkpoint cache: what a checkpoint records, how a restored server boots,
// which checkpoints pruning deletes, and the cache key of a prepared state. No file system here.

import { createHash } from "crypto";
import type { LabServerConfig } from "../config";
import type { ServerState, StoredKey } from "../robot/model";
import type { BootTarget } from "../robot/power";

/** Bumped when the layout of a checkpoint changes: older ones are then stale, never misread. */
export const CHECKPOINT_FORMAT = 1;

/** What the server was running when it was saved, and so what a restore boots it into. */
export type SavedBoot = "rescue" | "disk";

/** The hardware a checkpoint fits: a restore into a server of another shape is refused. */
export interface ServerShape {
  readonly disks: LabServerConfig["disks"];
  readonly firmware: LabServerConfig["firmware"];
}

export interface CheckpointFile {
  readonly name: string;
  /** st_size when saved: a truncated file is corrupt even if qemu-img can still open it. */
  readonly bytes: number;
}

/**
 * manifest.json of a checkpoint. It holds the emulator's record of the server, with the rescue's
 * root password and host private key: those are minted by the lab's own Robot emulator for a lab
 * VM, never a user's, and the file is 0600 in the lab's state directory like robot-state.json.
 */
export interface CheckpointManifest {
  readonly format: number;
  readonly name: string;
  readonly createdAt: string;
  readonly serverNumber: number;
  readonly shape: ServerShape;
  readonly boot: SavedBoot;
  /** The disks (disk0.qcow2, …) and, on UEFI, OVMF_VARS.fd. */
  readonly files: readonly CheckpointFile[];
  /** The emulator's record of the server (boot configuration, rescue, power, name) and the account's stored keys. */
  readonly robot: { readonly server: ServerState; readonly keys: readonly StoredKey[] };
  /** Whatever the saver wants back on restore (test support: the recipe key, outputs, fixture keys). */
  readonly extra?: unknown;
}

/** How a restored server boots first: into the very rescue it ran (same password, host key, keys) or its disks. */
export function restoredBootTarget(manifest: Pick<CheckpointManifest, "boot" | "robot" | "serverNumber">): BootTarget {
  if (manifest.boot === "disk") return { kind: "disk" };
  const last = manifest.robot.server.lastRescue;
  if (!last) throw new Error(`checkpoint of server ${manifest.serverNumber} says it ran rescue, but the emulator's record has no last rescue to boot it with`);
  return { kind: "rescue", rescue: { password: last.password, authorizedKeys: last.keys.map((k) => k.data), hostKeys: last.hostKeys } };
}

/** Why a checkpoint cannot be restored onto `target`, or undefined when it fits. */
export function shapeMismatch(saved: ServerShape, target: ServerShape): string | undefined {
  const problems: string[] = [];
  if (saved.disks.count !== target.disks.count) problems.push(`${saved.disks.count} disks saved, the server has ${target.disks.count}`);
  if (saved.disks.sizeGiB !== target.disks.sizeGiB) problems.push(`disks of ${saved.disks.sizeGiB} GiB saved, the server's are ${target.disks.sizeGiB} GiB`);
  if (saved.disks.type !== target.disks.type) problems.push(`${saved.disks.type} disks saved, the server has ${target.disks.type}`);
  if (saved.firmware !== target.firmware) problems.push(`firmware ${saved.firmware} saved, the server uses ${target.firmware}`);
  return problems.length > 0 ? problems.join("; ") : undefined;
}

export interface CacheEntryInfo {
  readonly name: string;
  /** Allocated bytes on the host disk (sparse files count what they hold, not their size). */
  readonly bytes: number;
  /** Last save or restore, ms since the epoch. */
  readonly lastUsedMs: number;
  /** A lab state's disks still read from it: deleting it would break that server's next boot. */
  readonly inUse: boolean;
}

/**
 * Least recently used first, until the cache fits `maxBytes`. Entries in use and those in `keep`
 * (the one just saved) are never chosen, so the cache can stay over its bound until they are free.
 */
export function chooseToPrune(entries: readonly CacheEntryInfo[], maxBytes: number, keep: readonly string[] = []): string[] {
  let total = entries.reduce((sum, e) => sum + e.bytes, 0);
  const victims: string[] = [];
  const candidates = entries.filter((e) => !e.inUse && !keep.includes(e.name)).sort((a, b) => a.lastUsedMs - b.lastUsedMs || a.name.localeCompare(b.name));
  for (const entry of candidates) {
    if (total <= maxBytes) break;
    victims.push(entry.name);
    total -= entry.bytes;
  }
  return victims;
}

/** Default bound of the checkpoint cache: a crypt RAID1 checkpoint of the test layout takes about 2 GiB. */
export const DEFAULT_CACHE_MAX_GIB = 16;

/** HFDE_CHECKPOINT_MAX_GIB, with the field named in the error when it is not a positive number. */
export function cacheMaxBytes(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.HFDE_CHECKPOINT_MAX_GIB;
  if (raw === undefined || raw === "") return DEFAULT_CACHE_MAX_GIB * 2 ** 30;
  const gib = Number(raw);
  if (!Number.isFinite(gib) || gib <= 0) throw new Error(`HFDE_CHECKPOINT_MAX_GIB must be a positive number of GiB (e.g. 16), got "${raw}"`);
  return Math.round(gib * 2 ** 30);
}

/** Checkpoint names become directory names: a lowercase label, nothing that walks paths. */
export function checkName(name: string): string {
  if (!/^[a-z0-9][a-z0-9._-]{0,99}$/.test(name) || name.includes("..")) {
    throw new Error(`checkpoint name must be lowercase letters, digits, ".", "_" or "-" (at most 100, starting with a letter or digit), got ${JSON.stringify(name)}`);
  }
  return name;
}

/** One file of the sources that produced a state: its path relative to the repo and its content hash. */
export interface SourceFile {
  readonly path: string;
  readonly sha256: string;
}

/** Hash over a sorted file list: any added, removed, renamed or edited file changes it. */
export function sourceDigest(files: readonly SourceFile[]): string {
  const hash = createHash("sha256");
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) hash.update(`${file.path}\0${file.sha256}\n`);
  return hash.digest("hex");
}

/** Everything that produced a prepared state; two states share a key only if all of it is equal. */
export interface RecipeKeyParts {
  readonly recipe: string;
  /** The recipe's inputs (layout, passphrase policy, …) and the server shape, as JSON values. */
  readonly inputs: unknown;
  /** Lab image recipe hashes (rescue, images, mirror). */
  readonly images: Readonly<Record<string, string>>;
  /** sourceDigest of the resources, lab and test-support code. */
  readonly source: string;
}

export function recipeKey(parts: RecipeKeyParts): string {
  return createHash("sha256").update(canonicalJson({ format: CHECKPOINT_FORMAT, ...parts })).digest("hex");
}

/** JSON with object keys sorted, so the same inputs in another order give the same key. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
