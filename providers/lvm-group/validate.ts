// LvmGroup's check: every rule the inputs alone can break, each failure naming the field (pure).
import { CheckFailure, SHELL_ENVIRONMENTS, isUnknown, validateProfiles } from "../kernel";
import { checkBlockDevicePath } from "../rules/device";
import { checkLvmName, EXTENT_SIZE_BYTES, estimateExtents, isShrink, parseLvSize, targetExtents } from "../storage/lvm";
import { MIB } from "../rules/size";
import { FILESYSTEMS, FSTAB_FIELD, LogicalVolumeSpec, LvFilesystem, LvmGroupInputs } from "./types";

export { checkBlockDevicePath, checkLvmName };

export function validate(inputs: LvmGroupInputs): CheckFailure[] {
  return [
    ...(isUnknown(inputs.connection) ? [] : validateProfiles(inputs.connection, "connection", SHELL_ENVIRONMENTS)),
    ...validatePvs(inputs.pvs),
    ...validateVgName(inputs.vgName),
    ...validateVolumes(inputs.volumes),
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



function validateVgName(vgName: unknown): CheckFailure[] {
  if (isUnknown(vgName)) return [];
  const reason = checkLvmName(vgName, "VG");
  return reason ? [{ property: "vgName", reason }] : [];
}

export function validateVolumes(lvs: unknown): CheckFailure[] {
  if (isUnknown(lvs)) return [];
  if (!Array.isArray(lvs)) return [{ property: "volumes", reason: `expected a list of {name, size, filesystem, mountPoint?}, found ${JSON.stringify(lvs)}` }];
  const failures: CheckFailure[] = [];
  const names = new Map<string, number>();
  const mounts = new Map<string, number>();
  let freeUser: number | null = null;
  lvs.forEach((lv: Partial<LogicalVolumeSpec>, i) => {
    const at = `volumes[${i}]`;
    const fail = (field: string, reason: string) => failures.push({ property: `${at}.${field}`, reason });
    if (lv === null || typeof lv !== "object") {
      failures.push({ property: at, reason: `expected {name, size, filesystem, mountPoint?}, found ${JSON.stringify(lv)}` });
      return;
    }
    if (!isUnknown(lv.name)) {
      const reason = checkLvmName(lv.name, "LV");
      if (reason) fail("name", reason);
      else if (names.has(lv.name as string)) fail("name", `LV name "${lv.name}" is used twice (also volumes[${names.get(lv.name as string)}]); LV names must be unique in a VG`);
      else names.set(lv.name as string, i);
    }
    if (!isUnknown(lv.size)) {
      const parsed = typeof lv.size === "string" ? parseLvSize(lv.size) : ({ ok: false, reason: `expected a size string like "8G", "20%VG" or "all", found ${JSON.stringify(lv.size)}` } as const);
      if (!parsed.ok) fail("size", parsed.reason);
      else if (parsed.size.kind === "percentFree") {
        if (freeUser !== null) fail("size", `only one LV can take a share of the free space, and volumes[${freeUser}] already uses "${lvs[freeUser].size}"; give this one an absolute or %VG size`);
        else if (i !== lvs.length - 1) fail("size", `"${lv.size}" takes what the LVs before it leave free, so it must be the last LV; move "${lv.name}" to the end of volumes`);
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
        else if (mounts.has(lv.mountPoint)) fail("mountPoint", `"${lv.mountPoint}" is also the mount point of volumes[${mounts.get(lv.mountPoint)}]; each mount point takes one LV`);
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
export function validateCapacity(inputs: Pick<LvmGroupInputs, "volumes" | "pvs" | "pvSizeBytes">): CheckFailure[] {
  if (!Array.isArray(inputs.volumes)) return [];
  const parsed = inputs.volumes.map((lv) => (lv && typeof lv.size === "string" && !isUnknown(lv.size) ? parseLvSize(lv.size) : null));
  const sizes = parsed.map((p) => (p && p.ok ? p.size : null));
  const failures: CheckFailure[] = [];
  const percentVg = sizes.reduce((sum, s) => sum + (s?.kind === "percentVg" ? s.percent : 0), 0);
  if (percentVg > 100) {
    failures.push({ property: "volumes", reason: `the %VG sizes add up to ${percentVg}% of the VG; they must not exceed 100%` });
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
      property: "volumes",
      reason: `the LVs need ${mib(needed)} but the PVs (pvSizeBytes ${hint}) hold about ${mib(available)} of extents; make the LVs smaller or add a PV`,
    });
  } else {
    const restIndex = sizes.findIndex((s) => s?.kind === "percentFree");
    if (restIndex !== -1 && needed >= available) {
      failures.push({ property: `volumes[${restIndex}].size`, reason: `the LVs before it use all ${mib(available)}, so "${inputs.volumes[restIndex].size}" would get nothing; shrink the others` });
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
  if (news.allowWipe === true || !olds || !Array.isArray(olds.volumes) || typeof olds.vgName !== "string") return [];
  const failures: CheckFailure[] = [];
  const hint = "; set allowWipe: true to allow it";
  if (typeof news.vgName === "string" && !isUnknown(news.vgName) && news.vgName !== olds.vgName) {
    failures.push({ property: "vgName", reason: `renaming VG "${olds.vgName}" to "${news.vgName}" replaces it: VG "${olds.vgName}" and all its LVs (${olds.volumes.map((lv) => lv.name).join(", ")}) would be destroyed${hint}` });
    return failures;
  }
  if (Array.isArray(olds.pvs) && Array.isArray(news.pvs) && !isUnknown(news.pvs)) {
    const dropped = olds.pvs.filter((pv) => !news.pvs.includes(pv));
    if (dropped.length > 0) failures.push({ property: "pvs", reason: `removing PV ${dropped.join(", ")} replaces VG "${olds.vgName}" and destroys all its LVs${hint}` });
  }
  if (!Array.isArray(news.volumes) || isUnknown(news.volumes)) return failures;
  const vg = olds.vgName;
  for (const old of olds.volumes) {
    const index = news.volumes.findIndex((lv) => lv && lv.name === old.name);
    if (index === -1) {
      failures.push({ property: "volumes", reason: `removing LV "${old.name}" (${vg}/${old.name}) destroys its data${hint}, or put it back in volumes` });
      continue;
    }
    const lv = news.volumes[index];
    if (!isUnknown(lv.filesystem) && lv.filesystem !== old.filesystem) {
      failures.push({ property: `volumes[${index}].filesystem`, reason: `changing LV "${old.name}" (${vg}/${old.name}) from ${old.filesystem} to ${lv.filesystem} destroys its data${hint}` });
    }
    if (!isUnknown(lv.size) && isShrink(old.size, lv.size)) {
      failures.push({ property: `volumes[${index}].size`, reason: `shrinking LV "${old.name}" (${vg}/${old.name}) from ${old.size} to ${lv.size} destroys its data (it is recreated empty)${hint}` });
    }
  }
  return failures;
}

