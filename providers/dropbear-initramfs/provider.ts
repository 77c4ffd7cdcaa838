// DropbearInitramfs on the kernel: the definition the KernelProvider runs, and the one thing the
// kernel does not do for every resource: carrying the initramfs host key. It is generated here, on
// the operator's side, at create, and handed back on every later call from the recorded outputs
// (a secret output); `inputsOf` keeps it (and the passphrase) out of what diff and read compare.
import * as pulumi from "@pulumi/pulumi";
import { KernelProvider, ResourceDefinition } from "../kernel";
import { generateInitramfsHostKey } from "./host-key";
import { inputsFromOutputs, observedFromOutputs, outputsFrom } from "./outputs";
import { hostKeyOf, planSteps, systemProfile } from "./plan";
import { allProfiles, environmentOf, probeHost } from "./probe";
import { steps } from "./steps";
import type { DropbearInitramfsInputs, DropbearInitramfsOutputs, DropbearInitramfsStep, DropbearObserved } from "./types";
import { validateInputs } from "./validate";
import { RefusalError } from "../kernel/resource";

export const definition: ResourceDefinition<DropbearInitramfsInputs, DropbearInitramfsOutputs, DropbearObserved, DropbearInitramfsStep> = {
  type: "DropbearInitramfs",
  // open root | files + packages/build + gate + loop | the system, converged; one to spare.
  maxRounds: 4,
  validate: (news) => validateInputs(news),
  connection: (subject) => allProfiles(subject, fingerprintOf(subject)),
  probe: (ctx, subject) => probeHost(ctx, environmentOf(ctx.session.observedHostKey.fingerprint, allProfiles(subject, fingerprintOf(subject))), subject.network.mac),
  plan: planSteps,
  recordedFacts: observedFromOutputs,
  steps,
  outputs: outputsFrom,
  inputsOf: inputsFromOutputs,
  id: (outs) => `dropbear-initramfs:${outs.hostname}`,
  // Gone when the system has neither the package nor any of our files.
  exists: (observed) =>
    observed.environment !== "system" || observed.packages.some((p) => p.name === "dropbear-initramfs" && p.installed) || observed.files.some((f) => f.sha256 !== null),
  planDelete: (observed, recorded) => {
    if (observed.environment !== "system") {
      throw new RefusalError("DropbearInitramfs", `remote unlock can only be removed from the running system, and the host is in its ${observed.environment}; boot it (and unlock it) first`);
    }
    return [{ kind: "removeUnlock", root: "", paths: recorded.fileDigests.map((f) => f.path) }];
  },
  retained: (olds) =>
    `dropbear-initramfs with the stack's host key and authorized_keys on ${systemProfile(olds).host} (remote unlock stays in place; the host remains unlockable with the unlockCommand output)`,
};

/** The pinned initramfs fingerprint: from the outputs, or derived from the key the provider carries in the inputs. */
function fingerprintOf(subject: DropbearInitramfsInputs | DropbearInitramfsOutputs): string | null {
  if ("hostKeyFingerprint" in subject && subject.hostKeyFingerprint) return subject.hostKeyFingerprint;
  return subject.hostKeyPrivate ? hostKeyOf(subject, null).fingerprint : null;
}

const kernel = new KernelProvider(definition);

/**
 * The kernel's provider, with the host key carried: generated at create, handed from the recorded
 * outputs to diff and update (so it is never "changed"), and kept out of the inputs read returns
 * (the engine would store those in the clear; as an output it is a secret).
 */
export const provider: pulumi.dynamic.ResourceProvider = {
  configure: (req) => kernel.configure(req),
  check: (olds, news) => kernel.check(olds, news),
  diff: (id, olds: DropbearInitramfsOutputs, news: DropbearInitramfsInputs) => kernel.diff(id, olds, { ...news, hostKeyPrivate: olds.hostKeyPrivate }),
  create: (inputs: DropbearInitramfsInputs) =>
    kernel.create({ ...inputs, hostKeyPrivate: generateInitramfsHostKey(`initramfs@${inputs.hostname.split(".")[0]}`).privateKeyDropbear }),
  update: (id, olds: DropbearInitramfsOutputs, news: DropbearInitramfsInputs) => kernel.update(id, olds, { ...news, hostKeyPrivate: olds.hostKeyPrivate }),
  read: async (id, olds?: DropbearInitramfsOutputs) => {
    const result = await kernel.read(id, olds);
    if (!result.inputs) return result;
    const { hostKeyPrivate: _kept, ...inputs } = result.inputs as DropbearInitramfsOutputs;
    return { ...result, inputs: inputs as DropbearInitramfsOutputs };
  },
  delete: (id, olds: DropbearInitramfsOutputs) => kernel.delete(id, olds),
};
