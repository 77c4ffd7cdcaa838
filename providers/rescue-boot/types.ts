// RescueBoot's types: the program's args, the inputs the provider receives and their resolved form,
// the outputs, what a probe observes, and the step union.
import type * as pulumi from "@pulumi/pulumi";
import type { ConnectionProfile, HostState } from "../kernel/host-access";
import type { HostContext } from "../kernel/provider";
import type { OtherBootType, RobotClient } from "../plumbing/robot";
import type { Secret } from "../plumbing/secret";
import type { EndpointObservation, ObservedHostKey } from "../plumbing/ssh";
import { IdentityPins, INSTALLIMAGE_PATH } from "./identity";


/** Where to dial instead of the server's main IPv4 on port 22 (the lab: 127.0.0.1 and a forwarded port). */
export interface RescueEndpoint {
  /** null or absent: the server's main IPv4 from Robot. */
  readonly host?: string | null;
  readonly port?: number;
}

export interface RescueTimeouts {
  /** How long to wait from the reset until the rescue's sshd answers. Default 10 min (real boots take up to ~5.5). */
  readonly sshMs?: number;
}

export interface RescueBootArgs {
  /** The server number shown in Robot. Changing it REPLACES the resource (another server). */
  readonly serverNumber: pulumi.Input<number>;
  /** OpenSSH public key lines allowed into the rescue as root (at least one). Keys missing in Robot are
   *  uploaded via /key; Robot matches them by MD5 fingerprint. A change takes effect on the next boot. */
  readonly authorizedKeys: pulumi.Input<pulumi.Input<string>[]>;
  /** Bump to ask for a fresh rescue boot (an in-place update that resets the server once). Default 0. */
  readonly generation?: pulumi.Input<number>;
  /** Robot reset type used to reboot into rescue: "hw" (default), "sw" or "man" (a technician; slow).
   *  Create checks it against the types Robot offers for this server. */
  readonly resetType?: pulumi.Input<string>;
  /** Dial this address/port instead of the server's main IPv4 on port 22. */
  readonly connect?: pulumi.Input<{ host?: pulumi.Input<string>; port?: pulumi.Input<number> }>;
  readonly timeouts?: pulumi.Input<{ sshMs?: pulumi.Input<number> }>;
  /** Where Robot reports no host key for the rescue (real Robot, so far always), trust the key the
   *  rescue presents on first contact, for this boot only, and say so in `hostKeySource`. Default
   *  false: such a boot fails before the reset. An explicit per-host choice: check warns about it
   *  in every preview (README "First contact"). */
  readonly allowFirstContactHostKey?: pulumi.Input<boolean>;
  /** Serials or WWNs of the server's drives (lsblk's SERIAL or WWN). Every login to the rescue checks
   *  that they are all present: after a first contact, they are what tells this server from another. */
  readonly driveSerials?: pulumi.Input<pulumi.Input<string>[]>;
}

/** Inputs as the provider receives them (resolved, plain). */
export interface RescueBootInputs {
  readonly serverNumber: number;
  readonly authorizedKeys: string[];
  readonly generation?: number;
  readonly resetType?: string;
  readonly connect?: RescueEndpoint;
  readonly timeouts?: RescueTimeouts;
  readonly allowFirstContactHostKey?: boolean;
  readonly driveSerials?: string[];
  readonly providerVersion: string;
}

/** Inputs with every default filled in. */
export interface RescueDesired {
  readonly serverNumber: number;
  readonly authorizedKeys: string[];
  readonly generation: number;
  readonly resetType: string;
  /** host null: the server's main IPv4 from Robot. */
  readonly connect: { readonly host: string | null; readonly port: number };
  readonly timeouts: { readonly sshMs: number };
  readonly allowFirstContactHostKey: boolean;
  /** Empty: not checked. */
  readonly driveSerials: string[];
  readonly providerVersion: string;
}

export type HostKeySource = "robot" | "first-contact";
/** Where the server was when last looked at (the kernel's `classifyHost`): an environment,
 *  "unknown-key" when another key answered, "unreachable" when nothing answered SSH. */
export type ObservedEnvironment = HostState["kind"];

/** What a boot established, recorded next to the request. */
export interface RescueBootFacts {
  /** Address and port the rescue answers on. */
  readonly host: string;
  readonly port: number;
  /** SHA256 fingerprints pinned for this rescue boot. */
  readonly hostKeyFingerprints: string[];
  /** `known_hosts` lines for host:port. */
  readonly knownHosts: string[];
  readonly hostKeySource: HostKeySource;
  /** When the server booted into this rescue (ISO 8601). */
  readonly bootedAt: string;
  readonly serverIpv4: string | null;
  /** The server's IPv6 /64 as Robot reports it (e.g. "2a01:4f8:111:4221::"), or null. */
  readonly serverIpv6Net: string | null;
  readonly product: string;
  readonly datacenter: string;
  /** The connection profile other resources take as their `rescue` input. */
  readonly profile: ConnectionProfile;
  /** Where the server was at the last create/update/refresh. */
  readonly environment: ObservedEnvironment;
  /** Whether a rescue boot is armed in Robot and not yet consumed (from the last create/update/refresh). */
  readonly rescueArmed: boolean;
}

/** The request as the program made it (read returns it as the inputs), and the boot's facts. Older
 *  outputs recorded the request with its defaults filled in: the same request, resolved again the same. */
export type RescueBootOutputs = RescueBootInputs & RescueBootFacts;

/** What probe saw: Robot's view of the server plus one unauthenticated look at its SSH endpoint. */
export interface RescueObserved {
  /** Probe time (ISO), so plan can judge how old a boot is without reading the clock itself. */
  readonly now: string;
  readonly server: { readonly ipv4: string | null; readonly ipv6Net: string | null; readonly product: string; readonly datacenter: string };
  /** Reset types Robot offers; null when Robot answered RESET_NOT_AVAILABLE. */
  readonly resetTypes: string[] | null;
  readonly otherActiveBoots: OtherBootType[];
  readonly rescueArmed: boolean;
  /** MD5 fingerprints of desired keys Robot does not store yet. */
  readonly missingKeys: string[];
  /** The latest rescue activation, consumed by a boot or not; null when there never was one. */
  readonly lastRescue: LastRescueFacts | null;
  /** observation null: not looked at, because no rescue of the last activation has booted that could be adopted. */
  readonly endpoint: { readonly host: string; readonly port: number; readonly observation: EndpointObservation | null };
  /** Where the server is (the kernel's `classifyHost` against the keys pinned for it). */
  readonly environment: ObservedEnvironment;
  /** The rescue answering on the endpoint, logged into and found to be this server's; null when none is. */
  readonly reached: VerifiedRescue | null;
}

/** A rescue the probe logged into with a verified key and found to be this server's (identity pins). */
export interface VerifiedRescue {
  readonly hostKey: ObservedHostKey;
  readonly source: HostKeySource;
  /** SHA256 fingerprints pinned from now on. */
  readonly pinned: string[];
}

export interface LastRescueFacts {
  readonly bootedAt: string | null;
  /** Normalised: `SHA256:…`, or `MD5:…` when Robot gives only that. */
  readonly hostKeyFingerprints: string[];
  /** MD5 fingerprints of the keys it was armed with. */
  readonly authorizedKeys: string[];
}

/** Plan input: the desired state, plus which boots already count as this run's. */
export interface RescuePlanInput extends RescueDesired {
  /** A rescue booted after this instant is the one this run asked for (update: the stored bootedAt).
   *  null on create: any booted rescue of the last activation that still runs will do. */
  readonly bootedAfter: string | null;
}

/** How awaitRescue decides which host key to believe. */
export type HostKeyPin = { readonly source: "armed" } | { readonly source: "last-rescue"; readonly fingerprints: string[] };

export type RescueStep =
  | { readonly kind: "registerKey"; readonly fingerprint: string; readonly publicKey: string }
  | { readonly kind: "disarmBoot"; readonly bootType: OtherBootType }
  | { readonly kind: "armRescue"; readonly fingerprints: string[]; readonly allowFirstContactHostKey: boolean }
  | { readonly kind: "reset"; readonly resetType: string }
  | { readonly kind: "awaitRescue"; readonly host: string; readonly port: number; readonly pin: HostKeyPin; readonly allowFirstContactHostKey: boolean; readonly identity: IdentityPins; readonly budgetMs: number }
  // Delete only:
  | { readonly kind: "disarmRescue" };

/**
 * RescueBoot's session (the kernel's `reach`): Robot, before any SSH exists. Everything a boot
 * establishes is observed by the next probe (Robot's last activation: boot time, host keys, keys
 * armed; the endpoint's key; a login), except what Robot cannot report: the host keys it gave when
 * arming (an arm is replaced by the next) and a key trusted on first contact. Those two live here,
 * for the rest of this run only.
 */
export interface RescueSession {
  readonly robot: RobotClient;
  readonly serverNumber: number;
  readonly privateKey: Secret;
  /** The host keys Robot announced when this run armed rescue; null before an arm. */
  armedHostKeys: string[] | null;
  /** The rescue awaitRescue verified in this run (its key, how it was trusted): the next probe pins exactly that key. */
  verified: VerifiedRescue | null;
}

export type RescueContext = HostContext<RescueSession>;


export const DEFAULT_RESET_TYPE = "hw";
export const DEFAULT_SSH_MS = 10 * 60_000;
export { INSTALLIMAGE_PATH };
export const MIN_SSH_MS = 1000;
export const MAX_SSH_MS = 60 * 60_000;
