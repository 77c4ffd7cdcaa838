// How a resource reaches its host. A server moves between three environments, each with its own
// address, port and host key: the rescue system, the locked initramfs (dropbear) and the installed
// system. A resource is created in one (often rescue) and read later in another, so it carries all
// of the host's connection profiles and talks to whichever is up. The pinned host key is what tells
// the environments apart: in the lab, rescue and the installed system answer on the same port.
//
// The operator's SSH private key is not a resource input: it comes from the stack config through the
// provider's `configure` (`hetzner-fde:sshPrivateKey`), which keeps it out of every resource's state.
import { keepErrorMessage } from "../plumbing/errors";
import { parsePublicKey } from "../plumbing/keys";
import { CheckFailure, isUnknown } from "./resource";
import { checkEndpointAddress, checkPort, checkSha256Fingerprint } from "../rules/network";
import { checkResetType, checkServerNumber } from "../rules/robot";
import type { Secret } from "../plumbing/secret";
import { connect, ConnectOptions, SshSession } from "../plumbing/ssh";
import type { EndpointObservation, HostKeyMismatchError } from "../plumbing/ssh";

export const ENVIRONMENTS = ["rescue", "initramfs", "system"] as const;
export type Environment = (typeof ENVIRONMENTS)[number];

export interface ConnectionProfile {
  readonly environment: Environment;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** SHA256 fingerprints (`ssh-keygen -lf` form) this environment's sshd or dropbear presents. */
  readonly hostKeyFingerprints: readonly string[];
  /** Rescue profiles from RescueBoot: how to boot this rescue again through Robot, so a resource that
   *  finds it gone (InstallImage's delete, on a host that runs its installed system) can boot one. */
  readonly robot?: RescueRecipe;
}

/** RescueBoot's inputs that a fresh boot of the same rescue needs (address and port are the profile's). */
export interface RescueRecipe {
  readonly serverNumber: number;
  /** OpenSSH public key lines to arm the rescue with (the operator's key among them). */
  readonly authorizedKeys: readonly string[];
  readonly resetType: string;
  readonly allowFirstContactHostKey: boolean;
  /** How long to wait from the reset until the rescue's sshd answers. */
  readonly sshMs: number;
  /** Drive serials or WWNs the rescue must show (RescueBoot's `driveSerials`); absent: not checked. */
  readonly driveSerials?: readonly string[];
}

export { SSH_PRIVATE_KEY_CONFIG } from "./config";

// ---------------------------------------------------------------------------------------------
// Validation (pure; used by every resource's check)

/**
 * The environments a resource that runs commands on its host can be reached in: not the initramfs.
 * Dropbear there runs only `cryptroot-unlock` for the operator's key, so a probe sent to it would
 * be read as a passphrase (the lab saw "cryptsetup failed, bad password"). Only DropbearInitramfs,
 * which runs nothing there, takes an initramfs profile.
 */
export const SHELL_ENVIRONMENTS: readonly Environment[] = ["rescue", "system"];

/** The profiles of `SHELL_ENVIRONMENTS`: for outputs recorded before their inputs were held to them. */
export function shellProfiles(profiles: readonly ConnectionProfile[]): ConnectionProfile[] {
  return profiles.filter((profile) => SHELL_ENVIRONMENTS.includes(profile.environment));
}

export function validateProfiles(profiles: unknown, property = "connection", environments: readonly Environment[] = ENVIRONMENTS): CheckFailure[] {
  if (!Array.isArray(profiles) || profiles.length === 0) {
    return [{ property, reason: "expected at least one connection profile {environment, host, port, user, hostKeyFingerprints}, found none" }];
  }
  // At preview a profile may be another resource's output not yet known (the whole entry or some of
  // its fields): it is checked when it is known, at up; refusing it would fail every fresh preview.
  const failures = profiles.flatMap((profile, i) => (isUnknown(profile) ? [] : validateProfile(profile, `${property}[${i}]`, environments)));
  const seen = new Set<string>();
  profiles.forEach((profile: ConnectionProfile, i) => {
    if (isUnknown(profile) || isUnknown(profile?.environment)) return;
    if (seen.has(profile?.environment)) {
      failures.push({ property: `${property}[${i}].environment`, reason: `expected one profile per environment, found "${profile.environment}" twice` });
    }
    seen.add(profile?.environment);
  });
  return failures;
}

function validateProfile(profile: Partial<ConnectionProfile>, at: string, environments: readonly Environment[]): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (field: keyof ConnectionProfile, reason: string | undefined) => !isUnknown(profile[field]) && reason && failures.push({ property: `${at}.${field}`, reason });
  fail("environment", environmentProblem(profile.environment, environments));
  fail("host", typeof profile.host === "string" ? checkEndpointAddress(profile.host) : `expected an address, found ${JSON.stringify(profile.host)}`);
  fail("port", typeof profile.port === "number" ? checkPort(profile.port) : `expected a port number, found ${JSON.stringify(profile.port)}`);
  fail("user", typeof profile.user === "string" && profile.user !== "" ? undefined : `expected a login name, found ${JSON.stringify(profile.user)}`);
  const fingerprints = profile.hostKeyFingerprints;
  if (!Array.isArray(fingerprints) || fingerprints.length === 0) {
    fail("hostKeyFingerprints", "expected at least one pinned SHA256 fingerprint: host keys are always verified");
  } else {
    fingerprints.forEach((fp, j) => {
      const reason = isUnknown(fp) ? undefined : typeof fp === "string" ? checkSha256Fingerprint(fp) : `expected "SHA256:…", found ${JSON.stringify(fp)}`;
      if (reason) failures.push({ property: `${at}.hostKeyFingerprints[${j}]`, reason });
    });
  }
  if (profile.robot !== undefined && profile.robot !== null) failures.push(...validateRecipe(profile.robot, `${at}.robot`));
  return failures;
}

function environmentProblem(environment: unknown, allowed: readonly Environment[]): string | undefined {
  if (allowed.includes(environment as Environment)) return undefined;
  if (environment === "initramfs") {
    return "expected rescue or system, found \"initramfs\": dropbear's unlock shell runs only cryptroot-unlock, which would read this resource's commands as a passphrase. Leave the initramfs profile out; DropbearInitramfs unlocks the host";
  }
  return `expected one of ${allowed.join(", ")}, found ${JSON.stringify(environment)}`;
}

function validateRecipe(recipe: Partial<RescueRecipe>, at: string): CheckFailure[] {
  if (typeof recipe !== "object") return [{ property: at, reason: `expected RescueBoot's recipe {serverNumber, authorizedKeys, resetType, allowFirstContactHostKey, sshMs}, found ${JSON.stringify(recipe)}` }];
  const failures: CheckFailure[] = [];
  const fail = (field: string, reason: string | undefined) => reason && failures.push({ property: `${at}.${field}`, reason });
  fail("serverNumber", checkServerNumber(recipe.serverNumber));
  fail("resetType", typeof recipe.resetType === "string" ? checkResetType(recipe.resetType) : `expected a Robot reset type ("hw", "sw" or "man"), found ${JSON.stringify(recipe.resetType)}`);
  fail("allowFirstContactHostKey", typeof recipe.allowFirstContactHostKey === "boolean" ? undefined : `expected true or false, found ${JSON.stringify(recipe.allowFirstContactHostKey)}`);
  const ms = recipe.sshMs;
  fail("sshMs", typeof ms === "number" && Number.isInteger(ms) && ms > 0 ? undefined : `expected milliseconds (a positive integer), found ${JSON.stringify(ms)}`);
  const serials = recipe.driveSerials;
  if (serials !== undefined && (!Array.isArray(serials) || serials.some((s) => typeof s !== "string" || s.trim() === ""))) {
    fail("driveSerials", `expected a list of drive serials or WWNs (lsblk -dn -o SERIAL,WWN), found ${JSON.stringify(serials)}`);
  }
  const keys = recipe.authorizedKeys;
  if (!Array.isArray(keys) || keys.length === 0) fail("authorizedKeys", `expected at least one OpenSSH public key line, found ${JSON.stringify(keys)}`);
  else keys.forEach((line, i) => fail(`authorizedKeys[${i}]`, keyProblem(line)));
  return failures;
}

function keyProblem(line: unknown): string | undefined {
  if (typeof line !== "string") return `expected an OpenSSH public key line, found ${JSON.stringify(line)}`;
  try {
    parsePublicKey(line);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

// ---------------------------------------------------------------------------------------------
// Connecting

export interface ReachedHost {
  readonly session: SshSession;
  readonly profile: ConnectionProfile;
}

/**
 * No profile answered with its pinned key: nothing listening, a timeout, or another environment's
 * key on the port. The host is off, booting or locked in an initramfs the resource has no profile
 * for. `read` keeps the record on it (the host still holds what was recorded); every other purpose fails.
 */
export class HostUnreachableError extends Error {
  /** Where it was looked for, "system 203.0.113.5:22" each. */
  readonly tried: readonly string[];
  constructor(message: string, tried: readonly string[]) {
    super(message);
    this.tried = tried;
    // Matched by name: serialized provider code may hold its own copy of the class.
    this.name = "HostUnreachableError";
    keepErrorMessage(this, message);
  }
}

export function isHostUnreachable(error: unknown): boolean {
  return error instanceof Error && error.name === "HostUnreachableError";
}

/** Why each profile could not be used, for the error when none could. */
interface ProfileOutcome {
  readonly profile: ConnectionProfile;
  readonly reason: string;
  /** The environment answered with its pinned key and refused the operator's key. */
  readonly refusedUs: boolean;
}

/**
 * Connects to the first profile (in `preferred` order, then the rest) that answers with its pinned
 * host key. A key that belongs to no profile is a hard error: the host is not who we think it is.
 * A key that belongs to another profile on the same port means "that environment is up", and that
 * profile is tried next.
 */
export async function openFirstReachable(
  profiles: readonly ConnectionProfile[],
  privateKey: Secret,
  options: { preferred?: readonly Environment[]; connect?: ConnectOptions } = {},
): Promise<ReachedHost> {
  const outcomes: ProfileOutcome[] = [];
  for (const profile of orderProfiles(profiles, options.preferred ?? [])) {
    try {
      const session = await connect(targetFor(profile, privateKey), { maxAttempts: 1, attemptTimeoutMs: 15_000, ...options.connect });
      return { session, profile };
    } catch (error) {
      // Matched by name: serialized provider code may hold its own copy of the class.
      if (error instanceof Error && error.name === "HostKeyMismatchError") {
        const observed = (error as HostKeyMismatchError).observed.fingerprint;
        const known = profiles.some((p) => p.hostKeyFingerprints.includes(observed));
        if (!known) throw error;
      }
      const refusedUs = error instanceof Error && error.name === "SshAuthError";
      outcomes.push({ profile, reason: error instanceof Error ? error.message : String(error), refusedUs });
    }
  }
  const message =
    "no environment of the host answered with its pinned host key:\n" +
    outcomes.map((o) => `  - ${o.profile.environment} ${o.profile.host}:${o.profile.port}: ${o.reason}`).join("\n") +
    "\nCheck that the server is powered on and booted into one of these environments.";
  // A host that answered with its pinned key and refused our key is up, not unreachable: that is news.
  if (outcomes.some((o) => o.refusedUs)) throw new Error(message);
  throw new HostUnreachableError(message, outcomes.map((o) => `${o.profile.environment} ${o.profile.host}:${o.profile.port}`));
}

export function orderProfiles(profiles: readonly ConnectionProfile[], preferred: readonly Environment[]): ConnectionProfile[] {
  const rank = (p: ConnectionProfile) => {
    const index = preferred.indexOf(p.environment);
    return index === -1 ? preferred.length : index;
  };
  return [...profiles].sort((a, b) => rank(a) - rank(b));
}

function targetFor(profile: ConnectionProfile, privateKey: Secret) {
  return {
    host: profile.host,
    port: profile.port,
    user: profile.user,
    privateKey,
    hostKey: { expect: profile.hostKeyFingerprints },
    label: `${profile.environment} ${profile.host}:${profile.port}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Classifying a host without logging in

/**
 * Where a host is, from what its SSH port showed (`observeEndpoint`, no login). The one classifier
 * every resource uses (it replaces RescueBoot's `classifyEnvironment` and InstallImage's
 * `whereaboutsOf`, which disagreed on an unknown key):
 * - the presented key is pinned by a profile → that profile's environment;
 * - no pinned key matches, but the banner is dropbear → "initramfs" only when no profile pins
 *   initramfs keys (then a dropbear we cannot verify is still the unlock shell we armed);
 * - any other key → "unknown-key", with its fingerprint: never guessed to be "system", because
 *   acting on a host we cannot identify is what pinning exists to prevent;
 * - nothing answered, or no key exchange → "unreachable".
 */
export type HostState =
  | { readonly kind: Environment | "unreachable" }
  | { readonly kind: "unknown-key"; readonly fingerprint: string; readonly software: string };

export const HOST_STATES = [...ENVIRONMENTS, "unknown-key", "unreachable"] as const;

export function classifyHost(
  observation: EndpointObservation,
  profiles: readonly Pick<ConnectionProfile, "environment" | "hostKeyFingerprints">[],
): HostState {
  if (observation.kind === "none" || observation.hostKey === null) return { kind: "unreachable" };
  const fingerprint = observation.hostKey.fingerprint;
  const match = profiles.find((p) => p.hostKeyFingerprints.includes(fingerprint));
  if (match) return { kind: match.environment };
  const initramfsPinned = profiles.some((p) => p.environment === "initramfs" && p.hostKeyFingerprints.length > 0);
  if (/^dropbear/i.test(observation.software) && !initramfsPinned) return { kind: "initramfs" };
  return { kind: "unknown-key", fingerprint, software: observation.software };
}
