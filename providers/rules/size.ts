// Sizes the way installimage writes them (`512M`, `1G`, `2T`, `all`) and the capacity arithmetic
// of md RAID levels. Everything is in MiB, installimage's unit, as whole numbers.

export const MIB = 1024 * 1024;

export type Size = { readonly kind: "all" } | { readonly kind: "fixed"; readonly mib: number };

export type SizeParse = { ok: true; size: Size } | { ok: false; reason: string };

const UNIT_MIB: Record<string, number> = { M: 1, G: 1024, T: 1024 * 1024 };

/** Parses `all` or `<integer><M|G|T>`. A bare number is refused although installimage reads it as MiB: `1` meaning 1 MiB is a trap. */
export function parseSize(text: string): SizeParse {
  const trimmed = text.trim();
  if (trimmed === "all") return { ok: true, size: { kind: "all" } };
  const match = /^(\d+)([MGT])$/.exec(trimmed);
  if (match) {
    const mib = Number(match[1]) * UNIT_MIB[match[2]];
    if (mib <= 0) return { ok: false, reason: `expected a size greater than zero, found "${text}"` };
    if (!Number.isSafeInteger(mib)) return { ok: false, reason: `expected a size below 8 EiB, found "${text}"` };
    return { ok: true, size: { kind: "fixed", mib } };
  }
  if (/^\d+$/.test(trimmed)) {
    return { ok: false, reason: `expected a size with a unit like 512M, 1G or 2T (or "all"), found "${text}"; add the unit, e.g. "${trimmed}M"` };
  }
  const lowerUnit = /^(\d+)([mgt])(i?b)?$/i.exec(trimmed);
  if (lowerUnit) {
    return { ok: false, reason: `expected a size like 512M, 1G or 2T (or "all"), found "${text}"; write it as "${lowerUnit[1]}${lowerUnit[2].toUpperCase()}"` };
  }
  return { ok: false, reason: `expected a size like 512M, 1G or 2T (or "all"), found "${text}"` };
}

/** MiB → the shortest exact installimage spelling: 1024 → "1G", 1536 → "1536M". */
export function formatMiB(mib: number): string {
  if (mib >= UNIT_MIB.T && mib % UNIT_MIB.T === 0) return `${mib / UNIT_MIB.T}T`;
  if (mib >= UNIT_MIB.G && mib % UNIT_MIB.G === 0) return `${mib / UNIT_MIB.G}G`;
  return `${mib}M`;
}

/** A human figure for messages: 476937 → "465.8 GiB". */
export function describeMiB(mib: number): string {
  if (mib >= UNIT_MIB.T) return `${(mib / UNIT_MIB.T).toFixed(1)} TiB`;
  if (mib >= UNIT_MIB.G) return `${(mib / UNIT_MIB.G).toFixed(1)} GiB`;
  return `${mib} MiB`;
}

export function bytesToMiB(bytes: number): number {
  return Math.floor(bytes / MIB);
}

export const RAID_LEVELS = [0, 1, 5, 6, 10] as const;
export type RaidLevel = (typeof RAID_LEVELS)[number];

/**
 * Minimum member count per level: 2 for 0/1, 3 for 5, 4 for 6 and 10. Hetzner's installimage lets
 * RAID 10 through with 2 drives (mdadm's "near 2" layout then is a plain mirror); we refuse it,
 * because someone asking for striped mirrors on two disks has almost always miscounted, and RAID 1
 * says what they get. The lab's installimage applies the same rule.
 */
export function minDrivesFor(level: RaidLevel): number {
  switch (level) {
    case 5:
      return 3;
    case 6:
    case 10:
      return 4;
    default:
      return 2;
  }
}

/** How many members' worth of space holds data: installimage's DRIVE_SUM_SIZE factors. */
export function raidDataDisks(level: RaidLevel, members: number): number {
  switch (level) {
    case 0:
      return members;
    case 1:
      return 1;
    case 5:
      return members - 1;
    case 6:
      return members - 2;
    case 10:
      return Math.floor(members / 2);
  }
}

/**
 * Usable MiB of the array (or of the single disk when `level` is null), or null when any member's
 * size is unknown or the level has too few members. The smallest member bounds every member, as in md.
 */
export function arrayCapacityMiB(level: RaidLevel | null, memberSizesBytes: readonly (number | undefined)[]): number | null {
  if (memberSizesBytes.length === 0 || memberSizesBytes.some((s) => s === undefined)) return null;
  // Too few members is its own error; arithmetic on it would only add confusing follow-ups.
  if (level !== null && memberSizesBytes.length < minDrivesFor(level)) return null;
  const smallest = bytesToMiB(Math.min(...(memberSizesBytes as number[])));
  return level === null ? smallest : smallest * raidDataDisks(level, memberSizesBytes.length);
}
