// The lab's configuration: which emulated servers exist, their ports, disks and firmware.
// Parsing collects every failure with its field path, so one run of `npm run lab -- up`
// tells the user everything that is wrong with lab.config.json, not the first thing.

import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { CheckFailure } from "../providers/kernel/resource";

export type DiskType = "nvme" | "sata";
export type Firmware = "bios" | "uefi";

export interface LabDisks {
  /** Number of disks. Default 2 (Hetzner's common two-drive layout). */
  readonly count: number;
  /** Virtual size of each sparse qcow2 disk in GiB. Default 20. */
  readonly sizeGiB: number;
  /** `nvme` → /dev/nvme0n1…; `sata` → /dev/sda…. Default nvme. */
  readonly type: DiskType;
}

export interface LabServerConfig {
  /** Robot server number, e.g. 100001. */
  readonly number: number;
  /** Robot server name; also the VM's name. */
  readonly name: string;
  /** Host loopback port forwarded to the guest's port 22 (rescue or installed sshd). */
  readonly sshPort: number;
  /** Host loopback port forwarded to the guest's port 2222 (dropbear in the initramfs). */
  readonly dropbearPort: number;
  /** Guest RAM. Default 2048. */
  readonly memoryMiB: number;
  /** Virtual CPUs. Default 1: the lab host has 2 cores shared by all VMs. */
  readonly cpus: number;
  readonly disks: LabDisks;
  /** `bios` boots through SeaBIOS (default); `uefi` through OVMF, for rescue and disk boots alike. */
  readonly firmware: Firmware;
}

export interface LabConfig {
  readonly robot: {
    readonly port: number;
    readonly user: string;
    readonly password: string;
    /**
     * Whether the emulator reports rescue host keys in `host_key`. Real Robot leaves it empty, so
     * clients must cope with both. Default true. Account-wide, as the emulator models it.
     */
    readonly reportHostKeys: boolean;
  };
  readonly mirror: { readonly port: number };
  readonly servers: readonly LabServerConfig[];
}

export class LabConfigError extends Error {
  constructor(
    readonly source: string,
    readonly failures: readonly CheckFailure[],
  ) {
    super(`${source} is invalid:\n${failures.map((f) => `  - ${f.property}: ${f.reason}`).join("\n")}\nFix the listed fields and run again.`);
    this.name = "LabConfigError";
  }
}

export const DEFAULT_CONFIG_PATH = path.join(__dirname, "lab.config.json");

/** Runtime state (disks, consoles, pid files); not a cache: `destroy` deletes it. */
export function labStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HFDE_LAB_DIR || path.join(os.homedir(), ".local", "state", "hetzner-fde", "lab");
}

export function loadLabConfig(file: string = configPathFromSource()): LabConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new LabConfigError(file, [{ property: "(file)", reason: `could not be read as JSON: ${(err as Error).message}` }]);
  }
  return parseLabConfig(raw, file);
}

/** Validates and fills defaults; throws LabConfigError listing every failure. */
export function parseLabConfig(raw: unknown, source = "lab config"): LabConfig {
  const failures = validateLabConfig(raw);
  if (failures.length > 0) throw new LabConfigError(source, failures);
  return withDefaults(raw as RawConfig);
}

// ---------------------------------------------------------------------------------------------
// Validation: one small rule per field, each returns failures with the field path.

type RawConfig = {
  robot: { port: number; user: string; password: string; reportHostKeys?: boolean };
  mirror: { port: number };
  servers: RawServer[];
};
type RawServer = Partial<Omit<LabServerConfig, "disks">> & { disks?: Partial<LabDisks> };

const SERVER_KEYS = ["number", "name", "sshPort", "dropbearPort", "memoryMiB", "cpus", "disks", "firmware"];
const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
// AHCI on q35 has six ports; NVMe has no such limit but more disks only cost boot time.
const MAX_DISKS: Record<DiskType, number> = { nvme: 8, sata: 6 };

export function validateLabConfig(raw: unknown): CheckFailure[] {
  if (!isObject(raw)) return [{ property: "(root)", reason: `must be an object with robot, mirror and servers, got ${describe(raw)}` }];
  const failures: CheckFailure[] = [];
  const robot = raw.robot;
  if (!isObject(robot)) failures.push({ property: "robot", reason: `must be an object {port, user, password}, got ${describe(robot)}` });
  else {
    failures.push(...checkPort("robot.port", robot.port));
    failures.push(...checkNonEmptyString("robot.user", robot.user));
    failures.push(...checkNonEmptyString("robot.password", robot.password, { secret: true }));
    if (robot.reportHostKeys !== undefined && typeof robot.reportHostKeys !== "boolean") {
      failures.push({ property: "robot.reportHostKeys", reason: `must be true or false, got ${describe(robot.reportHostKeys)}` });
    }
  }
  const mirror = raw.mirror;
  if (!isObject(mirror)) failures.push({ property: "mirror", reason: `must be an object {port}, got ${describe(mirror)}` });
  else failures.push(...checkPort("mirror.port", mirror.port));

  const servers = raw.servers;
  if (!Array.isArray(servers) || servers.length === 0) {
    failures.push({ property: "servers", reason: `must be a non-empty array of servers, got ${describe(servers)}` });
    return failures;
  }
  servers.forEach((server, i) => failures.push(...validateServer(`servers[${i}]`, server)));
  failures.push(...checkUnique(servers, "number"), ...checkUnique(servers, "name"));
  failures.push(...checkPortsDistinct(raw));
  return failures;
}

export function validateServer(at: string, server: unknown): CheckFailure[] {
  if (!isObject(server)) return [{ property: at, reason: `must be an object, got ${describe(server)}` }];
  const failures: CheckFailure[] = [];
  for (const key of Object.keys(server)) {
    if (!SERVER_KEYS.includes(key)) failures.push({ property: `${at}.${key}`, reason: `is not a known field; expected one of ${SERVER_KEYS.join(", ")}` });
  }
  failures.push(...checkInt(`${at}.number`, server.number, 1, 2 ** 31 - 1));
  if (typeof server.name !== "string" || !NAME_PATTERN.test(server.name)) {
    failures.push({ property: `${at}.name`, reason: `must be a lowercase hostname label like "lab-1", got ${describe(server.name)}` });
  }
  failures.push(...checkPort(`${at}.sshPort`, server.sshPort), ...checkPort(`${at}.dropbearPort`, server.dropbearPort));
  if (server.memoryMiB !== undefined) failures.push(...checkInt(`${at}.memoryMiB`, server.memoryMiB, 512, 65536, "MiB; the rescue's RAM root needs at least 512"));
  if (server.cpus !== undefined) failures.push(...checkInt(`${at}.cpus`, server.cpus, 1, 16));
  if (server.firmware !== undefined && server.firmware !== "bios" && server.firmware !== "uefi") {
    failures.push({ property: `${at}.firmware`, reason: `must be "bios" or "uefi", got ${describe(server.firmware)}` });
  }
  if (server.disks !== undefined) failures.push(...validateDisks(`${at}.disks`, server.disks));
  return failures;
}

function validateDisks(at: string, disks: unknown): CheckFailure[] {
  if (!isObject(disks)) return [{ property: at, reason: `must be an object {count, sizeGiB, type}, got ${describe(disks)}` }];
  const failures: CheckFailure[] = [];
  const type = disks.type ?? "nvme";
  if (type !== "nvme" && type !== "sata") failures.push({ property: `${at}.type`, reason: `must be "nvme" or "sata", got ${describe(type)}` });
  const max = MAX_DISKS[type as DiskType] ?? 8;
  if (disks.count !== undefined) failures.push(...checkInt(`${at}.count`, disks.count, 1, max));
  if (disks.sizeGiB !== undefined) failures.push(...checkInt(`${at}.sizeGiB`, disks.sizeGiB, 1, 4096, "GiB"));
  return failures;
}

function checkUnique(servers: unknown[], key: "number" | "name"): CheckFailure[] {
  const seen = new Map<unknown, number>();
  const failures: CheckFailure[] = [];
  servers.forEach((s, i) => {
    if (!isObject(s) || s[key] === undefined) return;
    const first = seen.get(s[key]);
    if (first === undefined) seen.set(s[key], i);
    else failures.push({ property: `servers[${i}].${key}`, reason: `duplicates servers[${first}].${key} (${String(s[key])}); each server needs its own` });
  });
  return failures;
}

function checkPortsDistinct(raw: Record<string, unknown>): CheckFailure[] {
  const uses: Array<[string, unknown]> = [
    ["robot.port", isObject(raw.robot) ? raw.robot.port : undefined],
    ["mirror.port", isObject(raw.mirror) ? raw.mirror.port : undefined],
  ];
  (raw.servers as unknown[]).forEach((s, i) => {
    if (!isObject(s)) return;
    uses.push([`servers[${i}].sshPort`, s.sshPort], [`servers[${i}].dropbearPort`, s.dropbearPort]);
  });
  const owner = new Map<unknown, string>();
  const failures: CheckFailure[] = [];
  for (const [field, port] of uses) {
    if (typeof port !== "number") continue;
    const first = owner.get(port);
    if (first === undefined) owner.set(port, field);
    else failures.push({ property: field, reason: `port ${port} is already used by ${first}; every port must be distinct` });
  }
  return failures;
}

function checkPort(property: string, value: unknown): CheckFailure[] {
  // Unprivileged only: the lab runs as a normal user and binds 127.0.0.1.
  return checkInt(property, value, 1024, 65535, "an unprivileged TCP port");
}

function checkInt(property: string, value: unknown, min: number, max: number, unit = ""): CheckFailure[] {
  if (typeof value === "number" && Number.isInteger(value) && value >= min && value <= max) return [];
  const what = unit ? ` (${unit})` : "";
  return [{ property, reason: `must be an integer from ${min} to ${max}${what}, got ${describe(value)}` }];
}

function checkNonEmptyString(property: string, value: unknown, opts: { secret?: boolean } = {}): CheckFailure[] {
  if (typeof value === "string" && value.length > 0) return [];
  // Never echo a wrong password back into a log.
  const got = opts.secret && typeof value === "string" ? "an empty string" : describe(value);
  return [{ property, reason: `must be a non-empty string, got ${got}` }];
}

function withDefaults(raw: RawConfig): LabConfig {
  return {
    robot: { port: raw.robot.port, user: raw.robot.user, password: raw.robot.password, reportHostKeys: raw.robot.reportHostKeys ?? true },
    mirror: { port: raw.mirror.port },
    servers: raw.servers.map((s) => ({
      number: s.number as number,
      name: s.name as string,
      sshPort: s.sshPort as number,
      dropbearPort: s.dropbearPort as number,
      memoryMiB: s.memoryMiB ?? 2048,
      cpus: s.cpus ?? 1,
      disks: { count: s.disks?.count ?? 2, sizeGiB: s.disks?.sizeGiB ?? 20, type: s.disks?.type ?? "nvme" },
      firmware: s.firmware ?? "bios",
    })),
  };
}

/** Finds a server by number or name, as the CLI accepts either. */
export function findServer(config: LabConfig, ref: string): LabServerConfig {
  const server = config.servers.find((s) => String(s.number) === ref || s.name === ref);
  if (!server) {
    const known = config.servers.map((s) => `${s.number} (${s.name})`).join(", ");
    throw new Error(`no lab server "${ref}"; known servers: ${known}`);
  }
  return server;
}

// The compiled config.js lives in dist/lab/, but the JSON is edited in lab/: prefer the source copy.
function configPathFromSource(): string {
  const source = path.resolve(__dirname, "..", "..", "lab", "lab.config.json");
  return fs.existsSync(source) && __dirname.includes(`${path.sep}dist${path.sep}`) ? source : DEFAULT_CONFIG_PATH;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  if (typeof v === "object") return "an object";
  return String(v);
}
