// The emulator's backend (moto's models.py): servers, stored keys, boot configs, resets, rate
// counters and the login lockout, with Robot's rules. No HTTP here: handlers.ts parses requests
// and calls these methods; errors are thrown as the RobotError classes of errors.ts.
//
// Effects on "hardware" go through the PowerController seam (power.ts); the model decides where
// a server boots (BootArbiter) and the lab supervisor carries it out.
import { randomBytes } from "crypto";
import { renameSync, writeFileSync, readFileSync, existsSync, mkdirSync } from "fs";
import { dirname } from "path";
import { generateEd25519KeyPair, md5Fingerprint, parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";
import type { BootArbiter, BootTarget, PowerController, PowerState, RescueHostKey } from "./power";
import {
  BootAlreadyEnabled,
  BootNotAvailable,
  InvalidInput,
  KeyAlreadyExists,
  NotFound,
  RateLimitExceeded,
  ResetFailed,
  ResetManualActive,
  ResetNotAvailable,
  ServerNotFound,
  Unauthorized,
  WolNotAvailable,
} from "./errors";

export type ResetType = "sw" | "hw" | "man" | "power" | "power_long";
export const ALL_RESET_TYPES: readonly ResetType[] = ["sw", "hw", "power", "power_long", "man"];
export type OtherBootType = "linux" | "vnc" | "windows" | "plesk" | "cpanel";

export interface ServerFeatures {
  readonly reset: boolean;
  readonly rescue: boolean;
  readonly wol: boolean;
  readonly vnc: boolean;
  readonly windows: boolean;
  readonly plesk: boolean;
  readonly cpanel: boolean;
  readonly hotSwap: boolean;
}

/** One emulated server, as configured (immutable; what changes lives in ServerState). */
export interface ServerSpec {
  readonly number: number;
  /** Initial `server_name`. Default "". */
  readonly name?: string;
  /** Main IPv4 (`server_ip`); null for an IPv6-only server. */
  readonly ipv4: string | null;
  /** `server_ipv6_net`, e.g. "2a01:4f8:111:4221::". */
  readonly ipv6Net: string;
  /** Default "EX44". */
  readonly product?: string;
  /** Default "FSN1-DC10". */
  readonly dc?: string;
  /** Reset types offered. Default all: sw, hw, power, power_long, man. */
  readonly resetTypes?: readonly ResetType[];
  /** Defaults: reset, rescue, wol true; the rest false. */
  readonly features?: Partial<ServerFeatures>;
  /** Rescue OS menu. Default ["linux", "linuxold", "vkvm"]. */
  readonly rescueOs?: readonly string[];
  /** Default "unlimited". */
  readonly traffic?: string;
  /** Default "2030-01-01". */
  readonly paidUntil?: string;
}

/** Hourly budgets are counted per group `<METHOD> /<first path segment>`, e.g. "POST /reset". */
export type RateGroup =
  | "GET /server"
  | "POST /server"
  | "GET /reset"
  | "POST /reset"
  | "GET /boot"
  | "POST /boot"
  | "DELETE /boot"
  | "GET /key"
  | "POST /key"
  | "DELETE /key"
  | "GET /wol"
  | "POST /wol";

/** Robot's documented budgets per hour. */
export const DEFAULT_RATE_LIMITS: Readonly<Record<RateGroup, number>> = {
  "GET /server": 200,
  "POST /server": 200,
  "GET /reset": 500,
  "POST /reset": 50,
  "GET /boot": 500,
  "POST /boot": 500,
  "DELETE /boot": 500,
  "GET /key": 500,
  "POST /key": 200,
  "DELETE /key": 200,
  "GET /wol": 500,
  "POST /wol": 10,
};

export interface RateLimitOptions {
  /** Per-group overrides of DEFAULT_RATE_LIMITS. */
  readonly limits?: Partial<Record<RateGroup, number>>;
  /** Window in seconds, also reported as `interval` in 403 answers. Default 3600; tests use e.g. 0.1. */
  readonly interval?: number;
}

export interface LockoutOptions {
  /** Failed logins per source that trigger the lockout. Default 3. */
  readonly failures?: number;
  /** Lockout length, and the window in which failures count. Default 10 min. */
  readonly windowMs?: number;
}

export interface RobotModelOptions {
  readonly servers: readonly ServerSpec[];
  readonly users: readonly { readonly user: string; readonly password: string }[];
  readonly power?: PowerController;
  readonly rateLimits?: RateLimitOptions;
  readonly lockout?: LockoutOptions;
  /** Milliseconds since the epoch. Default Date.now. */
  readonly clock?: () => number;
  /** Where state is persisted (atomically, after every change). */
  readonly stateFile?: string;
  /** False emulates real Robot, whose `host_key` is always `[]`. Default true. */
  readonly reportHostKeys?: boolean;
  /** An account without servers answers `200 []` (measured, default) or 404 SERVER_NOT_FOUND (doc). */
  readonly emptyServerList?: "empty" | "not_found";
}

export interface StoredKey {
  readonly name: string;
  readonly fingerprint: string;
  readonly type: string;
  readonly size: number;
  readonly data: string;
  readonly createdAt: string;
}

/** One rescue activation: fixed at arm time. */
export interface RescueActivation {
  readonly os: string;
  readonly arch: number;
  readonly keyboard: string;
  readonly password: string;
  /** Snapshot of the selected keys, so deleting a key later does not change an armed rescue. */
  readonly keys: readonly StoredKey[];
  readonly hostKeys: readonly RescueHostKey[];
  readonly armedAt: number;
}

export interface LastRescue extends RescueActivation {
  readonly bootedAt: number | null;
}

export interface ServerState {
  name: string;
  /** Used when no PowerController is attached. */
  power: PowerState;
  manualResetPending: boolean;
  /** Test hook: the next reset answers 500 RESET_FAILED. */
  failNextReset: boolean;
  rescue: RescueActivation | null;
  lastRescue: LastRescue | null;
  activeOtherBoot: OtherBootType | null;
}

export interface ResetRecord {
  readonly server: number;
  readonly type: ResetType;
  readonly at: number;
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly source: string;
  readonly code: string | null;
}

interface PersistedState {
  readonly version: 1;
  readonly servers: Record<string, ServerState>;
  readonly keys: StoredKey[];
}

/** Rescue is dropped if the server is not booted within this time after arming. */
export const RESCUE_TTL_MS = 60 * 60_000;
const ARCH_MENU = [64, 32];
const KEYBOARDS = ["us", "uk", "ch", "de", "fi", "fr", "jp"];

export class RobotModel implements BootArbiter {
  readonly specs: ReadonlyMap<number, ServerSpec>;
  /** Every request the HTTP layer saw, in order (tests count them). */
  readonly requests: RequestRecord[] = [];
  /** Every executed reset, in order. */
  readonly resets: ResetRecord[] = [];
  power: PowerController | undefined;
  private readonly options: RobotModelOptions;
  private servers = new Map<number, ServerState>();
  private keys = new Map<string, StoredKey>();
  private rateHits = new Map<string, number[]>();
  private loginFailures = new Map<string, number[]>();
  private lockedUntil = new Map<string, number>();
  private rateLimitOverrides: Partial<Record<RateGroup, number>>;
  private reportHostKeysOverride: boolean | undefined = undefined;

  constructor(options: RobotModelOptions) {
    this.options = options;
    this.power = options.power;
    this.rateLimitOverrides = { ...options.rateLimits?.limits };
    validateServerSpecs(options.servers);
    this.specs = new Map(options.servers.map((spec) => [spec.number, spec]));
    this.initialize();
    this.load();
  }

  now(): number {
    return (this.options.clock ?? Date.now)();
  }

  // ---- auth and rate limits ----------------------------------------------------------

  /** Basic auth with a lockout per source: after N failures even correct credentials get 401. */
  authenticate(source: string, user: string | null, password: string | null): void {
    const now = this.now();
    const until = this.lockedUntil.get(source);
    if (until !== undefined && now < until) throw new Unauthorized();
    if (until !== undefined) this.lockedUntil.delete(source);
    const known = this.options.users.some((u) => u.user === user && u.password === password);
    if (known) return;
    const windowMs = this.options.lockout?.windowMs ?? 10 * 60_000;
    const failures = [...(this.loginFailures.get(source) ?? []).filter((t) => now - t < windowMs), now];
    if (failures.length >= (this.options.lockout?.failures ?? 3)) {
      this.lockedUntil.set(source, now + windowMs);
      this.loginFailures.delete(source);
    } else {
      this.loginFailures.set(source, failures);
    }
    throw new Unauthorized();
  }

  /** Counts one request against its group's budget (sliding window of `interval` seconds). */
  countRequest(group: RateGroup): void {
    const limit = this.rateLimitOverrides[group] ?? DEFAULT_RATE_LIMITS[group];
    const intervalSeconds = this.options.rateLimits?.interval ?? 3600;
    const now = this.now();
    const hits = (this.rateHits.get(group) ?? []).filter((t) => now - t < intervalSeconds * 1000);
    if (hits.length >= limit) {
      this.rateHits.set(group, hits);
      throw new RateLimitExceeded(limit, intervalSeconds);
    }
    hits.push(now);
    this.rateHits.set(group, hits);
  }

  /** Test hook: change one group's budget at run time. */
  setRateLimit(group: RateGroup, limit: number): void {
    this.rateLimitOverrides[group] = limit;
    this.rateHits.delete(group);
  }

  // ---- servers -------------------------------------------------------------------------

  listServers(): ServerSpec[] {
    if (this.specs.size === 0 && this.options.emptyServerList === "not_found") throw new ServerNotFound();
    return [...this.specs.values()];
  }

  /** Accepts the server number or (deprecated in Robot, still accepted) its main IPv4. */
  server(id: string): ServerSpec {
    const spec = /^\d+$/.test(id) ? this.specs.get(Number(id)) : [...this.specs.values()].find((s) => s.ipv4 === id);
    if (!spec) throw new ServerNotFound();
    return spec;
  }

  state(spec: ServerSpec): ServerState {
    const state = this.servers.get(spec.number)!;
    this.expireRescue(state);
    return state;
  }

  features(spec: ServerSpec): ServerFeatures {
    return { reset: true, rescue: true, wol: true, vnc: false, windows: false, plesk: false, cpanel: false, hotSwap: false, ...spec.features };
  }

  renameServer(spec: ServerSpec, name: string | undefined): void {
    if (name === undefined) throw new InvalidInput({ missing: ["server_name"] });
    if (name.length > 100) throw new InvalidInput({ invalid: ["server_name"] });
    this.state(spec).name = name;
    this.persist();
  }

  // ---- resets --------------------------------------------------------------------------

  resetTypes(spec: ServerSpec): readonly ResetType[] {
    return spec.resetTypes ?? ALL_RESET_TYPES;
  }

  requireReset(spec: ServerSpec): void {
    if (!this.features(spec).reset || this.resetTypes(spec).length === 0) throw new ResetNotAvailable();
  }

  listResettable(): ServerSpec[] {
    const specs = [...this.specs.values()].filter((s) => this.features(s).reset && this.resetTypes(s).length > 0);
    if (specs.length === 0) throw new NotFound("No servers with reset option found");
    return specs;
  }

  async powerState(spec: ServerSpec): Promise<PowerState> {
    return this.power ? this.power.state(spec.number) : this.state(spec).power;
  }

  /**
   * Executes a reset. hw/sw restart a running server (into rescue when armed, consuming the
   * arm); power_long forces it off; power boots an off server or presses the button of a running
   * one; man only records a pending technician job until `completeManualReset`.
   */
  async reset(spec: ServerSpec, type: string | undefined): Promise<ResetType> {
    this.requireReset(spec);
    if (type === undefined) throw new InvalidInput({ missing: ["type"] });
    if (!this.resetTypes(spec).includes(type as ResetType)) throw new InvalidInput({ invalid: ["type"] });
    const state = this.state(spec);
    if (state.manualResetPending) throw new ResetManualActive();
    if (state.failNextReset) {
      state.failNextReset = false;
      this.persist();
      throw new ResetFailed();
    }
    await this.executeReset(spec, type as ResetType);
    this.resets.push({ server: spec.number, type: type as ResetType, at: this.now() });
    return type as ResetType;
  }

  private async executeReset(spec: ServerSpec, type: ResetType): Promise<void> {
    const state = this.state(spec);
    switch (type) {
      case "man":
        state.manualResetPending = true;
        this.persist();
        return;
      case "hw":
      case "sw":
        if ((await this.powerState(spec)) === "off") return; // a reset button does nothing on a machine that is off
        return this.bootWith(spec, (target) => this.power?.reset(spec.number, target));
      case "power_long":
        await this.withPowerFailure(async () => this.power?.powerOff(spec.number));
        state.power = "off";
        this.persist();
        return;
      case "power":
        if ((await this.powerState(spec)) === "off") return this.bootWith(spec, (target) => this.power?.powerOn(spec.number, target));
        await this.withPowerFailure(async () => this.power?.powerButton(spec.number));
        // Without a controller there is no guest to decide: the ACPI request is obeyed.
        if (!this.power) state.power = "off";
        this.persist();
        return;
    }
  }

  /** Takes the next boot target and hands it to the controller; a failed start restores the arm. */
  private async bootWith(spec: ServerSpec, start: (target: BootTarget) => Promise<void> | undefined): Promise<void> {
    const state = this.state(spec);
    const before = { rescue: state.rescue, lastRescue: state.lastRescue };
    const target = this.takeNextBoot(spec.number);
    try {
      await start(target);
    } catch {
      state.rescue = before.rescue;
      state.lastRescue = before.lastRescue;
      this.persist();
      throw new ResetFailed();
    }
    state.power = "running";
    this.persist();
  }

  private async withPowerFailure(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch {
      throw new ResetFailed();
    }
  }

  /** Test hook: the technician has power-cycled the server; a pending `man` reset ends with a boot. */
  async completeManualReset(serverNumber: number): Promise<void> {
    const spec = this.server(String(serverNumber));
    const state = this.state(spec);
    if (!state.manualResetPending) throw new NotFound("No manual reset pending");
    state.manualResetPending = false;
    await this.bootWith(spec, (target) => this.power?.reset(spec.number, target));
  }

  /** Test hook: the next reset of this server answers 500 RESET_FAILED. */
  failNextReset(serverNumber: number): void {
    this.state(this.server(String(serverNumber))).failNextReset = true;
    this.persist();
  }

  // ---- boot ----------------------------------------------------------------------------

  requireBoot(spec: ServerSpec): void {
    if (!this.features(spec).rescue) throw new BootNotAvailable();
  }

  rescueOsMenu(spec: ServerSpec): readonly string[] {
    return spec.rescueOs ?? ["linux", "linuxold", "vkvm"];
  }

  archMenu(): readonly number[] {
    return ARCH_MENU;
  }

  reportsHostKeys(): boolean {
    return this.reportHostKeysOverride ?? this.options.reportHostKeys ?? true;
  }

  /** Test hook: answer `host_key: []` like real Robot (false) or report the minted keys (true) from now on. */
  setReportHostKeys(report: boolean): void {
    this.reportHostKeysOverride = report;
  }

  /**
   * Arms rescue for the next boot: a new root password and a new host key every time, and the
   * selected stored keys (by MD5 fingerprint). Re-arming while rescue is armed replaces the arm
   * (operators re-post rescue to be sure, and Robot accepts it); any other active boot type
   * answers 409 BOOT_ALREADY_ENABLED.
   */
  armRescue(spec: ServerSpec, request: { os?: string; arch?: string; keyboard?: string; authorizedKeys: readonly string[] }): RescueActivation {
    this.requireBoot(spec);
    const state = this.state(spec);
    const missing: string[] = [];
    const invalid: string[] = [];
    if (request.os === undefined || request.os === "") missing.push("os");
    else if (!this.rescueOsMenu(spec).includes(request.os)) invalid.push("os");
    if (request.arch !== undefined && !ARCH_MENU.includes(Number(request.arch))) invalid.push("arch");
    if (request.keyboard !== undefined && !KEYBOARDS.includes(request.keyboard)) invalid.push("keyboard");
    const keys = request.authorizedKeys.map((fingerprint) => this.keys.get(fingerprint.toLowerCase()));
    if (keys.some((key) => key === undefined)) invalid.push("authorized_key");
    if (missing.length > 0 || invalid.length > 0) throw new InvalidInput({ missing, invalid });
    if (state.activeOtherBoot) throw new BootAlreadyEnabled(state.activeOtherBoot);
    const activation: RescueActivation = {
      os: request.os!,
      arch: request.arch === undefined ? 64 : Number(request.arch),
      keyboard: request.keyboard ?? "us",
      password: generatePassword(),
      keys: keys as StoredKey[],
      hostKeys: [generateHostKey(spec)],
      armedAt: this.now(),
    };
    state.rescue = activation;
    state.lastRescue = { ...activation, bootedAt: null };
    this.persist();
    return activation;
  }

  disarmRescue(spec: ServerSpec): void {
    this.requireBoot(spec);
    this.state(spec).rescue = null;
    this.persist();
  }

  /** DELETE /boot/{n}/<type> for a non-rescue config: deactivates it (a no-op when it is not active). */
  disarmOtherBoot(spec: ServerSpec, type: OtherBootType): void {
    this.requireBoot(spec);
    const state = this.state(spec);
    if (state.activeOtherBoot === type) state.activeOtherBoot = null;
    this.persist();
  }

  /** Test hook: mark a non-rescue boot config (linux, vnc…) active, to provoke BOOT_ALREADY_ENABLED. */
  setOtherBootActive(serverNumber: number, type: OtherBootType | null): void {
    this.state(this.server(String(serverNumber))).activeOtherBoot = type;
    this.persist();
  }

  /** BootArbiter: where the next boot goes. An armed rescue is consumed (one-shot). */
  takeNextBoot(serverNumber: number): BootTarget {
    const spec = this.server(String(serverNumber));
    const state = this.state(spec);
    const rescue = state.rescue;
    if (!rescue) return { kind: "disk" };
    state.rescue = null;
    state.lastRescue = { ...rescue, bootedAt: this.now() };
    this.persist();
    return {
      kind: "rescue",
      rescue: { password: rescue.password, authorizedKeys: rescue.keys.map((key) => key.data), hostKeys: rescue.hostKeys },
    };
  }

  private expireRescue(state: ServerState): void {
    if (state.rescue && this.now() - state.rescue.armedAt >= RESCUE_TTL_MS) {
      state.rescue = null;
      this.persist();
    }
  }

  // ---- keys ----------------------------------------------------------------------------

  listKeys(): StoredKey[] {
    if (this.keys.size === 0) throw new NotFound("No keys found");
    return [...this.keys.values()];
  }

  getKey(fingerprint: string): StoredKey {
    const key = this.keys.get(fingerprint.toLowerCase());
    if (!key) throw new NotFound("Key not found");
    return key;
  }

  /** Stores a key; identity is the MD5 of the key blob, so the same material under another name is a conflict. */
  addKey(name: string | undefined, data: string | undefined): StoredKey {
    const missing = [...(name === undefined || name === "" ? ["name"] : []), ...(data === undefined || data === "" ? ["data"] : [])];
    if (missing.length > 0) throw new InvalidInput({ missing });
    let parsed;
    let size: number;
    try {
      parsed = parsePublicKey(data!);
      // Inside the try: a truncated RSA blob parses as a key but has no modulus to measure.
      size = keySize(parsed.type, parsed.blob);
    } catch {
      throw new InvalidInput({ invalid: ["data"] });
    }
    const fingerprint = md5Fingerprint(parsed);
    if (this.keys.has(fingerprint)) throw new KeyAlreadyExists();
    const key: StoredKey = {
      name: name!,
      fingerprint,
      type: robotKeyType(parsed.type),
      size,
      data: data!.trim(),
      createdAt: robotTimestamp(this.now()),
    };
    this.keys.set(fingerprint, key);
    this.persist();
    return key;
  }

  renameKey(fingerprint: string, name: string | undefined): StoredKey {
    const key = this.getKey(fingerprint);
    if (name === undefined || name === "") throw new InvalidInput({ missing: ["name"] });
    const renamed = { ...key, name };
    this.keys.set(key.fingerprint, renamed);
    this.persist();
    return renamed;
  }

  deleteKey(fingerprint: string): void {
    const key = this.getKey(fingerprint);
    this.keys.delete(key.fingerprint);
    this.persist();
  }

  // ---- wake-on-LAN ---------------------------------------------------------------------

  requireWol(spec: ServerSpec): void {
    if (!this.features(spec).wol) throw new WolNotAvailable();
  }

  /** A magic packet boots a server that is off; a running one ignores it. */
  async sendWol(spec: ServerSpec): Promise<void> {
    this.requireWol(spec);
    if ((await this.powerState(spec)) === "off") await this.bootWith(spec, (target) => this.power?.powerOn(spec.number, target));
  }

  // ---- state ---------------------------------------------------------------------------

  /** Back to the configured servers: no keys, no boot configs, no counters, no lockouts. */
  resetState(): void {
    this.initialize();
    this.persist();
  }

  private initialize(): void {
    this.servers = new Map([...this.specs.values()].map((spec) => [spec.number, initialState(spec)]));
    this.keys = new Map();
    this.rateHits = new Map();
    this.loginFailures = new Map();
    this.lockedUntil = new Map();
    this.requests.length = 0;
    this.resets.length = 0;
  }

  private load(): void {
    const file = this.options.stateFile;
    if (!file || !existsSync(file)) return;
    const saved = JSON.parse(readFileSync(file, "utf8")) as PersistedState;
    if (saved.version !== 1) throw new Error(`Robot emulator state file ${file}: expected version 1, found ${String(saved.version)}; delete it to start fresh`);
    for (const [number, state] of Object.entries(saved.servers)) {
      // Servers removed from the config are dropped; new ones keep their initial state.
      if (this.servers.has(Number(number))) this.servers.set(Number(number), { ...initialState(this.specs.get(Number(number))!), ...state });
    }
    this.keys = new Map(saved.keys.map((key) => [key.fingerprint, key]));
  }

  /**
   * Written atomically (temp file + rename) so a crash never leaves half a file. The file holds
   * rescue passwords and host private keys of the emulated servers, like Robot's own database:
   * it is created 0600 and belongs in the lab's state directory only.
   */
  private persist(): void {
    const file = this.options.stateFile;
    if (!file) return;
    const state: PersistedState = { version: 1, servers: Object.fromEntries(this.servers), keys: [...this.keys.values()] };
    mkdirSync(dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    writeFileSync(temp, JSON.stringify(state, null, 2), { mode: 0o600 });
    renameSync(temp, file);
  }
}

/** Collects every problem in the server list, each naming its path, so a bad lab config fails at start. */
export function validateServerSpecs(specs: readonly ServerSpec[]): void {
  const problems: string[] = [];
  const seen = new Set<number>();
  specs.forEach((spec, index) => {
    const at = `servers[${index}]`;
    if (!Number.isInteger(spec.number) || spec.number <= 0) problems.push(`${at}.number: expected a positive integer, found ${JSON.stringify(spec.number)}`);
    else if (seen.has(spec.number)) problems.push(`${at}.number: ${spec.number} is used twice; server numbers identify servers and must be unique`);
    seen.add(spec.number);
    if (spec.ipv4 !== null && typeof spec.ipv4 !== "string") problems.push(`${at}.ipv4: expected an IPv4 string or null, found ${JSON.stringify(spec.ipv4)}`);
    if (typeof spec.ipv6Net !== "string") problems.push(`${at}.ipv6Net: expected a string such as "2a01:4f8:111:4221::", found ${JSON.stringify(spec.ipv6Net)}`);
    for (const type of spec.resetTypes ?? []) {
      if (!ALL_RESET_TYPES.includes(type)) problems.push(`${at}.resetTypes: "${type}" is not one of ${ALL_RESET_TYPES.join(", ")}`);
    }
  });
  if (problems.length > 0) throw new Error(`Robot emulator config is invalid:\n  ${problems.join("\n  ")}`);
}

function initialState(spec: ServerSpec): ServerState {
  return {
    name: spec.name ?? "",
    power: "running",
    manualResetPending: false,
    failNextReset: false,
    rescue: null,
    lastRescue: null,
    activeOtherBoot: null,
  };
}

const PASSWORD_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

function generatePassword(): string {
  return [...randomBytes(16)].map((byte) => PASSWORD_ALPHABET[byte % PASSWORD_ALPHABET.length]).join("");
}

function generateHostKey(spec: ServerSpec): RescueHostKey {
  const pair = generateEd25519KeyPair(`root@rescue-${spec.number}`);
  return { type: "ssh-ed25519", privateKey: pair.private, publicKey: pair.public };
}

export function hostKeyFingerprint(hostKey: RescueHostKey): string {
  return sha256Fingerprint(parsePublicKey(hostKey.publicKey));
}

function robotKeyType(type: string): string {
  if (type === "ssh-ed25519") return "ED25519";
  if (type === "ssh-rsa") return "RSA";
  if (type.startsWith("ecdsa-")) return "ECDSA";
  if (type.startsWith("sk-ssh-ed25519")) return "ED25519-SK";
  return "ECDSA-SK";
}

/** Bits as Robot reports them: 256 for ed25519, the curve for ECDSA, the modulus for RSA. */
function keySize(type: string, blob: Buffer): number {
  if (type.includes("ed25519")) return 256;
  const curve = /nistp(\d+)/.exec(type);
  if (curve) return Number(curve[1]);
  // RSA blob: string type, mpint e, mpint n.
  let offset = 0;
  const next = (): Buffer => {
    const length = blob.readUInt32BE(offset);
    const value = blob.subarray(offset + 4, offset + 4 + length);
    offset += 4 + length;
    return value;
  };
  next();
  next();
  const modulus = next();
  if (offset > blob.length || modulus.length === 0) throw new RangeError("RSA key blob is truncated");
  const significant = modulus[0] === 0 ? modulus.subarray(1) : modulus;
  return significant.length * 8 - Math.clz32(significant[0]) + 24;
}

/** "YYYY-MM-DD HH:MM:SS", no zone, as Robot prints it. */
function robotTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
