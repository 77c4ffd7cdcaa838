// InstallImage on the kernel: the definition the KernelProvider runs. Nothing here but wiring.
//
// Its `reach` follows the host (reach.ts): create only from the rescue it was given, update and read
// from the installed system or the rescue, delete from a rescue to wipe from (booted through Robot
// when the host is not in one). Its reboot step hands the run over to the installed system, or to
// nothing when a crypt system waits for its passphrase; `carry` keeps what the host showed before
// that reboot, and counts the boot.
import { KernelProvider, ResourceDefinition } from "../kernel";
import { generateEd25519KeyPair } from "../plumbing/keys";
import { Secret } from "../plumbing/secret";
import { imageBaseName, usesCrypt } from "./autosetup";
import { carryOver, inputsOf, outputsOf } from "./outputs";
import { dataOnDrives, explainPlan, isUnseen, plan, planDelete, recordedFacts, shortHostname, unrepairedDriftMessage } from "./plan";
import { probe } from "./probe";
import { reachInstall } from "./reach";
import { steps } from "./steps";
import type { InstallImageInputs, InstallImageObserved, InstallImageOutputs, InstallImageStep, InstallSession } from "./types";
import { REPLACING_INPUTS, describeLoss, migrateOutputs, validate, validateReplacement } from "./validate";

/**
 * This run's secrets, redacted from every log line and step error: the real passphrase, installimage's
 * one-time passphrase (with crypt), and the installed system's host key (only its public half leaves).
 */
function runSecrets(subject: InstallImageInputs | InstallImageOutputs): Record<string, Secret> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require("crypto") as typeof import("crypto");
  const passphrase = "cryptPassphrase" in subject ? subject.cryptPassphrase : undefined;
  return {
    ...(passphrase !== undefined ? { passphrase: new Secret(passphrase) } : {}),
    ...(usesCrypt(subject.partitions) ? { oneTimePassphrase: new Secret(crypto.randomBytes(24).toString("base64url")) } : {}),
    hostKeyPrivate: new Secret(generateEd25519KeyPair(`root@${shortHostname(subject.hostname)}`).private),
  };
}

/** Whether the recorded install is still on the host (false: read reports it gone). */
function installExists(observed: InstallImageObserved, recorded: InstallImageOutputs): boolean {
  // Not gone: a host waiting in its initramfs, or off, still holds the install.
  if (isUnseen(observed)) return true;
  const marker = observed.root?.marker;
  if (marker) return marker.installId === recorded.installId; // another install took these drives
  const wiped = observed.root !== null && observed.environment === "rescue" && observed.arrays.length === 0 && dataOnDrives(observed, recorded.drives).length === 0;
  return !wiped;
}

export const definition: ResourceDefinition<InstallImageInputs, InstallImageOutputs, InstallImageObserved, InstallImageStep, InstallSession> = {
  type: "InstallImage",
  // Install, finish + reboot, resync on the system, converged; two to spare.
  maxRounds: 6,
  // Old and new install want the same drives.
  deleteBeforeReplace: true,
  replaceIfUnknown: REPLACING_INPUTS,
  validate: (news, olds) => [...validate(news), ...validateReplacement(olds, news)],
  diffWarnings: (recorded, news) => [unrepairedDriftMessage(recorded.drift ?? [], news)].filter((w): w is string => w !== null),
  reach: reachInstall,
  probe,
  plan,
  recordedFacts: (recorded) => recordedFacts(recorded),
  steps,
  outputs: outputsOf,
  carry: carryOver,
  // The same image by another spelling (`.tar.gz`) is the same request.
  requestKey: (inputs) => ({ ...inputsOf(inputs), image: imageBaseName(inputs.image) }),
  explain: explainPlan,
  inputsOf: (outs) => inputsOf(outs) as InstallImageInputs,
  id: (outs) => outs.installId,
  exists: installExists,
  planDelete,
  retained: (olds) => `${describeLoss(olds)} on ${olds.hostname}`,
  migrate: (stored) => migrateOutputs(stored) as unknown as InstallImageOutputs,
  secrets: runSecrets,
  secretInputs: ["cryptPassphrase"],
  settings: ["installImagePollMs"],
};

// One instance for every InstallImage, so the closure serializer's per-object cache hits.
export const provider = new KernelProvider(definition);
