// plan (pure; diff is this plan against the recorded facts): from what Robot and the endpoint show to a verified rescue.
import type { PlanSituation, ReplaceStep } from "../kernel/provider";
import { isUnknown, RefusalError } from "../kernel/resource";
import { REBOOTING_RESET_TYPES } from "../rules";
import { keyFingerprints, resolveInputs } from "./validate";
import { HostKeyPin, MIN_SSH_MS, RescueBootInputs, RescueBootOutputs, RescueDesired, RescueObserved, RescuePlanInput, RescueStep } from "./types";


/**
 * The steps from what Robot and the endpoint show to a verified rescue. A rescue of the last
 * activation that this run may count as its own (booted after `bootedAfter`, armed with our keys)
 * is adopted rather than reset again: a create killed after its reset must not reset twice.
 */
export function plan(observed: RescueObserved, desired: RescuePlanInput): RescueStep[] {
  const awaitRescue = (pin: HostKeyPin, budgetMs: number): RescueStep => ({
    kind: "awaitRescue",
    host: observed.endpoint.host,
    port: observed.endpoint.port,
    pin,
    allowFirstContactHostKey: desired.allowFirstContactHostKey,
    // Robot's address is checked only where it is the one dialled (no connect.host override).
    identity: { driveSerials: desired.driveSerials, address: desired.connect.host === null ? observed.server.ipv4 : null },
    budgetMs,
  });
  const fingerprints = keyFingerprints(desired.authorizedKeys);
  const adoptable = adoptableRescue(observed, desired, fingerprints);
  if (adoptable !== null) {
    const last = observed.lastRescue!;
    // A boot still coming up gets only what is left of its budget: if it never comes (the server
    // was reset to disk meanwhile), the next run is past the window and boots afresh.
    const leftMs = desired.timeouts.sshMs - (Date.parse(observed.now) - Date.parse(last.bootedAt!));
    const budgetMs = adoptable === "up" ? desired.timeouts.sshMs : Math.max(MIN_SSH_MS, leftMs);
    return [awaitRescue({ source: "last-rescue", fingerprints: last.hostKeyFingerprints }, budgetMs)];
  }
  const refusal = resetRefusal(observed, desired);
  if (refusal !== null) throw new RefusalError("resetType", refusal);
  const lineOf = (fingerprint: string): string => desired.authorizedKeys[fingerprints.indexOf(fingerprint)];
  return [
    ...observed.missingKeys.map((fingerprint): RescueStep => ({ kind: "registerKey", fingerprint, publicKey: lineOf(fingerprint) })),
    ...observed.otherActiveBoots.map((bootType): RescueStep => ({ kind: "disarmBoot", bootType })),
    { kind: "armRescue", fingerprints, allowFirstContactHostKey: desired.allowFirstContactHostKey },
    { kind: "reset", resetType: desired.resetType },
    awaitRescue({ source: "armed" }, desired.timeouts.sshMs),
  ];
}

/**
 * Whether the last rescue activation's boot counts as this run's: "up" when the endpoint presents
 * its host key, "booting" when it booted less than the SSH budget ago and nothing else answers yet
 * (or Robot gave no host key to tell), null when a fresh boot is needed.
 */
export function adoptableRescue(observed: RescueObserved, desired: RescuePlanInput, fingerprints: readonly string[]): "up" | "booting" | null {
  const last = observed.lastRescue;
  if (last === null || last.bootedAt === null) return null;
  if (desired.bootedAfter !== null && !(Date.parse(last.bootedAt) > Date.parse(desired.bootedAfter))) return null;
  if (!fingerprints.every((fp) => last.authorizedKeys.includes(fp))) return null;
  const seen = observed.endpoint.observation;
  if (seen === null) return null;
  const presented = seen.kind === "ssh" ? seen.hostKey : null;
  if (presented !== null && last.hostKeyFingerprints.includes(presented.fingerprint)) return "up";
  const ageMs = Date.parse(observed.now) - Date.parse(last.bootedAt);
  if (!(ageMs >= 0 && ageMs < desired.timeouts.sshMs)) return null;
  // A known rescue key and another key answering: the server is somewhere else now.
  const pinnable = last.hostKeyFingerprints.some((fp) => fp.startsWith("SHA256:"));
  if (seen.kind === "none" || !pinnable) return "booting";
  return null;
}

/** Why the reset this plan needs cannot be sent, or null. */
export function resetRefusal(observed: RescueObserved, desired: RescueDesired): string | null {
  const n = desired.serverNumber;
  if (observed.resetTypes === null) {
    return `Robot answered RESET_NOT_AVAILABLE for server ${n}: it offers no reset, so it cannot be rebooted into rescue through the API. ` +
      "Reboot it by other means (Hetzner support, or a reboot from the running system) after arming rescue, or choose a server with a reset option.";
  }
  if (!observed.resetTypes.includes(desired.resetType)) {
    const usable = observed.resetTypes.filter((t) => REBOOTING_RESET_TYPES.includes(t));
    return `resetType: "${desired.resetType}" is not offered for server ${n}; Robot allows ${JSON.stringify(observed.resetTypes)}. ` +
      (usable.length > 0 ? `Set resetType to ${usable.map((t) => `"${t}"`).join(" or ")}.` : "None of them reboots the server; ask Hetzner support.");
  }
  return null;
}

/** What delete does: disarm a rescue that is still armed, so the next reboot goes to disk. Destroys nothing. */
export function planDelete(observed: Pick<RescueObserved, "rescueArmed">): RescueStep[] {
  return observed.rescueArmed ? [{ kind: "disarmRescue" }] : [];
}

/**
 * The kernel's plan: against a fresh probe on create and update, against the recorded facts in
 * `diff`. Another server is a replacement. A recorded boot with the same generation stands (the
 * other inputs are stored, they take effect on the next boot): rescue is one-shot, and the server
 * leaving it is not drift. Otherwise a rescue this run may count as its own (booted after
 * `bootedAfter`, default the recorded boot; armed with our keys) that the probe verified is the
 * end; anything else is the boot plan.
 */
export function planRescue(
  observed: RescueObserved,
  inputs: RescueBootInputs,
  recorded: RescueBootOutputs | null,
  bootedAfter: string | null = recorded?.bootedAt ?? null,
): (RescueStep | ReplaceStep)[] {
  if (recorded !== null && recorded.serverNumber !== inputs.serverNumber) return [{ kind: "replace", fields: ["serverNumber"] }];
  const desired = resolveInputs(inputs);
  if (recorded !== null && resolveInputs(recorded).generation === desired.generation) return [];
  if (observed.reached !== null && countsAsThisRun(observed.lastRescue, bootedAfter, keyFingerprints(desired.authorizedKeys))) return [];
  return plan(observed, { ...desired, bootedAfter });
}

/** Whether the last activation's boot is one this run may count as its own (adoptableRescue's first tests). */
function countsAsThisRun(last: RescueObserved["lastRescue"], bootedAfter: string | null, fingerprints: readonly string[]): boolean {
  if (last === null || last.bootedAt === null) return false;
  if (bootedAfter !== null && !(Date.parse(last.bootedAt) > Date.parse(bootedAfter))) return false;
  return fingerprints.every((fp) => last.authorizedKeys.includes(fp));
}

/** Why the plan is what it is, for the log (the kernel's `explain`). */
export function explainPlan(situation: PlanSituation<RescueBootInputs, RescueBootOutputs, RescueObserved>): string | null {
  const { observed, plan: todo, desired, recorded } = situation;
  if (desired === null) {
    return todo.length === 0 && recorded !== null ? `no rescue armed for server ${recorded.serverNumber}: nothing to disarm; removed from the stack only` : null;
  }
  if (recorded !== null && todo.length === 0 && resolveInputs(recorded).generation === resolveInputs(desired).generation) {
    return sameKeys(recorded.authorizedKeys ?? [], desired.authorizedKeys)
      ? null
      : "authorizedKeys changed: the running rescue keeps its keys; they take effect on the next rescue boot (bump generation to boot now)";
  }
  const adopting = todo.length === 0 ? observed.reached !== null : todo.every((step) => step.kind === "awaitRescue");
  if (!adopting || observed.lastRescue?.bootedAt == null) return null;
  const after = recorded?.bootedAt ?? null;
  return `adopting the rescue booted at ${observed.lastRescue.bootedAt}: it was armed with these keys${after ? ` after ${after}` : ""}, so no reset is sent`;
}

// Keys are compared by identity (MD5), so a changed comment is no change.
function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.some(isUnknown) || b.some(isUnknown)) return false;
  try {
    const left = keyFingerprints(a).sort();
    const right = keyFingerprints(b).sort();
    return JSON.stringify(left) === JSON.stringify(right);
  } catch {
    return false;
  }
}

/** The request in the form diff compares: defaults filled in, keys by fingerprint (a comment is no change). */
export function requestKey(inputs: RescueBootInputs): unknown {
  const desired = resolveInputs(inputs);
  let keys: string[] | readonly string[] = desired.authorizedKeys;
  try {
    if (!keys.some(isUnknown)) keys = keyFingerprints(keys).sort();
  } catch {
    // A key check refuses is compared as written.
  }
  return { ...desired, authorizedKeys: keys };
}
