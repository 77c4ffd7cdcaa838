// Who to connect to and which host key to believe. There is no "trust anything" mode: either the
// caller pins fingerprints, or it asks for `acceptNew` explicitly and records what it observed.
import type { Secret } from "../secret";

export type HostKeyPolicy =
  /** Accept only a host key whose fingerprint is listed: `SHA256:…` as `ssh-keygen -lf` prints, or
   *  `MD5:aa:bb:…` (16 bytes), the only form Robot gives for some keys. Checked in the host-key
   *  callback, so a wrong key is refused before authentication. */
  | { readonly expect: readonly string[] }
  /**
   * Accept whatever key the host presents and report it as `session.observedHostKey`. Only for a host
   * whose key cannot be known in advance (a rescue boot where Robot returned none); the caller must
   * record the observed key and say in its outputs that it was trusted on first use.
   */
  | { readonly acceptNew: true };

export interface SshTarget {
  readonly host: string;
  /** Required, no default: each environment (rescue, dropbear, installed) has its own port. */
  readonly port: number;
  readonly user: string;
  /** An OpenSSH or PEM private key without passphrase. Only ever handed to ssh2, never logged. */
  readonly privateKey: Secret;
  readonly hostKey: HostKeyPolicy;
  /** Shown in log lines and errors instead of host:port when set, e.g. `rescue 203.0.113.7:22`. */
  readonly label?: string;
}

export interface ObservedHostKey {
  /** e.g. `ssh-ed25519` */
  readonly type: string;
  /** The wire-format key blob, base64, as in a known_hosts line. */
  readonly base64: string;
  /** `SHA256:…` */
  readonly fingerprint: string;
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;
const MD5_FINGERPRINT = /^MD5:[0-9a-f]{2}(:[0-9a-f]{2}){15}$/;

export function targetAddress(target: Pick<SshTarget, "host" | "port">): string {
  return target.host.includes(":") ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** Every problem with a target, each naming its field, what was expected and what was found. */
export function validateSshTarget(target: SshTarget): string[] {
  const problems: string[] = [];
  if (typeof target.host !== "string" || target.host.trim() === "") {
    problems.push(`host: expected a hostname or IP address, found ${JSON.stringify(target.host)}`);
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    problems.push(`port: expected an integer 1-65535, found ${JSON.stringify(target.port)}`);
  }
  if (typeof target.user !== "string" || target.user === "") {
    problems.push(`user: expected a login name, found ${JSON.stringify(target.user)}`);
  }
  // Duck-typed: `instanceof` would pull the Secret class into serialized provider text.
  if (typeof (target.privateKey as { reveal?: unknown } | undefined)?.reveal !== "function") {
    problems.push("privateKey: expected a Secret (wrap the key with new Secret(...)), found " + typeof target.privateKey);
  }
  problems.push(...validateHostKeyPolicy(target.hostKey));
  return problems;
}

function validateHostKeyPolicy(policy: HostKeyPolicy | undefined): string[] {
  if (policy && "acceptNew" in policy) {
    return policy.acceptNew === true ? [] : [`hostKey.acceptNew: expected true, found ${JSON.stringify(policy.acceptNew)}`];
  }
  if (!policy || !Array.isArray(policy.expect)) {
    return ["hostKey: expected { expect: [\"SHA256:…\"] } or { acceptNew: true }, found " + JSON.stringify(policy)];
  }
  if (policy.expect.length === 0) {
    return ["hostKey.expect: expected at least one SHA256 fingerprint, found an empty list"];
  }
  return policy.expect.flatMap((fp, i) =>
    typeof fp === "string" && (FINGERPRINT.test(fp) || MD5_FINGERPRINT.test(fp))
      ? []
      : [`hostKey.expect[${i}]: expected "SHA256:" and 43 base64 characters (ssh-keygen -lf output) or "MD5:" and 16 hex pairs, found ${JSON.stringify(fp)}`],
  );
}

export function assertValidSshTarget(target: SshTarget): void {
  const problems = validateSshTarget(target);
  if (problems.length > 0) {
    const name = target?.label ? ` ${target.label}` : "";
    throw new Error(`invalid SSH target${name}: ${problems.join("; ")}`);
  }
}
