// LuksVolume: a LUKS2 container on a block device (usually /dev/md1, or a partition of the mirror
// disk), opened under a mapper name and recorded in /etc/crypttab of a target root ("/" on a
// running system, "/mnt" under rescue). It holds the data, so it never destroys any by surprise,
// never lets the passphrase reach argv, logs, errors or plaintext state, converges when re-run
// after a crash, and reports drift (keyslots added by hand, crypttab lines removed) on refresh.
//
// Files, in the order every resource folder has them: types.ts, validate.ts, plan.ts, probe.ts
// (+ probe.sh), steps.ts, outputs.ts, provider.ts (the definition the kernel runs), and this
// index.ts (the Resource class and the public exports).
import * as pulumi from "@pulumi/pulumi";
import { diffAgainstRecorded, Environment, PROVIDER_VERSION, withSecretInputs } from "../kernel";
import { definition, provider } from "./provider";
import { LuksFacts, LuksVolumeArgs, LuksVolumeInputs, LuksVolumeOutputs, SECRET_INPUTS } from "./types";

export * from "./types";
export * from "./validate";
export * from "./plan";
export * from "./probe";
export * from "./steps";
export * from "./outputs";
export { definition } from "./provider";

/** What `diff` reports (pure, no SSH): the plan against the recorded outputs. */
export function compareOutputs(olds: LuksVolumeOutputs, news: LuksVolumeInputs): pulumi.dynamic.DiffResult {
  return diffAgainstRecorded(definition, olds, news);
}

export class LuksVolume extends pulumi.dynamic.Resource {
  declare readonly uuid: pulumi.Output<string>;
  declare readonly device: pulumi.Output<string>;
  declare readonly mapperName: pulumi.Output<string>;
  declare readonly observed: pulumi.Output<LuksFacts>;
  declare readonly environment: pulumi.Output<Environment>;
  declare readonly host: pulumi.Output<string>;

  constructor(name: string, args: LuksVolumeArgs, opts?: pulumi.CustomResourceOptions) {
    const props = { ...withSecretInputs(args, SECRET_INPUTS), providerVersion: PROVIDER_VERSION, uuid: undefined, observed: undefined, environment: undefined, host: undefined };
    super(provider, name, props, { ...opts, additionalSecretOutputs: [...(opts?.additionalSecretOutputs ?? []), ...SECRET_INPUTS] }, "hetzner-fde", "LuksVolume");
  }
}
