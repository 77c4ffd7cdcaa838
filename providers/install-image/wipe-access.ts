// How delete reaches a rescue to wipe from: the stored one while it answers, else one booted through Robot.
import { ConnectionProfile, HostState, MISSING_ROBOT_ACCESS, RefusalError } from "../kernel";
import { desiredFromRecipe } from "../rescue-boot";
import type { InstallImageOutputs } from "./types";

/**
 * The profiles `classifyHost` tells the host's state by, without logging in: the stored rescue's
 * keys and the installed system's pinned keys.
 */
export function wipeProfiles(props: Pick<InstallImageOutputs, "rescue" | "hostKeyFingerprints">): Pick<ConnectionProfile, "environment" | "hostKeyFingerprints">[] {
  return [
    { environment: "rescue", hostKeyFingerprints: props.rescue.hostKeyFingerprints },
    { environment: "system", hostKeyFingerprints: props.hostKeyFingerprints },
  ];
}

/** RescueBoot's desired state, as `desiredFromRecipe` builds it (the one name imported for it). */
export type RescueDesired = ReturnType<typeof desiredFromRecipe>;

/** How delete gets to a rescue to wipe from: the stored one while it answers, else a fresh boot through Robot. */
export type WipeAccess =
  | { readonly kind: "storedRescue" }
  | { readonly kind: "bootRescue"; readonly desired: RescueDesired; readonly bootedAfter: string | null; readonly why: string };

export function planWipeAccess(
  state: HostState,
  props: Pick<InstallImageOutputs, "rescue" | "installedAt" | "providerVersion">,
  robotConfigured: boolean,
): WipeAccess {
  if (state.kind === "rescue") return { kind: "storedRescue" };
  const { host, port } = props.rescue;
  const why =
    state.kind === "unknown-key" ? `${host}:${port} presents ${state.fingerprint}, neither the stored rescue's key nor the installed system's`
    : state.kind === "system" ? `the host runs its installed system (${host}:${port} presents its pinned key)`
    : state.kind === "initramfs" ? `the host waits in its initramfs (${host}:${port} answers with dropbear)`
    : `nothing answers SSH on ${host}:${port} (powered off, or waiting in its initramfs)`;
  const recipe = props.rescue.robot;
  if (recipe === undefined || recipe === null) {
    throw new RefusalError("rescue", 
      `wiping needs the rescue system, but ${why}, and the stored rescue profile carries no Robot recipe to boot one (it did not come from RescueBoot). ` +
        "Pass RescueBoot's profile as `rescue` and run up (this stores it), or boot rescue yourself and store its profile, then destroy again. Nothing was written",
    );
  }
  if (!robotConfigured) {
    throw new RefusalError("rescue", `wiping needs the rescue system, but ${why}, and booting one needs Robot: ${MISSING_ROBOT_ACCESS}. Nothing was written`);
  }
  // A rescue booted after the install is one an earlier, killed delete asked for: adopted, not reset again.
  const bootedAfter = props.installedAt !== "" ? props.installedAt : null;
  return { kind: "bootRescue", desired: desiredFromRecipe(recipe, { host, port }, props.providerVersion), bootedAfter, why };
}

/**
 * Why a create could not start. Create installs only from the rescue it was given: it never resets a
 * server on its own, because a server found running something else may be someone's live system.
 */
export function rescueGoneOnCreate(rescue: ConnectionProfile, cause: unknown): string {
  const why = cause instanceof Error ? cause.message : String(cause);
  return (
    `create installs from the rescue system at ${rescue.host}:${rescue.port}, which did not answer with its pinned key (${why.split("\n").join(" ")}). ` +
    "Bump RescueBoot's generation and run up again: a fresh rescue boots and the install starts there. " +
    "If an earlier run of this create was interrupted after it rebooted into the installed system, the finished install is found on the drives and only completed (no reinstall)"
  );
}

