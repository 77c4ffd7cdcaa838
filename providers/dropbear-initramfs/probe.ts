// DropbearInitramfs's probe: one read-only round trip in whichever environment answered.
// - initramfs: dropbear answered with the pinned key, so the host is locked; nothing is run (the
//   provider's key may be an unlock-only key, and any command would be cryptroot-unlock).
// - rescue: whether the installed root is open, then everything below read from it.
// - system: packages, our files' digests, the NIC block, and the gate's facts for the newest and
//   (when another one runs) the running kernel's image.
import type { ConnectionProfile } from "../kernel/host-access";
import { quote, sh } from "../plumbing/shell";
import type { Logger } from "../plumbing/log";
import type { SshSession } from "../plumbing/ssh";
import { GateFacts, parseGateFacts } from "./gate";
import { DEFAULT_DROPBEAR_PORT, DropbearInitramfsInputs, DropbearInitramfsOutputs, DropbearObserved } from "./types";
import { GATE_FACTS_SH, PROBE_SH } from "./scripts";
import { CONFD_PATH, CLEANUP_SCRIPT, IPV6_SCRIPT } from "./render";
import { ADAPTERS } from "../distro";

/** Every path any release's configuration may have: digests of all of them, so a change of release or of IPv6 is seen. */
export function probedPaths(): string[] {
  const paths = new Set<string>();
  for (const adapter of ADAPTERS) {
    const d = adapter.dropbear;
    [d.configFile, d.authorizedKeysFile, d.hostKeyFiles.ed25519, ...d.hostKeyFiles.others].forEach((p) => paths.add(p));
  }
  [CONFD_PATH, `/etc/initramfs-tools/scripts/${IPV6_SCRIPT}`, `/etc/initramfs-tools/scripts/${CLEANUP_SCRIPT}`].forEach((p) => paths.add(p));
  return [...paths].sort();
}

/** Which environment a session reached, by the host key it presented. */
export function environmentOf(fingerprint: string, profiles: readonly ConnectionProfile[]): DropbearObserved["environment"] {
  const profile = profiles.find((p) => p.hostKeyFingerprints.includes(fingerprint));
  if (!profile) throw new Error(`the host presented ${fingerprint}, which no connection profile pins`);
  return profile.environment;
}

/** Parses probe.sh's output. */
export function parseProbe(environment: DropbearObserved["environment"], text: string): DropbearObserved {
  const [main, running] = text.split("\n@running\n");
  let rootOpen = false;
  let osRelease: string | null = null;
  const packages: { name: string; installed: boolean }[] = [];
  const files: { path: string; sha256: string | null }[] = [];
  let modulesBlock: string | null = null;
  let newerThanBoot = false;
  for (const line of main.split("\n")) {
    const [kind, a, b] = line.split(" ");
    if (kind === "rootopen") rootOpen = a === "1";
    else if (kind === "osrelease") osRelease = Buffer.from(a ?? "", "base64").toString("utf8");
    else if (kind === "pkg") packages.push({ name: a, installed: b === "1" });
    else if (kind === "filesha") files.push({ path: a, sha256: b === "-" || !b ? null : b });
    else if (kind === "modules") modulesBlock = line.slice("modules ".length) === "-" ? null : line.slice("modules ".length);
    else if (kind === "newer-than-boot") newerThanBoot = a === "1";
  }
  const facts: GateFacts | null = rootOpen ? parseGateFacts(main) : null;
  return {
    environment,
    osRelease,
    rootOpen,
    packages,
    files,
    newestKernel: facts?.initrd.kernelVersion || null,
    modulesBlock,
    nic: facts?.host.nic ?? null,
    image: facts && facts.initrd.kernelVersion ? { facts } : null,
    initrdNewerThanBoot: newerThanBoot,
    runningImage: running ? { facts: parseGateFacts(running) } : null,
  };
}

/** What a locked host looks like: dropbear answered, nothing else is known. */
export function lockedObservation(): DropbearObserved {
  return { environment: "initramfs", osRelease: null, rootOpen: false, packages: [], files: [], newestKernel: null, modulesBlock: null, nic: null, image: null, initrdNewerThanBoot: false, runningImage: null };
}

/** All profiles a subject can be met in, the derived initramfs one included. */
export function allProfiles(subject: DropbearInitramfsInputs | DropbearInitramfsOutputs, initramfsFingerprint: string | null): ConnectionProfile[] {
  const system = subject.connection.find((p) => p.environment === "system");
  const initramfs: ConnectionProfile[] =
    initramfsFingerprint && system
      ? [{ environment: "initramfs", host: subject.reach?.host ?? system.host, port: subject.reach?.port ?? subject.port ?? DEFAULT_DROPBEAR_PORT, user: "root", hostKeyFingerprints: [initramfsFingerprint] }]
      : [];
  const order = (p: ConnectionProfile) => ["system", "initramfs", "rescue"].indexOf(p.environment);
  return [...subject.connection, ...initramfs].sort((a, b) => order(a) - order(b));
}

/** How the images' records were read (gate-facts.sh's `initrdcache` records), for the log; null when no image was. */
export function initrdCacheNote(text: string): string | null {
  const uses = [...text.matchAll(/^initrdcache (hit|miss)$/gm)].map((m) => (m[1] === "hit" ? "from the host's cache (the file is unchanged since it was unpacked)" : "unpacked"));
  return uses.length === 0 ? null : `initrd records: ${uses.join("; ")}`;
}

export async function probeHost(ctx: { session: SshSession; log: Logger }, environment: DropbearObserved["environment"], mac: string): Promise<DropbearObserved> {
  if (environment === "initramfs") return lockedObservation();
  const script = `GATE_FACTS=${quote(GATE_FACTS_SH)}\n${PROBE_SH}`;
  const result = await ctx.session.exec(sh`bash -s -- ${environment} ${mac.toLowerCase()} ${probedPaths()}`, { stdin: script, timeoutMs: 15 * 60_000 });
  const note = initrdCacheNote(result.stdout);
  if (note) ctx.log.info(note);
  return parseProbe(environment, result.stdout);
}
