// RescueBoot: brings a Hetzner server into the rescue system through the Robot webservice and
// hands back a verified SSH connection profile for it (what InstallImage and the other resources
// take as their `rescue` profile). Rescue is one-shot by nature: the server leaving rescue later
// is not drift, and refresh only reports where the server is now.
//
// Robot credentials and the operator's SSH private key come from the stack config through
// `configure`; they are never inputs, so they never reach state. The rescue root password is
// not returned at all: the operator's key is the way in.
//
// Module order, as in every resource: types, validate, plan/diff, probe, steps, provider, resource.

import * as pulumi from "@pulumi/pulumi";
import { keepErrorMessage } from "../plumbing/errors";
import { classifyHost, ConnectionProfile, HostState, RescueRecipe, SSH_PRIVATE_KEY_CONFIG } from "../kernel/host-access";
import { MISSING_ROBOT_ACCESS, RobotAccess, robotAccessFromConfig } from "../kernel/config";
import { IdentityPins, identityProblems, identityCommand, INSTALLIMAGE_PATH, parseIdentity } from "./identity";
import { knownHostsLine, md5Fingerprint, parsePublicKey } from "../plumbing/keys";
import { createLogger } from "../plumbing/log";
import {
  CheckFailure,
  checkResult,
  isUnknown,
  jsonSafe,
  PROVIDER_VERSION,
  providerVersionChanged,
  ResourceModule,
  runPlan,
  runStep,
  StepContext,
} from "../kernel/resource";
import { OTHER_BOOT_TYPES, OtherBootType, ResetType, RobotClient, RobotKey, RobotRescue } from "../plumbing/robot";
import { checkEndpointAddress, checkPort, checkResetType, checkServerNumber, REBOOTING_RESET_TYPES } from "../rules";
import { redact, Secret } from "../plumbing/secret";
import { connect, EndpointObservation, observeEndpoint, ObservedHostKey } from "../plumbing/ssh";

// ---------------------------------------------------------------------------------------------
// Types

/** Where to dial instead of the server's main IPv4 on port 22 (the lab: 127.0.0.1 and a forwarded port). */
export interface RescueEndpoint {
  readonly host?: string;
  readonly port?: number;
}

export interface RescueTimeouts {
  /** How long to wait from the reset until the rescue's sshd answers. Default 10 min (real boots take up to ~5.5). */
  readonly sshMs?: number;
}

export interface RescueBootArgs {
  /** The server number shown in Robot. Changing it REPLACES the resource (another server). */
  readonly serverNumber: pulumi.Input<number>;
  /** OpenSSH public key lines allowed into the rescue as root (at least one). Keys missing in Robot are
   *  uploaded via /key; Robot matches them by MD5 fingerprint. A change takes effect on the next boot. */
  readonly authorizedKeys: pulumi.Input<pulumi.Input<string>[]>;
  /** Bump to ask for a fresh rescue boot (an in-place update that resets the server once). Default 0. */
  readonly generation?: pulumi.Input<number>;
  /** Robot reset type used to reboot into rescue: "hw" (default), "sw" or "man" (a technician; slow).
   *  Create checks it against the types Robot offers for this server. */
  readonly resetType?: pulumi.Input<string>;
  /** Dial this address/port instead of the server's main IPv4 on port 22. */
  readonly connect?: pulumi.Input<{ host?: pulumi.Input<string>; port?: pulumi.Input<number> }>;
  readonly timeouts?: pulumi.Input<{ sshMs?: pulumi.Input<number> }>;
  /** Where Robot reports no host key for the rescue (real Robot, so far always), trust the key the
   *  rescue presents on first contact, for this boot only, and say so in `hostKeySource`. Default
   *  false: such a boot fails before the reset. An explicit per-host choice: check warns about it
   *  in every preview (README "First contact"). */
  readonly allowFirstContactHostKey?: pulumi.Input<boolean>;
  /** Serials or WWNs of the server's drives (lsblk's SERIAL or WWN). Every login to the rescue checks
   *  that they are all present: after a first contact, they are what tells this server from another. */
  readonly driveSerials?: pulumi.Input<pulumi.Input<string>[]>;
}

/** Inputs as the provider receives them (resolved, plain). */
export interface RescueBootInputs {
  readonly serverNumber: number;
  readonly authorizedKeys: string[];
  readonly generation?: number;
  readonly resetType?: string;
  readonly connect?: RescueEndpoint;
  readonly timeouts?: RescueTimeouts;
  readonly allowFirstContactHostKey?: boolean;
  readonly driveSerials?: string[];
  readonly providerVersion: string;
}

/** Inputs with every default filled in. */
export interface RescueDesired {
  readonly serverNumber: number;
  readonly authorizedKeys: string[];
  readonly generation: number;
  readonly resetType: string;
  /** host null: the server's main IPv4 from Robot. */
  readonly connect: { readonly host: string | null; readonly port: number };
  readonly timeouts: { readonly sshMs: number };
  readonly allowFirstContactHostKey: boolean;
  /** Empty: not checked. */
  readonly driveSerials: string[];
  readonly providerVersion: string;
}

export type HostKeySource = "robot" | "first-contact";
/** Where the server was when last looked at (the kernel's `classifyHost`): an environment,
 *  "unknown-key" when another key answered, "unreachable" when nothing answered SSH. */
export type ObservedEnvironment = HostState["kind"];

export interface RescueBootOutputs extends RescueDesired {
  /** Address and port the rescue answers on. */
  readonly host: string;
  readonly port: number;
  /** SHA256 fingerprints pinned for this rescue boot. */
  readonly hostKeyFingerprints: string[];
  /** `known_hosts` lines for host:port. */
  readonly knownHosts: string[];
  readonly hostKeySource: HostKeySource;
  /** When the server booted into this rescue (ISO 8601). */
  readonly bootedAt: string;
  readonly serverIpv4: string | null;
  /** The server's IPv6 /64 as Robot reports it (e.g. "2a01:4f8:111:4221::"), or null. */
  readonly serverIpv6Net: string | null;
  readonly product: string;
  readonly datacenter: string;
  /** The connection profile other resources take as their `rescue` input. */
  readonly profile: ConnectionProfile;
  /** Where the server was at the last create/update/refresh. */
  readonly environment: ObservedEnvironment;
  /** Whether a rescue boot is armed in Robot and not yet consumed (from the last create/update/refresh). */
  readonly rescueArmed: boolean;
}

/** What probe saw: Robot's view of the server plus one unauthenticated look at its SSH endpoint. */
export interface RescueObserved {
  /** Probe time (ISO), so plan can judge how old a boot is without reading the clock itself. */
  readonly now: string;
  readonly server: { readonly ipv4: string | null; readonly ipv6Net: string | null; readonly product: string; readonly datacenter: string };
  /** Reset types Robot offers; null when Robot answered RESET_NOT_AVAILABLE. */
  readonly resetTypes: string[] | null;
  readonly otherActiveBoots: OtherBootType[];
  readonly rescueArmed: boolean;
  /** MD5 fingerprints of desired keys Robot does not store yet. */
  readonly missingKeys: string[];
  /** The latest rescue activation, consumed by a boot or not; null when there never was one. */
  readonly lastRescue: LastRescueFacts | null;
  /** observation null: not looked at, because no rescue of the last activation has booted that could be adopted. */
  readonly endpoint: { readonly host: string; readonly port: number; readonly observation: EndpointObservation | null };
}

export interface LastRescueFacts {
  readonly bootedAt: string | null;
  /** Normalised: `SHA256:…`, or `MD5:…` when Robot gives only that. */
  readonly hostKeyFingerprints: string[];
  /** MD5 fingerprints of the keys it was armed with. */
  readonly authorizedKeys: string[];
}

/** Plan input: the desired state, plus which boots already count as this run's. */
export interface RescuePlanInput extends RescueDesired {
  /** A rescue booted after this instant is the one this run asked for (update: the stored bootedAt).
   *  null on create: any booted rescue of the last activation that still runs will do. */
  readonly bootedAfter: string | null;
}

/** How awaitRescue decides which host key to believe. */
export type HostKeyPin = { readonly source: "armed" } | { readonly source: "last-rescue"; readonly fingerprints: string[] };

export type RescueStep =
  | { readonly kind: "registerKey"; readonly fingerprint: string; readonly publicKey: string }
  | { readonly kind: "disarmBoot"; readonly bootType: OtherBootType }
  | { readonly kind: "armRescue"; readonly fingerprints: string[]; readonly allowFirstContactHostKey: boolean }
  | { readonly kind: "reset"; readonly resetType: string }
  | { readonly kind: "awaitRescue"; readonly host: string; readonly port: number; readonly pin: HostKeyPin; readonly allowFirstContactHostKey: boolean; readonly identity: IdentityPins; readonly budgetMs: number }
  // Delete only:
  | { readonly kind: "disarmRescue" };

/** What the steps of one run found out; shared by reference across the steps of a plan. */
export interface BootRecord {
  armedHostKeys: string[] | null;
  bootedAt: string | null;
  rescueArmed: boolean | null;
  resets: number;
  reached: { readonly hostKey: ObservedHostKey; readonly source: HostKeySource; readonly pinned: string[] } | null;
}

export interface RescueContext extends StepContext {
  readonly robot: RobotClient;
  readonly serverNumber: number;
  readonly privateKey: Secret;
  /** Progress lines of long steps (waiting for SSH, Robot rate limits). */
  readonly report: (message: string) => void;
  readonly record: BootRecord;
}

/** The boot cannot proceed as configured; the message names the input to change. */
export class RescueBootRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RescueBootRefusedError";
    keepErrorMessage(this, message);
  }
}

export const DEFAULT_RESET_TYPE = "hw";
export const DEFAULT_SSH_MS = 10 * 60_000;
export { INSTALLIMAGE_PATH };
const MIN_SSH_MS = 1000;
const MAX_SSH_MS = 60 * 60_000;

// ---------------------------------------------------------------------------------------------
// validate (pure; check runs it before any Robot or SSH call)

export function resolveInputs(inputs: RescueBootInputs): RescueDesired {
  return {
    serverNumber: inputs.serverNumber,
    authorizedKeys: inputs.authorizedKeys.map((line) => line.trim()),
    generation: inputs.generation ?? 0,
    resetType: inputs.resetType ?? DEFAULT_RESET_TYPE,
    connect: { host: inputs.connect?.host ?? null, port: inputs.connect?.port ?? 22 },
    timeouts: { sshMs: inputs.timeouts?.sshMs ?? DEFAULT_SSH_MS },
    allowFirstContactHostKey: inputs.allowFirstContactHostKey ?? false,
    driveSerials: (inputs.driveSerials ?? []).map((serial) => serial.trim()),
    providerVersion: inputs.providerVersion,
  };
}

export function validate(inputs: RescueBootInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (property: string, reason: string | undefined): void => {
    if (reason) failures.push({ property, reason });
  };
  const known = (value: unknown): boolean => value !== undefined && value !== null && !isUnknown(value);

  if (!isUnknown(inputs.serverNumber)) fail("serverNumber", checkServerNumber(inputs.serverNumber));
  if (!isUnknown(inputs.authorizedKeys)) failures.push(...validateAuthorizedKeys(inputs.authorizedKeys));
  if (known(inputs.generation)) {
    const g = inputs.generation;
    fail("generation", Number.isInteger(g) && (g as number) >= 0 ? undefined : `expected an integer >= 0 (bump it to ask for a fresh rescue boot), found ${JSON.stringify(g)}`);
  }
  if (known(inputs.resetType)) fail("resetType", checkResetType(inputs.resetType as string));
  if (known(inputs.connect)) {
    const c = inputs.connect as RescueEndpoint;
    if (typeof c !== "object") fail("connect", `expected { host?, port? }, found ${JSON.stringify(c)}`);
    else {
      if (known(c.host)) fail("connect.host", typeof c.host === "string" ? checkEndpointAddress(c.host) : `expected an address, found ${JSON.stringify(c.host)}`);
      if (known(c.port)) fail("connect.port", typeof c.port === "number" ? checkPort(c.port) : `expected a port number, found ${JSON.stringify(c.port)}`);
    }
  }
  if (known(inputs.timeouts)) {
    const ms = (inputs.timeouts as RescueTimeouts).sshMs;
    if (known(ms)) {
      const ok = typeof ms === "number" && Number.isInteger(ms) && ms >= MIN_SSH_MS && ms <= MAX_SSH_MS;
      fail("timeouts.sshMs", ok ? undefined : `expected milliseconds between ${MIN_SSH_MS} and ${MAX_SSH_MS} (real rescue boots take up to ~5.5 min; default ${DEFAULT_SSH_MS}), found ${JSON.stringify(ms)}`);
    }
  }
  if (known(inputs.allowFirstContactHostKey) && typeof inputs.allowFirstContactHostKey !== "boolean") {
    fail("allowFirstContactHostKey", `expected true or false, found ${JSON.stringify(inputs.allowFirstContactHostKey)}`);
  }
  if (known(inputs.driveSerials)) failures.push(...validateDriveSerials(inputs.driveSerials));
  return failures;
}

function validateDriveSerials(serials: unknown): CheckFailure[] {
  if (!Array.isArray(serials)) return [{ property: "driveSerials", reason: `expected a list of drive serials or WWNs (lsblk -dn -o SERIAL,WWN), found ${JSON.stringify(serials)}` }];
  return serials.flatMap((serial, i): CheckFailure[] =>
    isUnknown(serial) || (typeof serial === "string" && /^\S+$/.test(serial.trim()))
      ? []
      : [{ property: `driveSerials[${i}]`, reason: `expected one serial or WWN as lsblk -dn -o SERIAL,WWN prints it (no spaces), found ${JSON.stringify(serial)}` }],
  );
}

/** The warning check gives for every preview and up of a resource that allows first contact. */
export function firstContactWarning(inputs: RescueBootInputs): string | null {
  if (inputs.allowFirstContactHostKey !== true) return null;
  return `RescueBoot server ${inputs.serverNumber}: allowFirstContactHostKey is true: where Robot reports no host key, the rescue's key is trusted on first contact, ` +
    `checked only by its hostname${inputs.driveSerials && inputs.driveSerials.length > 0 ? ", the pinned driveSerials" : " (no driveSerials pinned)"} and the address Robot reports. ` +
    "See README \"First contact\" for what that does not protect against; set it to false to refuse such boots";
}

function validateAuthorizedKeys(keys: unknown): CheckFailure[] {
  if (!Array.isArray(keys) || keys.length === 0) {
    return [{ property: "authorizedKeys", reason: `expected at least one OpenSSH public key line ("ssh-ed25519 AAAA… comment") for root in the rescue, found ${Array.isArray(keys) ? "none" : JSON.stringify(keys)}` }];
  }
  const failures: CheckFailure[] = [];
  const seen: string[] = [];
  keys.forEach((line, i) => {
    if (isUnknown(line)) return;
    const property = `authorizedKeys[${i}]`;
    if (typeof line !== "string") {
      failures.push({ property, reason: `expected an OpenSSH public key line, found ${JSON.stringify(line)}` });
      return;
    }
    let fingerprint: string;
    try {
      fingerprint = md5Fingerprint(parsePublicKey(line));
    } catch (err) {
      failures.push({ property, reason: `${(err as Error).message}; paste the whole line of the .pub file, e.g. "ssh-ed25519 AAAA… you@host"` });
      return;
    }
    const earlier = seen.indexOf(fingerprint);
    if (earlier !== -1) failures.push({ property, reason: `is the same key as authorizedKeys[${earlier}] (MD5 ${fingerprint}); remove the duplicate` });
    seen.push(fingerprint);
  });
  return failures;
}

/** MD5 fingerprints of the desired keys, in input order: Robot's name for a key. */
export function keyFingerprints(keys: readonly string[]): string[] {
  return keys.map((line) => md5Fingerprint(parsePublicKey(line)));
}

// ---------------------------------------------------------------------------------------------
// plan / diff (pure)

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
  if (refusal !== null) throw new RescueBootRefusedError(refusal);
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

/** What delete does: disarm a rescue that is still armed, so the next reboot goes to disk. */
export function planDelete(rescueArmed: boolean): RescueStep[] {
  return rescueArmed ? [{ kind: "disarmRescue" }] : [];
}

/** Fields whose change is stored by an in-place update without booting again. */
const STORED_FIELDS = ["resetType", "connect", "timeouts", "allowFirstContactHostKey", "driveSerials"] as const;

/** Why an update is needed ("generation", …); empty when nothing changed. */
export function changeReasons(olds: RescueBootOutputs, news: RescueBootInputs): string[] {
  const desired = resolveInputs(news);
  const reasons: string[] = [];
  if (olds.generation !== desired.generation) reasons.push("generation");
  if (!sameKeys(olds.authorizedKeys ?? [], desired.authorizedKeys)) reasons.push("authorizedKeys");
  for (const field of STORED_FIELDS) {
    if (JSON.stringify(olds[field]) !== JSON.stringify(desired[field])) reasons.push(field);
  }
  if (providerVersionChanged(olds, desired)) reasons.push("providerVersion");
  return reasons;
}

/** The diff the engine gets: another server is a replacement, everything else an update. Pure, no network. */
export function compareOutputs(olds: RescueBootOutputs, news: RescueBootInputs): pulumi.dynamic.DiffResult {
  if (olds.serverNumber !== news.serverNumber) return { changes: true, replaces: ["serverNumber"], deleteBeforeReplace: false };
  return { changes: changeReasons(olds, news).length > 0 };
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

// ---------------------------------------------------------------------------------------------
// probe (read-only: Robot GETs and one unauthenticated look at the SSH endpoint)

export async function probe(ctx: RescueContext, subject: RescueDesired): Promise<RescueObserved> {
  const n = subject.serverNumber;
  const server = await ctx.robot.getServer(n);
  const reset = await ctx.robot.getReset(n, { accept: ["RESET_NOT_AVAILABLE"] });
  const boot = await ctx.robot.getBoot(n);
  const last = await ctx.robot.getLastRescue(n, { accept: ["NOT_FOUND"] });
  const stored = await ctx.robot.listKeys();
  const host = subject.connect.host ?? server.serverIp;
  if (host === null) {
    throw new RescueBootRefusedError(`connect.host: server ${n} has no main IPv4 in Robot (IPv6 only); set connect.host to the address its rescue answers on`);
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

// ---------------------------------------------------------------------------------------------
// steps (the only effects; each safe to re-run)

async function registerKey(ctx: RescueContext, step: Extract<RescueStep, { kind: "registerKey" }>): Promise<void> {
  // ensureKey matches by fingerprint, so a concurrent or earlier upload is reused, not duplicated.
  await ctx.robot.ensureKey(`hetzner-fde-${step.fingerprint.replace(/:/g, "").slice(0, 12)}`, step.publicKey);
}

async function disarmBoot(ctx: RescueContext, step: Extract<RescueStep, { kind: "disarmBoot" }>): Promise<void> {
  await ctx.robot.disarmBoot(ctx.serverNumber, step.bootType);
}

async function armRescue(ctx: RescueContext, step: Extract<RescueStep, { kind: "armRescue" }>): Promise<void> {
  // Re-arming replaces an earlier arm (new password, new host key): what a re-run after a kill needs.
  const armed = await ctx.robot.armRescue(ctx.serverNumber, { os: "linux", authorizedKeys: step.fingerprints });
  const fingerprints = armed.hostKeys.map((k) => k.fingerprint);
  if (fingerprints.length === 0 && !step.allowFirstContactHostKey) {
    // Refuse before the reset: once it boots, there is no way left to know the rescue's key.
    await ctx.robot.disarmRescue(ctx.serverNumber);
    throw new RescueBootRefusedError(
      `Robot reported no host key for the rescue of server ${ctx.serverNumber}, and allowFirstContactHostKey is false, so its key could not be verified. ` +
        "Rescue was disarmed again and the server was not reset. Set allowFirstContactHostKey: true to trust the key the rescue presents on first contact (for this boot only; it is recorded in hostKeySource).",
    );
  }
  ctx.record.armedHostKeys = fingerprints;
}

async function reset(ctx: RescueContext, step: Extract<RescueStep, { kind: "reset" }>): Promise<void> {
  // One reset per run: the client waits out a rate limit (Robot refused, so nothing ran) and never
  // repeats a reset whose answer was lost.
  await ctx.robot.reset(ctx.serverNumber, step.resetType as ResetType);
  ctx.record.resets++;
  const sentAt = new Date().toISOString();
  const last = await ctx.robot.getLastRescue(ctx.serverNumber, { accept: ["NOT_FOUND"] });
  ctx.record.bootedAt = last.ok && last.value.bootTime !== null ? last.value.bootTime : sentAt;
  ctx.record.rescueArmed = last.ok ? last.value.active : false;
}

async function awaitRescue(ctx: RescueContext, step: Extract<RescueStep, { kind: "awaitRescue" }>): Promise<void> {
  // Robot's SHA256 and MD5 fingerprints alike are checked in the host-key callback: a host with
  // another key is refused before we authenticate, so it never sees a login or a command.
  const announced = step.pin.source === "armed" ? (ctx.record.armedHostKeys ?? []) : step.pin.fingerprints;
  const verifiedByRobot = announced.length > 0;
  if (!verifiedByRobot && !step.allowFirstContactHostKey) {
    throw new RescueBootRefusedError(
      `Robot reported no host key for the rescue of server ${ctx.serverNumber}, and allowFirstContactHostKey is false. Set it to true for this server (README "First contact"), or bump generation once Robot reports host keys.`,
    );
  }
  const logger = createLogger({ context: `RescueBoot ${ctx.host} ssh`, secrets: [...ctx.secrets] });
  const session = await connect(
    {
      host: step.host,
      port: step.port,
      user: "root",
      privateKey: ctx.privateKey,
      hostKey: verifiedByRobot ? { expect: announced } : { acceptNew: true },
      label: `rescue ${step.host}:${step.port}`,
    },
    // A booting server drops SYNs without a reset, and a TCP connect then waits out the kernel's SYN
    // backoff (1, 2, 4, 8, 16 s…) even after sshd is up; a fresh dial every 10 s gets in sooner.
    { budgetMs: step.budgetMs, logger, attemptTimeoutMs: 10_000 },
  );
  try {
    const observed = session.observedHostKey;
    const facts = await session.exec(identityCommand(), { timeoutMs: 60_000 });
    const problems = identityProblems(parseIdentity(facts.stdout), step.identity);
    if (problems.length > 0) {
      throw new RescueBootRefusedError(
        `${session.address} answered with ${observed.type} ${observed.fingerprint}, but ${problems.join("; ")}. Nothing was changed on it. ` +
          "Check that the address reaches this server (connect.host, Robot's IP), that driveSerials are this server's, then bump generation to boot rescue again.",
      );
    }
    // Pinned from now on: the SHA256 of the key that passed (Robot's MD5 is not a form other resources pin).
    const sha256s = announced.filter((fp) => fp.startsWith("SHA256:"));
    ctx.record.reached = { hostKey: observed, source: verifiedByRobot ? "robot" : "first-contact", pinned: sha256s.length > 0 ? sha256s : [observed.fingerprint] };
  } finally {
    await session.close();
  }
}

async function disarmRescue(ctx: RescueContext): Promise<void> {
  // Already disarmed, or the server is gone from the account: nothing left to undo.
  await ctx.robot.disarmRescue(ctx.serverNumber, { accept: ["NOT_FOUND", "SERVER_NOT_FOUND"] });
}

export const steps = { registerKey, disarmBoot, armRescue, reset, awaitRescue, disarmRescue };

// validate sees the raw inputs (defaults not yet filled in), plan the resolved ones.
const validateInputs = validate as unknown as (inputs: RescuePlanInput) => CheckFailure[];
export const module = { validate: validateInputs, plan, probe, steps } satisfies ResourceModule<RescuePlanInput, RescueBootOutputs, RescueObserved, RescueStep, RescueContext>;

// ---------------------------------------------------------------------------------------------
// provider

// Robot credentials and their config keys live in the kernel (one definition for every resource);
// re-exported here because InstallImage's delete boots a rescue with them.
export { MISSING_ROBOT_ACCESS, robotAccessFromConfig };
export type { RobotAccess };

/** The context RescueBoot's steps run in; `label` names who asked (RescueBoot, or InstallImage's delete). */
export function rescueContext(access: RobotAccess, privateKey: Secret, serverNumber: number, label: string): RescueContext {
  const secrets = [privateKey, access.password];
  const report = (message: string): void => {
    pulumi.log.info(redact(`[${label}] ${message}`, secrets));
  };
  const robot = new RobotClient({ user: access.user, password: access.password, baseUrl: access.url, onWait: (event) => report(event.message) });
  return {
    resource: "RescueBoot",
    host: String(serverNumber),
    secrets,
    robot,
    serverNumber,
    privateKey,
    report,
    record: { armedHostKeys: null, bootedAt: null, rescueArmed: null, resets: 0, reached: null },
  };
}

/**
 * Probe, plan and run one rescue boot; returns what RescueBoot outputs. RescueBoot's create and
 * update use it, and so does InstallImage's delete when the host no longer runs its rescue.
 * `bootedAfter`: a rescue of the last activation booted after this instant counts as this run's.
 */
export async function bootRescue(ctx: RescueContext, desired: RescueDesired, bootedAfter: string | null): Promise<RescueBootOutputs> {
  const observed = await runStep(ctx, "probe", () => probe(ctx, desired));
  const planned = plan(observed, { ...desired, bootedAfter });
  if (planned.every((step) => step.kind === "awaitRescue")) ctx.report(`adopting the rescue booted at ${observed.lastRescue?.bootedAt}: it was armed with these keys${bootedAfter ? ` after ${bootedAfter}` : ""}, so no reset is sent`);
  await runPlan(ctx, planned, steps);
  const bootedAt = ctx.record.bootedAt ?? observed.lastRescue?.bootedAt ?? observed.now;
  if (ctx.record.reached?.source === "first-contact") {
    ctx.report(`Robot reported no host key: trusted ${ctx.record.reached.hostKey.type} ${ctx.record.reached.hostKey.fingerprint} on first contact, for this rescue boot only (hostKeySource: first-contact)`);
  }
  return buildOutputs(desired, observed, ctx.record, bootedAt);
}

export function buildOutputs(desired: RescueDesired, observed: RescueObserved, record: BootRecord, bootedAt: string): RescueBootOutputs {
  const reached = record.reached;
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
      rescueArmed: record.rescueArmed ?? observed.rescueArmed,
    },
    "outputs",
  );
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

function inputsOf(outs: RescueBootOutputs): RescueDesired {
  const {
    host: _h, port: _p, hostKeyFingerprints: _f, knownHosts: _k, hostKeySource: _s, bootedAt: _b, serverIpv4: _4, serverIpv6Net: _6,
    product: _pr, datacenter: _d, profile: _pf, environment: _e, rescueArmed: _a, ...inputs
  } = outs;
  return inputs;
}

class RescueBootProvider implements pulumi.dynamic.ResourceProvider<RescueBootInputs, RescueBootOutputs> {
  // From the stack config in configure; never in a resource's inputs or state.
  private privateKey: Secret | undefined = undefined;
  private robot: RobotAccess | null = null;

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    const key = req.config.get(SSH_PRIVATE_KEY_CONFIG);
    if (key !== undefined) this.privateKey = new Secret(key);
    this.robot = robotAccessFromConfig((name) => req.config.get(name));
  }

  async check(_olds: RescueBootInputs, news: RescueBootInputs): Promise<pulumi.dynamic.CheckResult<RescueBootInputs>> {
    // Trusting a first contact is the one unverified step RescueBoot can take: every preview says so.
    const warning = firstContactWarning(news);
    if (warning !== null) pulumi.log.warn(warning);
    return checkResult(news, validate(news));
  }

  async diff(_id: string, olds: RescueBootOutputs, news: RescueBootInputs): Promise<pulumi.dynamic.DiffResult> {
    return compareOutputs(olds, news);
  }

  async create(inputs: RescueBootInputs): Promise<pulumi.dynamic.CreateResult<RescueBootOutputs>> {
    const desired = resolveInputs(inputs);
    const outs = await bootRescue(this.context(desired.serverNumber), desired, null);
    return { id: String(outs.serverNumber), outs };
  }

  async update(_id: string, olds: RescueBootOutputs, news: RescueBootInputs): Promise<pulumi.dynamic.UpdateResult<RescueBootOutputs>> {
    const desired = resolveInputs(news);
    const reasons = changeReasons(olds, news);
    const ctx = this.context(desired.serverNumber);
    if (reasons.includes("authorizedKeys") && !reasons.includes("generation")) {
      ctx.report("authorizedKeys changed: the running rescue keeps its keys; they take effect on the next rescue boot (bump generation to boot now)");
    }
    if (!reasons.includes("generation")) return { outs: restate(olds, desired) };
    return { outs: await bootRescue(ctx, desired, olds.bootedAt) };
  }

  async read(id: string, props?: RescueBootOutputs): Promise<pulumi.dynamic.ReadResult<RescueBootOutputs>> {
    if (!props?.host) throw new Error(`RescueBoot ${id}: read needs the stored outputs; import is not supported (create the resource instead, it adopts a running rescue)`);
    const ctx = this.context(props.serverNumber);
    // Leaving rescue is what rescue does: report where the server is, never propose a change.
    const now = await runStep(ctx, "observe", () => probeEnvironment(ctx, props));
    const outs = jsonSafe({ ...props, ...now }, "outputs");
    return { id, props: outs, inputs: jsonSafe(inputsOf(outs), "inputs") as unknown as RescueBootOutputs };
  }

  async delete(_id: string, props: RescueBootOutputs): Promise<void> {
    const ctx = this.context(props.serverNumber);
    const rescue = await runStep(ctx, "observe", () => ctx.robot.getRescue(props.serverNumber, { accept: ["SERVER_NOT_FOUND"] }));
    await runPlan(ctx, planDelete(rescue.ok && rescue.value.active), steps);
  }

  private context(serverNumber: number): RescueContext {
    if (this.privateKey === undefined) throw new Error(`RescueBoot: no SSH private key; set it with \`pulumi config set --secret ${SSH_PRIVATE_KEY_CONFIG} < key-file\``);
    if (this.robot === null) throw new Error(`RescueBoot: ${MISSING_ROBOT_ACCESS}`);
    return rescueContext(this.robot, this.privateKey, serverNumber, `RescueBoot ${serverNumber}`);
  }
}

// One instance for every RescueBoot, so the closure serializer's per-object cache hits.
const provider = new RescueBootProvider();

// ---------------------------------------------------------------------------------------------
// resource

export class RescueBoot extends pulumi.dynamic.Resource {
  declare readonly serverNumber: pulumi.Output<number>;
  declare readonly generation: pulumi.Output<number>;
  declare readonly host: pulumi.Output<string>;
  declare readonly port: pulumi.Output<number>;
  declare readonly hostKeyFingerprints: pulumi.Output<string[]>;
  declare readonly knownHosts: pulumi.Output<string[]>;
  declare readonly hostKeySource: pulumi.Output<HostKeySource>;
  declare readonly bootedAt: pulumi.Output<string>;
  declare readonly serverIpv4: pulumi.Output<string | null>;
  declare readonly serverIpv6Net: pulumi.Output<string | null>;
  declare readonly product: pulumi.Output<string>;
  declare readonly datacenter: pulumi.Output<string>;
  /** Pass this as InstallImage's `rescue` input. */
  declare readonly profile: pulumi.Output<ConnectionProfile>;
  declare readonly environment: pulumi.Output<ObservedEnvironment>;
  declare readonly rescueArmed: pulumi.Output<boolean>;

  constructor(name: string, args: RescueBootArgs, opts?: pulumi.CustomResourceOptions) {
    const outputs = {
      host: undefined, port: undefined, hostKeyFingerprints: undefined, knownHosts: undefined, hostKeySource: undefined, bootedAt: undefined,
      serverIpv4: undefined, serverIpv6Net: undefined, product: undefined, datacenter: undefined, profile: undefined, environment: undefined, rescueArmed: undefined,
    };
    super(provider, name, { ...args, providerVersion: PROVIDER_VERSION, ...outputs }, opts, "hetzner-fde", "RescueBoot");
  }
}
