// How InstallImage reaches its host (the kernel's `reach`), and follows it through the reboot it
// makes: create only from the rescue it was given; update and read from the installed system or the
// rescue, whichever answers with its pinned key; delete from a rescue to wipe from (the stored one, or
// one booted through Robot). Its session may hold no SSH: after a reboot into an initramfs that waits
// for the LUKS passphrase, and on a read of a host that does not answer.
import type { ConnectionProfile, Reach, ReachContext } from "../kernel";
import { RefusalError, classifyHost, openFirstReachable } from "../kernel";
import type { Secret } from "../plumbing/secret";
import { SshSession, connect, observeEndpoint } from "../plumbing/ssh";
import { bootRescue } from "../rescue-boot/boot";
import { systemEndpoint } from "./outputs";
import { SYSTEM_WAIT_MS, InstallImageInputs, InstallImageOutputs, InstallSession } from "./types";
import { planWipeAccess, rescueGoneOnCreate, wipeProfiles } from "./wipe-access";

/** A session over SSH. */
export function sshSession(ssh: SshSession): InstallSession {
  return {
    ssh,
    awaiting: null,
    get commandsRun() {
      return ssh.commandsRun;
    },
    close: () => ssh.close(),
  };
}

/** A session without SSH: the host waits in its initramfs, or does not answer. */
export function noSession(awaiting: "initramfs" | "unreachable"): InstallSession {
  return { ssh: null, awaiting, commandsRun: 0, close: async () => undefined };
}

/** The profiles an update or read tries: the installed system (once its keys are known), then the rescue. */
export function recordedProfiles(outs: Pick<InstallImageOutputs, "rescue" | "system" | "hostKeyFingerprints">): ConnectionProfile[] {
  const endpoint = systemEndpoint(outs);
  const system: ConnectionProfile[] =
    outs.hostKeyFingerprints.length > 0 ? [{ environment: "system", host: endpoint.host, port: endpoint.port, user: "root", hostKeyFingerprints: outs.hostKeyFingerprints }] : [];
  return [...system, outs.rescue];
}

export async function reachInstall(access: ReachContext, subject: InstallImageInputs | InstallImageOutputs, recorded: InstallImageOutputs | null): Promise<Reach<InstallSession>> {
  if (access.purpose === "delete") return reachRescueToWipeFrom(access, subject as InstallImageOutputs);
  if (access.purpose === "converge" && recorded === null) {
    // Create installs only from the rescue it was given: it never resets a server on its own.
    const reached = await openFirstReachable([subject.rescue], access.privateKey).catch((error: unknown) => {
      throw new RefusalError("rescue", rescueGoneOnCreate(subject.rescue, error));
    });
    return reachedOver(reached.session, reached.profile);
  }
  const known = recorded ?? (subject as InstallImageOutputs);
  const profiles = recordedProfiles({ ...subject, hostKeyFingerprints: known.hostKeyFingerprints });
  try {
    const reached = await openFirstReachable(profiles, access.privateKey, { preferred: ["system", "rescue"] });
    return reachedOver(reached.session, reached.profile);
  } catch (error) {
    if (access.purpose !== "read" || (error instanceof Error && error.name === "HostKeyMismatchError")) throw error;
    // Not gone: a host waiting in its initramfs, or off, still holds the install; read keeps the record.
    const endpoint = systemEndpoint(subject);
    return { session: noSession("unreachable"), reached: { environment: "system", host: `${endpoint.host}:${endpoint.port}` }, close: async () => undefined };
  }
}

function reachedOver(ssh: SshSession, profile: ConnectionProfile): Reach<InstallSession> {
  const session = sshSession(ssh);
  return { session, reached: { environment: profile.environment, host: `${profile.host}:${profile.port}` }, close: () => session.close() };
}

/** The stored rescue while it still runs; otherwise a fresh rescue booted through Robot with RescueBoot's definition. */
async function reachRescueToWipeFrom(access: ReachContext, props: InstallImageOutputs): Promise<Reach<InstallSession>> {
  const state = classifyHost(await observeEndpoint(props.rescue.host, props.rescue.port), wipeProfiles(props));
  const plan = planWipeAccess(state, props, access.config.robot !== null);
  if (plan.kind === "storedRescue") {
    const reached = await openFirstReachable([props.rescue], access.privateKey);
    return reachedOver(reached.session, reached.profile);
  }
  access.log.info(`wiping needs the rescue system, but ${plan.why}: booting rescue through Robot (server ${plan.desired.serverNumber}, reset "${plan.desired.resetType}")`);
  const booted = await bootRescue({ config: access.config, settings: {} }, plan.desired, plan.bootedAfter);
  const reached = await openFirstReachable([booted.profile], access.privateKey);
  return reachedOver(reached.session, reached.profile);
}

/** Waits for the installed system's sshd with its pinned key; the rescue's key means "not rebooted yet". */
export async function waitForSystem(profile: ConnectionProfile, rescueKeys: readonly string[], privateKey: Secret, report: (line: string) => void): Promise<SshSession> {
  const started = Date.now();
  let lastReport = 0;
  for (;;) {
    let why: string;
    try {
      return await connect(
        { host: profile.host, port: profile.port, user: profile.user, privateKey, hostKey: { expect: profile.hostKeyFingerprints }, label: `system ${profile.host}:${profile.port}` },
        { maxAttempts: 1, budgetMs: 20_000, attemptTimeoutMs: 20_000 },
      );
    } catch (error) {
      if (error instanceof Error && error.name === "HostKeyMismatchError") {
        const observed = (error as Error & { observed?: { fingerprint?: string } }).observed?.fingerprint ?? "";
        if (!rescueKeys.includes(observed)) throw error; // neither rescue nor our key: not our host
        why = "rescue still answering";
      } else why = error instanceof Error ? error.message.split("\n")[0] : String(error);
    }
    lastReport = await pause(started, lastReport, `the installed system on ${profile.host}:${profile.port}`, why, report);
  }
}

/** Waits until the rescue no longer answers with its key: the reboot has begun (for an initramfs that offers no SSH to wait for). */
export async function waitForRescueGone(rescue: ConnectionProfile, report: (line: string) => void): Promise<void> {
  const started = Date.now();
  let lastReport = 0;
  for (;;) {
    const state = classifyHost(await observeEndpoint(rescue.host, rescue.port), [rescue]);
    if (state.kind !== "rescue") return;
    lastReport = await pause(started, lastReport, `the rescue on ${rescue.host}:${rescue.port} to go down`, "rescue still answering", report);
  }
}

/** One wait between polls: fails after SYSTEM_WAIT_MS, reports every 30 s. Returns when it last reported. */
async function pause(started: number, lastReport: number, what: string, why: string, report: (line: string) => void): Promise<number> {
  const elapsed = Date.now() - started;
  if (elapsed > SYSTEM_WAIT_MS) throw new Error(`waited ${SYSTEM_WAIT_MS / 60_000} min for ${what} (last: ${why}); look at the server's console`);
  let reported = lastReport;
  if (elapsed - lastReport >= 30_000) {
    report(`waiting for ${what} (${Math.round(elapsed / 1000)} s): ${why}`);
    reported = elapsed;
  }
  await new Promise((resolve) => setTimeout(resolve, 5000));
  return reported;
}
