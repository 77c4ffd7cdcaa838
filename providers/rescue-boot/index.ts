// RescueBoot: brings a Hetzner server into the rescue system through the Robot webservice and
// hands back a verified SSH connection profile for it (what InstallImage and the other resources
// take as their `rescue` profile). Rescue is one-shot by nature: the server leaving rescue later
// is not drift, and refresh only reports where the server is now.
//
// Robot credentials and the operator's SSH private key come from the stack config through
// `configure`; they are never inputs, so they never reach state. The rescue root password is
// not returned at all: the operator's key is the way in.
//
// Files, in the order every resource folder has them: types, validate, plan, probe, steps, outputs,
// provider (the definition the kernel runs, its `reach` is Robot), and this index.ts (the Resource
// class); besides them identity (who answered) and boot (one rescue boot for InstallImage's delete).
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionProfile } from "../kernel/host-access";
import { diffAgainstRecorded } from "../kernel/provider";
import { PROVIDER_VERSION } from "../kernel/resource";
import { definition, provider } from "./provider";
import type { HostKeySource, ObservedEnvironment, RescueBootArgs, RescueBootInputs, RescueBootOutputs } from "./types";

export * from "./types";
export * from "./validate";
export * from "./plan";
export * from "./probe";
export { steps } from "./steps";
export * from "./outputs";
export * from "./boot";
export { definition, reachRobot } from "./provider";

/** What `diff` reports (pure, no Robot, no SSH): the plan against the recorded outputs. */
export function compareOutputs(olds: RescueBootOutputs, news: RescueBootInputs): pulumi.dynamic.DiffResult {
  return diffAgainstRecorded(definition, olds, news);
}

export class RescueBoot extends pulumi.dynamic.Resource {
  declare readonly serverNumber: pulumi.Output<number>;
  declare readonly generation: pulumi.Output<number>;
  declare readonly host: pulumi.Output<string>;
  declare readonly port: pulumi.Output<number>;
  declare readonly hostKeyFingerprints: pulumi.Output<string[]>;
  declare readonly knownHosts: pulumi.Output<string[]>;
  declare readonly hostKeySource: pulumi.Output<HostKeySource>;
  declare readonly bootedAt: pulumi.Output<string>;
  declare readonly serverIpv4: pulumi.Output<string | null>;
  declare readonly serverIpv6Net: pulumi.Output<string | null>;
  declare readonly product: pulumi.Output<string>;
  declare readonly datacenter: pulumi.Output<string>;
  /** Pass this as InstallImage's `rescue` input. */
  declare readonly profile: pulumi.Output<ConnectionProfile>;
  declare readonly environment: pulumi.Output<ObservedEnvironment>;
  declare readonly rescueArmed: pulumi.Output<boolean>;

  constructor(name: string, args: RescueBootArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = {
      host: undefined, port: undefined, hostKeyFingerprints: undefined, knownHosts: undefined, hostKeySource: undefined, bootedAt: undefined,
      serverIpv4: undefined, serverIpv6Net: undefined, product: undefined, datacenter: undefined, profile: undefined, environment: undefined, rescueArmed: undefined,
    };
    super(provider, name, { ...args, providerVersion: PROVIDER_VERSION, ...outputs }, opts, "hetzner-fde", "RescueBoot");
  }
}
