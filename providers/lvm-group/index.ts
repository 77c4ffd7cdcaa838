// LvmGroup: one LVM volume group on one or more physical volumes (usually the opened LUKS mapping
// /dev/mapper/…) with its logical volumes, their filesystems and, optionally, their fstab lines in a
// target root. It holds the data, so three rules shape everything below:
//
// - Nothing is destroyed by surprise. Shrinking or removing an LV, changing its filesystem, wiping a
//   PV that carries a signature and deleting the VG all need `allowWipe`; `check` refuses what it
//   can see from the inputs, and the plan refuses what only the host shows (an LV grown by hand).
// - A killed create converges. The plan comes from a fresh probe every round, every step is guarded,
//   and the VG carries the tag `hetzner-fde`, which is how a re-run tells "our half-made VG" from
//   someone else's VG of the same name (that one needs `adopt`).
// - `100%FREE` and `all` converge (Ansible lvol's long-standing bug). A percentage of free space is
//   evaluated against the space this LV could have, free + its own extents, so the LV that took the
//   rest still "takes the rest" on the next run; a changed request is told from a re-derived one by
//   comparing with the request recorded in the outputs; extents are compared with a tolerance of
//   one physical extent for rounding.

import * as pulumi from "@pulumi/pulumi";
import { keepErrorMessage } from "../plumbing/errors";
import { ConnectionProfile, Environment, openFirstReachable, validateProfiles } from "../kernel/host-access";
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
} from "../kernel/resource";
import { MIB, parseSize } from "../rules/size";
import { Secret } from "../plumbing/secret";
import { joinShell, sh, ShellCommand } from "../plumbing/shell";
import { probe as runProbe, SshSession } from "../plumbing/ssh";

// ---------------------------------------------------------------------------------------------
// Constants (declared first: the closure serializer cannot resolve a const used above its declaration)

/** Tag put on every VG this resource creates or adopts: a re-run recognises its own half-made VG by it. */
export const OWNER_TAG = "hetzner-fde";

/** Extent size passed to vgcreate (LVM's default, made explicit so sizes are predictable). */
export const EXTENT_SIZE_BYTES = 4 * MIB;

/** Sizes within this many extents of the target count as converged (rounding to the PE size). */
export const EXTENT_TOLERANCE = 1;

/** LVM's own overhead per PV before the first extent (pe_start), for the capacity estimate in check. */
const PV_OVERHEAD_BYTES = 1 * MIB;

const FILESYSTEMS = ["ext4", "xfs", "swap"] as const;

const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;
const LV_RESERVED_PREFIXES = ["snapshot", "pvmove"];
const LV_RESERVED_PARTS = ["_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig"];
const DEVICE_PATH = /^\/dev\/[A-Za-z0-9._:+@/-]+$/;
const FSTAB_FIELD = /^[^\s#]+$/;

// ---------------------------------------------------------------------------------------------
// Types

export type LvFilesystem = (typeof FILESYSTEMS)[number];

/** One logical volume as the stack asks for it. */
export interface LogicalVolumeArgs {
  /** LV name (LVM's charset A-Z a-z 0-9 + _ . -; not `snapshot*`/`pvmove*`). Renaming = remove + add. */
  readonly name: pulumi.Input<string>;
  /**
   * `8G`/`512M`/`2T` (binary units, rounded up to whole 4 MiB extents), `N%VG`, `N%FREE`, or `all`
   * (= `100%FREE`, "the rest"). At most one LV may use `%FREE`/`all`, and it must be the last.
   * Growing is in place (the filesystem grows with it); shrinking destroys the LV's data and needs
   * `allowWipe` (the LV is recreated empty).
   */
  readonly size: pulumi.Input<string>;
  /** `ext4`, `xfs` or `swap`. Changing it destroys the LV's data and needs `allowWipe`. */
  readonly filesystem: pulumi.Input<LvFilesystem>;
  /** Absolute mount point for the fstab line (ext4/xfs only; swap has none). Optional. */
  readonly mountPoint?: pulumi.Input<string>;
  /** fstab options. Default `defaults` (`sw` for swap). */
  readonly mountOptions?: pulumi.Input<string>;
}

export interface LvmGroupArgs {
  /** How to reach the host in each environment (rescue, initramfs, system); read from whichever is up. */
  readonly connection: pulumi.Input<pulumi.Input<ConnectionProfile>[]>;
  /**
   * Block devices to use as PVs (`/dev/mapper/cryptroot`, `/dev/md1`, `/dev/nvme1n1p2`). Adding one
   * extends the VG in place; removing one replaces the whole VG (needs `allowWipe`). A device that
   * carries any signature (filesystem, LUKS, partition table, another VG) is refused unless
   * `allowWipe` (wipe it; another VG's PV is always refused) or `adopt` (an existing VG of this name).
   */
  readonly pvs: pulumi.Input<pulumi.Input<string>[]>;
  /** VG name. Changing it is a replacement: the old VG and its data go first (needs `allowWipe`). */
  readonly vgName: pulumi.Input<string>;
  /** LVs in creation order; the `%FREE`/`all` one last. LVs in the VG but not listed are left alone. */
  readonly lvs: pulumi.Input<pulumi.Input<LogicalVolumeArgs>[]>;
  /**
   * Target root whose `etc/fstab` gets one line per LV with a mount point, and one per swap LV
   * (`/` on a running system, e.g. `/mnt` under rescue). Lines are written as `/dev/<vg>/<lv>` (what
   * Hetzner's installimage writes for LVs; survives a re-mkfs, unlike a filesystem UUID) and
   * replace any line for the same LV or the same mount point. Omit to leave fstab alone.
   */
  readonly fstabRoot?: pulumi.Input<string>;
  /** Allow destroying data: shrink/remove LVs, change filesystems, wipe PV signatures, and on delete remove LVs, VG and PV labels. Default false. */
  readonly allowWipe?: pulumi.Input<boolean>;
  /** Take over an existing VG of this name that this resource did not create (e.g. installimage's vg0). Default false. */
  readonly adopt?: pulumi.Input<boolean>;
  /** Total PV size in bytes, if known: lets `check` refuse LV sizes that cannot fit before any connection. */
  readonly pvSizeBytes?: pulumi.Input<number>;
}

export interface LogicalVolumeSpec {
  readonly name: string;
  readonly size: string;
  readonly filesystem: LvFilesystem;
  readonly mountPoint?: string;
  readonly mountOptions?: string;
}

export interface LvmGroupInputs {
  readonly connection: ConnectionProfile[];
  readonly pvs: string[];
  readonly vgName: string;
  readonly lvs: LogicalVolumeSpec[];
  readonly fstabRoot?: string;
  readonly allowWipe?: boolean;
  readonly adopt?: boolean;
  readonly pvSizeBytes?: number;
  readonly providerVersion: string;
}

/** One LV as found on the host. */
export interface VolumeState {
  readonly name: string;
  readonly uuid: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly extents: number;
  readonly active: boolean;
  /** blkid's TYPE (`ext4`, `xfs`, `swap`, …), or null when none (or the LV is inactive). */
  readonly filesystem: string | null;
  readonly filesystemUuid: string | null;
  /** Size the filesystem spans (ext4/xfs), or null when unknown. */
  readonly filesystemSizeBytes: number | null;
  /** Where it is mounted now (`[SWAP]` for active swap), or null. */
  readonly mountedAt: string | null;
  /** Whether the stack lists this LV (unlisted LVs are left alone). */
  readonly managed: boolean;
}

export interface PhysicalVolumeState {
  readonly path: string;
  readonly uuid: string;
  readonly sizeBytes: number;
}

export interface LvmGroupOutputs extends LvmGroupInputs {
  /** Which environment the last probe read from. */
  readonly environment: Environment;
  readonly host: string;
  readonly vgUuid: string;
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentSizeBytes: number;
  readonly extentCount: number;
  readonly freeExtents: number;
  readonly physicalVolumes: PhysicalVolumeState[];
  readonly volumes: VolumeState[];
  /** The lines of `<fstabRoot>/etc/fstab` that concern this VG's LVs, as found. */
  readonly fstabLines: string[];
}

/** A signature on a block device (`wipefs -J`). */
export interface DeviceSignature {
  readonly type: string;
  readonly uuid: string | null;
}

/** One requested PV device as found. */
export interface DeviceFacts {
  readonly path: string;
  readonly exists: boolean;
  readonly sizeBytes: number | null;
  readonly signatures: DeviceSignature[];
  /** The LVM PV on this device: its VG name ("" for an orphan PV). null when it is no PV. */
  readonly pv: { readonly uuid: string; readonly vgName: string; readonly sizeBytes: number } | null;
  readonly mountedAt: string | null;
  /** Kernel holders (dm devices on top): in use. */
  readonly holders: number;
}

export interface VgFacts {
  readonly name: string;
  readonly uuid: string;
  readonly tags: string[];
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentSizeBytes: number;
  readonly extentCount: number;
  readonly freeExtents: number;
  /** Every PV of this VG (paths as LVM names them). */
  readonly pvPaths: string[];
}

export interface LvmObserved {
  readonly devices: DeviceFacts[];
  readonly vg: VgFacts | null;
  readonly lvs: Omit<VolumeState, "managed">[];
  /** Text of `<fstabRoot>/etc/fstab`; null without fstabRoot; "" when the file is empty or absent. */
  readonly fstab: string | null;
  /** Whether `<fstabRoot>/etc` exists (a target root that is not mounted has none). */
  readonly fstabRootReady: boolean;
  /** LV requests recorded in the previous outputs (name → size), to tell a changed request from a re-derived one. */
  readonly requested: Record<string, string>;
}

export type LvmGroupStep =
  | { readonly kind: "wipeSignatures"; readonly device: string; readonly signatures: string[] }
  | { readonly kind: "pvcreate"; readonly device: string }
  | { readonly kind: "vgcreate"; readonly vgName: string; readonly devices: string[] }
  | { readonly kind: "vgextend"; readonly vgName: string; readonly devices: string[] }
  | { readonly kind: "adoptVg"; readonly vgName: string }
  | { readonly kind: "activate"; readonly vgName: string }
  | { readonly kind: "lvcreate"; readonly vgName: string; readonly lv: string; readonly extents: number }
  | { readonly kind: "lvextend"; readonly vgName: string; readonly lv: string; readonly extents: number; readonly extentSizeBytes: number }
  | { readonly kind: "growFilesystem"; readonly vgName: string; readonly lv: string; readonly filesystem: LvFilesystem }
  | { readonly kind: "mkfs"; readonly vgName: string; readonly lv: string; readonly filesystem: LvFilesystem; readonly wipe: boolean }
  | { readonly kind: "lvremove"; readonly vgName: string; readonly lv: string }
  | { readonly kind: "writeFstab"; readonly root: string; readonly expectedSha256: string; readonly text: string }
  | { readonly kind: "vgremove"; readonly vgName: string }
  | { readonly kind: "pvremove"; readonly device: string };

export interface LvmContext extends StepContext {
  readonly session: SshSession;
}

/** A plan that would destroy data (or act on foreign data) without permission; names the LV or device and the flag. */
export class LvmRefusal extends Error {
  readonly subject: string;
  constructor(subject: string, message: string) {
    super(message);
    this.name = "LvmRefusal";
    this.subject = subject;
    keepErrorMessage(this, message);
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes (pure)

export type LvSize =
  | { readonly kind: "fixed"; readonly bytes: number }
  | { readonly kind: "percentVg"; readonly percent: number }
  | { readonly kind: "percentFree"; readonly percent: number };

export type LvSizeParse = { readonly ok: true; readonly size: LvSize } | { readonly ok: false; readonly reason: string };

/** `8G`, `512M`, `2T` (via rules/size), `N%VG`, `N%FREE` (1-100), or `all` (= 100%FREE). */
export function parseLvSize(text: string): LvSizeParse {
  const percent = /^(\d+)%(VG|FREE)$/.exec(text.trim());
  if (percent) {
    const value = Number(percent[1]);
    if (value < 1 || value > 100) return { ok: false, reason: `expected a percentage from 1 to 100, found "${text}"` };
    return { ok: true, size: { kind: percent[2] === "VG" ? "percentVg" : "percentFree", percent: value } };
  }
  if (/%/.test(text)) {
    return { ok: false, reason: `expected N%VG or N%FREE (e.g. 20%VG, 100%FREE), found "${text}"; %PVS and %ORIGIN are not supported` };
  }
  const parsed = parseSize(text);
  if (!parsed.ok) return { ok: false, reason: `${parsed.reason.replace(/\(or "all"\)/, '(or N%VG, N%FREE, "all")')}` };
  if (parsed.size.kind === "all") return { ok: true, size: { kind: "percentFree", percent: 100 } };
  return { ok: true, size: { kind: "fixed", bytes: parsed.size.mib * MIB } };
}

/** Whether two size requests mean the same (`all` = `100%FREE`). */
export function sameSizeRequest(a: string, b: string): boolean {
  const pa = parseLvSize(a);
  const pb = parseLvSize(b);
  return pa.ok && pb.ok ? JSON.stringify(pa.size) === JSON.stringify(pb.size) : a === b;
}

/** Extents a fixed size needs: LVM rounds up to whole extents. */
export function extentsForBytes(bytes: number, extentSizeBytes: number): number {
  return Math.ceil(bytes / extentSizeBytes);
}

/**
 * The extents an LV should have. `%FREE` is taken of the space this LV could have — the VG's free
 * extents plus its own — so after creation the same request yields the same number, and `all`
 * (100%FREE) always means "own + whatever is free": that is what makes it converge.
 */
export function targetExtents(size: LvSize, geometry: { extentSizeBytes: number; extentCount: number }, freeExtents: number, ownExtents: number): number {
  switch (size.kind) {
    case "fixed":
      return extentsForBytes(size.bytes, geometry.extentSizeBytes);
    case "percentVg":
      return Math.floor((size.percent * geometry.extentCount) / 100);
    case "percentFree":
      return Math.floor((size.percent * (freeExtents + ownExtents)) / 100);
  }
}

export type SizeDecision = "keep" | "grow" | "shrink";

/**
 * What to do about an existing LV's size. A `%FREE` request that was not changed never shrinks: its
 * target moves when other LVs grow, and re-deriving it must not destroy data (nor report a change).
 */
export function decideSize(current: number, target: number, size: LvSize, requestChanged: boolean): SizeDecision {
  if (target > current + EXTENT_TOLERANCE || (size.kind === "percentFree" && size.percent === 100 && target > current)) return "grow";
  if (target < current - EXTENT_TOLERANCE && (size.kind !== "percentFree" || requestChanged)) return "shrink";
  return "keep";
}

/** Usable extents of PVs totalling `bytes` (LVM's pe_start per PV, whole extents), for check's estimate. */
export function estimateExtents(totalBytes: number, pvCount: number, extentSizeBytes = EXTENT_SIZE_BYTES): number {
  return Math.max(0, Math.floor((totalBytes - pvCount * PV_OVERHEAD_BYTES) / extentSizeBytes));
}

// ---------------------------------------------------------------------------------------------
// validate (pure; check)

export function validate(inputs: LvmGroupInputs): CheckFailure[] {
  return [
    ...(isUnknown(inputs.connection) ? [] : validateProfiles(inputs.connection, "connection")),
    ...validatePvs(inputs.pvs),
    ...validateVgName(inputs.vgName),
    ...validateLvs(inputs.lvs),
    ...validateCapacity(inputs),
    ...validateOptions(inputs),
  ];
}

export function validatePvs(pvs: unknown): CheckFailure[] {
  if (isUnknown(pvs)) return [];
  if (!Array.isArray(pvs) || pvs.length === 0) {
    return [{ property: "pvs", reason: `expected at least one block device path like "/dev/mapper/cryptroot", found ${JSON.stringify(pvs)}` }];
  }
  const failures: CheckFailure[] = [];
  pvs.forEach((pv, i) => {
    if (isUnknown(pv)) return;
    const reason = checkBlockDevicePath(pv);
    if (reason) failures.push({ property: `pvs[${i}]`, reason });
    else if (pvs.indexOf(pv) !== i) failures.push({ property: `pvs[${i}]`, reason: `"${pv}" is listed twice (also pvs[${pvs.indexOf(pv)}]); list each device once` });
  });
  return failures;
}

export function checkBlockDevicePath(path: unknown): string | undefined {
  if (typeof path !== "string") return `expected a device path string, found ${JSON.stringify(path)}`;
  if (!path.startsWith("/dev/")) {
    return `expected a block device path under /dev (e.g. /dev/mapper/cryptroot, /dev/md1), found "${path}"${path.startsWith("/") ? "" : `; write "/dev/${path}"`}`;
  }
  if (!DEVICE_PATH.test(path) || path.includes("/../") || path.endsWith("/")) {
    return `expected a device path of letters, digits and ._:+@-/ only, found "${path}"`;
  }
  return undefined;
}

/** LVM's name rules (lvm2 validate_name): charset, no leading '-', not '.'/'..', at most 127 characters. */
export function checkLvmName(name: unknown, what: "VG" | "LV"): string | undefined {
  if (typeof name !== "string" || name === "") return `expected a ${what} name, found ${JSON.stringify(name)}`;
  if (name === "." || name === "..") return `"${name}" is not a valid ${what} name`;
  if (name.length > 127) return `expected at most 127 characters, found ${name.length}`;
  if (!LVM_NAME.test(name)) {
    return `expected a ${what} name of A-Z a-z 0-9 + _ . - (not starting with "-"), found "${name}"`;
  }
  if (what === "LV") {
    const prefix = LV_RESERVED_PREFIXES.find((p) => name.startsWith(p));
    if (prefix) return `LVM reserves LV names starting with "${prefix}", found "${name}"; choose another name`;
    const part = LV_RESERVED_PARTS.find((p) => name.includes(p));
    if (part) return `LVM reserves "${part}" inside LV names (internal sub-volumes), found "${name}"; choose another name`;
  }
  return undefined;
}

function validateVgName(vgName: unknown): CheckFailure[] {
  if (isUnknown(vgName)) return [];
  const reason = checkLvmName(vgName, "VG");
  return reason ? [{ property: "vgName", reason }] : [];
}

export function validateLvs(lvs: unknown): CheckFailure[] {
  if (isUnknown(lvs)) return [];
  if (!Array.isArray(lvs)) return [{ property: "lvs", reason: `expected a list of {name, size, filesystem, mountPoint?}, found ${JSON.stringify(lvs)}` }];
  const failures: CheckFailure[] = [];
  const names = new Map<string, number>();
  const mounts = new Map<string, number>();
  let freeUser: number | null = null;
  lvs.forEach((lv: Partial<LogicalVolumeSpec>, i) => {
    const at = `lvs[${i}]`;
    const fail = (field: string, reason: string) => failures.push({ property: `${at}.${field}`, reason });
    if (lv === null || typeof lv !== "object") {
      failures.push({ property: at, reason: `expected {name, size, filesystem, mountPoint?}, found ${JSON.stringify(lv)}` });
      return;
    }
    if (!isUnknown(lv.name)) {
      const reason = checkLvmName(lv.name, "LV");
      if (reason) fail("name", reason);
      else if (names.has(lv.name as string)) fail("name", `LV name "${lv.name}" is used twice (also lvs[${names.get(lv.name as string)}]); LV names must be unique in a VG`);
      else names.set(lv.name as string, i);
    }
    if (!isUnknown(lv.size)) {
      const parsed = typeof lv.size === "string" ? parseLvSize(lv.size) : ({ ok: false, reason: `expected a size string like "8G", "20%VG" or "all", found ${JSON.stringify(lv.size)}` } as const);
      if (!parsed.ok) fail("size", parsed.reason);
      else if (parsed.size.kind === "percentFree") {
        if (freeUser !== null) fail("size", `only one LV can take a share of the free space, and lvs[${freeUser}] already uses "${lvs[freeUser].size}"; give this one an absolute or %VG size`);
        else if (i !== lvs.length - 1) fail("size", `"${lv.size}" takes what the LVs before it leave free, so it must be the last LV; move "${lv.name}" to the end of lvs`);
        freeUser = freeUser ?? i;
      }
    }
    if (!isUnknown(lv.filesystem) && !FILESYSTEMS.includes(lv.filesystem as LvFilesystem)) {
      fail("filesystem", `expected one of ${FILESYSTEMS.join(", ")}, found ${JSON.stringify(lv.filesystem)}`);
    }
    if (lv.mountPoint !== undefined && !isUnknown(lv.mountPoint)) {
      if (lv.filesystem === "swap") fail("mountPoint", `a swap LV has no mount point (its fstab line says "none"), found "${lv.mountPoint}"; remove mountPoint`);
      else {
        const reason = checkMountPoint(lv.mountPoint);
        if (reason) fail("mountPoint", reason);
        else if (mounts.has(lv.mountPoint)) fail("mountPoint", `"${lv.mountPoint}" is also the mount point of lvs[${mounts.get(lv.mountPoint)}]; each mount point takes one LV`);
        else mounts.set(lv.mountPoint, i);
      }
    }
    if (lv.mountOptions !== undefined && !isUnknown(lv.mountOptions) && !(typeof lv.mountOptions === "string" && FSTAB_FIELD.test(lv.mountOptions))) {
      fail("mountOptions", `expected comma-separated fstab options without spaces (e.g. "defaults,noatime"), found ${JSON.stringify(lv.mountOptions)}`);
    }
  });
  return failures;
}

export function checkMountPoint(mountPoint: unknown): string | undefined {
  if (typeof mountPoint !== "string" || !mountPoint.startsWith("/")) return `expected an absolute path like "/" or "/var", found ${JSON.stringify(mountPoint)}`;
  if (!FSTAB_FIELD.test(mountPoint)) return `expected a path without spaces or "#" (fstab cannot hold them unescaped), found "${mountPoint}"`;
  if (mountPoint !== "/" && (mountPoint.endsWith("/") || mountPoint.includes("//") || /(^|\/)\.\.?(\/|$)/.test(mountPoint))) {
    return `expected a normalised path (no trailing "/", "//", "." or ".."), found "${mountPoint}"`;
  }
  return undefined;
}

/** What can be known about fit before any connection: %VG over 100, and fixed sizes against `pvSizeBytes`. */
export function validateCapacity(inputs: Pick<LvmGroupInputs, "lvs" | "pvs" | "pvSizeBytes">): CheckFailure[] {
  if (!Array.isArray(inputs.lvs)) return [];
  const parsed = inputs.lvs.map((lv) => (lv && typeof lv.size === "string" && !isUnknown(lv.size) ? parseLvSize(lv.size) : null));
  const sizes = parsed.map((p) => (p && p.ok ? p.size : null));
  const failures: CheckFailure[] = [];
  const percentVg = sizes.reduce((sum, s) => sum + (s?.kind === "percentVg" ? s.percent : 0), 0);
  if (percentVg > 100) {
    failures.push({ property: "lvs", reason: `the %VG sizes add up to ${percentVg}% of the VG; they must not exceed 100%` });
  }
  const hint = inputs.pvSizeBytes;
  if (hint === undefined || isUnknown(hint)) return failures;
  if (typeof hint !== "number" || !Number.isSafeInteger(hint) || hint <= 0) {
    return [...failures, { property: "pvSizeBytes", reason: `expected a positive whole number of bytes, found ${JSON.stringify(hint)}` }];
  }
  const pvCount = Array.isArray(inputs.pvs) ? Math.max(1, inputs.pvs.length) : 1;
  const available = estimateExtents(hint, pvCount);
  const geometry = { extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: available };
  const needed = sizes.reduce((sum, s) => sum + (s && s.kind !== "percentFree" ? targetExtents(s, geometry, 0, 0) : 0), 0);
  const mib = (extents: number) => `${(extents * EXTENT_SIZE_BYTES) / MIB} MiB`;
  if (needed > available) {
    failures.push({
      property: "lvs",
      reason: `the LVs need ${mib(needed)} but the PVs (pvSizeBytes ${hint}) hold about ${mib(available)} of extents; make the LVs smaller or add a PV`,
    });
  } else {
    const restIndex = sizes.findIndex((s) => s?.kind === "percentFree");
    if (restIndex !== -1 && needed >= available) {
      failures.push({ property: `lvs[${restIndex}].size`, reason: `the LVs before it use all ${mib(available)}, so "${inputs.lvs[restIndex].size}" would get nothing; shrink the others` });
    }
  }
  return failures;
}

function validateOptions(inputs: LvmGroupInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  for (const flag of ["allowWipe", "adopt"] as const) {
    const value = inputs[flag];
    if (value !== undefined && !isUnknown(value) && typeof value !== "boolean") failures.push({ property: flag, reason: `expected true or false, found ${JSON.stringify(value)}` });
  }
  const root = inputs.fstabRoot;
  if (root !== undefined && !isUnknown(root)) {
    if (typeof root !== "string" || !root.startsWith("/") || !FSTAB_FIELD.test(root)) {
      failures.push({ property: "fstabRoot", reason: `expected an absolute path like "/" or "/mnt" (the root whose etc/fstab gets the LVs), found ${JSON.stringify(root)}` });
    }
  }
  return failures;
}

/**
 * Changes between the previous inputs and the new ones that destroy data, refused unless the new
 * inputs set `allowWipe`. Each failure names the LV. (What only the host shows — an LV grown by hand
 * beyond its size — is refused by the plan at update time instead.)
 */
export function validateDestructiveChanges(olds: Partial<LvmGroupInputs>, news: LvmGroupInputs): CheckFailure[] {
  if (news.allowWipe === true || !olds || !Array.isArray(olds.lvs) || typeof olds.vgName !== "string") return [];
  const failures: CheckFailure[] = [];
  const hint = "; set allowWipe: true to allow it";
  if (typeof news.vgName === "string" && !isUnknown(news.vgName) && news.vgName !== olds.vgName) {
    failures.push({ property: "vgName", reason: `renaming VG "${olds.vgName}" to "${news.vgName}" replaces it: VG "${olds.vgName}" and all its LVs (${olds.lvs.map((lv) => lv.name).join(", ")}) would be destroyed${hint}` });
    return failures;
  }
  if (Array.isArray(olds.pvs) && Array.isArray(news.pvs) && !isUnknown(news.pvs)) {
    const dropped = olds.pvs.filter((pv) => !news.pvs.includes(pv));
    if (dropped.length > 0) failures.push({ property: "pvs", reason: `removing PV ${dropped.join(", ")} replaces VG "${olds.vgName}" and destroys all its LVs${hint}` });
  }
  if (!Array.isArray(news.lvs) || isUnknown(news.lvs)) return failures;
  const vg = olds.vgName;
  for (const old of olds.lvs) {
    const index = news.lvs.findIndex((lv) => lv && lv.name === old.name);
    if (index === -1) {
      failures.push({ property: "lvs", reason: `removing LV "${old.name}" (${vg}/${old.name}) destroys its data${hint}, or put it back in lvs` });
      continue;
    }
    const lv = news.lvs[index];
    if (!isUnknown(lv.filesystem) && lv.filesystem !== old.filesystem) {
      failures.push({ property: `lvs[${index}].filesystem`, reason: `changing LV "${old.name}" (${vg}/${old.name}) from ${old.filesystem} to ${lv.filesystem} destroys its data${hint}` });
    }
    if (!isUnknown(lv.size) && isShrink(old.size, lv.size)) {
      failures.push({ property: `lvs[${index}].size`, reason: `shrinking LV "${old.name}" (${vg}/${old.name}) from ${old.size} to ${lv.size} destroys its data (it is recreated empty)${hint}` });
    }
  }
  return failures;
}

/** Whether `to` is smaller than `from`, when the two can be compared without knowing the VG. */
export function isShrink(from: string, to: string): boolean {
  const a = parseLvSize(from);
  const b = parseLvSize(to);
  if (!a.ok || !b.ok || a.size.kind !== b.size.kind) return false;
  if (a.size.kind === "fixed" && b.size.kind === "fixed") return extentsForBytes(b.size.bytes, EXTENT_SIZE_BYTES) < extentsForBytes(a.size.bytes, EXTENT_SIZE_BYTES);
  return (b.size as { percent: number }).percent < (a.size as { percent: number }).percent;
}

// ---------------------------------------------------------------------------------------------
// plan / diff (pure)

/**
 * Observed + desired → the steps still to run; empty when converged. It plans in phases, because
 * LV sizes cannot be computed before the VG (and its extent size) exists, nor filesystems judged
 * while LVs are inactive: PVs and VG first, then activation, then LVs, filesystems and fstab. The
 * provider re-probes and re-plans until the plan is empty.
 *
 * Throws LvmRefusal for anything that would destroy data without `allowWipe`, or touch a VG we did
 * not create without `adopt`.
 */
export function plan(observed: LvmObserved, desired: LvmGroupInputs): LvmGroupStep[] {
  const storage = planStorage(observed, desired);
  if (storage.length > 0) return storage;
  const vg = observed.vg as VgFacts;
  if (observed.lvs.some((lv) => !lv.active)) return [{ kind: "activate", vgName: vg.name }];
  return [...planVolumes(observed, desired, vg), ...planFstab(observed, desired)];
}

function planStorage(observed: LvmObserved, desired: LvmGroupInputs): LvmGroupStep[] {
  const { vgName } = desired;
  const allowWipe = desired.allowWipe === true;
  const steps: LvmGroupStep[] = [];
  const vg = observed.vg;
  if (vg && !vg.tags.includes(OWNER_TAG)) {
    if (!desired.adopt) {
      throw new LvmRefusal(vgName, `VG "${vgName}" already exists on the host and was not created by this stack (no "${OWNER_TAG}" tag); set adopt: true to manage it as it is, or choose another vgName`);
    }
    // Paths may be spelt differently (/dev/dm-0 vs /dev/mapper/x), so count the listed devices that are its PVs.
    const listed = observed.devices.filter((d) => d.pv?.vgName === vgName).length;
    if (listed < vg.pvPaths.length) {
      throw new LvmRefusal(vgName, `VG "${vgName}" lives on ${vg.pvPaths.join(", ")}, and pvs lists only ${listed} of them; list all its PVs to adopt it`);
    }
  }
  const joining: string[] = [];
  for (const device of observed.devices) {
    if (!device.exists) throw new LvmRefusal(device.path, `PV device ${device.path} does not exist on the host; open the LUKS mapping or assemble the array first, or fix pvs`);
    if (device.pv) {
      if (device.pv.vgName === vgName) continue;
      if (device.pv.vgName !== "") {
        throw new LvmRefusal(device.path, `${device.path} is a PV of another VG "${device.pv.vgName}"; this resource never takes a PV from another VG (remove that VG with vgremove first, or fix pvs)`);
      }
      joining.push(device.path); // an orphan PV label holds no data: e.g. our own pvcreate before a killed vgcreate
      continue;
    }
    if (device.signatures.length > 0) {
      const found = device.signatures.map((s) => s.type).join(", ");
      if (!allowWipe) {
        throw new LvmRefusal(device.path, `${device.path} already carries data (${found} signature); set allowWipe: true to wipe it, or fix pvs`);
      }
      if (device.mountedAt || device.holders > 0) {
        throw new LvmRefusal(device.path, `${device.path} carries ${found} and is in use (${device.mountedAt ? `mounted at ${device.mountedAt}` : "held by a device-mapper device"}); unmount or close it first`);
      }
      steps.push({ kind: "wipeSignatures", device: device.path, signatures: device.signatures.map((s) => s.type) });
    }
    steps.push({ kind: "pvcreate", device: device.path });
    joining.push(device.path);
  }
  if (!vg) {
    steps.push({ kind: "vgcreate", vgName, devices: joining });
  } else {
    if (!vg.tags.includes(OWNER_TAG)) steps.push({ kind: "adoptVg", vgName });
    if (joining.length > 0) steps.push({ kind: "vgextend", vgName, devices: joining });
  }
  return steps;
}

function planVolumes(observed: LvmObserved, desired: LvmGroupInputs, vg: VgFacts): LvmGroupStep[] {
  const allowWipe = desired.allowWipe === true;
  const refuse = (lv: string, verb: string, detail: string) => {
    throw new LvmRefusal(lv, `${verb} LV "${lv}" (${vg.name}/${lv})${detail} destroys its data; set allowWipe: true to allow it`);
  };
  const steps: LvmGroupStep[] = [];
  let free = vg.freeExtents;

  // Removals first: they free the space later LVs may need.
  for (const name of Object.keys(observed.requested)) {
    if (desired.lvs.some((lv) => lv.name === name)) continue;
    const existing = observed.lvs.find((lv) => lv.name === name);
    if (!existing) continue;
    if (!allowWipe) refuse(name, "removing", ", which the stack no longer lists,");
    steps.push({ kind: "lvremove", vgName: vg.name, lv: name });
    free += existing.extents;
  }

  for (const lv of desired.lvs) {
    const parsed = parseLvSize(lv.size);
    if (!parsed.ok) throw new Error(`lvs "${lv.name}": ${parsed.reason}`);
    const existing = observed.lvs.find((o) => o.name === lv.name);
    const own = existing?.extents ?? 0;
    const target = targetExtents(parsed.size, vg, free, own);
    if (!existing) {
      if (target < 1) throw new LvmRefusal(lv.name, `LV "${lv.name}" (${lv.size}) would get no space: VG "${vg.name}" has ${free} free extents left for it; make the LVs before it smaller or add a PV`);
      if (target > free) throw new LvmRefusal(lv.name, `LV "${lv.name}" needs ${target} extents (${lv.size}) but VG "${vg.name}" has only ${free} free; make it smaller or add a PV`);
      steps.push({ kind: "lvcreate", vgName: vg.name, lv: lv.name, extents: target });
      steps.push({ kind: "mkfs", vgName: vg.name, lv: lv.name, filesystem: lv.filesystem, wipe: false });
      free -= target;
      continue;
    }
    const requestChanged = observed.requested[lv.name] !== undefined && !sameSizeRequest(observed.requested[lv.name], lv.size);
    const decision = decideSize(own, target, parsed.size, requestChanged);
    const fsDiffers = existing.filesystem !== null && existing.filesystem !== lv.filesystem;
    if (decision === "shrink") {
      if (!allowWipe) refuse(lv.name, "shrinking", ` from ${own} to ${target} extents (${lv.size}; it would be recreated empty)`);
      steps.push({ kind: "lvremove", vgName: vg.name, lv: lv.name });
      steps.push({ kind: "lvcreate", vgName: vg.name, lv: lv.name, extents: target });
      steps.push({ kind: "mkfs", vgName: vg.name, lv: lv.name, filesystem: lv.filesystem, wipe: false });
      free += own - target;
      continue;
    }
    if (fsDiffers && !allowWipe) refuse(lv.name, "changing the filesystem of", ` from ${existing.filesystem} to ${lv.filesystem}`);
    if (decision === "grow") {
      if (target - own > free) {
        throw new LvmRefusal(lv.name, `growing LV "${lv.name}" to ${target} extents (${lv.size}) needs ${target - own} free extents, VG "${vg.name}" has ${free}; add a PV or make a later LV smaller (which needs allowWipe)`);
      }
      steps.push({ kind: "lvextend", vgName: vg.name, lv: lv.name, extents: target, extentSizeBytes: vg.extentSizeBytes });
      free -= target - own;
    }
    if (existing.filesystem === null || fsDiffers) {
      steps.push({ kind: "mkfs", vgName: vg.name, lv: lv.name, filesystem: lv.filesystem, wipe: fsDiffers });
    } else if (decision === "grow" || filesystemLagsBehind(existing, vg.extentSizeBytes)) {
      steps.push({ kind: "growFilesystem", vgName: vg.name, lv: lv.name, filesystem: lv.filesystem });
    }
  }
  return steps;
}

/** An LV grown before a killed run could grow its filesystem: the filesystem is over an extent short. */
function filesystemLagsBehind(lv: Omit<VolumeState, "managed">, extentSizeBytes: number): boolean {
  return lv.filesystemSizeBytes !== null && lv.sizeBytes - lv.filesystemSizeBytes >= extentSizeBytes;
}

function planFstab(observed: LvmObserved, desired: LvmGroupInputs): LvmGroupStep[] {
  if (desired.fstabRoot === undefined) return [];
  if (!observed.fstabRootReady) {
    throw new LvmRefusal(desired.fstabRoot, `fstabRoot "${desired.fstabRoot}" has no etc/ directory on the host; mount the target root there first, or omit fstabRoot`);
  }
  const current = observed.fstab ?? "";
  const text = editFstab(current, desired, observed.lvs);
  if (text === current) return [];
  return [{ kind: "writeFstab", root: desired.fstabRoot, expectedSha256: sha256Hex(current), text }];
}

// ---------------------------------------------------------------------------------------------
// fstab (pure)

/** The fstab line for an LV, or null when it has none (no mount point and not swap). */
export function fstabLine(vgName: string, lv: LogicalVolumeSpec): string | null {
  const device = `/dev/${vgName}/${lv.name}`;
  if (lv.filesystem === "swap") return `${device} none swap ${lv.mountOptions ?? "sw"} 0 0`;
  if (!lv.mountPoint) return null;
  const pass = lv.filesystem === "xfs" ? 0 : lv.mountPoint === "/" ? 1 : 2;
  return `${device} ${lv.mountPoint} ${lv.filesystem} ${lv.mountOptions ?? "defaults"} 0 ${pass}`;
}

/** Every spelling of the LV's device an fstab line may use. */
function deviceSpellings(vgName: string, lvName: string, filesystemUuid: string | null): string[] {
  const mapper = `/dev/mapper/${vgName.replace(/-/g, "--")}-${lvName.replace(/-/g, "--")}`;
  return [`/dev/${vgName}/${lvName}`, mapper, ...(filesystemUuid ? [`UUID=${filesystemUuid}`, `/dev/disk/by-uuid/${filesystemUuid}`] : [])];
}

/** Whether an fstab line concerns one of the VG's LVs (by any spelling of its device). */
export function isVgFstabLine(line: string, vgName: string, lvs: readonly { name: string; filesystemUuid?: string | null }[]): boolean {
  const device = line.trim().split(/\s+/)[0];
  if (!device || device.startsWith("#")) return false;
  if (device.startsWith(`/dev/${vgName}/`)) return true;
  return lvs.some((lv) => deviceSpellings(vgName, lv.name, lv.filesystemUuid ?? null).includes(device));
}

/**
 * The fstab with this VG's lines in place: every line for one of the VG's LVs, or for a mount point
 * one of the LVs takes, is removed, and the desired lines (shallowest mount first) go where the first
 * removed line was, or at the end. Applying it twice gives the same text, which is what makes a
 * second run a no-op.
 */
export function editFstab(current: string, desired: Pick<LvmGroupInputs, "vgName" | "lvs">, observedLvs: readonly { name: string; filesystemUuid: string | null }[]): string {
  const wanted = orderForMounting(desired.lvs)
    .map((lv) => fstabLine(desired.vgName, lv))
    .filter((line): line is string => line !== null);
  const takenMounts = new Set(desired.lvs.filter((lv) => lv.filesystem !== "swap" && lv.mountPoint).map((lv) => lv.mountPoint as string));
  const lines = current === "" ? [] : current.replace(/\n$/, "").split("\n");
  const kept: string[] = [];
  let insertAt = -1;
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    const ours = isVgFstabLine(line, desired.vgName, [...observedLvs, ...desired.lvs]) || (!line.trim().startsWith("#") && fields.length > 1 && takenMounts.has(fields[1]));
    if (ours) {
      if (insertAt === -1) insertAt = kept.length;
      continue;
    }
    kept.push(line);
  }
  if (insertAt === -1) insertAt = kept.length;
  const result = [...kept.slice(0, insertAt), ...wanted, ...kept.slice(insertAt)];
  return result.length === 0 ? "" : result.join("\n") + "\n";
}

function orderForMounting(lvs: readonly LogicalVolumeSpec[]): LogicalVolumeSpec[] {
  const depth = (lv: LogicalVolumeSpec) => (lv.filesystem === "swap" ? 1000 : lv.mountPoint === "/" ? 0 : (lv.mountPoint ?? "").split("/").length);
  return [...lvs].sort((a, b) => depth(a) - depth(b));
}

function sha256Hex(text: string): string {
  // Required here rather than imported at the top: the closure serializer then captures it by reference.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require("crypto") as typeof import("crypto");
  return crypto.createHash("sha256").update(text).digest("hex");
}

// ---------------------------------------------------------------------------------------------
// diff (pure, no SSH): the plan run against what the outputs recorded

/** What the last create/update/read recorded, in the shape a probe returns. */
export function observedFromOutputs(olds: LvmGroupOutputs): LvmObserved {
  const vg: VgFacts = {
    name: olds.vgName,
    uuid: olds.vgUuid,
    tags: [OWNER_TAG],
    sizeBytes: olds.sizeBytes,
    freeBytes: olds.freeBytes,
    extentSizeBytes: olds.extentSizeBytes,
    extentCount: olds.extentCount,
    freeExtents: olds.freeExtents,
    pvPaths: olds.physicalVolumes.map((pv) => pv.path),
  };
  const recorded = new Set(olds.physicalVolumes.map((pv) => pv.path));
  return {
    // A PV the outputs do not know is "a device to make a PV": all the plan needs to report a change.
    devices: olds.pvs.map((path) => ({
      path,
      exists: true,
      sizeBytes: null,
      signatures: [],
      pv: recorded.has(path) ? { uuid: "", vgName: olds.vgName, sizeBytes: 0 } : null,
      mountedAt: null,
      holders: 0,
    })),
    vg,
    lvs: olds.volumes.map(({ managed: _managed, ...lv }) => lv),
    fstab: olds.fstabRoot === undefined ? null : olds.fstabLines.length === 0 ? "" : olds.fstabLines.join("\n") + "\n",
    fstabRootReady: true,
    requested: requestsOf(olds.lvs),
  };
}

function requestsOf(lvs: readonly LogicalVolumeSpec[] | undefined): Record<string, string> {
  return Object.fromEntries((lvs ?? []).map((lv) => [lv.name, lv.size]));
}

/** What `diff` reports: a replacement for a new VG name or a dropped PV; otherwise any step to run, or a changed setting. */
export function compareOutputs(olds: LvmGroupOutputs, news: LvmGroupInputs): pulumi.dynamic.DiffResult {
  const replaces: string[] = [];
  if (isUnknown(news.vgName) || olds.vgName !== news.vgName) replaces.push("vgName");
  if (isUnknown(news.pvs) || (Array.isArray(news.pvs) && olds.pvs.some((pv) => !news.pvs.includes(pv)))) replaces.push("pvs");
  // Old and new VG would claim the same PVs: the old one must go first.
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };
  return { changes: settingsChanged(olds, news) || stepsPending(olds, news) };
}

// Value by value: `news` also carries __provider, whose code text contains the sentinel itself.
function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  return value !== null && typeof value === "object" && Object.values(value).some(containsUnknown);
}

function settingsChanged(olds: LvmGroupOutputs, news: LvmGroupInputs): boolean {
  const keys = ["connection", "lvs", "fstabRoot", "allowWipe", "adopt", "pvSizeBytes", "pvs"] as const;
  return providerVersionChanged(olds, news) || keys.some((key) => JSON.stringify(olds[key] ?? null) !== JSON.stringify(news[key] ?? null));
}

function stepsPending(olds: LvmGroupOutputs, news: LvmGroupInputs): boolean {
  if (containsUnknown(inputsFromOutputs(news))) return true; // not known until the program runs: assume a change
  try {
    // allowWipe only to see what would be needed; check and update decide whether it is allowed.
    return plan(observedFromOutputs(olds), { ...news, allowWipe: true }).length > 0;
  } catch {
    return true; // something stands in the way: update will say what
  }
}

// ---------------------------------------------------------------------------------------------
// probe (one read-only round trip)

/** The probe script: pvs/vgs/lvs as JSON, each PV device's signatures, each LV's filesystem, fstab. */
export function probeScript(subject: { vgName: string; pvs: readonly string[]; fstabRoot?: string }): ShellCommand {
  const devices = subject.pvs.map(
    (path, index) => sh`printf '%s{"index":%d' ${index === 0 ? "" : ","} ${index}
d=${path}
if [ -b "$d" ]; then
  printf ',"exists":true,"sizeBytes":%s,"mountedAt":"%s","holders":%s,"signatures":' "$(blockdev --getsize64 "$d")" "$(findmnt -n -o TARGET -S "$d" | head -n1)" "$(ls "/sys/class/block/$(basename "$(readlink -f "$d")")/holders" 2>/dev/null | wc -l)"
  wipefs -J "$d" 2>/dev/null | grep . || printf '{"signatures":[]}'
  printf ',"majMin":"%s"' "$(stat -L -c '%t:%T' "$d")"
else
  printf ',"exists":false'
fi
printf '}'`,
  );
  const fstab = subject.fstabRoot === undefined
    ? sh`printf ',"fstabRootReady":false,"fstab":null'`
    : sh`r=${subject.fstabRoot}
if [ -d "$r/etc" ]; then printf ',"fstabRootReady":true,"fstab":"%s"' "$(base64 -w0 "$r/etc/fstab" 2>/dev/null)"; else printf ',"fstabRootReady":false,"fstab":null'; fi`;
  return joinShell(
    [
      sh`vg=${subject.vgName}
lvmjson() { "$@" --reportformat json --units b --nosuffix 2>/dev/null || printf '{"report":[{}]}'; }
printf '{"pvs":'; lvmjson pvs -o pv_name,vg_name,pv_uuid,pv_size,pv_major,pv_minor
printf ',"vgs":'; lvmjson vgs -o vg_name,vg_uuid,vg_tags,vg_size,vg_free,vg_extent_size,vg_extent_count,vg_free_count
printf ',"lvs":'; lvmjson lvs -o lv_name,vg_name,lv_uuid,lv_size,lv_path,lv_active -S "vg_name=$vg"
printf ',"devices":['`,
      ...devices,
      sh`printf '],"filesystems":['; sep=''
for lv in $(lvs --noheadings -o lv_name -S "vg_name=$vg" 2>/dev/null); do
  p="/dev/$vg/$lv"; t=''; u=''; s=''; m=''
  if [ -b "$p" ]; then
    t=$(blkid -p -s TYPE -o value "$p" 2>/dev/null | tr -cd 'A-Za-z0-9_.-')
    u=$(blkid -p -s UUID -o value "$p" 2>/dev/null | tr -cd 'A-Za-z0-9_.-')
    m=$(lsblk -n -o MOUNTPOINT "$p" 2>/dev/null | head -n1 | tr -d '"')
    # printf "%.0f", not "%d": mawk (Debian's default awk) caps %d at 2^31-1.
    case "$t" in
      ext2|ext3|ext4) s=$(dumpe2fs -h "$p" 2>/dev/null | awk -F: '/^Block count:/{c=$2} /^Block size:/{b=$2} END{if(c&&b) printf "%.0f", c*b}') ;;
      xfs) s=$(xfs_db -r -c 'sb 0' -c 'p dblocks' -c 'p blocksize' "$p" 2>/dev/null | awk '/^dblocks/{c=$3} /^blocksize/{b=$3} END{if(c&&b) printf "%.0f", c*b}') ;;
    esac
  fi
  printf '%s{"lv":"%s","type":"%s","uuid":"%s","sizeBytes":"%s","mountedAt":"%s"}' "$sep" "$lv" "$t" "$u" "$s" "$m"; sep=,
done
printf ']'`,
      fstab,
      sh`printf '}'`,
    ],
    ";",
  );
}

interface RawLvmReport<K extends string> {
  report: Array<Partial<Record<K, Array<Record<string, string>>>>>;
}

export interface RawProbe {
  pvs: RawLvmReport<"pv">;
  vgs: RawLvmReport<"vg">;
  lvs: RawLvmReport<"lv">;
  devices: Array<{ index: number; exists: boolean; sizeBytes?: number; mountedAt?: string; holders?: number; signatures?: { signatures: Array<{ type: string; uuid?: string | null }> }; majMin?: string }>;
  filesystems: Array<{ lv: string; type: string; uuid: string; sizeBytes: string; mountedAt: string }>;
  fstabRootReady: boolean;
  fstab: string | null;
}

function rows<K extends string>(report: RawLvmReport<K> | undefined, key: K): Array<Record<string, string>> {
  if (!report || !Array.isArray(report.report)) throw new Error(`expected {"report":[{"${key}":[…]}]}, found ${JSON.stringify(report)?.slice(0, 200)}`);
  return report.report.flatMap((section) => section[key] ?? []);
}

function num(value: string | undefined, what: string): number {
  const n = Number(value);
  if (value === undefined || value === "" || !Number.isFinite(n)) throw new Error(`expected a number for ${what}, found ${JSON.stringify(value)}`);
  return n;
}

/** Parses the probe's JSON (lvm2 `--reportformat json --units b --nosuffix`, wipefs -J, blkid) into facts. */
export function parseProbe(json: unknown, subject: { vgName: string; pvs: readonly string[] }): Omit<LvmObserved, "requested"> {
  const raw = json as RawProbe;
  const pvRows = rows(raw.pvs, "pv");
  const vgRow = rows(raw.vgs, "vg").find((vg) => vg.vg_name === subject.vgName);
  const extentSize = vgRow ? num(vgRow.vg_extent_size, "vg_extent_size") : EXTENT_SIZE_BYTES;
  const vg: VgFacts | null = vgRow
    ? {
        name: vgRow.vg_name,
        uuid: vgRow.vg_uuid,
        tags: vgRow.vg_tags ? vgRow.vg_tags.split(",") : [],
        sizeBytes: num(vgRow.vg_size, "vg_size"),
        freeBytes: num(vgRow.vg_free, "vg_free"),
        extentSizeBytes: extentSize,
        extentCount: num(vgRow.vg_extent_count, "vg_extent_count"),
        freeExtents: num(vgRow.vg_free_count, "vg_free_count"),
        pvPaths: pvRows.filter((pv) => pv.vg_name === subject.vgName).map((pv) => pv.pv_name),
      }
    : null;
  const filesystems = new Map((raw.filesystems ?? []).map((fs) => [fs.lv, fs]));
  const lvs = vg
    ? rows(raw.lvs, "lv")
        .filter((lv) => lv.vg_name === subject.vgName)
        .map((lv) => {
          const fs = filesystems.get(lv.lv_name);
          const sizeBytes = num(lv.lv_size, "lv_size");
          return {
            name: lv.lv_name,
            uuid: lv.lv_uuid,
            path: lv.lv_path || `/dev/${subject.vgName}/${lv.lv_name}`,
            sizeBytes,
            extents: Math.round(sizeBytes / extentSize),
            active: lv.lv_active === "active",
            filesystem: fs?.type ? fs.type : null,
            filesystemUuid: fs?.uuid ? fs.uuid : null,
            filesystemSizeBytes: fs?.sizeBytes ? Number(fs.sizeBytes) : null,
            mountedAt: fs?.mountedAt ? fs.mountedAt : null,
          };
        })
    : [];
  const devices = subject.pvs.map((path, index): DeviceFacts => {
    const d = (raw.devices ?? []).find((x) => x.index === index);
    if (!d || !d.exists) return { path, exists: false, sizeBytes: null, signatures: [], pv: null, mountedAt: null, holders: 0 };
    const majMin = hexMajMinToDecimal(d.majMin);
    const pvRow = pvRows.find((pv) => pv.pv_name === path || (majMin !== null && `${pv.pv_major}:${pv.pv_minor}` === majMin));
    return {
      path,
      exists: true,
      sizeBytes: d.sizeBytes ?? null,
      signatures: (d.signatures?.signatures ?? []).map((s) => ({ type: s.type, uuid: s.uuid ?? null })),
      pv: pvRow ? { uuid: pvRow.pv_uuid, vgName: pvRow.vg_name ?? "", sizeBytes: num(pvRow.pv_size, "pv_size") } : null,
      mountedAt: d.mountedAt ? d.mountedAt : null,
      holders: d.holders ?? 0,
    };
  });
  const fstab = raw.fstab === null || raw.fstab === undefined ? null : Buffer.from(raw.fstab, "base64").toString("utf8");
  return { devices, vg, lvs, fstab, fstabRootReady: raw.fstabRootReady === true };
}

function hexMajMinToDecimal(text: string | undefined): string | null {
  const m = /^([0-9a-f]+):([0-9a-f]+)$/i.exec(text ?? "");
  return m ? `${parseInt(m[1], 16)}:${parseInt(m[2], 16)}` : null;
}

export async function probe(ctx: LvmContext, subject: LvmGroupInputs | LvmGroupOutputs): Promise<LvmObserved> {
  const facts = await runProbe(ctx.session, probeScript(subject), (json) => parseProbe(json, subject));
  const requested = "vgUuid" in subject ? requestsOf(subject.lvs) : {};
  return { ...facts, requested };
}

// ---------------------------------------------------------------------------------------------
// steps (the only effects; each guarded so a re-run converges)

const lvPath = (step: { vgName: string; lv: string }) => `/dev/${step.vgName}/${step.lv}`;

async function wipeSignatures(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "wipeSignatures" }>): Promise<void> {
  // Re-checked right before acting: never wipe a PV of some VG, nor a device in use.
  await ctx.session.exec(sh`d=${step.device}
if pvs "$d" >/dev/null 2>&1; then echo "$d became an LVM PV since the probe; not wiping it" >&2; exit 3; fi
if findmnt -S "$d" >/dev/null 2>&1; then echo "$d is mounted; not wiping it" >&2; exit 3; fi
wipefs -a "$d"`);
}

async function pvcreate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "pvcreate" }>): Promise<void> {
  // No -y/-ff: pvcreate itself refuses a device with a signature it would destroy.
  await ctx.session.exec(sh`pvs ${step.device} >/dev/null 2>&1 || pvcreate ${step.device}`);
}

async function vgcreate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "vgcreate" }>): Promise<void> {
  // The owner tag is set in the same command, so no VG of ours ever exists untagged.
  await ctx.session.exec(sh`vgs ${step.vgName} >/dev/null 2>&1 || vgcreate --addtag ${OWNER_TAG} -s ${`${EXTENT_SIZE_BYTES / MIB}m`} ${step.vgName} ${step.devices}`);
}

async function vgextend(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "vgextend" }>): Promise<void> {
  await ctx.session.exec(sh`vgextend ${step.vgName} ${step.devices}`);
}

async function adoptVg(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "adoptVg" }>): Promise<void> {
  await ctx.session.exec(sh`vgchange --addtag ${OWNER_TAG} ${step.vgName}`);
}

async function activate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "activate" }>): Promise<void> {
  await ctx.session.exec(sh`vgchange -ay ${step.vgName}`);
}

async function lvcreate(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "lvcreate" }>): Promise<void> {
  // --wipesignatures: extents freed by an old LV may still hold its filesystem's signature, and the
  // mkfs guard would then take that stale filesystem for ours.
  await ctx.session.exec(
    sh`lvs ${`${step.vgName}/${step.lv}`} >/dev/null 2>&1 || lvcreate --yes --wipesignatures y --zero y -n ${step.lv} -l ${step.extents} ${step.vgName}`,
  );
}

async function lvextend(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "lvextend" }>): Promise<void> {
  const bytes = step.extents * step.extentSizeBytes;
  const name = `${step.vgName}/${step.lv}`;
  await ctx.session.exec(sh`test "$(lvs --noheadings --units b --nosuffix -o lv_size ${name} | tr -d ' ')" -ge ${bytes} || lvextend -l ${step.extents} ${name}`);
}

async function growFilesystem(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "growFilesystem" }>): Promise<void> {
  const dev = lvPath(step);
  switch (step.filesystem) {
    case "ext4":
      // Online when mounted; offline resize2fs insists on a fresh fsck first.
      await ctx.session.exec(sh`d=${dev}
if findmnt -S "$d" >/dev/null 2>&1; then resize2fs "$d"; else e2fsck -f -p "$d"; rc=$?; [ "$rc" -le 1 ] || exit "$rc"; resize2fs "$d"; fi`);
      return;
    case "xfs":
      // xfs_growfs works only on a mounted filesystem: mount it on a private temporary directory if need be.
      await ctx.session.exec(sh`d=${dev}
m=$(findmnt -n -o TARGET -S "$d" | head -n1)
if [ -n "$m" ]; then xfs_growfs "$m"; exit $?; fi
t=$(mktemp -d) && mount -t xfs "$d" "$t" || exit 1
xfs_growfs "$t"; rc=$?; umount "$t"; rmdir "$t"; exit "$rc"`);
      return;
    case "swap":
      // mkswap again over the larger LV, keeping the UUID so resume= and fstab still match.
      await ctx.session.exec(sh`d=${dev}
u=$(blkid -p -s UUID -o value "$d")
on=0; if grep -q "^$(readlink -f "$d") " /proc/swaps; then on=1; swapoff "$d" || exit 1; fi
mkswap \${u:+-U "$u"} "$d" >/dev/null; rc=$?
[ "$on" = 1 ] && swapon "$d"; exit "$rc"`);
      return;
  }
}

async function mkfs(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "mkfs" }>): Promise<void> {
  const make = { ext4: sh`mkfs.ext4 -q "$d"`, xfs: sh`mkfs.xfs -q "$d"`, swap: sh`mkswap "$d" >/dev/null` }[step.filesystem];
  // Guarded on the host: the filesystem asked for is already there → nothing to do; another one → only with wipe.
  await ctx.session.exec(sh`d=${lvPath(step)}
t=$(blkid -p -s TYPE -o value "$d" 2>/dev/null)
if [ "$t" = ${step.filesystem} ]; then exit 0; fi
if [ -n "$t" ]; then
  if [ ${step.wipe ? "yes" : "no"} != yes ]; then echo "$d carries $t, not ${step.filesystem}; not formatting it without allowWipe" >&2; exit 3; fi
  if findmnt -S "$d" >/dev/null 2>&1; then echo "$d is mounted; unmount it first" >&2; exit 3; fi
  wipefs -a "$d" >/dev/null || exit 1
fi
${make}`);
}

async function lvremove(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "lvremove" }>): Promise<void> {
  await ctx.session.exec(sh`d=${lvPath(step)}
lvs ${`${step.vgName}/${step.lv}`} >/dev/null 2>&1 || exit 0
if findmnt -S "$d" >/dev/null 2>&1; then echo "$d is mounted; unmount it first" >&2; exit 3; fi
if grep -q "^$(readlink -f "$d") " /proc/swaps 2>/dev/null; then echo "$d is an active swap; swapoff it first" >&2; exit 3; fi
lvremove --yes ${`${step.vgName}/${step.lv}`}`);
}

async function writeFstab(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "writeFstab" }>): Promise<void> {
  // Only over the text the plan was made from: an fstab edited since then is not overwritten.
  const file = `${step.root.replace(/\/$/, "")}/etc/fstab`;
  await ctx.session.exec(
    sh`f=${file}
cur=$(cat "$f" 2>/dev/null | sha256sum | cut -d' ' -f1)
[ "$cur" = ${step.expectedSha256} ] || { echo "$f changed since it was read; run again" >&2; exit 3; }
cat > "$f.hfde-tmp" && chmod 644 "$f.hfde-tmp" && mv "$f.hfde-tmp" "$f"`,
    { stdin: step.text },
  );
}

async function vgremove(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "vgremove" }>): Promise<void> {
  await ctx.session.exec(sh`vgs ${step.vgName} >/dev/null 2>&1 || exit 0; vgremove --yes ${step.vgName}`);
}

async function pvremove(ctx: LvmContext, step: Extract<LvmGroupStep, { kind: "pvremove" }>): Promise<void> {
  await ctx.session.exec(sh`pvs ${step.device} >/dev/null 2>&1 || exit 0; pvremove --yes ${step.device}`);
}

export const steps = {
  wipeSignatures,
  pvcreate,
  vgcreate,
  vgextend,
  adoptVg,
  activate,
  lvcreate,
  lvextend,
  growFilesystem,
  mkfs,
  lvremove,
  writeFstab,
  vgremove,
  pvremove,
};

/** Delete with allowWipe: this VG's fstab lines, every LV, the VG, the PV labels. Refuses mounted LVs. */
export function planDelete(observed: LvmObserved, olds: Pick<LvmGroupOutputs, "vgName" | "pvs" | "fstabRoot" | "lvs">): LvmGroupStep[] {
  const steps: LvmGroupStep[] = [];
  const busy = observed.lvs.filter((lv) => lv.mountedAt);
  if (busy.length > 0) {
    throw new LvmRefusal(busy[0].name, `cannot delete VG "${olds.vgName}": ${busy.map((lv) => `${lv.name} is ${lv.mountedAt === "[SWAP]" ? "an active swap" : `mounted at ${lv.mountedAt}`}`).join(", ")}; unmount first`);
  }
  if (olds.fstabRoot !== undefined && observed.fstab !== null) {
    const text = editFstab(observed.fstab, { vgName: olds.vgName, lvs: [] }, observed.lvs);
    if (text !== observed.fstab) steps.push({ kind: "writeFstab", root: olds.fstabRoot, expectedSha256: sha256Hex(observed.fstab), text });
  }
  for (const lv of observed.lvs) steps.push({ kind: "lvremove", vgName: olds.vgName, lv: lv.name });
  if (observed.vg) steps.push({ kind: "vgremove", vgName: olds.vgName });
  for (const device of observed.devices) if (device.pv && (device.pv.vgName === olds.vgName || device.pv.vgName === "")) steps.push({ kind: "pvremove", device: device.path });
  return steps;
}

export const module = { validate, plan, probe, steps } satisfies ResourceModule<LvmGroupInputs, LvmGroupOutputs, LvmObserved, LvmGroupStep, LvmContext>;

// ---------------------------------------------------------------------------------------------
// outputs (pure)

export function outputsFrom(inputs: LvmGroupInputs, observed: LvmObserved, reached: { environment: Environment; host: string }): LvmGroupOutputs {
  const vg = observed.vg;
  if (!vg) throw new Error(`VG "${inputs.vgName}" is not on the host after the plan ran`);
  const listed = new Set(inputs.lvs.map((lv) => lv.name));
  const fstabLines =
    observed.fstab === null ? [] : observed.fstab.split("\n").filter((line) => line.trim() !== "" && isVgFstabLine(line, vg.name, observed.lvs));
  return jsonSafe(
    {
      ...inputsFromOutputs(inputs),
      environment: reached.environment,
      host: reached.host,
      vgUuid: vg.uuid,
      sizeBytes: vg.sizeBytes,
      freeBytes: vg.freeBytes,
      extentSizeBytes: vg.extentSizeBytes,
      extentCount: vg.extentCount,
      freeExtents: vg.freeExtents,
      physicalVolumes: observed.devices.filter((d) => d.pv).map((d) => ({ path: d.path, uuid: d.pv?.uuid ?? "", sizeBytes: d.pv?.sizeBytes ?? 0 })),
      volumes: observed.lvs.map((lv) => ({ ...lv, managed: listed.has(lv.name) })),
      fstabLines,
    },
    "outputs",
  );
}

/** The inputs a read reports: the request as recorded (drift shows as outputs differing from it). */
export function inputsFromOutputs(outs: LvmGroupInputs): LvmGroupInputs {
  const { connection, pvs, vgName, lvs, fstabRoot, allowWipe, adopt, pvSizeBytes, providerVersion } = outs;
  return jsonSafe({ connection, pvs, vgName, lvs, fstabRoot, allowWipe, adopt, pvSizeBytes, providerVersion }, "inputs");
}

// ---------------------------------------------------------------------------------------------
// provider

/** Rounds of probe → plan → apply before giving up (PVs/VG, activation, LVs: three at most). */
const MAX_ROUNDS = 4;

class LvmGroupProvider implements pulumi.dynamic.ResourceProvider<LvmGroupInputs, LvmGroupOutputs> {
  private privateKey: Secret | undefined = undefined;

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    const key = req.config.get("sshPrivateKey");
    if (key) this.privateKey = new Secret(key);
  }

  async check(olds: LvmGroupInputs, news: LvmGroupInputs): Promise<pulumi.dynamic.CheckResult<LvmGroupInputs>> {
    return checkResult(news, [...validate(news), ...validateDestructiveChanges(olds, news)]);
  }

  async diff(_id: string, olds: LvmGroupOutputs, news: LvmGroupInputs): Promise<pulumi.dynamic.DiffResult> {
    return compareOutputs(olds, news);
  }

  async create(inputs: LvmGroupInputs): Promise<pulumi.dynamic.CreateResult<LvmGroupOutputs>> {
    const outs = await this.converge(inputs, {});
    return { id: `${outs.vgName}:${outs.vgUuid}`, outs };
  }

  async update(_id: string, olds: LvmGroupOutputs, news: LvmGroupInputs): Promise<pulumi.dynamic.UpdateResult<LvmGroupOutputs>> {
    return { outs: await this.converge(news, requestsOf(olds.lvs)) };
  }

  async read(id: string, props?: LvmGroupOutputs): Promise<pulumi.dynamic.ReadResult<LvmGroupOutputs>> {
    if (!props?.vgName) throw new Error(`LvmGroup ${id}: read needs the stored outputs; import is not supported (use adopt: true)`);
    return this.withHost(props.connection, async (ctx, reached) => {
      const observed = await probe(ctx, props);
      if (!observed.vg || observed.vg.uuid !== props.vgUuid) return {}; // gone (or replaced behind our back)
      const outs = outputsFrom(props, observed, reached);
      return { id, props: outs, inputs: inputsFromOutputs(props) as LvmGroupOutputs };
    });
  }

  async delete(_id: string, props: LvmGroupOutputs): Promise<void> {
    const label = `[LvmGroup ${props.vgName}]`;
    if (props.allowWipe !== true) {
      pulumi.log.info(`${label} delete leaves VG "${props.vgName}" with its LVs (${props.lvs.map((lv) => lv.name).join(", ") || "none"}), their data and fstab lines on ${props.host} untouched: allowWipe is false`);
      return;
    }
    await this.withHost(props.connection, async (ctx) => {
      const observed = await probe(ctx, props);
      await runPlan(ctx, planDelete(observed, props), steps);
    });
  }

  /** Probe, plan, apply, until the plan is empty; then one more probe for the outputs. */
  private async converge(inputs: LvmGroupInputs, requested: Record<string, string>): Promise<LvmGroupOutputs> {
    return this.withHost(inputs.connection, async (ctx, reached) => {
      for (let round = 1; round <= MAX_ROUNDS; round++) {
        const observed = { ...(await runStep(ctx, "probe", () => probe(ctx, inputs))), requested };
        const todo = plan(observed, inputs);
        if (todo.length === 0) return outputsFrom(inputs, observed, reached);
        await runPlan(ctx, todo, steps);
      }
      throw new Error(`LvmGroup ${inputs.vgName}: not converged after ${MAX_ROUNDS} rounds of probe and apply; run again, and report it if it persists`);
    });
  }

  private async withHost<T>(connection: ConnectionProfile[], fn: (ctx: LvmContext, reached: { environment: Environment; host: string }) => Promise<T>): Promise<T> {
    if (!this.privateKey) throw new Error('LvmGroup: no SSH private key; set it with `pulumi config set --secret hetzner-fde:sshPrivateKey "$(cat key)"`');
    const { session, profile } = await openFirstReachable(connection, this.privateKey);
    const ctx: LvmContext = { resource: "LvmGroup", host: `${profile.host}:${profile.port}`, secrets: [this.privateKey], session };
    try {
      return await fn(ctx, { environment: profile.environment, host: `${profile.host}:${profile.port}` });
    } finally {
      await session.close();
    }
  }
}

// One instance for every LvmGroup, so the closure serializer's per-object cache hits.
const provider = new LvmGroupProvider();

// ---------------------------------------------------------------------------------------------
// resource

export class LvmGroup extends pulumi.dynamic.Resource {
  declare readonly vgName: pulumi.Output<string>;
  declare readonly vgUuid: pulumi.Output<string>;
  declare readonly environment: pulumi.Output<Environment>;
  declare readonly sizeBytes: pulumi.Output<number>;
  declare readonly freeBytes: pulumi.Output<number>;
  declare readonly extentSizeBytes: pulumi.Output<number>;
  declare readonly volumes: pulumi.Output<VolumeState[]>;
  declare readonly physicalVolumes: pulumi.Output<PhysicalVolumeState[]>;
  declare readonly fstabLines: pulumi.Output<string[]>;

  constructor(name: string, args: LvmGroupArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = { vgUuid: undefined, environment: undefined, sizeBytes: undefined, freeBytes: undefined, extentSizeBytes: undefined, volumes: undefined, physicalVolumes: undefined, fstabLines: undefined };
    super(provider, name, { ...args, providerVersion: PROVIDER_VERSION, ...outputs }, opts, "hetzner-fde", "LvmGroup");
  }
}
