// The config's building blocks: constants, one zod schema per section (drive, target, luks,
// dropbear…) with its field-level checks, and the bridge from the pure rules' issues to zod.
// Apart from the cross-field rules (rules.ts) so that those can parse one section at a time
// without importing the whole-stack schema (which imports them: no cycle).

import { z } from "zod";
import { INSTALLIMAGE_LUKS_FORMAT, REASSEMBLE_MODES } from "../../providers/install-image/types";
import { parsePublicKey } from "../../providers/plumbing/keys";
import {
  checkCipher,
  checkCronSchedule,
  checkDiskPath,
  checkEndpointAddress,
  checkGateway,
  checkInterfaceName,
  checkPbkdf,
  checkPort,
  checkSerial,
  checkSha256Fingerprint,
  checkWwn,
  IpFamily,
  parseImageName,
  parseInterfaceAddress,
  PARTITION_FILESYSTEMS,
  PBKDF_TYPES,
  quote,
  RAID_LEVELS,
  RuleIssue,
  VOLUME_FILESYSTEMS,
  checkMountPoint,
} from "../../providers/rules";
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

export const text = (check: Check<string>) => checked(z.string(), check);
const port = checked(z.number(), checkPort);

export function checkImage(name: string): string | undefined {
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

export const DriveSchema = z
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

export const RobotTargetSchema = z
  .object({
    serverNumber: z.number().int().positive(),
    /**
     * Trust the key a rescue presents on its first answer when Robot reports none (README "First contact").
     * Off by default: such a boot is refused before the reset; on, every preview warns and the boot records it.
     */
    allowFirstContactHostKey: z.boolean().default(false),
  })
  .strict();

export const SshTargetSchema = z
  .object({
    address: text(checkEndpointAddress),
    port: port.default(22),
    user: text((u) => (/^[a-z_][a-z0-9_-]{0,31}$/.test(u) ? undefined : `expected a Unix user name like root, found "${u}"`)).default("root"),
    /** Pinned host keys of the rescue system; without them the first connection records the key (TOFU) and says so. */
    hostKeyFingerprints: z.array(text(checkSha256Fingerprint)).optional(),
  })
  .strict();

export const TargetSchema = z
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
export const EndpointsSchema = z.object({ address: text(checkEndpointAddress), sshPort: port, dropbearPort: port }).strict();

export const RaidSchema = z
  .object({
    level: z.literal([...RAID_LEVELS]),
    /**
     * What `up` does about an array that fell apart or runs degraded (InstallImage's `reassemble`).
     * The stack's default is "scan": a pinned drive that comes back gets its members re-added, so a
     * host that booted degraded heals on the next `up`; "never" only reports it.
     */
    reassemble: z.enum(REASSEMBLE_MODES).default("scan"),
  })
  .strict();

export const PartitionSchema = z
  .object({
    mount: z.string(),
    fs: z.enum(PARTITION_FILESYSTEMS).optional(),
    vg: z.string().optional(),
    size: z.string(),
    crypt: z.boolean().default(false),
  })
  .strict();

export const VolumeSchema = z
  .object({ vg: z.string(), name: z.string(), mount: z.string(), fs: z.enum(VOLUME_FILESYSTEMS), size: z.string() })
  .strict();

export const PbkdfSchema = z
  .object({
    type: z.enum(PBKDF_TYPES).default("argon2id"),
    memoryKiB: z.number().int().optional(),
    iterations: z.number().int().optional(),
    parallelism: z.number().int().optional(),
    iterTimeMs: z.number().int().min(100).optional(),
  })
  .strict()
  .superRefine((pbkdf, ctx) => addRuleIssues(ctx, checkPbkdf(pbkdf)));

export const LuksSchema = z
  .object({
    /** The root's container is installimage's: its format is the default and the only one it makes (rules.ts). */
    cipher: z.string().default(INSTALLIMAGE_LUKS_FORMAT.cipher),
    keySize: z.number().int().default(INSTALLIMAGE_LUKS_FORMAT.keySize),
    /** Default: cryptsetup's own (argon2id, benchmarked to 2 s). */
    pbkdf: PbkdfSchema.prefault({ iterTimeMs: 2000 }),
  })
  .strict()
  .superRefine((luks, ctx) => addRuleIssues(ctx, checkCipher(luks.cipher, luks.keySize)));

/** A NIC's own (unicast) MAC, colon form. */
function checkMac(mac: string): string | undefined {
  if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) return `expected a MAC address like 90:1b:0e:aa:bb:cc (\`ip link\` in the rescue shows it), found ${quote(mac)}`;
  if ((parseInt(mac.slice(0, 2), 16) & 1) === 1) return `expected a unicast MAC address (a NIC's own), found the multicast address ${mac}`;
  return undefined;
}

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

export const NetworkSchema = z
  .object({
    mode: z.enum(["dhcp", "static"]),
    /** MAC of the NIC the host is reached through: DropbearInitramfs picks the initramfs interface by
     *  it, since interface names differ between the initramfs and the installed system. */
    mac: text(checkMac),
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

export const DropbearSchema = z
  .object({
    /** Port dropbear listens on in the initramfs; must differ from sshd's so each port keeps one pinned host key. */
    port: port.default(2222),
    authorizedKeys: z.array(text(checkAuthorizedKey)).min(1),
    network: NetworkSchema,
  })
  .strict();

export const SshdSchema = z.object({ port: port.default(22) }).strict();

export const MirrorSchema = z
  .object({
    /** The second disk; it must not be one of the host's system drives. */
    drive: DriveSchema,
    schedule: text(checkCronSchedule).default("*/15 * * * *"),
    /** Rotated mirror logs kept (CAcert kept 52). */
    logRotations: z.number().int().min(1).max(1000).default(52),
    mountPoint: text(checkMirrorMount).default("/mirror"),
  })
  .strict();

export const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);
export const whenObject = { when: (payload: { value: unknown }) => isRecord(payload.value) };

export function addRuleIssues(ctx: z.RefinementCtx, issues: readonly RuleIssue[]): void {
  for (const issue of issues) ctx.addIssue({ code: "custom", path: [...issue.path], message: issue.message });
}
