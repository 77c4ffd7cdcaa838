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

//
// Files, in the order every resource folder has them: types.ts, validate.ts, plan.ts, probe.ts,
// steps.ts, outputs.ts, provider.ts (the definition the kernel runs), and this index.ts (the Resource
// class and the public exports).
import * as pulumi from "@pulumi/pulumi";
import { diffAgainstRecorded, Environment, PROVIDER_VERSION } from "../kernel";
import { definition, provider } from "./provider";
import type { LvmGroupArgs, LvmGroupInputs, LvmGroupOutputs, PhysicalVolumeState, VolumeState } from "./types";

export * from "./types";
export * from "./validate";
export * from "./plan";
export * from "./probe";
export * from "./steps";
export * from "./outputs";
export { definition } from "./provider";
export { EXTENT_SIZE_BYTES, EXTENT_TOLERANCE, decideSize, estimateExtents, extentsForBytes, isShrink, parseLvSize, sameSizeRequest, targetExtents } from "../storage/lvm";
export type { LvSize, LvSizeParse, SizeDecision } from "../storage/lvm";

/** What `diff` reports (pure, no SSH): the plan against the recorded outputs. */
export function compareOutputs(olds: LvmGroupOutputs, news: LvmGroupInputs): pulumi.dynamic.DiffResult {
  return diffAgainstRecorded(definition, olds, news);
}

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

