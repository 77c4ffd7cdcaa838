// LVM's own rules, one copy for every module that names or sizes LVM objects (LvmGroup's check,
// plan and probe; the installimage layout rules): the name rules of lvm2's validate_name, the extent
// arithmetic, and the size requests LvmGroup accepts. Pure: no host, no I/O.
import { MIB, parseSize } from "../rules/size";

/** Extent size passed to vgcreate (LVM's default, made explicit so sizes are predictable). */
export const LVM_EXTENT_MIB = 4;
export const EXTENT_SIZE_BYTES = LVM_EXTENT_MIB * MIB;

/** The PV label and metadata area (1 MiB by default, pe_start) before the first extent. */
export const LVM_METADATA_MIB = 1;
export const PV_OVERHEAD_BYTES = LVM_METADATA_MIB * MIB;

/** Sizes within this many extents of the target count as converged (rounding to the PE size). */
export const EXTENT_TOLERANCE = 1;

const LVM_NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$/;
const LV_RESERVED_PREFIXES = ["snapshot", "pvmove"];
const LV_RESERVED_PARTS = ["_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig"];

/** LVM's name rules (lvm2 validate_name): charset, no leading '-', not '.'/'..', at most 127 characters, LV reserved names. */
export function checkLvmName(name: unknown, what: "VG" | "LV"): string | undefined {
  const long = what === "VG" ? "volume group" : "logical volume";
  if (typeof name !== "string" || name === "") return `expected a ${long} name, found ${JSON.stringify(name)}`;
  if (name === "." || name === "..") return `expected a ${long} name, found "${name}", which is not a valid ${what} name`;
  if (name.length > 127) return `expected a ${long} name of at most 127 characters, found ${name.length}`;
  if (!LVM_NAME.test(name)) {
    return `expected a ${long} name of A-Z a-z 0-9 + _ . - (not starting with "-"), found "${name}"`;
  }
  if (what === "LV") {
    const prefix = LV_RESERVED_PREFIXES.find((p) => name.startsWith(p));
    if (prefix) return `expected a ${long} name, found "${name}": LVM reserves LV names starting with "${prefix}"; choose another name`;
    const part = LV_RESERVED_PARTS.find((p) => name.includes(p));
    if (part) return `expected a ${long} name, found "${name}": LVM reserves "${part}" inside LV names (internal sub-volumes); choose another name`;
  }
  return undefined;
}

/** The /dev/mapper name of an LV (dashes doubled, as device-mapper spells it). */
export function mapperPath(vgName: string, lvName: string): string {
  return `/dev/mapper/${vgName.replace(/-/g, "--")}-${lvName.replace(/-/g, "--")}`;
}

// ---------------------------------------------------------------------------------------------
// Sizes
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


/** Whether `to` is smaller than `from`, when the two can be compared without knowing the VG. */
export function isShrink(from: string, to: string): boolean {
  const a = parseLvSize(from);
  const b = parseLvSize(to);
  if (!a.ok || !b.ok || a.size.kind !== b.size.kind) return false;
  if (a.size.kind === "fixed" && b.size.kind === "fixed") return extentsForBytes(b.size.bytes, EXTENT_SIZE_BYTES) < extentsForBytes(a.size.bytes, EXTENT_SIZE_BYTES);
  return (b.size as { percent: number }).percent < (a.size as { percent: number }).percent;
}

