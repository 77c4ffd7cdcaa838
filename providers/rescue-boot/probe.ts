// probe (read-only: Robot GETs and one unauthenticated look at the SSH endpoint).
import { classifyHost } from "../kernel/host-access";
import { RefusalError } from "../kernel/resource";
import { OTHER_BOOT_TYPES, RobotKey, RobotRescue } from "../plumbing/robot";
import { observeEndpoint } from "../plumbing/ssh";
import { keyFingerprints } from "./validate";
import { LastRescueFacts, ObservedEnvironment, RescueBootOutputs, RescueContext, RescueDesired, RescueObserved } from "./types";


export async function probe(ctx: RescueContext, subject: RescueDesired): Promise<RescueObserved> {
  const n = subject.serverNumber;
  const server = await ctx.robot.getServer(n);
  const reset = await ctx.robot.getReset(n, { accept: ["RESET_NOT_AVAILABLE"] });
  const boot = await ctx.robot.getBoot(n);
  const last = await ctx.robot.getLastRescue(n, { accept: ["NOT_FOUND"] });
  const stored = await ctx.robot.listKeys();
  const host = subject.connect.host ?? server.serverIp;
  if (host === null) {
    throw new RefusalError("connect.host", `connect.host: server ${n} has no main IPv4 in Robot (IPv6 only); set connect.host to the address its rescue answers on`);
  }
  // Only a booted rescue can be adopted; otherwise the look is skipped (a silent port costs seconds).
  const observation = last.ok && last.value.bootTime !== null ? await observeEndpoint(host, subject.connect.port) : null;
  const storedFingerprints = stored.map((key: RobotKey) => key.fingerprint);
  return {
    now: new Date().toISOString(),
    server: { ipv4: server.serverIp, ipv6Net: server.serverIpv6Net, product: server.product, datacenter: server.dc },
    resetTypes: reset.ok ? [...reset.value.types] : null,
    otherActiveBoots: OTHER_BOOT_TYPES.filter((type) => boot[type]?.active === true),
    rescueArmed: boot.rescue?.active === true,
    missingKeys: keyFingerprints(subject.authorizedKeys).filter((fp) => !storedFingerprints.includes(fp)),
    lastRescue: last.ok ? lastRescueFacts(last.value) : null,
    endpoint: { host, port: subject.connect.port, observation },
  };
}

export function lastRescueFacts(rescue: RobotRescue): LastRescueFacts {
  return {
    bootedAt: rescue.bootTime,
    hostKeyFingerprints: rescue.hostKeys.map((k) => k.fingerprint),
    authorizedKeys: rescue.authorizedKeys.map((k) => k.fingerprint),
  };
}

/** Refresh's look: where the server is now (one SSH round trip, no login) and whether rescue is armed. */
export async function probeEnvironment(ctx: RescueContext, outputs: RescueBootOutputs): Promise<{ environment: ObservedEnvironment; rescueArmed: boolean }> {
  const observation = await observeEndpoint(outputs.host, outputs.port);
  const rescue = await ctx.robot.getRescue(outputs.serverNumber);
  const profiles = [{ environment: "rescue" as const, hostKeyFingerprints: outputs.hostKeyFingerprints }];
  return { environment: classifyHost(observation, profiles).kind, rescueArmed: rescue.active };
}
