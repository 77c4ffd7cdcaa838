// Who answered: after login to a rescue, the host's identity is cross-checked against what the stack
// pins, beyond its host key. A host key verified against Robot's report proves the rescue Robot
// armed; a key trusted on first contact proves nothing, so these checks are what is left to catch
// another machine answering on the address (a wrong route, a recycled IP, a spoofed answer):
// - the drive serials or WWNs pinned in `driveSerials` must all be present;
// - the address Robot reports as the server's main IPv4 must be configured on the host, when that is
//   the address dialled (a `connect.host` override, as in the lab's port forward, dials something
//   else, and the check is skipped).
// Pure: the facts come from one command run by awaitRescue (`identityCommand`).
import { sh, ShellCommand } from "../plumbing/shell";

export const INSTALLIMAGE_PATH = "/root/.oldroot/nfs/install/installimage";

/** One round trip: hostname, the installimage marker, drive serials/WWNs, global addresses. A
 *  function, not a module-level value: the closure serializer copies a ShellCommand without its class. */
export function identityCommand(): ShellCommand {
  return sh`hostname; if test -x ${INSTALLIMAGE_PATH}; then echo installimage; else echo none; fi; echo --drives; lsblk -dn -o SERIAL,WWN 2>/dev/null; echo --addresses; ip -o addr show scope global 2>/dev/null`;
}

export interface HostIdentity {
  readonly hostname: string;
  readonly installimage: boolean;
  /** Serials and WWNs of the whole disks, as lsblk prints them. */
  readonly drives: readonly string[];
  /** Global addresses without prefix length. */
  readonly addresses: readonly string[];
}

export interface IdentityPins {
  /** Serials or WWNs the host must have (the stack's `driveSerials`); empty: not checked. */
  readonly driveSerials: readonly string[];
  /** The server's main IPv4 as Robot reports it, when it is the address dialled; null: not checked. */
  readonly address: string | null;
}

export function parseIdentity(stdout: string): HostIdentity {
  const lines = stdout.split("\n").map((l) => l.trim());
  const drivesAt = lines.indexOf("--drives");
  const addressesAt = lines.indexOf("--addresses");
  const section = (from: number, to: number) => (from === -1 ? [] : lines.slice(from + 1, to === -1 ? undefined : to).filter((l) => l !== ""));
  return {
    hostname: lines[0] ?? "",
    installimage: lines[1] === "installimage",
    drives: section(drivesAt, addressesAt).flatMap((l) => l.split(/\s+/)).filter((w) => w !== ""),
    addresses: section(addressesAt, -1).flatMap((l) => {
      const match = /\binet6?\s+([^\s/]+)/.exec(l);
      return match ? [match[1]] : [];
    }),
  };
}

/** What does not match the pins, as sentences naming the input; empty when the host is ours. */
export function identityProblems(identity: HostIdentity, pins: IdentityPins): string[] {
  const problems: string[] = [];
  if (identity.hostname !== "rescue" || !identity.installimage) {
    problems.push(`it is not a rescue system: hostname ${JSON.stringify(identity.hostname)} (expected "rescue"), ${identity.installimage ? "installimage present" : `no ${INSTALLIMAGE_PATH}`}`);
  }
  const normalise = (s: string) => s.toLowerCase().replace(/^0x/, "");
  const present = new Set(identity.drives.map(normalise));
  const missing = pins.driveSerials.filter((serial) => !present.has(normalise(serial)));
  if (missing.length > 0) {
    problems.push(`driveSerials ${JSON.stringify(missing)} not found among its drives (${identity.drives.length > 0 ? identity.drives.join(", ") : "none reported"})`);
  }
  if (pins.address !== null && !identity.addresses.includes(pins.address)) {
    problems.push(`the address Robot reports for the server, ${pins.address}, is not configured on it (found ${identity.addresses.join(", ") || "none"})`);
  }
  return problems;
}
