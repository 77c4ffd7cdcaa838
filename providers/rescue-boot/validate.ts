// validate (pure; check runs it before any Robot or SSH call) and the defaults.
import { CheckFailure, isUnknown } from "../kernel/resource";
import { md5Fingerprint, parsePublicKey } from "../plumbing/keys";
import { checkEndpointAddress, checkPort, checkResetType, checkServerNumber } from "../rules";
import { DEFAULT_RESET_TYPE, DEFAULT_SSH_MS, MAX_SSH_MS, MIN_SSH_MS, RescueBootInputs, RescueDesired, RescueEndpoint, RescueTimeouts } from "./types";

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
