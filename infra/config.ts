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
  checkWipePins,
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
  checkArgon2Memory,
  checkMountPoint,
  checkServerNumber,
  identityInDiskPath,
  isIpAddress,
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
  return checkMountPoint(mount, "/mirror", false);
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
    /**
     * The host's RAM in MiB (`free -m` in the rescue), where known: a fixed Argon2 memory cost is
     * checked against it, since the rescue and the initramfs unlock run in RAM.
     */
    memoryMiB: z.number().int().min(256).optional(),
    /** Lets create destroy data found on the disks; off, a non-empty disk stops the run. Needs every disk pinned. */
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
  const target = section(TargetSchema, host.target);
  const luks = section(LuksSchema.prefault({}), host.luks);
  const memoryMiB = section(z.number().int().min(256).optional(), host.memoryMiB);

  const issues: RuleIssue[] = [];
  if (drives) issues.push(...checkDriveIdentity(drives, mirror?.drive));
  if (drives && host.allowWipe === true) issues.push(...checkWipePinsOf(drives, mirror?.drive));
  if (dropbear && target && endpoints === undefined && host.endpoints === undefined) issues.push(...checkDropbearAddress(dropbear, target));
  if (luks && memoryMiB !== undefined) issues.push(...checkLuksMemory(luks, memoryMiB));
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
  issues.push(...checkByIdIdentity(all));
  return issues;
}

/**
 * A /dev/disk/by-id name carries the disk's serial or WWN: it must agree with the entry's own pin,
 * and it must not name a disk another entry already pins (the same disk listed twice, once by
 * path and once by serial, would be written to as two RAID members).
 */
function checkByIdIdentity(all: readonly { drive: Drive; path: PathSegment[]; label: string }[]): RuleIssue[] {
  const issues: RuleIssue[] = [];
  all.forEach((entry, i) => {
    const named = identityInDiskPath(entry.drive.path);
    const ownWwn = entry.drive.wwn === undefined ? undefined : normalizeWwn(entry.drive.wwn);
    if (entry.drive.serial !== undefined && named.serials.length > 0 && !named.serials.includes(entry.drive.serial)) {
      issues.push({
        path: [...entry.path, "serial"],
        message: `expected the serial that path ${quote(entry.drive.path)} names (${named.serials.join(" or ")}), found ${quote(entry.drive.serial)}: path and pin name two different disks; fix one of them (lsblk -d -o NAME,SERIAL,WWN in the rescue lists both)`,
      });
    }
    if (ownWwn !== undefined && named.wwn !== null && named.wwn !== ownWwn) {
      issues.push({ path: [...entry.path, "wwn"], message: `expected the WWN that path ${quote(entry.drive.path)} names (${named.wwn}), found ${quote(entry.drive.wwn)}: path and pin name two different disks; fix one of them` });
    }
    all.forEach((other, j) => {
      if (j === i) return;
      const otherNamed = identityInDiskPath(other.drive.path);
      const otherSerials = new Set([...(other.drive.serial !== undefined ? [other.drive.serial] : []), ...otherNamed.serials]);
      const otherWwns = new Set([...(other.drive.wwn !== undefined ? [normalizeWwn(other.drive.wwn)] : []), ...(otherNamed.wwn !== null ? [otherNamed.wwn] : [])]);
      const serial = named.serials.find((s) => otherSerials.has(s));
      const sameWwn = named.wwn !== null && otherWwns.has(named.wwn);
      if (serial === undefined && !sameWwn) return;
      // Once per pair: when both paths name the disk, on the later entry only.
      if (j > i && (otherNamed.serials.length > 0 || otherNamed.wwn !== null)) return;
      const id = serial !== undefined ? `serial ${serial}` : `WWN ${named.wwn}`;
      const what = entry.label === "mirror.drive" || other.label === "mirror.drive" ? "the mirror disk must be a separate disk, not one of the system drives" : "each disk appears once";
      issues.push({ path: [...entry.path, "path"], message: `${quote(entry.drive.path)} names the disk with ${id}, which ${other.label} already uses; ${what}, so remove one of the two entries` });
    });
  });
  return issues;
}

/** With allowWipe, every disk that can be wiped needs a pin (the one rule, in providers/rules/device.ts). */
function checkWipePinsOf(drives: readonly Drive[], mirrorDrive: Drive | undefined): RuleIssue[] {
  const entries: { drive: Drive; path: PathSegment[]; label: string }[] = drives.map((drive, i) => ({ drive, path: ["drives", i], label: `drives[${i}]` }));
  if (mirrorDrive) entries.push({ drive: mirrorDrive, path: ["mirror", "drive"], label: "mirror.drive" });
  return checkWipePins(entries);
}

/**
 * A static dropbear IPv4 address, checked against the address the unlock dials. Checkable only
 * for an ssh target given as an IPv4 address and dialed directly (no endpoints): for a Robot
 * target the address comes from Robot at run time (a create-time check belongs to the resource
 * that writes the initramfs network config), and endpoints dial a forward, not the host. The
 * gateway's subnet is checked where the address is parsed (checkGateway).
 */
function checkDropbearAddress(dropbear: z.output<typeof DropbearSchema>, target: z.output<typeof TargetSchema>): RuleIssue[] {
  const ipv4 = dropbear.network.mode === "static" ? dropbear.network.ipv4 : undefined;
  const dialed = target.ssh?.address;
  if (ipv4 === undefined || dialed === undefined || !isIpAddress(dialed, "ipv4")) return [];
  const own = parseInterfaceAddress(ipv4.address, "ipv4");
  if (!own.ok || own.value.address === dialed) return [];
  return [
    {
      path: ["dropbear", "network", "ipv4", "address"],
      message:
        `expected the address the host is reached at (target.ssh.address ${dialed}), found ${ipv4.address}: the unlock dials ${dialed}:${dropbear.port}, where the initramfs would not answer. ` +
        `Set address: ${dialed}/${own.value.prefix}, or change target.ssh.address if the host moved`,
    },
  ];
}

function checkLuksMemory(luks: z.output<typeof LuksSchema>, memoryMiB: number): RuleIssue[] {
  if (luks.pbkdf.type === "pbkdf2" || luks.pbkdf.memoryKiB === undefined) return [];
  const reason = checkArgon2Memory(luks.pbkdf.memoryKiB, memoryMiB);
  return reason ? [{ path: ["luks", "pbkdf", "memoryKiB"], message: reason }] : [];
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

/** Something validation could not check, said aloud: the program prints each with pulumi.log.warn. */
export interface ValidationWarning {
  readonly path: string;
  readonly message: string;
}

export type ValidationResult = { ok: true; config: StackConfig; warnings: ValidationWarning[] } | { ok: false; errors: ValidationError[] };

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
  const warnings = stack.hosts.flatMap((host, i) => hostWarnings(host).map((w) => ({ path: formatPath(["hosts", i, ...w.path]), message: w.message })));
  return { ok: true, config: { robot, sshPrivateKey: new Secret(stack.sshPrivateKey as string), hosts }, warnings };
}

/**
 * What the config alone cannot check, said at preview instead of skipped in silence. A check at
 * create time would need the probed facts: the disks' sizes from lsblk and the RAM from
 * /proc/meminfo in the rescue, which InstallImage's probe reads before it writes anything.
 */
function hostWarnings(host: ParsedHost): RuleIssue[] {
  const warnings: RuleIssue[] = [];
  const unsized = host.drives.map((d, i) => (d.sizeBytes === undefined ? `drives[${i}]` : null)).filter((d): d is string => d !== null);
  if (unsized.length > 0) {
    warnings.push({
      path: ["drives"],
      message:
        `sizes not checked: ${unsized.join(", ")} ${unsized.length === 1 ? "has" : "have"} no sizeBytes, so the partitions and volumes are not checked against the disks' capacity here; ` +
        "a layout that does not fit fails only when installimage runs. Add sizeBytes to every drive (`lsblk -b -d -o NAME,SIZE,SERIAL` in the rescue prints it)",
    });
  }
  if (host.mirror && host.mirror.drive.sizeBytes === undefined) {
    warnings.push({ path: ["mirror", "drive", "sizeBytes"], message: "not set, so the mirror disk is not checked to hold the system's data; add it (`lsblk -b -d -o NAME,SIZE` in the rescue)" });
  }
  const pbkdf = host.luks.pbkdf;
  if (pbkdf.type !== "pbkdf2" && pbkdf.memoryKiB !== undefined && host.memoryMiB === undefined) {
    warnings.push({
      path: ["luks", "pbkdf", "memoryKiB"],
      message:
        `${pbkdf.memoryKiB} KiB is not checked against the host's RAM, which the config does not give: the rescue and the initramfs unlock run in RAM, and a cost above half of it may not unlock. ` +
        "Add memoryMiB to the host (`free -m` in the rescue), or use iterTimeMs to let cryptsetup size it on the host",
    });
  }
  return warnings;
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

/**
 * What each setting is and what to do about it, for the structural errors zod finds (missing,
 * wrong type, out of range, empty list). Keyed by the path without list indexes. The rules in
 * providers/rules word everything else; test/unit/config-messages.test.ts checks every setting has
 * an entry here.
 */
interface FieldHelp {
  /** A noun phrase with an example: "the disk's device path, like /dev/nvme0n1". */
  readonly what: string;
  /** What to do: one imperative sentence. */
  readonly todo: string;
  /** For lists: what one entry is called ("drive"), for "expected at least 1 drive". */
  readonly entry?: string;
}

const LSBLK = "boot the rescue and run `lsblk -d -o NAME,SIZE,SERIAL,WWN` to see the disks";

function driveHelp(prefix: string): Record<string, FieldHelp> {
  return {
    [prefix]: { what: "a disk as { path, serial or wwn, sizeBytes }", todo: `describe the disk; ${LSBLK}` },
    [`${prefix}.path`]: { what: "the whole disk's device path as a string, like /dev/nvme0n1 or /dev/disk/by-id/nvme-…", todo: `add path: /dev/…; ${LSBLK}` },
    [`${prefix}.serial`]: { what: "the disk's serial as a string, like S69ENX0T412345", todo: `copy it from the SERIAL column; ${LSBLK}` },
    [`${prefix}.wwn`]: { what: "the disk's WWN as a string, like 0x5002538e40a1b2c3", todo: `copy it from the WWN column; ${LSBLK}` },
    [`${prefix}.sizeBytes`]: { what: "the disk's size in bytes as a whole number, like 512110190592", todo: "copy it from `lsblk -b -d -o NAME,SIZE` in the rescue" },
  };
}

const ADDRESS_HELP = (family: string, example: string, gateway: string): Record<string, FieldHelp> => ({
  [`hosts.*.dropbear.network.${family}`]: { what: `{ address, gateway } for ${family}, like { address: ${example}, gateway: ${gateway} }`, todo: "give both the address with its prefix and the gateway" },
  [`hosts.*.dropbear.network.${family}.address`]: { what: `the host's ${family} address with prefix as a string, like ${example}`, todo: "copy it from Robot (IPs tab) or `ip addr` on the host" },
  [`hosts.*.dropbear.network.${family}.gateway`]: { what: `the ${family} gateway as a string, like ${gateway}`, todo: "copy it from Robot or `ip route` on the host" },
});

const FIELD_HELP: Record<string, FieldHelp> = {
  robotUrl: { what: "the Robot webservice URL as a string, like https://robot-ws.your-server.de", todo: "remove it for the default, or set it with `pulumi config set robotUrl <url>`" },
  robotUser: { what: "the Robot webservice user as a string, like #ws+XXXXXXXX", todo: "set it with `pulumi config set robotUser '#ws+XXXXXXXX'`" },
  robotPassword: { what: "the Robot webservice password as a secret string", todo: "set it with `pulumi config set --secret robotPassword` (it reads the value from stdin)" },
  sshPrivateKey: { what: "the operator's SSH private key as a secret string", todo: "set it with `pulumi config set --secret sshPrivateKey < key-file` (stdin keeps it out of argv and shell history)" },
  luksPassphrases: { what: "an object of one secret passphrase per host name", todo: "set each with `pulumi config set --secret --path 'luksPassphrases.<host name>'` (it reads the value from stdin)" },
  "luksPassphrases.*": { what: "the host's LUKS passphrase as a secret string", todo: "set it with `pulumi config set --secret --path 'luksPassphrases.<host name>'` (it reads the value from stdin)" },
  hosts: { what: "a list of hosts", entry: "host", todo: "add one entry per server under hosts (Pulumi.prod.yaml shows a complete one)" },
  "hosts.*": { what: "a host as { name, target, drives, partitions, dropbear, … }", todo: "write the host as an object (Pulumi.prod.yaml shows a complete one)" },
  "hosts.*.name": { what: "a DNS label as a string, like fsn1-app1", todo: "name the host; the name keys its passphrase and resources" },
  "hosts.*.hostname": { what: "the installed system's host name as a string, like app1.example.com", todo: "set it, or remove it to use name" },
  "hosts.*.target": { what: "{ robot: { serverNumber } } or { ssh: { address } }", todo: "say how the host is reached: a Robot server number, or the address of a host already in a rescue system" },
  "hosts.*.target.robot": { what: "{ serverNumber }, like { serverNumber: 2345678 }", todo: "give the server number shown in Robot" },
  "hosts.*.target.robot.serverNumber": { what: "the server number shown in Robot (a positive integer)", todo: "copy it from Robot → Servers" },
  "hosts.*.target.ssh": { what: "{ address, port, user, hostKeyFingerprints }, like { address: 198.51.100.23 }", todo: "give at least the address of the rescue system" },
  "hosts.*.target.ssh.address": { what: "an IP address or host name as a string, like 198.51.100.23", todo: "give the address the rescue system answers SSH on" },
  "hosts.*.target.ssh.port": { what: "a TCP port number 1..65535", todo: "give the rescue's SSH port (usually 22)" },
  "hosts.*.target.ssh.user": { what: "a Unix user name as a string, like root", todo: "give the rescue's login user (usually root)" },
  "hosts.*.target.ssh.hostKeyFingerprints": { what: "a list of SHA256 host key fingerprints", entry: "fingerprint", todo: "list the rescue's keys as `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` prints them there" },
  "hosts.*.target.ssh.hostKeyFingerprints.*": { what: "a fingerprint as a string, like SHA256:B1mzx0YHukHWZ5xWPK4qKagCMztQzMaUEL+HBmHTstg", todo: "copy it from `ssh-keygen -lf` in the rescue" },
  "hosts.*.endpoints": { what: "{ address, sshPort, dropbearPort }", todo: "give the address and both forwarded ports, or remove endpoints to dial the host itself" },
  "hosts.*.endpoints.address": { what: "an IP address or host name as a string, like 127.0.0.1", todo: "give the address the forwards listen on" },
  "hosts.*.endpoints.sshPort": { what: "a TCP port number 1..65535", todo: "give the port forwarded to the host's sshd" },
  "hosts.*.endpoints.dropbearPort": { what: "a TCP port number 1..65535", todo: "give the port forwarded to dropbear in the initramfs" },
  "hosts.*.image": { what: "an installimage image name as a string, like Debian-bookworm-latest-amd64-base", todo: "name an image from the rescue's /root/.oldroot/nfs/images, or remove it for the default" },
  "hosts.*.drives": { what: "a list of the host's disks", entry: "drive", todo: `list every disk of the array as { path, serial }; ${LSBLK}` },
  ...driveHelp("hosts.*.drives.*"),
  "hosts.*.raid": { what: "{ level }, like { level: 1 }", todo: "give the RAID level, or remove raid for a single disk" },
  "hosts.*.raid.level": { what: "a RAID level: 0, 1, 5, 6 or 10", todo: "choose one the number of drives allows (1 for two disks)" },
  "hosts.*.partitions": { what: "a list of partitions", entry: "partition", todo: "list at least { mount: /boot, fs: ext4, size: 1G } and { mount: lvm, vg: vg0, size: all, crypt: true }" },
  "hosts.*.partitions.*": { what: "a partition as { mount, fs, size } or { mount: lvm, vg, size, crypt }", todo: "write the partition as an object" },
  "hosts.*.partitions.*.mount": { what: `"lvm", "swap" or a mount point as a string, like /boot`, todo: "say where the partition is mounted" },
  "hosts.*.partitions.*.fs": { what: `a filesystem (${PARTITION_FILESYSTEMS.join(", ")})`, todo: "choose the filesystem, or remove fs on an lvm partition" },
  "hosts.*.partitions.*.vg": { what: "a volume group name as a string, like vg0", todo: "name the volume group this lvm partition creates" },
  "hosts.*.partitions.*.size": { what: `a size as a string, like 1G, 512M or "all" (the rest, last partition only)`, todo: "give the size with its unit" },
  "hosts.*.partitions.*.crypt": { what: "true or false", todo: "set crypt: true to put the partition inside LUKS" },
  "hosts.*.volumes": { what: "a list of logical volumes", entry: "volume", todo: "list the LVs, e.g. { vg: vg0, name: root, mount: /, fs: ext4, size: all }" },
  "hosts.*.volumes.*": { what: "a logical volume as { vg, name, mount, fs, size }", todo: "write the volume as an object" },
  "hosts.*.volumes.*.vg": { what: "the volume group name as a string, like vg0", todo: "name a volume group an lvm partition creates" },
  "hosts.*.volumes.*.name": { what: "a logical volume name as a string, like root", todo: "name the volume" },
  "hosts.*.volumes.*.mount": { what: `"swap" or a mount point as a string, like /var`, todo: "say where the volume is mounted" },
  "hosts.*.volumes.*.fs": { what: `a filesystem (${VOLUME_FILESYSTEMS.join(", ")})`, todo: "choose the volume's filesystem" },
  "hosts.*.volumes.*.size": { what: `a size as a string, like 16G or "all" (the rest of the VG, last volume only)`, todo: "give the size with its unit" },
  "hosts.*.luks": { what: "{ cipher, keySize, pbkdf }", todo: "set the LUKS settings, or remove luks for the defaults" },
  "hosts.*.luks.cipher": { what: "a cryptsetup cipher as a string, like aes-xts-plain64", todo: "remove it for aes-xts-plain64" },
  "hosts.*.luks.keySize": { what: "the key size in bits as a number, like 512", todo: "remove it for 512 (AES-256 in XTS mode)" },
  "hosts.*.luks.pbkdf": { what: "{ type, memoryKiB, iterations, parallelism } or { type, iterTimeMs }", todo: "set the key derivation, or remove pbkdf to let cryptsetup benchmark it" },
  "hosts.*.luks.pbkdf.type": { what: `a PBKDF (${PBKDF_TYPES.join(", ")})`, todo: "remove it for argon2id" },
  "hosts.*.luks.pbkdf.memoryKiB": { what: "the Argon2 memory cost in KiB as a whole number, like 1048576 (1 GiB)", todo: "give it in KiB, or use iterTimeMs to let cryptsetup choose" },
  "hosts.*.luks.pbkdf.iterations": { what: "the time cost as a whole number, like 4", todo: "give the number of passes, or use iterTimeMs instead" },
  "hosts.*.luks.pbkdf.parallelism": { what: "the number of threads as a whole number, like 4", todo: "give the thread count (at most the host's cores)" },
  "hosts.*.luks.pbkdf.iterTimeMs": { what: "the unlock time cryptsetup benchmarks for, in milliseconds, like 2000", todo: "give at least 100 ms (2000 is cryptsetup's default)" },
  "hosts.*.dropbear": { what: "{ port, authorizedKeys, network }", todo: "configure the unlock: at least authorizedKeys with the operators' public keys" },
  "hosts.*.dropbear.port": { what: "a TCP port number 1..65535", todo: "give dropbear's port (2222 by default), different from sshd's" },
  "hosts.*.dropbear.authorizedKeys": { what: "a list of OpenSSH public key lines", entry: "key", todo: "add the public key of everyone who unlocks the host, like \"ssh-ed25519 AAAA… ops\"" },
  "hosts.*.dropbear.authorizedKeys.*": { what: "an OpenSSH public key line as a string, like \"ssh-ed25519 AAAA… ops\"", todo: "paste the line of the operator's .pub file" },
  "hosts.*.dropbear.network": { what: "{ mode: dhcp } or { mode: static, ipv4, ipv6, interface }", todo: "choose how the initramfs gets its address" },
  "hosts.*.dropbear.network.mode": { what: `"dhcp" or "static"`, todo: "use static with the host's addresses where there is no DHCP (Hetzner dedicated servers)" },
  "hosts.*.dropbear.network.interface": { what: "a kernel interface name as a string, like eno1", todo: "give the NIC's name in the initramfs, or remove it to use the first with a link" },
  ...ADDRESS_HELP("ipv4", "203.0.113.7/26", "203.0.113.1"),
  ...ADDRESS_HELP("ipv6", "2001:db8::2/64", "fe80::1"),
  "hosts.*.sshd": { what: "{ port }", todo: "give sshd's port, or remove sshd for 22" },
  "hosts.*.sshd.port": { what: "a TCP port number 1..65535", todo: "give the installed system's SSH port (22 by default)" },
  "hosts.*.mirror": { what: "{ drive, schedule, logRotations, mountPoint }", todo: "describe the mirror disk, or remove mirror" },
  ...driveHelp("hosts.*.mirror.drive"),
  "hosts.*.mirror.schedule": { what: `a cron schedule as a string, like "*/15 * * * *"`, todo: "give five cron fields" },
  "hosts.*.mirror.logRotations": { what: "the number of rotated logs kept, a whole number 1..1000, like 52", todo: "give how many logs to keep" },
  "hosts.*.mirror.mountPoint": { what: "a mount point as a string, like /mirror", todo: "give where the mirror is mounted while it syncs" },
  "hosts.*.memoryMiB": { what: "the host's RAM in MiB as a whole number of at least 256, like 65536", todo: "copy it from `free -m` in the rescue, or remove it" },
  "hosts.*.allowWipe": { what: "true or false", todo: "set true only for hosts whose disks may be wiped (every disk pinned by serial or WWN)" },
  "hosts.*.protect": { what: "true or false", todo: "keep true for production hosts" },
};

/** The help key of a path: list indexes and record keys become "*". */
function helpKey(path: readonly PropertyKey[]): string {
  return path.map((p, i) => (typeof p === "number" || (i > 0 && path[i - 1] === "luksPassphrases") ? "*" : String(p))).join(".");
}

export function fieldHelp(path: readonly PropertyKey[]): FieldHelp | undefined {
  return FIELD_HELP[helpKey(path)];
}

/** Every help key, for the test that each setting has one. */
export const FIELD_HELP_KEYS: readonly string[] = Object.keys(FIELD_HELP);

function toValidationErrors(issue: ZodIssue): ValidationError[] {
  const path = toPath(issue.path);
  const at = (message: string, extra: PathSegment[] = []) => ({ path: formatPath([...path, ...extra]), message });
  const input = (issue as { input?: unknown }).input;
  const help = fieldHelp(issue.path);
  const todo = help ? `; ${help.todo}` : "";
  // The Robot server number has its own rule; say it the same way whatever zod tripped on.
  if (helpKey(issue.path) === "hosts.*.target.robot.serverNumber" && input !== undefined && (issue.code === "invalid_type" || issue.code === "too_small")) {
    return [at(`${checkServerNumber(input) ?? "expected the server number shown in Robot (a positive integer)"}${todo}`)];
  }
  switch (issue.code) {
    case "invalid_type": {
      const expected = help?.what ?? TYPE_NAMES[issue.expected] ?? issue.expected;
      if (input === undefined) return [at(`is required: expected ${expected}, found nothing${todo}`)];
      return [at(`expected ${expected}, found ${describeFound(input, issue.path)}${todo}`)];
    }
    case "unrecognized_keys":
      return issue.keys.map((key) => at(unknownKeyMessage(key, issue.path), [key]));
    case "invalid_value": {
      const options = issue.values.map((v) => (typeof v === "string" ? `"${v}"` : String(v))).join(", ");
      return [at(`expected one of ${options}, found ${describeFound(input, issue.path)}${todo}`)];
    }
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      const relation = issue.code === "too_small" ? (inclusive ? "at least" : "more than") : inclusive ? "at most" : "less than";
      if (issue.origin === "array") {
        const noun = help?.entry ?? "entr";
        const plural = help?.entry ? (bound === 1 ? noun : `${noun}s`) : bound === 1 ? "entry" : "entries";
        const found = Array.isArray(input) ? (input.length === 0 ? "an empty list" : `${input.length}`) : "0";
        return [at(`expected ${relation} ${String(bound)} ${plural}, found ${found}${todo}`)];
      }
      const limit = `${relation} ${String(bound)}`;
      return [at(`expected ${help ? `${help.what} (${limit})` : limit}, found ${describeFound(input, issue.path)}${todo}`)];
    }
    case "custom":
      return [at(issue.message)];
    default:
      return [at(`${isSecretPath(issue.path) ? `is not valid (${issue.code})` : issue.message}${todo}`)];
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
