// LvmGroup's plan (pure): observed facts + desired inputs + the recorded outputs -> the steps still
// to run. The same function answers `diff` (run against the recorded facts) and drives create and
// update (run against a fresh probe), so there is one set of rules.
import { RefusalError, ReplaceStep, sha256Hex } from "../kernel";
import { decideSize, parseLvSize, sameSizeRequest, targetExtents } from "../storage/lvm";
import { mapperPath } from "../storage/lvm";
import { LogicalVolumeSpec, LvmGroupInputs, LvmGroupOutputs, LvmGroupStep, LvmObserved, OWNER_TAG, VgFacts, VolumeState } from "./types";

/** What plan needs of the previous outputs. */
export type LvmRecord = Pick<LvmGroupOutputs, "vgName" | "pvs" | "lvs">;

/** A new VG name, or a PV dropped: the old VG must go (the engine deletes it first, see deleteBeforeReplace). */
function replacedBy(recorded: LvmRecord | null, desired: LvmGroupInputs): string[] {
  if (recorded === null) return [];
  const fields: string[] = [];
  if (recorded.vgName !== desired.vgName) fields.push("vgName");
  if (recorded.pvs.some((pv) => !desired.pvs.includes(pv))) fields.push("pvs");
  return fields;
}

/**
 * Observed + desired → the steps still to run; empty when converged. It plans in phases, because
 * LV sizes cannot be computed before the VG (and its extent size) exists, nor filesystems judged
 * while LVs are inactive: PVs and VG first, then activation, then LVs, filesystems and fstab. The
 * provider re-probes and re-plans until the plan is empty.
 *
 * Throws RefusalError for anything that would destroy data without `allowWipe`, or touch a VG we did
 * not create without `adopt`.
 */
export function plan(observed: LvmObserved, desired: LvmGroupInputs, recorded: LvmRecord | null = null): (LvmGroupStep | ReplaceStep)[] {
  const replaces = replacedBy(recorded, desired);
  if (replaces.length > 0) return [{ kind: "replace", fields: replaces }];
  const requested = requestsOf(recorded?.lvs);
  const storage = planStorage(observed, desired);
  if (storage.length > 0) return storage;
  const vg = observed.vg as VgFacts;
  if (observed.lvs.some((lv) => !lv.active)) return [{ kind: "activate", vgName: vg.name }];
  return [...planVolumes(observed, desired, vg, requested), ...planFstab(observed, desired)];
}

function planStorage(observed: LvmObserved, desired: LvmGroupInputs): LvmGroupStep[] {
  const { vgName } = desired;
  const allowWipe = desired.allowWipe === true;
  const steps: LvmGroupStep[] = [];
  const vg = observed.vg;
  if (vg && !vg.tags.includes(OWNER_TAG)) {
    if (!desired.adopt) {
      throw new RefusalError(vgName, `VG "${vgName}" already exists on the host and was not created by this stack (no "${OWNER_TAG}" tag); set adopt: true to manage it as it is, or choose another vgName`);
    }
    // Paths may be spelt differently (/dev/dm-0 vs /dev/mapper/x), so count the listed devices that are its PVs.
    const listed = observed.devices.filter((d) => d.pv?.vgName === vgName).length;
    if (listed < vg.pvPaths.length) {
      throw new RefusalError(vgName, `VG "${vgName}" lives on ${vg.pvPaths.join(", ")}, and pvs lists only ${listed} of them; list all its PVs to adopt it`);
    }
  }
  const joining: string[] = [];
  for (const device of observed.devices) {
    if (!device.exists) throw new RefusalError(device.path, `PV device ${device.path} does not exist on the host; open the LUKS mapping or assemble the array first, or fix pvs`);
    if (device.pv) {
      if (device.pv.vgName === vgName) continue;
      if (device.pv.vgName !== "") {
        throw new RefusalError(device.path, `${device.path} is a PV of another VG "${device.pv.vgName}"; this resource never takes a PV from another VG (remove that VG with vgremove first, or fix pvs)`);
      }
      joining.push(device.path); // an orphan PV label holds no data: e.g. our own pvcreate before a killed vgcreate
      continue;
    }
    if (device.signatures.length > 0) {
      const found = device.signatures.map((s) => s.type).join(", ");
      if (!allowWipe) {
        throw new RefusalError(device.path, `${device.path} already carries data (${found} signature); set allowWipe: true to wipe it, or fix pvs`);
      }
      if (device.mountedAt || device.holders > 0) {
        throw new RefusalError(device.path, `${device.path} carries ${found} and is in use (${device.mountedAt ? `mounted at ${device.mountedAt}` : "held by a device-mapper device"}); unmount or close it first`);
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

function planVolumes(observed: LvmObserved, desired: LvmGroupInputs, vg: VgFacts, requested: Record<string, string>): LvmGroupStep[] {
  const allowWipe = desired.allowWipe === true;
  const refuse = (lv: string, verb: string, detail: string) => {
    throw new RefusalError(lv, `${verb} LV "${lv}" (${vg.name}/${lv})${detail} destroys its data; set allowWipe: true to allow it`);
  };
  const steps: LvmGroupStep[] = [];
  let free = vg.freeExtents;

  // Removals first: they free the space later LVs may need.
  for (const name of Object.keys(requested)) {
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
      if (target < 1) throw new RefusalError(lv.name, `LV "${lv.name}" (${lv.size}) would get no space: VG "${vg.name}" has ${free} free extents left for it; make the LVs before it smaller or add a PV`);
      if (target > free) throw new RefusalError(lv.name, `LV "${lv.name}" needs ${target} extents (${lv.size}) but VG "${vg.name}" has only ${free} free; make it smaller or add a PV`);
      steps.push({ kind: "lvcreate", vgName: vg.name, lv: lv.name, extents: target });
      steps.push({ kind: "mkfs", vgName: vg.name, lv: lv.name, filesystem: lv.filesystem, wipe: false });
      free -= target;
      continue;
    }
    const requestChanged = requested[lv.name] !== undefined && !sameSizeRequest(requested[lv.name], lv.size);
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
        throw new RefusalError(lv.name, `growing LV "${lv.name}" to ${target} extents (${lv.size}) needs ${target - own} free extents, VG "${vg.name}" has ${free}; add a PV or make a later LV smaller (which needs allowWipe)`);
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
    throw new RefusalError(desired.fstabRoot, `fstabRoot "${desired.fstabRoot}" has no etc/ directory on the host; mount the target root there first, or omit fstabRoot`);
  }
  const current = observed.fstab ?? "";
  const text = editFstab(current, desired, observed.lvs);
  if (text === current) return [];
  return [{ kind: "writeFstab", root: desired.fstabRoot, expectedSha256: sha256Hex(current), text }];
}


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
  const mapper = mapperPath(vgName, lvName);
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



// ---------------------------------------------------------------------------------------------
// The recorded facts diff plans against

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
  };
}

export function requestsOf(lvs: readonly LogicalVolumeSpec[] | undefined): Record<string, string> {
  return Object.fromEntries((lvs ?? []).map((lv) => [lv.name, lv.size]));
}


// ---------------------------------------------------------------------------------------------
// delete

/** Delete with allowWipe: this VG's fstab lines, every LV, the VG, the PV labels. Refuses mounted LVs.
 *  Plans nothing when the VG on the host has another UUID than the recorded one. */
export function planDelete(observed: LvmObserved, olds: Pick<LvmGroupOutputs, "vgName" | "pvs" | "fstabRoot" | "lvs"> & { vgUuid?: string }): LvmGroupStep[] {
  // A VG of the same name but another UUID is not ours (installimage names every VG vg0): touch
  // nothing, neither its LVs nor its PVs.
  if (observed.vg && olds.vgUuid !== undefined && observed.vg.uuid !== olds.vgUuid) return [];
  const steps: LvmGroupStep[] = [];
  const busy = observed.lvs.filter((lv) => lv.mountedAt);
  if (busy.length > 0) {
    throw new RefusalError(busy[0].name, `cannot delete VG "${olds.vgName}": ${busy.map((lv) => `${lv.name} is ${lv.mountedAt === "[SWAP]" ? "an active swap" : `mounted at ${lv.mountedAt}`}`).join(", ")}; unmount first`);
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

