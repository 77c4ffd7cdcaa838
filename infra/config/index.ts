// The stack config: its one pure entry point `validateStackConfig(raw)`, the validated types and
// the secret-free host summary. No Pulumi import here: `infra/index.ts` reads `pulumi.Config` and
// hands the plain object over, so tests (and `pulumi preview` in CI) validate with no engine and
// no connection. The schema (fields.ts, schema.ts), the cross-field rules (rules.ts) and the
// messages (messages.ts) live beside it.

import { z } from "zod";
import {
  arrayCapacityMiB,
  describeLayout,
  describeMiB,
  formatPath,
  PathSegment,
  RAID_LEVELS,
  RuleIssue,
} from "../../providers/rules";
import { Secret } from "../../providers/plumbing/secret";
import { isRecord, PROJECT } from "./fields";
import { HostSchema, StackConfigSchema } from "./schema";
import { dedupe, toValidationErrors, ValidationError, ValidationWarning } from "./messages";

export { DEFAULT_IMAGE, DEFAULT_ROBOT_URL, PROJECT, SECRET_KEYS } from "./fields";
export { HostSchema, StackConfigSchema } from "./schema";
export { FIELD_HELP_KEYS, fieldHelp, formatValidationErrors } from "./messages";
export type { ValidationError, ValidationWarning } from "./messages";

// ---------------------------------------------------------------------------------------------
// The validated types and the entry point.

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
