// DropbearInitramfs's plan (pure): observed facts + desired inputs + the recorded outputs → the
// steps still to run. `diff` is this plan run against the facts rebuilt from the recorded outputs.
//
// The order is the point: the files go in first, so that the one build (apt's trigger when the
// packages are new, update-initramfs otherwise) carries them; the gate re-reads the built image
// right before any reboot; the closed loop (reboot → dropbear with the pinned key → passphrase on
// stdin → sshd with the system's pinned key → verify) is one step, so a failure says how far it got.
import { createHash } from "crypto";
import { detectDistro, DistroAdapter } from "../distro";
import type { ConnectionProfile } from "../kernel/host-access";
import { RefusalError } from "../kernel/resource";
import { Secret } from "../plumbing/secret";
import { GateFacts, gateProblems } from "./gate";
import { hostKeyFileSha256, InitramfsHostKey, parseDropbearEd25519 } from "./host-key";
import {
  bootScripts,
  CONFD_NAME,
  configureRecords,
  imageConfigPath,
  renderAuthorizedKeys,
  renderConfd,
  renderDropbearConfig,
  renderFiles,
  RenderedFile,
  staleFiles,
} from "./render";
import { BOOT_CLEANUP_SH, BOOT_IPV6_SH } from "./scripts";
import {
  DEFAULT_DROPBEAR_PORT,
  DropbearInitramfsInputs,
  DropbearInitramfsOutputs,
  DropbearInitramfsStep,
  DropbearObserved,
  GateExpectation,
  LoopTargets,
  RESCUE_ROOT,
  RootPath,
} from "./types";

const RESOURCE = "DropbearInitramfs";

/** The initramfs host key: generated at create (desired), recorded afterwards. */
export function hostKeyOf(desired: DropbearInitramfsInputs, recorded: DropbearInitramfsOutputs | null): InitramfsHostKey {
  const stored = desired.hostKeyPrivate ?? recorded?.hostKeyPrivate;
  if (!stored) throw new RefusalError(RESOURCE, "no initramfs host key: the provider generates one at create; run up again, and report it if it persists");
  return parseDropbearEd25519(stored, `initramfs@${desired.hostname.split(".")[0]}`);
}

export function systemProfile(inputs: Pick<DropbearInitramfsInputs, "connection">): ConnectionProfile {
  const system = inputs.connection.find((p) => p.environment === "system");
  if (!system) throw new RefusalError(RESOURCE, 'no "system" connection profile; validate refuses this, so the inputs were not checked');
  return system;
}

/** Where dropbear answers and with which key: the profile the stack pins for the initramfs. */
export function initramfsProfile(inputs: DropbearInitramfsInputs, key: InitramfsHostKey): ConnectionProfile {
  const system = systemProfile(inputs);
  return {
    environment: "initramfs",
    host: inputs.reach?.host ?? system.host,
    port: inputs.reach?.port ?? inputs.port ?? DEFAULT_DROPBEAR_PORT,
    user: "root",
    hostKeyFingerprints: [key.fingerprint],
  };
}

export function loopTargets(inputs: DropbearInitramfsInputs, key: InitramfsHostKey): LoopTargets {
  return { initramfs: initramfsProfile(inputs, key), system: systemProfile(inputs), hostname: inputs.hostname };
}

/** The files of the configuration for this release (host key included). */
export function desiredFiles(adapter: DistroAdapter, inputs: DropbearInitramfsInputs, key: InitramfsHostKey): RenderedFile[] {
  return renderFiles(adapter, inputs, key.privateKeyDropbear, { ipv6: BOOT_IPV6_SH, cleanup: BOOT_CLEANUP_SH });
}

/** What the gate must find in the image for these inputs. */
export function gateExpectation(adapter: DistroAdapter, inputs: DropbearInitramfsInputs, key: InitramfsHostKey): GateExpectation {
  return {
    dropbearConfig: renderDropbearConfig(adapter, inputs),
    confd: { name: CONFD_NAME, text: renderConfd(inputs.network) },
    authorizedKeys: renderAuthorizedKeys(inputs.authorizedKeys),
    hostKeySha256: hostKeyFileSha256(key.privateKeyDropbear),
    imageConfigPath: imageConfigPath(adapter),
    scripts: bootScripts(inputs.network),
  };
}

/** A digest of the expectation: what the recorded outputs keep of an image that matched it. */
export function expectationDigest(expectation: GateExpectation): string {
  return createHash("sha256").update(JSON.stringify(expectation)).digest("hex");
}

export function fileSha256(file: RenderedFile): string {
  return createHash("sha256").update(Buffer.from(file.base64, "base64")).digest("hex");
}

/** The gate's verdict on an observed image (raw facts) or a recorded one (digest). */
export function imageProblems(image: DropbearObserved["image"], expectation: GateExpectation): string[] {
  if (image === null) return ["no initrd was read"];
  if ("matchedDigest" in image) return image.matchedDigest === expectationDigest(expectation) ? [] : ["the image was built for other settings"];
  return gateProblems(image.facts as GateFacts, expectation).map((p) => `${p.piece}: ${p.message}`);
}

export function adapterOf(observed: DropbearObserved): DistroAdapter {
  const found = detectDistro(observed.osRelease ?? "");
  if (!found.ok) throw new RefusalError(RESOURCE, `the installed root is not a supported release: ${found.reason}`);
  return found.adapter;
}

export function planSteps(observed: DropbearObserved, desired: DropbearInitramfsInputs, recorded: DropbearInitramfsOutputs | null): DropbearInitramfsStep[] {
  const key = hostKeyOf(desired, recorded);
  const targets = loopTargets(desired, key);
  const passphrase = typeof desired.passphrase === "string" ? new Secret(desired.passphrase) : null;
  const unlock = desired.unlock !== false;

  if (observed.environment === "initramfs") {
    if (!unlock || passphrase === null) {
      throw new RefusalError(RESOURCE, "the host waits in its initramfs for the LUKS passphrase, and `unlock` is off: unlock it with the stack's unlockCommand output, or set unlock: true and pass the passphrase");
    }
    return [{ kind: "unlock", targets, passphrase }];
  }
  // In rescue nothing can be judged until the installed root is open; the next round sees the rest.
  if (observed.environment === "rescue" && !observed.rootOpen) return [{ kind: "openRoot", passphrase }];

  const root: RootPath = observed.environment === "rescue" ? RESCUE_ROOT : "";
  const adapter = adapterOf(observed);
  if (observed.nic === null) {
    throw new RefusalError(RESOURCE, `no interface of the host has network.mac ${desired.network.mac}: the initramfs would configure no network and dropbear would be unreachable; set network.mac to the MAC of the interface the server is reached through (\`ip link\`)`);
  }
  const files = desiredFiles(adapter, desired, key);
  const stale = staleFiles(adapter, desired.network);
  const found = new Map(observed.files.map((f) => [f.path, f.sha256]));
  const module = observed.nic.module;
  const filesDiffer =
    files.some((f) => found.get(f.path) !== fileSha256(f)) || stale.some((path) => (found.get(path) ?? null) !== null) || observed.modulesBlock !== (module ?? "");
  const missing = adapter.packages.filter((name) => !observed.packages.some((p) => p.name === name && p.installed));
  const expectation = gateExpectation(adapter, desired, key);
  const imageStale = imageProblems(observed.image, expectation).length > 0;

  const steps: DropbearInitramfsStep[] = [];
  if (filesDiffer) {
    steps.push({ kind: "writeConfig", root, records: new Secret(configureRecords(files)), stale, module, paths: files.map((f) => f.path) });
  }
  if (missing.length > 0) steps.push({ kind: "installPackages", root, packages: missing });
  else if (filesDiffer || imageStale) {
    if (!observed.newestKernel) throw new RefusalError(RESOURCE, "the installed root has no kernel in /boot (no vmlinuz-*); reinstall the image before setting up dropbear");
    steps.push({ kind: "buildInitramfs", root, kernel: observed.newestKernel });
  }

  // A rescue setup is finished only by booting the installed system (create), or when asked to.
  const reboot = unlock && passphrase !== null &&
    (observed.environment === "rescue" ? recorded === null || desired.rebootOnUpdate === true : desired.rebootOnUpdate === true && (steps.length > 0 || observed.initrdNewerThanBoot));
  if (steps.length > 0 || reboot) steps.push({ kind: "gate", root, mac: desired.network.mac, expectation });
  if (reboot) {
    if (root !== "") steps.push({ kind: "closeRoot" });
    steps.push({ kind: "rebootAndUnlock", targets, passphrase: passphrase! });
  }
  return steps;
}
