// Turning zod's issues into the messages users read: every error names its path, what was expected
// and what was found (never a secret's value), with a fix and "did you mean" for unknown keys.
// Apart from the schema because wording and help texts change for other reasons than structure.

import { z } from "zod";
import {
  formatPath,
  PARTITION_FILESYSTEMS,
  PathSegment,
  PBKDF_TYPES,
  quote,
  VOLUME_FILESYSTEMS,
  checkServerNumber,
} from "../../providers/rules";
import { SECRET_KEYS } from "./fields";
import { StackConfigSchema } from "./schema";

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

/** One block of text for a `pulumi.RunError`: a headline, then one `path: message` line per error. */
export function formatValidationErrors(errors: readonly ValidationError[], stack?: string): string {
  const where = stack === undefined ? "the stack config" : `the config of stack "${stack}"`;
  const headline = `${errors.length} problem${errors.length === 1 ? "" : "s"} in ${where}:`;
  return [headline, ...errors.map((e) => `  - ${e.path}: ${e.message}`)].join("\n");
}

export function dedupe(errors: ValidationError[]): ValidationError[] {
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
  "hosts.*.target.robot.allowFirstContactHostKey": { what: "true or false", todo: "set true only if Robot reports no rescue host key for this server (README \"First contact\"), else remove it" },
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
  "hosts.*.raid.reassemble": { what: 'one of "scan" (the default: re-add members of pinned drives that are back), "force" or "never" (report only)', todo: "remove it for the default, or choose one of the three" },
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
  "hosts.*.dropbear.network": { what: "{ mode: dhcp, mac } or { mode: static, mac, ipv4, ipv6, interface }", todo: "choose how the initramfs gets its address" },
  "hosts.*.dropbear.network.mode": { what: `"dhcp" or "static"`, todo: "use static with the host's addresses where there is no DHCP (Hetzner dedicated servers)" },
  "hosts.*.dropbear.network.mac": { what: "the MAC address of the NIC the host is reached through, like 90:1b:0e:aa:bb:cc", todo: "boot the rescue and copy it from `ip link`" },
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

export function toValidationErrors(issue: ZodIssue): ValidationError[] {
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
