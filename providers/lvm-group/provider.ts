// LvmGroup on the kernel: the definition the KernelProvider runs. Nothing here but wiring.
import { KernelProvider, ResourceDefinition, shellProfiles } from "../kernel";
import { inputsFromOutputs, migrateOutputs, outputsFrom } from "./outputs";
import { observedFromOutputs, plan, planDelete } from "./plan";
import { probe } from "./probe";
import { steps } from "./steps";
import { LvmGroupInputs, LvmGroupOutputs, LvmGroupStep, LvmObserved } from "./types";
import { validate, validateDestructiveChanges } from "./validate";

export const definition: ResourceDefinition<LvmGroupInputs, LvmGroupOutputs, LvmObserved, LvmGroupStep> = {
  type: "LvmGroup",
  // PVs/VG, activation, LVs/filesystems/fstab: three rounds at most, one to spare.
  maxRounds: 4,
  // Old and new VG would claim the same PVs: the old one must go first.
  deleteBeforeReplace: true,
  replaceIfUnknown: ["vgName", "pvs"],
  validate: (news, olds) => [...validate(news), ...(olds ? validateDestructiveChanges(migrateOutputs(olds as Record<string, unknown>), news) : [])],
  connection: (subject) => shellProfiles(subject.connection),
  probe,
  plan,
  recordedFacts: observedFromOutputs,
  steps,
  outputs: outputsFrom,
  inputsOf: inputsFromOutputs,
  id: (outs) => `${outs.vgName}:${outs.vgUuid}`,
  // Gone, or replaced behind our back by a VG of the same name.
  exists: (observed, recorded) => observed.vg !== null && observed.vg.uuid === recorded.vgUuid,
  planDelete,
  migrate: migrateOutputs,
  retained: (olds) =>
    `VG "${olds.vgName}" with its LVs (${olds.volumes.map((lv) => lv.name).join(", ") || "none"}), their data and fstab lines on ${olds.host} (VG UUID ${olds.vgUuid})`,
};

// One instance for every LvmGroup, so the closure serializer's per-object cache hits.
export const provider = new KernelProvider(definition);
