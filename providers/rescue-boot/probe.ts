// probe (read-only: Robot GETs, one unauthenticated look at the SSH endpoint and, when a rescue of
// ours answers with a verified key, one login that runs the identity command and changes nothing).
import { classifyHost } from "../kernel/host-access";
import { RefusalError } from "../kernel/resource";
import { OTHER_BOOT_TYPES, RobotKey, RobotRescue } from "../plumbing/robot";
import { connect, EndpointObservation, observeEndpoint } from "../plumbing/ssh";
import { identityCommand, identityProblems, IdentityPins, parseIdentity } from "./identity";
import { keyFingerprints, resolveInputs } from "./validate";
import type { LastRescueFacts, RescueBootInputs, RescueBootOutputs, RescueContext, RescueObserved, VerifiedRescue } from "./types";

/**
 * Converging: what Robot shows, the endpoint, and the rescue answering on it when its key is one we
 * can verify. Refresh and delete (the subject is the recorded outputs) read only the arm and, on
 * refresh, where the server is: leaving rescue is not drift, and delete must work for a server gone
 * from the account.
 */
export async function probe(ctx: RescueContext, subject: RescueBootInputs | RescueBootOutputs): Promise<RescueObserved> {
  if (ctx.purpose !== "converge") return probeRecorded(ctx, subject as RescueBootOutputs);
  const desired = resolveInputs(subject);
  const { robot } = ctx.session;
  const n = desired.serverNumber;
  const server = await robot.getServer(n);
  const reset = await robot.getReset(n, { accept: ["RESET_NOT_AVAILABLE"] });
  const boot = await robot.getBoot(n);
  const last = await robot.getLastRescue(n, { accept: ["NOT_FOUND"] });
  const stored = await robot.listKeys();
  const host = desired.connect.host ?? server.serverIp;
  if (host === null) {
    throw new RefusalError("connect.host", `connect.host: server ${n} has no main IPv4 in Robot (IPv6 only); set connect.host to the address its rescue answers on`);
  }
  // Only a booted rescue can be adopted; otherwise the look is skipped (a silent port costs seconds).
  const observation = last.ok && last.value.bootTime !== null ? await observeEndpoint(host, desired.connect.port) : null;
  const storedFingerprints = stored.map((key: RobotKey) => key.fingerprint);
  const lastRescue = last.ok ? lastRescueFacts(last.value) : null;
  const identity: IdentityPins = { driveSerials: desired.driveSerials, address: desired.connect.host === null ? server.serverIp : null };
  const reached = observation === null ? null : await verifyAnswering(ctx, host, desired.connect.port, observation, lastRescue, identity);
  const pins = reached?.pinned ?? (lastRescue?.hostKeyFingerprints ?? []).filter((fp) => fp.startsWith("SHA256:"));
  return {
    now: new Date().toISOString(),
    server: { ipv4: server.serverIp, ipv6Net: server.serverIpv6Net, product: server.product, datacenter: server.dc },
    resetTypes: reset.ok ? [...reset.value.types] : null,
    otherActiveBoots: OTHER_BOOT_TYPES.filter((type) => boot[type]?.active === true),
    rescueArmed: boot.rescue?.active === true,
    missingKeys: keyFingerprints(desired.authorizedKeys).filter((fp) => !storedFingerprints.includes(fp)),
    lastRescue,
    endpoint: { host, port: desired.connect.port, observation },
    environment: observation === null ? "unreachable" : classifyHost(observation, [{ environment: "rescue", hostKeyFingerprints: pins }]).kind,
    reached,
  };
}

/**
 * The rescue answering with a key we can verify: the one this run's awaitRescue verified, or one
 * Robot reported for its last activation (a boot an earlier run asked for). Logged into with exactly
 * that key, and checked to be this server (identity pins); null when no such rescue answers, or when
 * it fails the check (the plan then waits for it, and awaitRescue refuses it by name).
 */
async function verifyAnswering(
  ctx: RescueContext,
  host: string,
  port: number,
  observation: EndpointObservation,
  last: LastRescueFacts | null,
  identity: IdentityPins,
): Promise<VerifiedRescue | null> {
  const presented = observation.kind === "ssh" ? observation.hostKey : null;
  if (presented === null) return null;
  const thisRun = ctx.session.verified;
  if (thisRun !== null && thisRun.hostKey.fingerprint === presented.fingerprint) return thisRun;
  if (last === null || last.bootedAt === null || !last.hostKeyFingerprints.includes(presented.fingerprint)) return null;
  const session = await connect(
    { host, port, user: "root", privateKey: ctx.session.privateKey, hostKey: { expect: [presented.fingerprint] }, label: `rescue ${host}:${port}` },
    { maxAttempts: 1, budgetMs: 20_000, attemptTimeoutMs: 20_000, logger: ctx.log.child("ssh") },
  ).catch(() => null);
  if (session === null) return null;
  try {
    const facts = await session.exec(identityCommand(), { timeoutMs: 60_000 });
    if (identityProblems(parseIdentity(facts.stdout), identity).length > 0) return null;
    return { hostKey: session.observedHostKey, source: "robot", pinned: [presented.fingerprint] };
  } finally {
    await session.close();
  }
}

export function lastRescueFacts(rescue: RobotRescue): LastRescueFacts {
  return {
    bootedAt: rescue.bootTime,
    hostKeyFingerprints: rescue.hostKeys.map((k) => k.fingerprint),
    authorizedKeys: rescue.authorizedKeys.map((k) => k.fingerprint),
  };
}

/** Refresh's and delete's look: whether rescue is armed and (refresh) where the server is now; the rest is the record. */
async function probeRecorded(ctx: RescueContext, outputs: RescueBootOutputs): Promise<RescueObserved> {
  const rescue = await ctx.session.robot.getRescue(outputs.serverNumber, { accept: ["SERVER_NOT_FOUND"] });
  const observation = ctx.purpose === "read" ? await observeEndpoint(outputs.host, outputs.port) : null;
  const profiles = [{ environment: "rescue" as const, hostKeyFingerprints: outputs.hostKeyFingerprints }];
  return {
    ...observedFromOutputs(outputs),
    now: new Date().toISOString(),
    rescueArmed: rescue.ok && rescue.value.active,
    endpoint: { host: outputs.host, port: outputs.port, observation },
    environment: observation === null ? outputs.environment : classifyHost(observation, profiles).kind,
  };
}

/** The recorded outputs in the shape a probe returns (what `diff` plans against). */
export function observedFromOutputs(outputs: RescueBootOutputs): RescueObserved {
  const desired = resolveInputs(outputs);
  return {
    now: outputs.bootedAt,
    server: { ipv4: outputs.serverIpv4, ipv6Net: outputs.serverIpv6Net, product: outputs.product, datacenter: outputs.datacenter },
    // The reset that booted the recorded rescue worked; Robot is asked again before any other.
    resetTypes: [desired.resetType],
    otherActiveBoots: [],
    rescueArmed: outputs.rescueArmed,
    missingKeys: [],
    lastRescue: { bootedAt: outputs.bootedAt, hostKeyFingerprints: outputs.hostKeyFingerprints, authorizedKeys: keyFingerprints(desired.authorizedKeys) },
    endpoint: { host: outputs.host, port: outputs.port, observation: null },
    environment: outputs.environment,
    reached: null,
  };
}
