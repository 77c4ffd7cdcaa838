// Cross-field rules of the stack config: what no single section can check alone (drive identity,
// RAID members, ports, passphrases per host, Robot access). Apart from the schema so each rule can
// be read and changed on its own; they return RuleIssues, which schema.ts hands to zod.

import { z } from "zod";
import {
  arrayCapacityMiB,
  bytesToMiB,
  checkDnsLabel,
  checkLayout,
  checkWipePins,
  describeMiB,
  minDrivesFor,
  normalizeWwn,
  parseInterfaceAddress,
  passphraseWeaknesses,
  PASSPHRASE_RULE,
  PathSegment,
  quote,
  RAID_LEVELS,
  RuleIssue,
  checkSshPrivateKey,
  checkArgon2Memory,
  identityInDiskPath,
  isIpAddress,
} from "../../providers/rules";
import { DriveSchema, DropbearSchema, EndpointsSchema, LuksSchema, MirrorSchema, PartitionSchema, RaidSchema, SshdSchema, TargetSchema, VolumeSchema, isRecord } from "./fields";
import { INSTALLIMAGE_LUKS_FORMAT } from "../../providers/install-image/types";
// ---------------------------------------------------------------------------------------------
// Cross-field rules. They run even when other parts of the config are malformed (zod's `when`),
// so one typo does not hide the other mistakes; each rule re-reads only the sections it needs and
// skips itself when one of those is malformed (that section already has its own error).

type Drive = z.output<typeof DriveSchema>;

function section<T extends z.ZodType>(schema: T, value: unknown): z.output<T> | undefined {
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

export function hostRules(host: Record<string, unknown>): RuleIssue[] {
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
  if (luks && partitions?.some((p) => p.crypt)) issues.push(...checkInstallimageLuksFormat(luks));
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

/**
 * installimage formats the crypt partitions itself, in one fixed format, and the stack adopts that
 * container as the root's LuksVolume: other values could only be met by formatting over the root.
 */
function checkInstallimageLuksFormat(luks: { cipher: string; keySize: number }): RuleIssue[] {
  const { cipher, keySize } = INSTALLIMAGE_LUKS_FORMAT;
  const fix = `installimage formats the root's container with ${cipher} and a ${keySize}-bit key (AES-128 in XTS mode) and cannot be told otherwise; leave luks.cipher and luks.keySize out, or set them to these values (re-encrypting the root to another key size is not supported yet)`;
  const issues: RuleIssue[] = [];
  if (luks.cipher !== cipher) issues.push({ path: ["luks", "cipher"], message: `expected ${cipher}, found ${luks.cipher}; ${fix}` });
  if (luks.keySize !== keySize) issues.push({ path: ["luks", "keySize"], message: `expected ${keySize}, found ${luks.keySize}; ${fix}` });
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

export function stackRules(stack: Record<string, unknown>): RuleIssue[] {
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
