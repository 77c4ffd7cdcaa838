// Outputs (pure): after a boot, after an update that does not boot, and the recipe a profile carries.
import type { RescueRecipe } from "../kernel/host-access";
import { jsonSafe } from "../kernel/resource";
import { knownHostsLine } from "../plumbing/keys";
import { resolveInputs } from "./validate";
import type { RescueBootInputs, RescueBootOutputs, RescueDesired, RescueObserved } from "./types";

/** The fields of the request, as the program gave them (defaults not filled in). */
const REQUEST_FIELDS = ["serverNumber", "authorizedKeys", "generation", "resetType", "connect", "timeouts", "allowFirstContactHostKey", "driveSerials", "providerVersion"] as const;

/** Outputs that record `request` as given, next to the boot's facts. */
export function withRequest(outs: RescueBootOutputs, request: RescueBootInputs): RescueBootOutputs {
  const recorded: Record<string, unknown> = {};
  for (const field of REQUEST_FIELDS) if (request[field] !== undefined) recorded[field] = request[field];
  return jsonSafe({ ...factsOf(outs), ...recorded } as unknown as RescueBootOutputs, "outputs");
}

function factsOf(outs: RescueBootOutputs): Record<string, unknown> {
  const facts: Record<string, unknown> = { ...outs };
  for (const field of REQUEST_FIELDS) delete facts[field];
  return facts;
}

/**
 * The kernel's outputs. After a boot (the probe verified the rescue): the boot's facts. On refresh,
 * or an update whose recorded boot stands: the record, with where the server is and whether rescue
 * is armed now.
 */
export function outputsFrom(inputs: RescueBootInputs, observed: RescueObserved, _reached: unknown, recorded: RescueBootOutputs | null): RescueBootOutputs {
  if (observed.reached === null) {
    if (recorded === null) throw new Error(`RescueBoot ${inputs.serverNumber}: the plan ended without a verified rescue`);
    return withRequest({ ...recorded, environment: observed.environment, rescueArmed: observed.rescueArmed }, inputs);
  }
  const bootedAt = observed.lastRescue?.bootedAt ?? observed.now;
  return withRequest(buildOutputs(resolveInputs(inputs), observed, bootedAt), inputs);
}

/** The outputs of a verified boot (`observed.reached`), with the request's defaults filled in. */
export function buildOutputs(desired: RescueDesired, observed: RescueObserved, bootedAt: string): RescueBootOutputs {
  const reached = observed.reached;
  if (reached === null) throw new Error(`RescueBoot ${desired.serverNumber}: the plan ended without a verified rescue`);
  const { host, port } = observed.endpoint;
  const key = { type: reached.hostKey.type, blob: Buffer.from(reached.hostKey.base64, "base64"), comment: "" };
  return jsonSafe(
    {
      ...desired,
      host,
      port,
      hostKeyFingerprints: reached.pinned,
      knownHosts: [knownHostsLine(host, port, key)],
      hostKeySource: reached.source,
      bootedAt,
      serverIpv4: observed.server.ipv4,
      serverIpv6Net: observed.server.ipv6Net,
      product: observed.server.product,
      datacenter: observed.server.datacenter,
      profile: { environment: "rescue" as const, host, port, user: "root", hostKeyFingerprints: reached.pinned, robot: recipeOf(desired) },
      environment: "rescue" as const,
      rescueArmed: observed.rescueArmed,
    },
    "outputs",
  );
}

/** The kernel's `restate`: an update whose recorded boot stands stores the request as given. */
export function restateRequest(olds: RescueBootOutputs, news: RescueBootInputs): RescueBootOutputs {
  return withRequest(restate(olds, resolveInputs(news)), news);
}

/** The outputs of an update that does not boot: new inputs stored, the boot's facts kept. */
export function restate(olds: RescueBootOutputs, desired: RescueDesired): RescueBootOutputs {
  const host = desired.connect.host ?? olds.serverIpv4 ?? olds.host;
  const port = desired.connect.port;
  const moved = host !== olds.host || port !== olds.port;
  const knownHosts = moved ? olds.knownHosts.map((line) => `${port === 22 ? host : `[${host}]:${port}`} ${line.split(" ").slice(1).join(" ")}`) : olds.knownHosts;
  return jsonSafe({ ...olds, ...desired, host, port, knownHosts, profile: { ...olds.profile, host, port, robot: recipeOf(desired) } }, "outputs");
}

/** What the profile carries so another resource can boot this rescue again (InstallImage's delete). */
export function recipeOf(desired: RescueDesired): RescueRecipe {
  const { serverNumber, authorizedKeys, resetType, allowFirstContactHostKey, driveSerials } = desired;
  return { serverNumber, authorizedKeys, resetType, allowFirstContactHostKey, sshMs: desired.timeouts.sshMs, ...(driveSerials.length > 0 ? { driveSerials } : {}) };
}

/** The desired state of a fresh boot from a profile's recipe, dialling the profile's address. */
export function desiredFromRecipe(recipe: RescueRecipe, endpoint: { host: string; port: number }, providerVersion: string): RescueDesired {
  return {
    serverNumber: recipe.serverNumber,
    authorizedKeys: [...recipe.authorizedKeys],
    generation: 0,
    resetType: recipe.resetType,
    connect: { host: endpoint.host, port: endpoint.port },
    timeouts: { sshMs: recipe.sshMs },
    allowFirstContactHostKey: recipe.allowFirstContactHostKey,
    driveSerials: [...(recipe.driveSerials ?? [])],
    providerVersion,
  };
}

/** The request recorded in outputs: what read returns as the inputs. */
export function inputsOf(outs: RescueBootOutputs): RescueBootInputs {
  const request: Record<string, unknown> = {};
  for (const field of REQUEST_FIELDS) if (outs[field] !== undefined) request[field] = outs[field];
  return request as unknown as RescueBootInputs;
}
