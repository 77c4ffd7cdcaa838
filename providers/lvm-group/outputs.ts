// LvmGroup's outputs (pure): what a converged probe records, and the inputs recorded in them.
import { jsonSafe, Reached } from "../kernel";
import { isVgFstabLine } from "./plan";
import { LvmGroupInputs, LvmGroupOutputs, LvmObserved } from "./types";

export function outputsFrom(inputs: LvmGroupInputs, observed: LvmObserved, reached: Reached): LvmGroupOutputs {
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

