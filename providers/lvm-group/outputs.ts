// LvmGroup's outputs (pure): what a converged probe records, and the inputs recorded in them.
import { jsonSafe, Reached } from "../kernel";
import { isVgFstabLine } from "./plan";
import { LvmGroupInputs, LvmGroupOutputs, LvmObserved } from "./types";

export function outputsFrom(inputs: LvmGroupInputs, observed: LvmObserved, reached: Reached): LvmGroupOutputs {
  const vg = observed.vg;
  if (!vg) throw new Error(`VG "${inputs.vgName}" is not on the host after the plan ran`);
  const listed = new Set(inputs.volumes.map((lv) => lv.name));
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
      observedVolumes: observed.lvs.map((lv) => ({ ...lv, managed: listed.has(lv.name) })),
      fstabLines,
    },
    "outputs",
  );
}

/** The inputs a read reports: the request as recorded (drift shows as outputs differing from it). */
export function inputsFromOutputs(outs: LvmGroupInputs): LvmGroupInputs {
  const { connection, pvs, vgName, volumes, fstabRoot, allowWipe, adopt, pvSizeBytes, providerVersion } = outs;
  return jsonSafe({ connection, pvs, vgName, volumes, fstabRoot, allowWipe, adopt, pvSizeBytes, providerVersion }, "inputs");
}


/**
 * Outputs stored before the LV list got its one name (provider version 3 and earlier): the request
 * `lvs` is now `volumes`, as in the config's `hosts[].volumes`, and the observed LV states, which
 * held the name `volumes`, are now `observedVolumes`. Pure; today's shape passes through unchanged.
 * The same holds for previous inputs (what check compares against), which carry `lvs` too.
 */
export function migrateOutputs(stored: Record<string, unknown>): LvmGroupOutputs {
  if (!("lvs" in stored)) return stored as unknown as LvmGroupOutputs;
  const { lvs, volumes, ...rest } = stored;
  return { ...rest, volumes: lvs, ...(volumes !== undefined ? { observedVolumes: volumes } : {}) } as unknown as LvmGroupOutputs;
}
