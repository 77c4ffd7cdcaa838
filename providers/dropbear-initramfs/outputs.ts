// DropbearInitramfs's outputs (pure): what a probe records, the inputs recorded in them, and the
// facts rebuilt from them for `diff` (the plan runs against those).
import { adapterByKey, detectDistro, DistroKey } from "../distro";
import type { Reached } from "../kernel";
import { jsonSafe } from "../kernel/resource";
import { quote } from "../plumbing/shell";
import { initramfsKnownHostsLine, parseDropbearEd25519 } from "./host-key";
import { desiredFiles, expectationDigest, gateExpectation, imageProblems, initramfsProfile } from "./plan";
import { lockedObservation } from "./probe";
import { staleFiles } from "./render";
import type { DropbearInitramfsInputs, DropbearInitramfsOutputs, DropbearObserved } from "./types";

/**
 * The inputs recorded in the outputs: never the passphrase. The host key is kept (the provider
 * hands it to every call, see provider.ts), and the provider strips it from what read returns.
 */
export function inputsFromOutputs(outs: DropbearInitramfsInputs): DropbearInitramfsInputs {
  const { connection, hostname, authorizedKeys, port, sshdPort, reach, network, idleTimeoutSeconds, unlock, rebootOnUpdate, allowWipe, providerVersion, hostKeyPrivate } = outs;
  return jsonSafe({ connection, hostname, authorizedKeys, port, sshdPort, reach, network, idleTimeoutSeconds, unlock, rebootOnUpdate, allowWipe, providerVersion, hostKeyPrivate }, "inputs");
}

/** `ssh -o UserKnownHostsFile=… -p PORT root@ADDR cryptroot-unlock`, for operators. */
export function unlockCommandFor(host: string, port: number, knownHostsFile = "dropbear_known_hosts"): string {
  return `ssh -o UserKnownHostsFile=${quote(knownHostsFile)} -o StrictHostKeyChecking=yes -p ${port} root@${host.includes(":") ? `[${host}]` : host} cryptroot-unlock`;
}

function driftOf(inputs: DropbearInitramfsInputs, observed: DropbearObserved, key: ReturnType<typeof parseDropbearEd25519>): string[] {
  if (observed.environment === "initramfs") {
    return [
      inputs.unlock === false
        ? "the host waits locked in its initramfs; unlock is off, so run the unlockCommand output"
        : "the host waits locked in its initramfs; the next `pulumi up` unlocks it",
    ];
  }
  if (observed.environment === "rescue") return ["the host runs its rescue system; what is read here is its installed root on disk, not a running system"];
  const found = detectDistro(observed.osRelease ?? "");
  if (!found.ok) return [found.reason];
  const adapter = found.adapter;
  const drift: string[] = [];
  const missing = adapter.packages.filter((name) => !observed.packages.some((p) => p.name === name && p.installed));
  if (missing.length > 0) drift.push(`not installed: ${missing.join(", ")}`);
  const digests = new Map(observed.files.map((f) => [f.path, f.sha256]));
  const changed = desiredFiles(adapter, inputs, key).filter((f) => digests.get(f.path) !== undefined && digests.get(f.path) !== fileDigest(f.base64));
  if (changed.length > 0) drift.push(`changed on the host: ${changed.map((f) => f.path).join(", ")}`);
  const expectation = gateExpectation(adapter, inputs, key);
  const label = (which: string, kernel: string | null) => `${which} image (${kernel ?? "no kernel"})`;
  for (const problem of imageProblems(observed.image, expectation)) drift.push(`${label("newest kernel's", observed.newestKernel)}: ${problem}`);
  if (observed.runningImage) {
    const running = observed.runningImage.facts.initrd.kernelVersion;
    for (const problem of imageProblems(observed.runningImage, expectation)) drift.push(`${label("running kernel's", running)}: ${problem}`);
  }
  return drift;
}

function fileDigest(base64: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require("crypto") as typeof import("crypto");
  return crypto.createHash("sha256").update(Buffer.from(base64, "base64")).digest("hex");
}

export function outputsFrom(inputs: DropbearInitramfsInputs, observed: DropbearObserved, reached: Reached): DropbearInitramfsOutputs {
  const hostKeyPrivate = inputs.hostKeyPrivate ?? "";
  const key = parseDropbearEd25519(hostKeyPrivate, `initramfs@${inputs.hostname.split(".")[0]}`);
  const profile = initramfsProfile(inputs, key);
  const found = detectDistro(observed.osRelease ?? "");
  const adapter = found.ok ? found.adapter : null;
  const expectation = adapter ? gateExpectation(adapter, inputs, key) : null;
  const imageOk = expectation !== null && observed.image !== null && imageProblems(observed.image, expectation).length === 0;
  const tracked = adapter ? [...desiredFiles(adapter, inputs, key).map((f) => f.path), ...staleFiles(adapter, inputs.network)] : [];
  return jsonSafe(
    {
      ...inputsFromOutputs(inputs),
      hostKeyPrivate,
      hostKeyPublic: key.publicKey,
      hostKeyFingerprint: key.fingerprint,
      knownHosts: [initramfsKnownHostsLine(profile.host, profile.port, key)],
      unlockCommand: unlockCommandFor(profile.host, profile.port),
      initramfsProfile: profile,
      environment: observed.environment,
      host: reached.host,
      drift: driftOf(inputs, observed, key),
      distro: adapter?.key ?? null,
      newestKernel: observed.newestKernel,
      nicModule: observed.nic?.module ?? null,
      fileDigests: observed.files.filter((f) => tracked.includes(f.path)),
      imageDigest: imageOk && expectation ? expectationDigest(expectation) : null,
    },
    "outputs",
  );
}

/** The facts the recorded outputs stand for: what `diff` plans against (no host contact). */
export function observedFromOutputs(recorded: DropbearInitramfsOutputs): DropbearObserved {
  if (recorded.environment === "initramfs") return lockedObservation();
  const adapter = recorded.distro ? adapterByKey(recorded.distro as DistroKey) : null;
  return {
    environment: recorded.environment,
    osRelease: adapter ? `ID=${adapter.osId}\nVERSION_ID="${adapter.versionId}"\n` : null,
    rootOpen: true,
    packages: (adapter?.packages ?? []).map((name) => ({ name, installed: true })),
    files: recorded.fileDigests,
    newestKernel: recorded.newestKernel,
    modulesBlock: recorded.nicModule ?? "",
    nic: { name: "recorded", module: recorded.nicModule },
    image: recorded.imageDigest ? { matchedDigest: recorded.imageDigest } : null,
    initrdNewerThanBoot: false,
    runningImage: null,
  };
}
