// InstallImage's outputs (pure).
import { jsonSafe } from "../kernel";
import type { Reached } from "../kernel";
import { knownHostsLine, parsePublicKey, sha256Fingerprint } from "../plumbing/keys";
import { formatMdUuid, isDegraded } from "../storage/md";
import { driftOf, isUnseen } from "./plan";
import type { DriveSpec, InstallImageInputs, InstallImageObserved, InstallImageOutputs, InstallImageStep, InstalledLayout, InstallObserved, ObservedEnvironment } from "./types";

// ---------------------------------------------------------------------------------------------
// outputs (pure)


/** The inputs as stored in outputs: everything but the passphrase. */
export function inputsOf(inputs: InstallImageInputs | InstallImageOutputs): Omit<InstallImageInputs, "cryptPassphrase"> {
  const { rescue, system, drives, raid, partitions, volumes, image, hostname, cryptPbkdf, allowWipe, reboot, resync, reassemble, providerVersion } = inputs;
  return jsonSafe({ rescue, system, drives, raid, partitions, volumes, image, hostname, cryptPbkdf, allowWipe, reboot, resync, reassemble, providerVersion }, "inputs");
}

export function systemEndpoint(inputs: Pick<InstallImageInputs, "rescue" | "system">): { host: string; port: number } {
  return { host: inputs.system?.host ?? inputs.rescue.host, port: inputs.system?.port ?? inputs.rescue.port };
}

export function layoutOf(observed: InstallObserved, drives: readonly DriveSpec[]): InstalledLayout {
  const release = observed.root?.osRelease ?? {};
  return {
    arrays: observed.arrays.map((a) => ({
      device: a.device,
      level: a.level,
      members: a.members.filter((m) => m.role === "active").map((m) => m.device),
      uuid: formatMdUuid(a.uuid),
      state: a.state,
      degraded: isDegraded(a),
      faultyMembers: a.members.filter((m) => m.role === "faulty").map((m) => m.device),
      sync: { action: a.sync.action, percent: a.sync.percent },
    })),
    partitions: observed.drives
      .filter((d) => drives.some((x) => x.path === d.path))
      .flatMap((d) => d.stacked.filter((n) => n.type === "part").map((n) => ({ device: n.path, sizeBytes: n.sizeBytes, fstype: n.fstype }))),
    volumeGroups: observed.volumeGroups,
    volumes: observed.volumes,
    os: release.PRETTY_NAME ? { prettyName: release.PRETTY_NAME, versionId: release.VERSION_ID ?? "" } : null,
  };
}

/**
 * The LUKS containers installimage made, by device and UUID: the initramfs and crypttab open the
 * root as `luks-<UUID>`, so whoever adopts the container (EncryptedRaidHost's LuksVolume) needs it.
 * Kept from the record when this look could not read the headers (an unreachable or locked host).
 */
function rootContainers(observed: InstallObserved, previous: InstallImageOutputs | undefined): InstallImageOutputs["luks"] {
  const found = observed.luks.filter((c) => c.uuid !== "").map((c) => ({ device: c.device, uuid: c.uuid }));
  return found.length > 0 ? found : previous?.luks ?? [];
}

export interface OutputContext {
  readonly environment: ObservedEnvironment;
  readonly host: string;
  readonly boots: number;
  /** Kept when the observation cannot say (root unreadable, host unreachable). */
  readonly previous?: InstallImageOutputs;
}

export function outputsFrom(inputs: InstallImageInputs | InstallImageOutputs, observed: InstallObserved, at: OutputContext): InstallImageOutputs {
  const endpoint = systemEndpoint(inputs);
  const keys = observed.root?.hostKeys.map((line) => parsePublicKey(line)) ?? [];
  const marker = observed.root?.marker ?? null;
  const arrayUuids = at.previous && at.previous.arrayUuids?.length > 0 ? at.previous.arrayUuids : observed.arrays.map((a) => formatMdUuid(a.uuid));
  return jsonSafe(
    {
      ...inputsOf(inputs),
      installId: marker?.installId ?? at.previous?.installId ?? "",
      installedAt: marker?.installedAt ?? at.previous?.installedAt ?? "",
      environment: at.environment,
      host: at.host,
      hostKeyFingerprints: keys.length > 0 ? keys.map((k) => sha256Fingerprint(k)) : at.previous?.hostKeyFingerprints ?? [],
      knownHosts: keys.length > 0 ? keys.map((k) => knownHostsLine(endpoint.host, endpoint.port, k)) : at.previous?.knownHosts ?? [],
      observedHostname: observed.root?.hostname ?? at.previous?.observedHostname ?? null,
      layout: layoutOf(observed, inputs.drives),
      arrayUuids,
      luks: rootContainers(observed, at.previous),
      drift: driftOf(observed, inputs, at.previous ? arrayUuids : []),
      ...missingDrivePaths(observed),
      boots: at.boots,
    },
    "outputs",
  );
}


function missingDrivePaths(observed: InstallObserved): { missingDrivePaths?: string[] } {
  const missing = observed.drives.filter((d) => !d.exists).map((d) => d.path);
  return missing.length > 0 ? { missingDrivePaths: missing } : {};
}

/**
 * The kernel's outputs. Seen over SSH: the facts found, with what only the record knows (the arrays
 * of the install, the boots). Not seen (a host waiting in its initramfs for the passphrase, or not
 * answering): the recorded facts, with where the host is now.
 */
export function outputsOf(inputs: InstallImageInputs | InstallImageOutputs, observed: InstallImageObserved, reached: Reached, recorded: InstallImageOutputs | null): InstallImageOutputs {
  if (isUnseen(observed)) {
    if (recorded === null) throw new Error(`InstallImage ${inputs.hostname}: the host cannot be logged into, and there is no record of the install to keep`);
    const environment = observed.environment === "initramfs" ? "initramfs-locked" : "unreachable";
    return jsonSafe({ ...recorded, ...inputsOf(inputs), environment, host: reached.host }, "outputs");
  }
  return outputsFrom(inputs, observed, { environment: observed.environment, host: reached.host, boots: recorded?.boots ?? 0, previous: recorded ?? undefined });
}

/**
 * The kernel's `carry`: a round that rebooted hands on what the host showed just before (a crypt
 * system then waits for its passphrase, with no SSH, so no later probe can read it) and counts the
 * boot, which no probe can see. Other rounds carry the record unchanged.
 */
export function carryOver(
  inputs: InstallImageInputs,
  observed: InstallImageObserved,
  reached: Reached,
  carried: InstallImageOutputs | null,
  applied: readonly InstallImageStep[],
): InstallImageOutputs | null {
  const reboots = applied.filter((step) => step.kind === "reboot").length;
  if (reboots === 0 || isUnseen(observed)) return carried;
  const before = outputsOf(inputs, observed, reached, carried);
  return { ...before, boots: before.boots + reboots };
}
