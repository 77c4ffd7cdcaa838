// Robot's objects as this project uses them, and the pure functions that turn Robot's raw JSON
// into them. Raw shapes are checked with zod so a surprise names the field; then the fields that
// flip with state (rescue `os`/`arch`: a menu list while inactive, the chosen value while active)
// are normalised so callers never branch on "array or scalar".
import { z } from "zod";
import { Secret } from "../secret";
import { parsePublicKey, sha256Fingerprint, md5Fingerprint } from "../keys";
import { isRecord, unwrap, unwrapList } from "./wire";

export type ResetType = "sw" | "hw" | "man" | "power" | "power_long";

export interface RobotSubnet {
  readonly ip: string;
  /** Robot sends the mask as a string ("64"). */
  readonly mask: string;
}

/** Which features a machine has (only in `GET /server/{n}`). */
export interface RobotServerFeatures {
  readonly reset: boolean;
  readonly rescue: boolean;
  readonly vnc: boolean;
  readonly windows: boolean;
  readonly plesk: boolean;
  readonly cpanel: boolean;
  readonly wol: boolean;
  readonly hotSwap: boolean;
}

export interface RobotServer {
  readonly serverNumber: number;
  readonly serverName: string;
  /** Main IPv4; null on IPv6-only servers. */
  readonly serverIp: string | null;
  readonly serverIpv6Net: string | null;
  readonly product: string;
  readonly dc: string;
  /** A string such as "5 TB" or "unlimited". */
  readonly traffic: string;
  readonly status: string;
  readonly cancelled: boolean;
  readonly paidUntil: string | null;
  readonly ip: readonly string[];
  readonly subnet: readonly RobotSubnet[];
  /** Present for `getServer`, absent for `listServers` (Robot only sends the flags per server). */
  readonly features: RobotServerFeatures | null;
}

export interface RobotReset {
  readonly serverNumber: number | null;
  readonly serverIp: string | null;
  readonly serverIpv6Net: string | null;
  readonly types: readonly string[];
  /** `GET /reset/{n}` only: "running", "off", "not supported"…; null in lists. */
  readonly operatingStatus: string | null;
}

export interface RobotResetResult {
  readonly serverIp: string | null;
  readonly serverIpv6Net: string | null;
  readonly type: string;
}

/** A key as listed under a rescue config: Robot omits the key material there. */
export interface RobotKeyRef {
  readonly name: string;
  readonly fingerprint: string;
  readonly type: string;
  readonly size: number;
  readonly createdAt: string;
}

export interface RobotKey extends RobotKeyRef {
  /** OpenSSH one-line public key. */
  readonly data: string;
}

/** A host key of a rescue boot. `fingerprint` is `SHA256:…` when Robot gives enough to compute it. */
export interface RobotHostKey {
  readonly type: string;
  readonly fingerprint: string;
}

export interface RobotRescue {
  readonly serverNumber: number;
  readonly serverIp: string | null;
  readonly serverIpv6Net: string | null;
  readonly active: boolean;
  /** The armed OS while active (e.g. "linux"); null while inactive. */
  readonly os: string | null;
  /** The menu Robot offers while inactive; empty while active (Robot does not send it then). */
  readonly availableOs: readonly string[];
  readonly arch: number | null;
  readonly availableArch: readonly number[];
  /** Root password of the armed rescue; Robot sends it only while active (and in /last). */
  readonly password: Secret | null;
  readonly authorizedKeys: readonly RobotKeyRef[];
  /** Empty when Robot gives `[]` (real Robot, so far always). */
  readonly hostKeys: readonly RobotHostKey[];
  readonly bootTime: string | null;
}

/** Boot configurations besides rescue; an array, not a Set (closure serializer). */
export const OTHER_BOOT_TYPES = ["linux", "vnc", "windows", "plesk", "cpanel"] as const;
export type OtherBootType = (typeof OTHER_BOOT_TYPES)[number];

/** A boot type other than rescue: only whether it is active matters to this project. */
export interface RobotOtherBoot {
  readonly active: boolean;
}

export interface RobotBootConfigs {
  readonly rescue: RobotRescue | null;
  readonly linux: RobotOtherBoot | null;
  readonly vnc: RobotOtherBoot | null;
  readonly windows: RobotOtherBoot | null;
  readonly plesk: RobotOtherBoot | null;
  readonly cpanel: RobotOtherBoot | null;
}

export interface RobotWol {
  readonly serverNumber: number | null;
  readonly serverIp: string | null;
  readonly serverIpv6Net: string | null;
}

// ---- raw shapes -------------------------------------------------------------------------

// Built on each call, never held at module scope: Pulumi's closure serializer would otherwise copy
// the schema objects into provider text and fail to `require` zod's internal files
// ("package.json export path for zod/v4/classic/schemas.cjs not found"). Only `zod` itself is required.
function rawShapes() {
  const nullableString = z.string().nullable().optional();
  const intLike = z.union([z.number(), z.string().regex(/^\d+$/).transform(Number)]);

  const rawServer = z.object({
    server_ip: nullableString,
    server_ipv6_net: nullableString,
    server_number: intLike,
    server_name: z.string().nullable().optional(),
    product: z.string().nullable().optional(),
    dc: z.string().nullable().optional(),
    traffic: z.union([z.string(), z.number()]).nullable().optional(),
    status: z.string().nullable().optional(),
    cancelled: z.boolean().nullable().optional(),
    paid_until: nullableString,
    ip: z.array(z.string()).nullable().optional(),
    subnet: z
      .array(z.object({ ip: z.string(), mask: z.union([z.string(), z.number()]) }))
      .nullable()
      .optional(),
    reset: z.boolean().optional(),
    rescue: z.boolean().optional(),
    vnc: z.boolean().optional(),
    windows: z.boolean().optional(),
    plesk: z.boolean().optional(),
    cpanel: z.boolean().optional(),
    wol: z.boolean().optional(),
    hot_swap: z.boolean().optional(),
  });

  const rawReset = z.object({
    server_ip: nullableString,
    server_ipv6_net: nullableString,
    server_number: intLike.optional(),
    type: z.union([z.array(z.string()), z.string()]),
    operating_status: nullableString,
  });

  const rawKey = z.object({
    name: z.string(),
    fingerprint: z.string(),
    type: z.string(),
    size: intLike,
    data: z.string().optional(),
    created_at: z.string().nullable().optional(),
  });

  const rawRescue = z.object({
    server_ip: nullableString,
    server_ipv6_net: nullableString,
    server_number: intLike,
    os: z.union([z.string(), z.array(z.string())]).nullable().optional(),
    arch: z.union([intLike, z.array(intLike)]).nullable().optional(),
    active: z.boolean(),
    password: nullableString,
    authorized_key: z.array(z.unknown()).nullable().optional(),
    host_key: z.array(z.unknown()).nullable().optional(),
    boot_time: nullableString,
  });

  const rawWol = z.object({
    server_ip: nullableString,
    server_ipv6_net: nullableString,
    server_number: intLike.optional(),
  });
  return { rawServer, rawReset, rawKey, rawRescue, rawWol };
}

/** Parses with a zod schema; the error names every offending field path. */
function parseShape<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => `${[what, ...issue.path].join(".")}: ${issue.message}`);
  throw new Error(problems.join("; "));
}

// ---- normalisers ------------------------------------------------------------------------

export function toServer(raw: unknown): RobotServer {
  const s = parseShape(rawShapes().rawServer, raw, "server");
  const hasFeatures = s.reset !== undefined || s.rescue !== undefined || s.wol !== undefined;
  return {
    serverNumber: s.server_number,
    serverName: s.server_name ?? "",
    serverIp: emptyToNull(s.server_ip),
    serverIpv6Net: emptyToNull(s.server_ipv6_net),
    product: s.product ?? "",
    dc: s.dc ?? "",
    traffic: s.traffic === null || s.traffic === undefined ? "" : String(s.traffic),
    status: s.status ?? "",
    cancelled: s.cancelled ?? false,
    paidUntil: emptyToNull(s.paid_until),
    ip: s.ip ?? [],
    subnet: (s.subnet ?? []).map((net) => ({ ip: net.ip, mask: String(net.mask) })),
    features: hasFeatures
      ? {
          reset: s.reset ?? false,
          rescue: s.rescue ?? false,
          vnc: s.vnc ?? false,
          windows: s.windows ?? false,
          plesk: s.plesk ?? false,
          cpanel: s.cpanel ?? false,
          wol: s.wol ?? false,
          hotSwap: s.hot_swap ?? false,
        }
      : null,
  };
}

export function toReset(raw: unknown): RobotReset {
  const r = parseShape(rawShapes().rawReset, raw, "reset");
  return {
    serverNumber: r.server_number ?? null,
    serverIp: emptyToNull(r.server_ip),
    serverIpv6Net: emptyToNull(r.server_ipv6_net),
    types: Array.isArray(r.type) ? r.type : [r.type],
    operatingStatus: r.operating_status ?? null,
  };
}

export function toResetResult(raw: unknown): RobotResetResult {
  const r = parseShape(rawShapes().rawReset, raw, "reset");
  return {
    serverIp: emptyToNull(r.server_ip),
    serverIpv6Net: emptyToNull(r.server_ipv6_net),
    type: Array.isArray(r.type) ? r.type.join(",") : r.type,
  };
}

export function toKey(raw: unknown): RobotKey {
  const k = parseShape(rawShapes().rawKey, raw, "key");
  return { ...toKeyRefFields(k), data: k.data ?? "" };
}

function toKeyRefFields(k: z.infer<ReturnType<typeof rawShapes>["rawKey"]>): RobotKeyRef {
  return { name: k.name, fingerprint: k.fingerprint, type: k.type, size: k.size, createdAt: k.created_at ?? "" };
}

/** Rescue `authorized_key` entries are `{"key": {…}}` wrappers without `data`. */
export function toKeyRef(raw: unknown): RobotKeyRef {
  const inner = isRecord(raw) && isRecord(raw.key) ? raw.key : raw;
  return toKeyRefFields(parseShape(rawShapes().rawKey, inner, "authorized_key.key"));
}

/**
 * Robot never documented the `host_key` element; accept a `{"key": {…}}` wrapper or a bare
 * object, with a `fingerprint` and/or the key line in `data`/`key`. The SHA256 fingerprint is
 * computed from key data when present (that is what the SSH layer pins); a bare MD5 fingerprint
 * is kept with an `MD5:` prefix so it is never confused with a SHA256 one.
 */
export function toHostKey(raw: unknown): RobotHostKey {
  const inner = isRecord(raw) && isRecord(raw.key) ? raw.key : raw;
  if (typeof inner === "string") return hostKeyFromLine(inner);
  if (!isRecord(inner)) throw new Error(`host_key: expected an object or key line, found ${inner === null ? "null" : typeof inner}`);
  const data = typeof inner.data === "string" ? inner.data : undefined;
  if (data) return hostKeyFromLine(data);
  const fingerprint = typeof inner.fingerprint === "string" ? inner.fingerprint : "";
  const type = typeof inner.type === "string" ? inner.type : "";
  if (fingerprint === "") throw new Error(`host_key: expected a fingerprint or key data, found keys [${Object.keys(inner).join(", ")}]`);
  return { type, fingerprint: normaliseFingerprint(fingerprint) };
}

function hostKeyFromLine(line: string): RobotHostKey {
  const key = parsePublicKey(line);
  return { type: key.type, fingerprint: sha256Fingerprint(key) };
}

function normaliseFingerprint(fingerprint: string): string {
  if (/^SHA256:/.test(fingerprint) || /^MD5:/.test(fingerprint)) return fingerprint;
  if (/^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(fingerprint)) return `MD5:${fingerprint.toLowerCase()}`;
  return fingerprint;
}

export function toRescue(raw: unknown): RobotRescue {
  const r = parseShape(rawShapes().rawRescue, raw, "rescue");
  const os = flipField(r.os);
  const arch = flipField(r.arch);
  return {
    serverNumber: r.server_number,
    serverIp: emptyToNull(r.server_ip),
    serverIpv6Net: emptyToNull(r.server_ipv6_net),
    active: r.active,
    os: os.value,
    availableOs: os.menu,
    arch: arch.value,
    availableArch: arch.menu,
    password: r.password ? new Secret(r.password) : null,
    authorizedKeys: (r.authorized_key ?? []).map(toKeyRef),
    hostKeys: (r.host_key ?? []).map(toHostKey),
    bootTime: emptyToNull(r.boot_time),
  };
}

/** Robot sends a list (the menu) while inactive and the chosen scalar while active. */
function flipField<T>(value: T | T[] | null | undefined): { value: T | null; menu: T[] } {
  if (Array.isArray(value)) return { value: null, menu: value };
  return { value: value ?? null, menu: [] };
}

export function toOtherBoot(raw: unknown): RobotOtherBoot | null {
  if (raw === null || raw === undefined) return null;
  if (!isRecord(raw)) throw new Error(`boot: expected an object or null, found ${typeof raw}`);
  return { active: raw.active === true };
}

export function toBootConfigs(raw: unknown): RobotBootConfigs {
  if (!isRecord(raw)) throw new Error(`boot: expected an object, found ${raw === null ? "null" : typeof raw}`);
  return {
    rescue: raw.rescue === null || raw.rescue === undefined ? null : toRescue(raw.rescue),
    linux: toOtherBoot(raw.linux),
    vnc: toOtherBoot(raw.vnc),
    windows: toOtherBoot(raw.windows),
    plesk: toOtherBoot(raw.plesk),
    cpanel: toOtherBoot(raw.cpanel),
  };
}

export function toWol(raw: unknown): RobotWol {
  const w = parseShape(rawShapes().rawWol, raw, "wol");
  return { serverNumber: w.server_number ?? null, serverIp: emptyToNull(w.server_ip), serverIpv6Net: emptyToNull(w.server_ipv6_net) };
}

function emptyToNull(value: string | null | undefined): string | null {
  return value === undefined || value === null || value === "" ? null : value;
}

// ---- envelope + normaliser in one step ---------------------------------------------------

export const read = {
  server: (body: unknown) => toServer(unwrap(body, "server")),
  servers: (body: unknown) => unwrapList(body, "server").map(toServer),
  reset: (body: unknown) => toReset(unwrap(body, "reset")),
  resets: (body: unknown) => unwrapList(body, "reset").map(toReset),
  resetResult: (body: unknown) => toResetResult(unwrap(body, "reset")),
  rescue: (body: unknown) => toRescue(unwrap(body, "rescue")),
  boot: (body: unknown) => toBootConfigs(unwrap(body, "boot")),
  key: (body: unknown) => toKey(unwrap(body, "key")),
  keys: (body: unknown) => unwrapList(body, "key").map(toKey),
  wol: (body: unknown) => toWol(unwrap(body, "wol")),
  otherBoot: (body: unknown, type: OtherBootType) => toOtherBoot(unwrap(body, type)) ?? { active: false },
};

/** MD5 fingerprint Robot uses to name a public key line (comment ignored). */
export function robotKeyFingerprint(publicKeyLine: string): string {
  return md5Fingerprint(parsePublicKey(publicKeyLine));
}
