// Typed client for the subset of Robot this project needs: servers, resets, rescue boot, keys
// and Wake-on-LAN. Each method has two forms:
//   await robot.getRescue(1001)                                      → RobotRescue (throws on any error)
//   await robot.getRescue(1001, { accept: ["BOOT_NOT_AVAILABLE"] })  → { ok: true, value } | { ok: false, code, error }
// so a caller names the errors it has a plan for, and everything else stays loud (hrobot style).
import { parsePublicKey, md5Fingerprint } from "../keys";
import { RobotErrorCode, RobotResponseError, describeRequest } from "./errors";
import {
  OtherBootType,
  OTHER_BOOT_TYPES,
  ResetType,
  RobotBootConfigs,
  RobotKey,
  RobotOtherBoot,
  RobotRescue,
  RobotReset,
  RobotResetResult,
  RobotServer,
  RobotWol,
  read,
} from "./model";
import { redact } from "../secret";
import { RobotRawResponse, RobotResult, RobotTransport, RobotTransportOptions, passwordsIn } from "./transport";
import { FormFields } from "./wire";

export type RobotClientOptions = RobotTransportOptions;

/** The per-call allowlist: these codes come back as `{ ok: false }` instead of being thrown. */
export interface Accept<C extends RobotErrorCode> {
  readonly accept: readonly C[];
}

export interface ArmRescueOptions {
  /** Rescue OS; Robot's current choice is "linux" (default). */
  readonly os?: string;
  /**
   * Keys for root in the rescue system: MD5 fingerprints of keys stored via `/key`, or full
   * OpenSSH public key lines (their fingerprint is computed here; the key must still be stored).
   */
  readonly authorizedKeys?: readonly string[];
  /** Default "us". */
  readonly keyboard?: string;
}

export interface EnsureKeyResult {
  readonly key: RobotKey;
  /** False when a key with the same material was already stored (its name is left as it is). */
  readonly created: boolean;
}

type Parse<T> = (body: unknown) => T;

export class RobotClient {
  private readonly transport: RobotTransport;

  constructor(options: RobotClientOptions) {
    this.transport = new RobotTransport(options);
  }

  // ---- servers ----

  /** All servers; an empty account gives [] (Robot answers either `200 []` or 404 SERVER_NOT_FOUND). */
  async listServers(): Promise<RobotServer[]> {
    const result = await this.run("GET", "/server", read.servers, undefined, { accept: ["SERVER_NOT_FOUND"] });
    return result.ok ? result.value : [];
  }

  getServer(server: number): Promise<RobotServer>;
  getServer<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotServer, C>>;
  getServer(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/server/${serverId(server)}`, read.server, undefined, options);
  }

  renameServer(server: number, name: string): Promise<RobotServer>;
  renameServer<C extends RobotErrorCode>(server: number, name: string, options: Accept<C>): Promise<RobotResult<RobotServer, C>>;
  renameServer(server: number, name: string, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("POST", `/server/${serverId(server)}`, read.server, { server_name: name }, options);
  }

  // ---- resets ----

  /** Reset options of all servers; none gives [] (Robot answers 404 NOT_FOUND). */
  async listResets(): Promise<RobotReset[]> {
    const result = await this.run("GET", "/reset", read.resets, undefined, { accept: ["NOT_FOUND"] });
    return result.ok ? result.value : [];
  }

  getReset(server: number): Promise<RobotReset>;
  getReset<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotReset, C>>;
  getReset(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/reset/${serverId(server)}`, read.reset, undefined, options);
  }

  /** Triggers a reset. Never retried except after a rate limit (which means it did not run). */
  reset(server: number, type: ResetType): Promise<RobotResetResult>;
  reset<C extends RobotErrorCode>(server: number, type: ResetType, options: Accept<C>): Promise<RobotResult<RobotResetResult, C>>;
  reset(server: number, type: ResetType, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("POST", `/reset/${serverId(server)}`, read.resetResult, { type }, options);
  }

  // ---- boot ----

  getBoot(server: number): Promise<RobotBootConfigs>;
  getBoot<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotBootConfigs, C>>;
  getBoot(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/boot/${serverId(server)}`, read.boot, undefined, options);
  }

  getRescue(server: number): Promise<RobotRescue>;
  getRescue<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotRescue, C>>;
  getRescue(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/boot/${serverId(server)}/rescue`, read.rescue, undefined, options);
  }

  /** Arms rescue for the next boot (does not reboot). The answer carries the one-time root password. */
  armRescue(server: number, rescue?: ArmRescueOptions): Promise<RobotRescue>;
  armRescue<C extends RobotErrorCode>(server: number, rescue: ArmRescueOptions, options: Accept<C>): Promise<RobotResult<RobotRescue, C>>;
  armRescue(server: number, rescue: ArmRescueOptions = {}, options?: Accept<RobotErrorCode>): Promise<unknown> {
    const form: FormFields = {
      os: rescue.os ?? "linux",
      authorized_key: rescue.authorizedKeys?.map(toFingerprint),
      keyboard: rescue.keyboard,
    };
    return this.call("POST", `/boot/${serverId(server)}/rescue`, read.rescue, form, options);
  }

  disarmRescue(server: number): Promise<RobotRescue>;
  disarmRescue<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotRescue, C>>;
  disarmRescue(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("DELETE", `/boot/${serverId(server)}/rescue`, read.rescue, undefined, options);
  }

  /**
   * Deactivates a non-rescue boot configuration (Robot allows one active config per server, and an
   * armed linux install would wipe the disks on the next boot of any kind).
   */
  disarmBoot(server: number, type: OtherBootType): Promise<RobotOtherBoot>;
  disarmBoot<C extends RobotErrorCode>(server: number, type: OtherBootType, options: Accept<C>): Promise<RobotResult<RobotOtherBoot, C>>;
  disarmBoot(server: number, type: OtherBootType, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("DELETE", `/boot/${serverId(server)}/${otherBootType(type)}`, (body) => read.otherBoot(body, type), undefined, options);
  }

  /** The last rescue activation (consumed by a boot or not): where its password and host keys stay readable. */
  getLastRescue(server: number): Promise<RobotRescue>;
  getLastRescue<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotRescue, C>>;
  getLastRescue(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/boot/${serverId(server)}/rescue/last`, read.rescue, undefined, options);
  }

  // ---- keys ----

  /** Stored keys; none gives [] (Robot answers 404 NOT_FOUND "No keys found"). */
  async listKeys(): Promise<RobotKey[]> {
    const result = await this.run("GET", "/key", read.keys, undefined, { accept: ["NOT_FOUND"] });
    return result.ok ? result.value : [];
  }

  getKey(fingerprint: string): Promise<RobotKey>;
  getKey<C extends RobotErrorCode>(fingerprint: string, options: Accept<C>): Promise<RobotResult<RobotKey, C>>;
  getKey(fingerprint: string, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/key/${keyId(fingerprint)}`, read.key, undefined, options);
  }

  addKey(name: string, publicKeyLine: string): Promise<RobotKey>;
  addKey<C extends RobotErrorCode>(name: string, publicKeyLine: string, options: Accept<C>): Promise<RobotResult<RobotKey, C>>;
  addKey(name: string, publicKeyLine: string, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("POST", "/key", read.key, { name, data: publicKeyLine.trim() }, options);
  }

  renameKey(fingerprint: string, name: string): Promise<RobotKey>;
  renameKey<C extends RobotErrorCode>(fingerprint: string, name: string, options: Accept<C>): Promise<RobotResult<RobotKey, C>>;
  renameKey(fingerprint: string, name: string, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("POST", `/key/${keyId(fingerprint)}`, read.key, { name }, options);
  }

  deleteKey(fingerprint: string): Promise<void>;
  deleteKey<C extends RobotErrorCode>(fingerprint: string, options: Accept<C>): Promise<RobotResult<void, C>>;
  deleteKey(fingerprint: string, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("DELETE", `/key/${keyId(fingerprint)}`, () => undefined, undefined, options);
  }

  /**
   * Idempotent: makes sure the key is stored, matching by MD5 fingerprint (the key's identity in
   * Robot; the comment and the name do not matter). Safe against a concurrent upload of the same key.
   */
  async ensureKey(name: string, publicKeyLine: string): Promise<EnsureKeyResult> {
    const fingerprint = fingerprintOf(publicKeyLine, "ensureKey publicKeyLine");
    const existing = await this.getKey(fingerprint, { accept: ["NOT_FOUND"] });
    if (existing.ok) return { key: existing.value, created: false };
    const added = await this.addKey(name, publicKeyLine, { accept: ["KEY_ALREADY_EXISTS"] });
    if (added.ok) return { key: added.value, created: true };
    return { key: await this.getKey(fingerprint), created: false };
  }

  // ---- wake-on-LAN ----

  getWol(server: number): Promise<RobotWol>;
  getWol<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotWol, C>>;
  getWol(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("GET", `/wol/${serverId(server)}`, read.wol, undefined, options);
  }

  /** Sends a Wake-on-LAN packet (10 per hour). */
  sendWol(server: number): Promise<RobotWol>;
  sendWol<C extends RobotErrorCode>(server: number, options: Accept<C>): Promise<RobotResult<RobotWol, C>>;
  sendWol(server: number, options?: Accept<RobotErrorCode>): Promise<unknown> {
    return this.call("POST", `/wol/${serverId(server)}`, read.wol, undefined, options);
  }

  // ---- plumbing ----

  /** Without `options` the plain value (or a throw); with `options.accept` the result union. */
  private async call<T, C extends RobotErrorCode>(
    method: "GET" | "POST" | "DELETE",
    path: string,
    parse: Parse<T>,
    form: FormFields | undefined,
    options: Accept<C> | undefined,
  ): Promise<T | RobotResult<T, C>> {
    const result = await this.run(method, path, parse, form, options ?? { accept: [] });
    if (options) return result;
    // Nothing was accepted, so a failure has already been thrown.
    if (!result.ok) throw result.error;
    return result.value;
  }

  private async run<T, C extends RobotErrorCode>(
    method: "GET" | "POST" | "DELETE",
    path: string,
    parse: Parse<T>,
    form: FormFields | undefined,
    options: Accept<C>,
  ): Promise<RobotResult<T, C>> {
    const result = await this.transport.call<C>(method, path, { form, accept: options.accept });
    if (!result.ok) return result;
    return { ok: true, value: parseAnswer(result.value, parse) };
  }
}

function parseAnswer<T>(response: RobotRawResponse, parse: Parse<T>): T {
  try {
    return parse(response.body);
  } catch (err) {
    // The parser's message names fields, but the answer may hold the rescue password: redact it.
    const why = redact((err as Error).message, passwordsIn(response.body));
    throw new RobotResponseError(
      `Robot ${describeRequest(response.request)} answered ${response.status} with an unexpected shape: ${why}. ` +
        "Robot may have changed its format; please report it with the request above.",
      response.request,
    );
  }
}

function serverId(server: number): number {
  if (!Number.isInteger(server) || server <= 0) {
    throw new TypeError(`Robot server number must be a positive integer (as shown in Robot), found ${JSON.stringify(server)}`);
  }
  return server;
}

function otherBootType(type: OtherBootType): OtherBootType {
  if (!OTHER_BOOT_TYPES.includes(type)) {
    throw new TypeError(`Robot boot type must be one of ${OTHER_BOOT_TYPES.join(", ")} (rescue has its own methods), found ${JSON.stringify(type)}`);
  }
  return type;
}

const MD5_FINGERPRINT = /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/;

function keyId(fingerprint: string): string {
  if (!MD5_FINGERPRINT.test(fingerprint)) {
    throw new TypeError(`Robot key fingerprint must be an MD5 fingerprint "aa:bb:…" (16 pairs, lowercase), found ${JSON.stringify(fingerprint)}`);
  }
  return fingerprint;
}

/** Accepts an MD5 fingerprint or a public key line (community.hrobot does the same). */
function toFingerprint(keyOrFingerprint: string): string {
  const value = keyOrFingerprint.trim();
  return MD5_FINGERPRINT.test(value) ? value : fingerprintOf(value, "armRescue authorizedKeys entry");
}

function fingerprintOf(publicKeyLine: string, what: string): string {
  try {
    return md5Fingerprint(parsePublicKey(publicKeyLine));
  } catch (err) {
    throw new TypeError(`${what}: ${(err as Error).message}. Pass an OpenSSH public key line such as "ssh-ed25519 AAAA… comment".`);
  }
}
