// The stack config: its schema, its cross-field rules and the one pure entry point
// `validateStackConfig(raw)`. No Pulumi import here: `infra/index.ts` reads `pulumi.Config` and
// hands the plain object over, so tests (and `pulumi preview` in CI) validate with no engine and
// no connection. Every error names its path (`hosts[1].raid.level`), what was expected and what was
// found; secrets are never quoted.
import { z } from "zod";
import { parsePublicKey } from "../providers/plumbing/keys";
import {
  arrayCapacityMiB,
  bytesToMiB,
  checkCipher,
  checkCronSchedule,
  checkDiskPath,
  checkDnsLabel,
  checkEndpointAddress,
  checkGateway,
  checkHostname,
  checkInterfaceName,
  checkLayout,
  checkPbkdf,
  checkPort,
  checkRobotUrl,
  checkSerial,
  checkSha256Fingerprint,
  checkWwn,
  describeLayout,
  describeMiB,
  formatPath,
  IpFamily,
  minDrivesFor,
  normalizeWwn,
  parseImageName,
  parseInterfaceAddress,
  PARTITION_FILESYSTEMS,
  passphraseWeaknesses,
  PASSPHRASE_RULE,
  PathSegment,
  PBKDF_TYPES,
  quote,
  RAID_LEVELS,
  RuleIssue,
  VOLUME_FILESYSTEMS,
  checkSshPrivateKey,
} from "../providers/rules";
import { Secret } from "../providers/plumbing/secret";

export const PROJECT = "hetzner-fde";
export const DEFAULT_ROBOT_URL = "https://robot-ws.your-server.de";
export const DEFAULT_IMAGE = "Debian-bookworm-latest-amd64-base";

/** Top-level keys holding secrets: their values never appear in a message. */
export const SECRET_KEYS = ["robotPassword", "luksPassphrases", "sshPrivateKey"] as const;

// ---------------------------------------------------------------------------------------------
// Schema. Field-level checks call the pure rules in providers/rules; zod supplies the structure.

type Check<T> = (value: T) => string | undefined;

function checked<T extends z.ZodType>(schema: T, check: Check<z.output<T>>): T {
  return schema.superRefine((value, ctx) => {
    const reason = check(value);
    if (reason !== undefined) ctx.addIssue({ code: "custom", message: reason });
  }) as T;
}

const text = (check: Check<string>) => checked(z.string(), check);
const port = checked(z.number(), checkPort);

function checkImage(name: string): string | undefined {
  const parsed = parseImageName(name);
  return parsed.ok ? undefined : parsed.reason;
}

function checkAuthorizedKey(line: string): string | undefined {
  try {
    parsePublicKey(line);
    return undefined;
  } catch (error) {
    return `expected an OpenSSH public key line "<type> <base64> [comment]": ${(error as Error).message}`;
  }
}

function checkMirrorMount(mount: string): string | undefined {
  if (!/^\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(mount)) return `expected an absolute mount point other than / like /mirror, found "${mount}"`;
  return undefined;
}

const DriveSchema = z
  .object({
    /** Whole-disk path, e.g. /dev/nvme0n1 or /dev/disk/by-id/…; partitions come from the layout. */
    path: text(checkDiskPath),
    /** Pins the disk: a different serial at `path` stops the run before anything is written. */
    serial: text(checkSerial).optional(),
    /** Pins the disk by WWN, as `lsblk -o WWN` prints it. */
    wwn: text(checkWwn).optional(),
    /** Disk size in bytes; when every disk has one, partition and LV sizes are checked against it. */
    sizeBytes: z.number().int().positive().optional(),
  })
  .strict();

const RobotTargetSchema = z.object({ serverNumber: z.number().int().positive() }).strict();

const SshTargetSchema = z
  .object({
    address: text(checkEndpointAddress),
    port: port.default(22),
    user: text((u) => (/^[a-z_][a-z0-9_-]{0,31}$/.test(u) ? undefined : `expected a Unix user name like root, found "${u}"`)).default("root"),
    /** Pinned host keys of the rescue system; without them the first connection records the key (TOFU) and says so. */
    hostKeyFingerprints: z.array(text(checkSha256Fingerprint)).optional(),
  })
  .strict();

const TargetSchema = z
  .object({ robot: RobotTargetSchema.optional(), ssh: SshTargetSchema.optional() })
  .strict()
  .superRefine((target, ctx) => {
    if (target.robot !== undefined && target.ssh !== undefined) {
      ctx.addIssue({ code: "custom", message: "expected exactly one of robot or ssh, found both; a host is either a Robot server or a plain SSH rescue host" });
    }
    if (target.robot === undefined && target.ssh === undefined) {
      ctx.addIssue({ code: "custom", message: "expected exactly one of robot: { serverNumber } or ssh: { address }, found neither" });
    }
  });

/** Where to dial instead of the server's own address, e.g. the lab's loopback port forwards. */
const EndpointsSchema = z.object({ address: text(checkEndpointAddress), sshPort: port, dropbearPort: port }).strict();

const RaidSchema = z.object({ level: z.literal([...RAID_LEVELS]) }).strict();

const PartitionSchema = z
  .object({
    mount: z.string(),
    fs: z.enum(PARTITION_FILESYSTEMS).optional(),
    vg: z.string().optional(),
    size: z.string(),
    crypt: z.boolean().default(false),
  })
  .strict();

const VolumeSchema = z
  .object({ vg: z.string(), name: z.string(), mount: z.string(), fs: z.enum(VOLUME_FILESYSTEMS), size: z.string() })
  .strict();

const PbkdfSchema = z
  .object({
    type: z.enum(PBKDF_TYPES).default("argon2id"),
    memoryKiB: z.number().int().optional(),
    iterations: z.number().int().optional(),
    parallelism: z.number().int().optional(),
    iterTimeMs: z.number().int().min(100).optional(),
  })
  .strict()
  .superRefine((pbkdf, ctx) => addRuleIssues(ctx, checkPbkdf(pbkdf)));

const LuksSchema = z
  .object({
    cipher: z.string().default("aes-xts-plain64"),
    keySize: z.number().int().default(512),
    /** Default: cryptsetup's own (argon2id, benchmarked to 2 s). */
    pbkdf: PbkdfSchema.prefault({ iterTimeMs: 2000 }),
  })
  .strict()
  .superRefine((luks, ctx) => addRuleIssues(ctx, checkCipher(luks.cipher, luks.keySize)));

function addressSchema(family: IpFamily) {
  return z
    .object({ address: z.string(), gateway: z.string() })
    .strict()
    .superRefine((ip, ctx) => {
      const parsed = parseInterfaceAddress(ip.address, family);
      if (!parsed.ok) return addRuleIssues(ctx, [{ path: ["address"], message: parsed.reason }]);
      const gateway = checkGateway(ip.gateway, parsed.value, family);
      if (gateway !== undefined) addRuleIssues(ctx, [{ path: ["gateway"], message: gateway }]);
    });
}

const NetworkSchema = z
  .object({
    mode: z.enum(["dhcp", "static"]),
    /** Kernel interface name in the initramfs; omitted, the kernel's `ip=` picks the first with a link. */
    interface: text(checkInterfaceName).optional(),
    ipv4: addressSchema("ipv4").optional(),
    ipv6: addressSchema("ipv6").optional(),
  })
  .strict()
  .superRefine((net, ctx) => {
    if (net.mode === "static" && net.ipv4 === undefined) {
      ctx.addIssue({ code: "custom", path: ["ipv4"], message: "mode: static needs ipv4: { address, gateway }; the initramfs ip= setting cannot come up on IPv6 alone" });
    }
    if (net.mode === "dhcp") {
      for (const key of ["ipv4", "ipv6"] as const) {
        if (net[key] !== undefined) ctx.addIssue({ code: "custom", path: [key], message: `mode: dhcp takes no fixed addresses; remove ${key} or set mode: static` });
      }
    }
  });

const DropbearSchema = z
  .object({
    /** Port dropbear listens on in the initramfs; must differ from sshd's so each port keeps one pinned host key. */
    port: port.default(2222),
    authorizedKeys: z.array(text(checkAuthorizedKey)).min(1),
    network: NetworkSchema.prefault({ mode: "dhcp" }),
  })
  .strict();

const SshdSchema = z.object({ port: port.default(22) }).strict();

const MirrorSchema = z
  .object({
    /** The second disk; it must not be one of the host's system drives. */
    drive: DriveSchema,
    schedule: text(checkCronSchedule).default("*/15 * * * *"),
    /** Rotated mirror logs kept (CAcert kept 52). */
    logRotations: z.number().int().min(1).max(1000).default(52),
    mountPoint: text(checkMirrorMount).default("/mirror"),
  })
  .strict();

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
const whenObject = { when: (payload: { value: unknown }) => isRecord(payload.value) };

export const HostSchema = z
  .object({
    /** Stack-wide unique DNS label; keys the host's secrets (`luksPassphrases.<name>`) and resources. */
    name: text(checkDnsLabel),
    /** The installed system's host name; defaults to `name`. */
    hostname: text(checkHostname).optional(),
    target: TargetSchema,
    endpoints: EndpointsSchema.optional(),
    image: text(checkImage).default(DEFAULT_IMAGE),
    drives: z.array(DriveSchema).min(1),
    /** Omitted: a single system disk, no md array. */
    raid: RaidSchema.optional(),
    partitions: z.array(PartitionSchema).min(1),
    volumes: z.array(VolumeSchema).default([]),
    luks: LuksSchema.prefault({}),
    dropbear: DropbearSchema,
    sshd: SshdSchema.prefault({}),
    mirror: MirrorSchema.optional(),
    /** Lets create destroy data found on the disks; off, a non-empty disk stops the run. */
    allowWipe: z.boolean().default(false),
    /** Pulumi `protect` on the host's resources: `pulumi destroy` refuses until it is lifted. */
    protect: z.boolean().default(true),
  })
  .strict()
  .superRefine((host, ctx) => addRuleIssues(ctx, hostRules(host)), whenObject);

export const StackConfigSchema = z
  .object({
    robotUrl: text(checkRobotUrl).default(DEFAULT_ROBOT_URL),
    robotUser: z.string().optional(),
    robotPassword: z.string().optional(),
    /** The operator's SSH private key (OpenSSH or PEM, no passphrase) every SSH step uses. Secret. */
    sshPrivateKey: z.string().optional(),
    luksPassphrases: z.record(z.string(), z.string()).default({}),
    hosts: z.array(HostSchema).min(1),
  })
  .strict()
  .superRefine((stack, ctx) => addRuleIssues(ctx, stackRules(stack)), whenObject);

function addRuleIssues(ctx: z.RefinementCtx, issues: readonly RuleIssue[]): void {
  for (const issue of issues) ctx.addIssue({ code: "custom", path: [...issue.path], message: issue.message });
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules. They run even when other parts of the config are malformed (zod's `when`),
// so one typo does not hide the other mistakes; each rule re-reads only the sections it needs and
// skips itself when one of those is malformed (that section already has its own error).

type Drive = z.output<typeof DriveSchema>;

function section<T extends z.ZodType>(schema: T, value: unknown): z.output<T> | undefined {
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

function hostRules(host: Record<string, unknown>): RuleIssue[] {
  const drives = section(z.array(DriveSchema), host.drives);
  const raid = section(RaidSchema.optional(), host.raid);
  const raidValid = host.raid === undefined || raid !== undefined;
  const mirror = section(MirrorSchema.optional(), host.mirror);
  const partitions = section(z.array(PartitionSchema), host.partitions);
  const volumes = section(z.array(VolumeSchema).default([]), host.volumes);
  const dropbear = section(DropbearSchema, host.dropbear);
  const sshd = section(SshdSchema.prefault({}), host.sshd);
  const endpoints = section(EndpointsSchema.optional(), host.endpoints);

  const issues: RuleIssue[] = [];
  if (drives) issues.push(...checkDriveIdentity(drives, mirror?.drive));
  if (drives && raidValid) issues.push(...checkRaidMembers(drives, raid?.level ?? null));
  if (drives && raidValid && partitions && volumes) {
    const raidSpec = raid ? { level: raid.level, members: drives.length } : null;
    issues.push(...checkLayout({ partitions, volumes, raid: raidSpec, memberSizesBytes: drives.map((d) => d.sizeBytes) }));
  }
  if (dropbear && sshd && dropbear.port === sshd.port) {
    issues.push({
      path: ["dropbear", "port"],
      message: `expected a port other than sshd's ${sshd.port}, found ${dropbear.port}: one port would present dropbear's host key in the initramfs and sshd's after boot, and the pinned key check would fail on one of them`,
    });
  }
  if (endpoints && endpoints.sshPort === endpoints.dropbearPort) {
    issues.push({ path: ["endpoints", "dropbearPort"], message: `expected a port other than endpoints.sshPort ${endpoints.sshPort}, found ${endpoints.dropbearPort}; dropbear and sshd need separate forwards` });
  }
  if (mirror && partitions && volumes) issues.push(...checkMirrorPlacement(mirror.mountPoint, partitions, volumes));
  if (mirror && drives && raidValid) issues.push(...checkMirrorCapacity(mirror.drive, drives, raid?.level ?? null));
  return issues;
}

function checkDriveIdentity(drives: readonly Drive[], mirrorDrive: Drive | undefined): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const all: { drive: Drive; path: PathSegment[]; label: string }[] = drives.map((drive, i) => ({ drive, path: ["drives", i], label: `drives[${i}]` }));
  if (mirrorDrive) all.push({ drive: mirrorDrive, path: ["mirror", "drive"], label: "mirror.drive" });
  const keys: { field: "path" | "serial" | "wwn"; key: (d: Drive) => string | undefined }[] = [
    { field: "path", key: (d) => d.path },
    { field: "serial", key: (d) => d.serial },
    { field: "wwn", key: (d) => (d.wwn === undefined ? undefined : normalizeWwn(d.wwn)) },
  ];
  for (const { field, key } of keys) {
    const seen = new Map<string, string>();
    for (const entry of all) {
      const value = key(entry.drive);
      if (value === undefined) continue;
      const first = seen.get(value);
      if (first === undefined) {
        seen.set(value, entry.label);
        continue;
      }
      const what = entry.label === "mirror.drive" ? "the mirror disk must be a separate disk, not one of the system drives" : "each disk appears once";
      issues.push({ path: [...entry.path, field], message: `${field} ${quote(entry.drive[field])} is already used by ${first}; ${what}` });
    }
  }
  return issues;
}

function checkRaidMembers(drives: readonly Drive[], level: (typeof RAID_LEVELS)[number] | null): RuleIssue[] {
  if (level === null) {
    if (drives.length === 1) return [];
    return [
      {
        path: ["drives"],
        message: `expected 1 drive without raid, found ${drives.length}; add raid: { level: 1 } to mirror them, or move the second disk to mirror.drive for a CAcert-style mirror`,
      },
    ];
  }
  const min = minDrivesFor(level);
  if (drives.length >= min) return [];
  return [{ path: ["raid", "level"], message: `RAID ${level} needs at least ${min} drives, found ${drives.length} in drives; add drives or choose a level that fits (RAID 1 needs 2)` }];
}

function checkMirrorPlacement(
  mountPoint: string,
  partitions: readonly z.output<typeof PartitionSchema>[],
  volumes: readonly z.output<typeof VolumeSchema>[],
): RuleIssue[] {
  const mounts = [...partitions.map((p) => p.mount), ...volumes.map((v) => v.mount)];
  const clash = mounts.find((m) => m !== "lvm" && m !== "swap" && m !== "/" && (m === mountPoint || m.startsWith(`${mountPoint}/`) || mountPoint.startsWith(`${m}/`)));
  if (clash === undefined) return [];
  return [{ path: ["mirror", "mountPoint"], message: `expected a mount point apart from the system's filesystems, found "${mountPoint}", which overlaps ${clash}; the mirror is mounted only while it syncs` }];
}

function checkMirrorCapacity(mirrorDrive: Drive, drives: readonly Drive[], level: (typeof RAID_LEVELS)[number] | null): RuleIssue[] {
  const system = arrayCapacityMiB(level, drives.map((d) => d.sizeBytes));
  if (system === null || mirrorDrive.sizeBytes === undefined) return [];
  const mirror = bytesToMiB(mirrorDrive.sizeBytes);
  if (mirror >= system) return [];
  return [{ path: ["mirror", "drive", "sizeBytes"], message: `expected a mirror disk at least as large as the system storage (${describeMiB(system)}), found ${describeMiB(mirror)}; the mirror copies / and /boot one to one` }];
}

function stackRules(stack: Record<string, unknown>): RuleIssue[] {
  const hosts = Array.isArray(stack.hosts) ? stack.hosts.map((h) => (isRecord(h) ? h : {})) : [];
  return [...checkUniqueHosts(hosts), ...checkRobotAccess(stack, hosts), ...checkPassphrases(stack, hosts), ...checkOperatorKey(stack)];
}

function checkOperatorKey(stack: Record<string, unknown>): RuleIssue[] {
  if (stack.sshPrivateKey === undefined) {
    return [{ path: ["sshPrivateKey"], message: "is required: every step reaches its host over SSH with this key; store it with `pulumi config set --secret sshPrivateKey < key-file` (stdin keeps it out of argv and shell history)" }];
  }
  if (typeof stack.sshPrivateKey !== "string") return [];
  const reason = checkSshPrivateKey(stack.sshPrivateKey);
  return reason ? [{ path: ["sshPrivateKey"], message: reason }] : [];
}

function hostName(host: Record<string, unknown>): string | undefined {
  return typeof host.name === "string" && checkDnsLabel(host.name) === undefined ? host.name : undefined;
}

function robotServerNumber(host: Record<string, unknown>): number | undefined {
  const target = isRecord(host.target) ? host.target : undefined;
  const robot = target && isRecord(target.robot) ? target.robot : undefined;
  return typeof robot?.serverNumber === "number" ? robot.serverNumber : undefined;
}

/** The address:port pairs we dial, when they are known before talking to Robot. */
function dialedEndpoints(host: Record<string, unknown>): { where: PathSegment[]; endpoint: string }[] {
  const endpoints = section(EndpointsSchema, host.endpoints);
  if (endpoints) {
    return [
      { where: ["endpoints", "sshPort"], endpoint: `${endpoints.address}:${endpoints.sshPort}` },
      { where: ["endpoints", "dropbearPort"], endpoint: `${endpoints.address}:${endpoints.dropbearPort}` },
    ];
  }
  const target = section(TargetSchema, host.target);
  if (!target?.ssh) return [];
  const dropbear = section(DropbearSchema, host.dropbear);
  const out = [{ where: ["target", "ssh", "port"] as PathSegment[], endpoint: `${target.ssh.address}:${target.ssh.port}` }];
  if (dropbear) out.push({ where: ["dropbear", "port"], endpoint: `${target.ssh.address}:${dropbear.port}` });
  return out;
}

function checkUniqueHosts(hosts: readonly Record<string, unknown>[]): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const names = new Map<string, number>();
  const servers = new Map<number, number>();
  const endpoints = new Map<string, number>();
  hosts.forEach((host, i) => {
    const name = hostName(host);
    if (name !== undefined) {
      if (names.has(name)) issues.push({ path: ["hosts", i, "name"], message: `host name "${name}" is already used by hosts[${names.get(name)}]; names must be unique, they key the secrets and resources` });
      else names.set(name, i);
    }
    const server = robotServerNumber(host);
    if (server !== undefined) {
      if (servers.has(server)) issues.push({ path: ["hosts", i, "target", "robot", "serverNumber"], message: `server ${server} is already the target of hosts[${servers.get(server)}]; two hosts cannot install the same server` });
      else servers.set(server, i);
    }
    for (const { where, endpoint } of dialedEndpoints(host)) {
      const first = endpoints.get(endpoint);
      if (first !== undefined && first !== i) issues.push({ path: ["hosts", i, ...where], message: `${endpoint} is already dialed for hosts[${first}]; each host needs its own address or port` });
      else endpoints.set(endpoint, i);
    }
  });
  return issues;
}

function checkRobotAccess(stack: Record<string, unknown>, hosts: readonly Record<string, unknown>[]): RuleIssue[] {
  const user = hosts.findIndex((h) => robotServerNumber(h) !== undefined);
  const issues: RuleIssue[] = [];
  if (typeof stack.robotPassword === "string" && stack.robotPassword === "") {
    issues.push({ path: ["robotPassword"], message: "is empty: set it with `pulumi config set --secret robotPassword` (it reads the value from stdin)" });
  }
  if (user < 0) return issues;
  const who = `hosts[${user}] uses a Robot target`;
  if (typeof stack.robotUser !== "string" || stack.robotUser === "") {
    issues.push({ path: ["robotUser"], message: `is required because ${who}: set it with \`pulumi config set robotUser '#ws+XXXXXXXX'\` (the Robot webservice user)` });
  }
  if (stack.robotPassword === undefined) {
    issues.push({ path: ["robotPassword"], message: `is required because ${who}: set it with \`pulumi config set --secret robotPassword\` (it reads the value from stdin)` });
  }
  return issues;
}

function setPassphraseCommand(name: string): string {
  return `\`pulumi config set --secret --path 'luksPassphrases.${name}'\` (it reads the value from stdin)`;
}

function checkPassphrases(stack: Record<string, unknown>, hosts: readonly Record<string, unknown>[]): RuleIssue[] {
  const passphrases = isRecord(stack.luksPassphrases) ? stack.luksPassphrases : {};
  const names = hosts.map(hostName).filter((n): n is string => n !== undefined);
  const issues: RuleIssue[] = [];
  for (const name of names) {
    const passphrase = passphrases[name];
    if (passphrase === undefined) {
      issues.push({ path: ["luksPassphrases", name], message: `is missing: host ${name} needs a LUKS passphrase; set it with ${setPassphraseCommand(name)}` });
      continue;
    }
    if (typeof passphrase !== "string") continue; // zod already reported the type
    const reasons = passphraseWeaknesses(passphrase);
    if (passphrase === "") {
      issues.push({ path: ["luksPassphrases", name], message: `is empty: expected a passphrase of ${PASSPHRASE_RULE}; set it with ${setPassphraseCommand(name)}` });
    } else if (reasons.length > 0) {
      issues.push({ path: ["luksPassphrases", name], message: `is too weak: it ${reasons.join("; it ")}. Expected ${PASSPHRASE_RULE}; set a new one with ${setPassphraseCommand(name)}` });
    }
  }
  // A stray key is only knowable when every host has a usable name (else it may be that host's).
  if (names.length === 0 || names.length !== hosts.length) return issues;
  const known = [...new Set(names)];
  for (const key of Object.keys(passphrases)) {
    if (!known.includes(key)) {
      issues.push({ path: ["luksPassphrases", key], message: `belongs to no host: the hosts are ${known.join(", ")}; rename the key or remove it with \`pulumi config rm --path 'luksPassphrases.${key}'\`` });
    }
  }
  return issues;
}

// ---------------------------------------------------------------------------------------------
// The entry point, and turning zod's issues into our messages.

export type RaidLevel = (typeof RAID_LEVELS)[number];
export type HostInput = z.input<typeof HostSchema>;
export type StackConfigInput = z.input<typeof StackConfigSchema>;
type ParsedHost = z.output<typeof HostSchema>;

export type HostConfig = Omit<ParsedHost, "luks" | "hostname"> & {
  readonly hostname: string;
  readonly luks: ParsedHost["luks"] & { readonly passphrase: Secret };
};

export interface RobotAccess {
  readonly url: string;
  readonly user: string;
  readonly password: Secret;
}

export interface StackConfig {
  /** null when no host is a Robot server. */
  readonly robot: RobotAccess | null;
  /** Reaches every host in every environment (rescue, dropbear, installed system). */
  readonly sshPrivateKey: Secret;
  readonly hosts: readonly HostConfig[];
}

export interface ValidationError {
  /** e.g. `hosts[1].raid.level`, `luksPassphrases.fsn1-app1`. */
  readonly path: string;
  readonly message: string;
}

export type ValidationResult = { ok: true; config: StackConfig } | { ok: false; errors: ValidationError[] };

/**
 * Validates the stack config as `pulumi.Config` returns it (keys without the `hetzner-fde:`
 * namespace, secrets as plain strings) and reports every error at once. On success the secrets
 * come back wrapped in `Secret`, so the config can be logged or serialised without leaking them.
 */
export function validateStackConfig(raw: unknown): ValidationResult {
  const result = StackConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) return { ok: false, errors: dedupe(result.error.issues.flatMap(toValidationErrors)) };
  const stack = result.data;
  const hosts = stack.hosts.map((host) => ({
    ...host,
    hostname: host.hostname ?? host.name,
    luks: { ...host.luks, passphrase: new Secret(stack.luksPassphrases[host.name]) },
  }));
  const usesRobot = hosts.some((h) => h.target.robot !== undefined);
  const robot = usesRobot ? { url: stack.robotUrl, user: stack.robotUser as string, password: new Secret(stack.robotPassword as string) } : null;
  return { ok: true, config: { robot, sshPrivateKey: new Secret(stack.sshPrivateKey as string), hosts } };
}

/** One block of text for a `pulumi.RunError`: a headline, then one `path: message` line per error. */
export function formatValidationErrors(errors: readonly ValidationError[], stack?: string): string {
  const where = stack === undefined ? "the stack config" : `the config of stack "${stack}"`;
  const headline = `${errors.length} problem${errors.length === 1 ? "" : "s"} in ${where}:`;
  return [headline, ...errors.map((e) => `  - ${e.path}: ${e.message}`)].join("\n");
}

function dedupe(errors: ValidationError[]): ValidationError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const key = `${e.path}\u0000${e.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

type ZodIssue = z.core.$ZodIssue;

function isSecretPath(path: readonly PropertyKey[]): boolean {
  return (SECRET_KEYS as readonly PropertyKey[]).includes(path[0]);
}

function toPath(path: readonly PropertyKey[]): PathSegment[] {
  return path.map((p) => (typeof p === "number" ? p : String(p)));
}

function describeFound(input: unknown, path: readonly PropertyKey[]): string {
  if (input === undefined) return "nothing";
  if (input === null) return "null";
  if (Array.isArray(input)) return `a list of ${input.length}`;
  if (typeof input === "object") return "an object";
  if (isSecretPath(path)) return `a ${typeof input} (value hidden)`;
  return typeof input === "string" ? quote(input) : String(input);
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  object: "an object",
  array: "a list",
  record: "an object",
};

function toValidationErrors(issue: ZodIssue): ValidationError[] {
  const path = toPath(issue.path);
  const at = (message: string, extra: PathSegment[] = []) => ({ path: formatPath([...path, ...extra]), message });
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case "invalid_type": {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      if (input === undefined) return [at(`is required: expected ${expected}`)];
      return [at(`expected ${expected}, found ${describeFound(input, issue.path)}`)];
    }
    case "unrecognized_keys":
      return issue.keys.map((key) => at(unknownKeyMessage(key, issue.path), [key]));
    case "invalid_value": {
      const options = issue.values.map((v) => (typeof v === "string" ? `"${v}"` : String(v))).join(", ");
      return [at(`expected one of ${options}, found ${describeFound(input, issue.path)}`)];
    }
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      const relation = issue.code === "too_small" ? (inclusive ? "at least" : "more than") : inclusive ? "at most" : "less than";
      if (issue.origin === "array") {
        return [at(`expected ${relation} ${String(bound)} entr${bound === 1 ? "y" : "ies"}, found ${Array.isArray(input) ? input.length : 0}`)];
      }
      return [at(`expected ${relation} ${String(bound)}, found ${describeFound(input, issue.path)}`)];
    }
    case "custom":
      return [at(issue.message)];
    default:
      return [at(isSecretPath(issue.path) ? `is not valid (${issue.code})` : issue.message)];
  }
}

function unknownKeyMessage(key: string, objectPath: readonly PropertyKey[]): string {
  if (key === "passphrase") {
    return `is not a host setting: passphrases are secrets and live in luksPassphrases; remove it here and set it with \`pulumi config set --secret --path 'luksPassphrases.<host name>'\``;
  }
  const known = knownKeysAt(objectPath);
  const lower = key.toLowerCase();
  const guess =
    known.find((k) => k.toLowerCase() === lower || editDistance(k, key) <= 2) ??
    known.find((k) => k.length >= 4 && (lower.startsWith(k.toLowerCase()) || k.toLowerCase().startsWith(lower)));
  const hint = guess !== undefined ? `; did you mean "${guess}"?` : "";
  return `is not a known setting: expected one of ${known.join(", ")}${hint}`;
}

/** Keys the schema accepts at an object path, for "did you mean" hints. */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = StackConfigSchema;
  for (const segment of path) {
    schema = unwrap(schema);
    const def = schema?._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType } | undefined;
    if (def === undefined) return [];
    if (def.type === "object" && typeof segment === "string") schema = def.shape?.[segment];
    else if (def.type === "array") schema = def.element;
    else if (def.type === "record") schema = def.valueType;
    else return [];
  }
  const def = unwrap(schema)?._zod.def as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function unwrap(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let current = schema;
  for (let i = 0; i < 10 && current; i++) {
    const def = current._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
    if (["optional", "default", "prefault", "nullable", "readonly"].includes(def.type) && def.innerType) current = def.innerType;
    else if (def.type === "pipe" && def.in) current = def.in;
    else return current;
  }
  return current;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}

// ---------------------------------------------------------------------------------------------
// Summaries (stack outputs, previews) and stack files.

export interface HostSummary {
  readonly name: string;
  readonly hostname: string;
  readonly target: string;
  readonly image: string;
  readonly storage: string;
  readonly layout: readonly string[];
  readonly luks: string;
  readonly dropbear: string;
  readonly sshdPort: number;
  readonly mirror: string | null;
  readonly protect: boolean;
  readonly allowWipe: boolean;
}

/** A small, secret-free description of what the stack plans for a host. */
export function summarizeHost(host: HostConfig): HostSummary {
  const target = host.target.robot ? `robot server ${host.target.robot.serverNumber}` : `ssh ${host.target.ssh!.user}@${host.target.ssh!.address}:${host.target.ssh!.port}`;
  const via = host.endpoints ? ` via ${host.endpoints.address} (ssh ${host.endpoints.sshPort}, dropbear ${host.endpoints.dropbearPort})` : "";
  const drives = host.drives.map((d) => d.path).join(" + ");
  const capacity = arrayCapacityMiB(host.raid?.level ?? null, host.drives.map((d) => d.sizeBytes));
  const storage = `${host.raid ? `RAID ${host.raid.level} over ${drives}` : `single disk ${drives}`}${capacity === null ? "" : ` (${describeMiB(capacity)})`}`;
  const pbkdf = host.luks.pbkdf;
  const cost = pbkdf.iterTimeMs !== undefined ? `iter-time ${pbkdf.iterTimeMs} ms` : [pbkdf.memoryKiB && `${pbkdf.memoryKiB} KiB`, pbkdf.iterations && `${pbkdf.iterations} iterations`, pbkdf.parallelism && `${pbkdf.parallelism} threads`].filter(Boolean).join(", ");
  const net = host.dropbear.network;
  const network = net.mode === "dhcp" ? "dhcp" : [net.ipv4?.address, net.ipv6?.address].filter(Boolean).join(" + ") + (net.interface ? ` on ${net.interface}` : "");
  return {
    name: host.name,
    hostname: host.hostname,
    target: target + via,
    image: host.image,
    storage,
    layout: describeLayout(host),
    luks: `LUKS2 ${host.luks.cipher} ${host.luks.keySize}-bit, ${pbkdf.type}${cost ? ` (${cost})` : ""}`,
    dropbear: `port ${host.dropbear.port}, ${host.dropbear.authorizedKeys.length} key(s), ${network}`,
    sshdPort: host.sshd.port,
    mirror: host.mirror ? `${host.mirror.drive.path} at ${host.mirror.mountPoint}, "${host.mirror.schedule}", ${host.mirror.logRotations} logs kept` : null,
    protect: host.protect,
    allowWipe: host.allowWipe,
  };
}

/**
 * Turns the `config:` map of a `Pulumi.<stack>.yaml` into what `validateStackConfig` takes: keys of
 * this project lose their `hetzner-fde:` prefix, other namespaces are dropped, and each
 * `{ secure: … }` node is replaced by `resolveSecret(path)` (path like `luksPassphrases.lab-1`).
 * Tests and the no-CLI demo use it to stand in for what the Pulumi engine does.
 */
export function rawConfigFromStackFile(stackConfig: Record<string, unknown>, resolveSecret: (path: string) => string, project = PROJECT): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [fullKey, value] of Object.entries(stackConfig)) {
    const prefix = `${project}:`;
    if (!fullKey.startsWith(prefix)) continue;
    const key = fullKey.slice(prefix.length);
    out[key] = substituteSecrets(value, [key], resolveSecret);
  }
  return out;
}

function substituteSecrets(value: unknown, path: PathSegment[], resolveSecret: (path: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v, i) => substituteSecrets(v, [...path, i], resolveSecret));
  if (!isRecord(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && keys[0] === "secure") return resolveSecret(formatPath(path));
  return Object.fromEntries(keys.map((k) => [k, substituteSecrets(value[k], [...path, k], resolveSecret)]));
}
