// The whole-stack schema: a host and the stack, each with its cross-field rules attached. The one
// place that says which keys a stack config has (messages.ts walks it for "did you mean" hints).

import { z } from "zod";
import {
  checkDnsLabel,
  checkHostname,
  checkRobotUrl,
} from "../../providers/rules";
import { DEFAULT_IMAGE, DEFAULT_ROBOT_URL, DriveSchema, DropbearSchema, EndpointsSchema, LuksSchema, MirrorSchema, PartitionSchema, RaidSchema, SshdSchema, TargetSchema, VolumeSchema, addRuleIssues, checkImage, text, whenObject } from "./fields";
import { hostRules, stackRules } from "./rules";
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
