// LuksVolume on the kernel: the definition the KernelProvider runs. Nothing here but wiring.
import { KernelProvider, ResourceDefinition, shellProfiles } from "../kernel";
import { Secret } from "../plumbing/secret";
import { inputsFromOutputs, outputsFrom } from "./outputs";
import { plan, planDelete, recordedFacts, retiredPassphrases } from "./plan";
import { probe } from "./probe";
import { steps } from "./steps";
import { keyName, LuksObserved, LuksStep, LuksVolumeInputs, LuksVolumeOutputs, POLL_SETTING, SECRET_INPUTS } from "./types";
import { validate, validateReplacement } from "./validate";

/** The passphrases by name (`keyName`): the inputs' own, and on update the recorded ones the inputs dropped. */
function passphrases(subject: LuksVolumeInputs, recorded: LuksVolumeOutputs | null): Record<string, Secret> {
  const keys: Record<string, Secret> = {};
  if (typeof subject.passphrase === "string") keys[keyName({ role: "passphrase" })] = new Secret(subject.passphrase);
  (subject.extraPassphrases ?? []).forEach((p, index) => (keys[keyName({ role: "extra", index })] = new Secret(p)));
  retiredPassphrases(subject, recorded).forEach((p, index) => (keys[keyName({ role: "retired", index })] = new Secret(p)));
  return keys;
}

export const definition: ResourceDefinition<LuksVolumeInputs, LuksVolumeOutputs, LuksObserved, LuksStep> = {
  type: "LuksVolume",
  // Everything in one round (format or keys, open, crypttab), one to confirm, one to spare.
  maxRounds: 3,
  // Old and new container would occupy the same device: the old one must go first.
  deleteBeforeReplace: true,
  replaceIfUnknown: ["device", "cipher", "keySize", "sectorSize"],
  validate: (news, olds) => [...validate(news), ...validateReplacement(olds ?? {}, news)],
  connection: (subject) => shellProfiles(subject.connection),
  probe,
  plan,
  recordedFacts,
  steps,
  outputs: outputsFrom,
  inputsOf: inputsFromOutputs,
  id: (outs) => `${outs.connection[0].host}:${outs.uuid}`,
  exists: (observed, recorded) => {
    if (!observed.exists) {
      throw new Error(`LuksVolume: ${recorded.device} does not exist on the host; assemble the array there (mdadm --assemble --scan) and refresh again`);
    }
    // Gone, or formatted over behind our back.
    return observed.luks !== null && observed.luks.uuid === recorded.uuid;
  },
  planDelete,
  retained: (olds) =>
    `the LUKS container on ${olds.device} (UUID ${olds.uuid}; header, keyslots and all data inside, still opened by the passphrase), ` +
    `its mapping /dev/mapper/${olds.mapperName} and its crypttab line on ${olds.host ?? olds.connection[0]?.host}`,
  secrets: passphrases,
  secretInputs: SECRET_INPUTS,
  settings: [POLL_SETTING],
};

// One instance for every LuksVolume, so the closure serializer's per-object cache hits.
export const provider = new KernelProvider(definition);
