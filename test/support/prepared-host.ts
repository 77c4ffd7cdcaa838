// Prepared hosts for lab tests: a state that the project's real resources reached once (through
// the provider harness, on a lab server), kept as a lab checkpoint and restored in seconds on
// later calls, in this run or the next.
//
//   const host = await preparedHost(CRYPT_RAID1_IN_RESCUE);   // lab fixture + server, restored
//   host.facts.rescueProfile …                                 // what the build left for later tests
//   await host.lab.close();
//
// The cache key hashes everything that produced the state: the recipe's inputs and server shape,
// the lab image recipe hashes, and the source trees of the resources, the lab and this support
// code (lab/checkpoints/source.ts). A checkpoint with another key is never restored, and a
// checkpoint that fails verification (qemu-img check, sizes) is deleted and built again.
//
// Secrets in a checkpoint are the lab's own fixtures: the LUKS passphrase below, an operator key
// generated for the build and authorized only on lab VMs, and the rescue password and host key
// the lab's Robot emulator minted. Never a user's: nothing here reads a stack's config.

import * as fs from "fs";
import * as path from "path";
import { CorruptCheckpoint, checkpointCacheDir, deleteCheckpoint, listCheckpoints, pruneCheckpoints, restoreCheckpoint, saveCheckpoint } from "../../lab/checkpoints/store";
import { cacheMaxBytes, recipeKey } from "../../lab/checkpoints/plan";
import { sourceHash } from "../../lab/checkpoints/source";
import { REPO_ROOT } from "../../lab/lab";
import type { SavedBoot } from "../../lab/checkpoints/plan";
import type { ConnectionProfile } from "../../providers/kernel/host-access";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { connect, SshSession } from "../../providers/plumbing/ssh";
import { ProviderHarness, Props } from "../harness/harness";
import { LabFixture, LabFixtureOptions, labStackConfig, pinnedNvmeDrives, startLabFixture, startRescueBootHarness } from "./lab";
import { waitFor } from "./wait";
import { LAB_CHEAP_PBKDF, LAB_CRYPT_RAID1_LVM, LAB_RAID1_LVM } from "./lab-layouts";

/** A state the real resources reach on one lab server, and what later tests need to use it. */
export interface PreparedRecipe<F> {
  /** Short label, part of the checkpoint's name. */
  readonly name: string;
  /** Everything besides source and images that shapes the state; hashed into the key. */
  readonly inputs: unknown;
  /** The lab server the state lives on (disk count and size, firmware); hashed into the key. */
  readonly fixture: Pick<LabFixtureOptions, "server" | "images">;
  /**
   * Reaches the state on `lab`'s first server with the real resources, leaves it settled (nothing
   * in RAM that the state needs: a checkpoint keeps disks and the emulator's record, and a restore
   * boots the same rescue or system again), and returns what tests need later (JSON, lab fixtures only).
   */
  build(lab: LabFixture, serverNumber: number): Promise<F>;
  /**
   * Source trees (repo-relative) that `build` never runs, left out of the key: a resource that is
   * tested FROM this state (DropbearInitramfs from the installed host) must not rebuild it per edit.
   */
  readonly independentOf?: readonly string[];
}

/** What the Robot webservice says about the server: a restored host must say the same. */
export interface RobotView {
  readonly server: unknown;
  readonly boot: unknown;
  readonly lastRescue: unknown;
  readonly keys: unknown;
}

export interface PreparedHost<F> {
  readonly lab: LabFixture;
  readonly serverNumber: number;
  readonly facts: F;
  /** The Robot's view when the state was saved. */
  readonly robotAtSave: RobotView;
  readonly checkpoint: string;
  /** Why this call built the state instead of restoring it ("no checkpoint", a corrupt one…); undefined for a cache hit. */
  readonly builtBecause?: string;
  readonly timings: { readonly buildMs?: number; readonly saveMs?: number; readonly restoreMs: number; readonly bootMs: number };
}

export interface PreparedHostOptions {
  /** Default: checkpointCacheDir() (HFDE_CHECKPOINT_DIR or <lab state dir>/checkpoints). */
  readonly cacheDir?: string;
}

interface SavedExtra<F> {
  readonly key: string;
  readonly recipe: string;
  readonly facts: F;
  readonly robotAtSave: RobotView;
  /** The build fixture's forwarded ports: a restored fixture has its own, and the facts are moved to them. */
  readonly ports: { readonly ssh: number; readonly dropbear: number; readonly mirror?: number };
}

/** The cache key of a recipe: inputs, server shape, lab image recipes, and the source trees. */
export async function preparedKey(recipe: PreparedRecipe<unknown>): Promise<string> {
  return recipeKey({ recipe: recipe.name, inputs: { inputs: recipe.inputs, fixture: recipe.fixture }, images: await imageHashes(recipe.fixture.images ?? true), source: sourceHash(REPO_ROOT, undefined, recipe.independentOf) });
}

export function checkpointName(recipe: PreparedRecipe<unknown>, key: string): string {
  return `${recipe.name}-${key.slice(0, 16)}`;
}

/** Restores the recipe's checkpoint into a new lab fixture, building (and saving) it first when there is none or it is unusable. */
export async function preparedHost<F>(recipe: PreparedRecipe<F>, opts: PreparedHostOptions = {}): Promise<PreparedHost<F>> {
  const cacheDir = opts.cacheDir ?? checkpointCacheDir();
  const key = await preparedKey(recipe);
  const name = checkpointName(recipe, key);
  let builtBecause: string | undefined = fs.existsSync(path.join(cacheDir, name)) ? undefined : "no checkpoint for this recipe key";
  let build: { buildMs: number; saveMs: number } | undefined;
  for (;;) {
    if (builtBecause) build = await buildAndSave(recipe, cacheDir, name, key);
    try {
      const restored = await restoreInto<F>(recipe, cacheDir, name);
      return { ...restored, checkpoint: name, builtBecause, timings: { ...build, ...restored.timings } };
    } catch (err) {
      // A corrupt checkpoint is rebuilt once; one that this call just built and cannot restore is a real failure.
      if (!(err instanceof CorruptCheckpoint) || build) throw err;
      await deleteCheckpoint(cacheDir, name);
      builtBecause = err.message;
    }
  }
}

async function buildAndSave<F>(recipe: PreparedRecipe<F>, cacheDir: string, name: string, key: string): Promise<{ buildMs: number; saveMs: number }> {
  const started = Date.now();
  const lab = await startLabFixture(recipe.fixture);
  try {
    const server = lab.server();
    const facts = await recipe.build(lab, server.number);
    const robotAtSave = await robotView(lab, server.number);
    const boot = lab.supervisor.currentBoot(server.number)?.mode as SavedBoot | undefined;
    if (!boot) throw new Error(`recipe ${recipe.name} left server ${server.number} without a boot to save`);
    // QMP quit: QEMU writes its caches to the disk images; the recipe already settled the guest.
    await lab.supervisor.powerOff(server.number);
    const buildMs = Date.now() - started;
    const saveStarted = Date.now();
    const extra: SavedExtra<F> = { key, recipe: recipe.name, facts, robotAtSave, ports: { ssh: server.sshPort, dropbear: server.dropbearPort, mirror: lab.config.mirror.port } };
    await saveCheckpoint({ cacheDir, stateDir: lab.stateDir, server, name, boot, extra });
    const saveMs = Date.now() - saveStarted;
    await pruneCheckpoints(cacheDir, cacheMaxBytes(), [name]);
    return { buildMs, saveMs };
  } finally {
    await lab.close();
  }
}

async function restoreInto<F>(recipe: PreparedRecipe<F>, cacheDir: string, name: string): Promise<Omit<PreparedHost<F>, "checkpoint" | "builtBecause">> {
  let extra: SavedExtra<F> | undefined;
  let restoreMs = 0;
  const saved = listCheckpoints(cacheDir).find((c) => c.name === name)?.manifest?.extra as SavedExtra<F> | undefined;
  const lab = await startLabFixture({
    ...recipe.fixture,
    mirrorPort: saved?.ports.mirror,
    beforeStart: async (stateDir, config) => {
      const started = Date.now();
      const manifest = await restoreCheckpoint({ cacheDir, stateDir, server: config.servers[0], name });
      restoreMs = Date.now() - started;
      extra = manifest.extra as SavedExtra<F>;
    },
  });
  try {
    const serverNumber = lab.server().number;
    const bootMs = await lab.waitForSsh(serverNumber);
    if (!extra) throw new Error(`checkpoint ${name} has no recipe facts`);
    const server = lab.server();
    const moves: [number, number][] = [[extra.ports.ssh, server.sshPort], [extra.ports.dropbear, server.dropbearPort]];
    const facts = relocatePorts(extra.facts, moves) as F;
    return { lab, serverNumber, facts, robotAtSave: extra.robotAtSave, timings: { restoreMs, bootMs } };
  } catch (err) {
    await lab.close();
    throw err;
  }
}

/**
 * The facts name the build fixture's loopback ports (profiles: host 127.0.0.1 + port; known_hosts
 * lines: [127.0.0.1]:port; InstallImage's `host`: 127.0.0.1:port); the restored fixture forwards other ports to the same guest ports.
 */
export function relocatePorts(value: unknown, moves: readonly [number, number][]): unknown {
  const moved = (port: number) => moves.find(([from]) => from === port)?.[1] ?? port;
  if (typeof value === "string") return value.replace(/(\[127\.0\.0\.1\]|\b127\.0\.0\.1):(\d+)\b/g, (_, host: string, port: string) => `${host}:${moved(Number(port))}`);
  if (Array.isArray(value)) return value.map((v) => relocatePorts(v, moves));
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, relocatePorts(v, moves)] as const);
    const object = Object.fromEntries(entries) as Record<string, unknown>;
    if (object.host === "127.0.0.1" && typeof object.port === "number") object.port = moved(object.port);
    return object;
  }
  return value;
}

/**
 * As plain JSON, secrets revealed (the rescue password the lab's emulator minted: a fixture), so
 * the view saved in a checkpoint compares with a live one.
 */
export async function robotView(lab: LabFixture, serverNumber: number): Promise<RobotView> {
  return revealed({
    server: await lab.robot.getServer(serverNumber),
    boot: await lab.robot.getBoot(serverNumber),
    lastRescue: await lab.robot.getLastRescue(serverNumber),
    keys: await lab.robot.listKeys(),
  }) as RobotView;
}

function revealed(value: unknown): unknown {
  if (value instanceof Secret) return { secret: value.reveal() };
  if (Array.isArray(value)) return value.map(revealed);
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, revealed(v)]));
  return value;
}

async function imageHashes(images: LabFixtureOptions["images"]): Promise<Record<string, string>> {
  if (images === false) return {};
  if (images === "rescue") {
    const { ensureRescue } = await import("../../lab/images");
    return { rescue: (await ensureRescue()).hash };
  }
  const { ensureLabImages } = await import("../../lab/images");
  return (await ensureLabImages()).recipeHashes;
}

// ---- the storage stack, seen from the rescue ----------------------------------------------

const STORAGE_SCRIPT = path.join(REPO_ROOT, "test", "support", "storage-stack.sh");

/** Runs storage-stack.sh open|facts|close on the server (the script travels in the command, the passphrase on stdin). */
export async function storageStack(session: SshSession, action: "open" | "facts" | "close", passphrase?: Secret): Promise<string> {
  const script = fs.readFileSync(STORAGE_SCRIPT, "utf8");
  const result = await session.exec(sh`bash -c ${script} storage-stack ${action}`, { stdin: passphrase ?? "", timeoutMs: 300_000, okExitCodes: Array.from({ length: 256 }, (_, i) => i) });
  if (result.exitCode !== 0) throw new Error(`storage-stack.sh ${action} failed (exit ${result.exitCode}): ${result.stderr.trim().split("\n").slice(-5).join(" | ")}`);
  return result.stdout;
}

// ---- recipes ------------------------------------------------------------------------------

/** The resources tested FROM the installed hosts below; RescueBoot and InstallImage build them and never import these. */
const TESTED_FROM_INSTALLED = ["providers/dropbear-initramfs", "providers/luks-volume", "providers/lvm-group"];

/** The lab's fixed LUKS passphrase: a test fixture baked into checkpoints, never a user's. */
export const LAB_LUKS_PASSPHRASE = "Lab-Crypt-Horse-Battery-7-staple";
/** Cheap KDF for the lab (argon2id at 32 MiB, 4 passes); the defaults are a unit-test matter. */
export { LAB_CHEAP_PBKDF };
const SMALL_DISKS = { disks: { count: 2, sizeGiB: 6, type: "nvme" as const } };

export interface InstalledInRescueFacts {
  /** The operator key RescueBoot authorized (a lab fixture: it opens only lab VMs). */
  readonly operator: { readonly public: string; readonly private: string };
  /** RescueBoot's `profile` output: the way into this rescue, host key pinned. */
  readonly rescueProfile: ConnectionProfile;
  readonly installImageInputs: Props;
  readonly installImageOutputs: Props;
  /** storage-stack.sh facts, taken with the stack open right after the install. */
  readonly storage: string;
}

/**
 * An installed crypt RAID1 host (md RAID1, LUKS2 on the LVM array, LVM root + swap), still in the
 * rescue that installed it, not rebooted (DropbearInitramfs starts here): RescueBoot, then
 * InstallImage with `reboot: false`, both through the harness. The storage stack is closed before
 * the save, as a freshly booted rescue finds it; a restore boots that same rescue (its password,
 * host key and authorized keys, from the emulator's record) on the saved disks.
 */
export const CRYPT_RAID1_IN_RESCUE: PreparedRecipe<InstalledInRescueFacts> = cryptRaid1InRescue("crypt-raid1-rescue", LAB_CRYPT_RAID1_LVM);

/** The same on Debian 13 (trixie), for DropbearInitramfs's Debian 13 lab test (opt-in). */
export const CRYPT_RAID1_IN_RESCUE_TRIXIE: PreparedRecipe<InstalledInRescueFacts> = cryptRaid1InRescue("crypt-raid1-rescue-trixie", {
  ...LAB_CRYPT_RAID1_LVM,
  image: "Debian-trixie-latest-amd64-base",
});

function cryptRaid1InRescue(name: string, layout: typeof LAB_CRYPT_RAID1_LVM): PreparedRecipe<InstalledInRescueFacts> {
  return {
    name,
    independentOf: TESTED_FROM_INSTALLED,
    inputs: { layout, passphrase: "LAB_LUKS_PASSPHRASE" },
    fixture: { server: SMALL_DISKS },
    build: async (lab, serverNumber) => {
      const operator = generateEd25519KeyPair("operator@prepared-host");
      const rescueBoot = await startRescueBootHarness(lab, serverNumber, operator);
      let rescueProfile: ConnectionProfile;
      try {
        await rescueBoot.up();
        rescueProfile = (rescueBoot.state.resources.get(rescueBoot.urn)!.plainOutputs as { profile: ConnectionProfile }).profile;
      } finally {
        await rescueBoot.stop();
      }
      const installImageInputs: Props = { ...layout, rescue: rescueProfile, drives: pinnedNvmeDrives(serverNumber), cryptPassphrase: LAB_LUKS_PASSPHRASE };
      const install = await ProviderHarness.start({
        module: "providers/install-image",
        exportName: "InstallImage",
        args: installImageInputs,
        secretPaths: ["cryptPassphrase"],
        ...labStackConfig(lab, operator.private),
        callTimeoutMs: 50 * 60_000,
      });
      let installImageOutputs: Props;
      try {
        const result = await install.up();
        if (result.op !== "create") throw new Error(`InstallImage did ${result.op}, expected a create`);
        installImageOutputs = install.state.resources.get(install.urn)!.plainOutputs;
      } finally {
        await install.stop();
      }
      const storage = await withProfile(rescueProfile, operator.private, async (session) => {
        await storageStack(session, "open", new Secret(LAB_LUKS_PASSPHRASE));
        const facts = await storageStack(session, "facts");
        await storageStack(session, "close");
        return facts;
      });
      const { cryptPassphrase: _secret, ...plainInputs } = installImageInputs;
      return { operator: { public: operator.public, private: operator.private }, rescueProfile, installImageInputs: plainInputs, installImageOutputs, storage };
    },
  };
}

/** A session through a ConnectionProfile, its host key pinned. */
export async function withProfile<T>(profile: ConnectionProfile, privateKey: string, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await connect(
    { host: profile.host, port: profile.port, user: profile.user, privateKey: new Secret(privateKey), hostKey: { expect: [...profile.hostKeyFingerprints] }, label: `${profile.environment} ${profile.host}:${profile.port}` },
    { budgetMs: 120_000 },
  );
  try {
    return await fn(session);
  } finally {
    await Promise.resolve(session.close()).catch(() => undefined);
  }
}

export interface InstalledSystemFacts {
  /** The operator key RescueBoot authorized and InstallImage installed for root (a lab fixture). */
  readonly operator: { readonly public: string; readonly private: string };
  /** The installed system's way in: its host key as InstallImage pinned it. */
  readonly systemProfile: ConnectionProfile;
  readonly installImageInputs: Props;
  readonly installImageOutputs: Props;
  /** storage-stack.sh facts on the running system. */
  readonly storage: string;
}

/**
 * An installed plain RAID1 host (md RAID1, LVM root + swap), booted into its system: RescueBoot,
 * then InstallImage (which reboots), through the harness. The system is shut down cleanly before
 * the save; a restore boots it from its disks, so its own host key answers again.
 */
export const PLAIN_RAID1_BOOTED: PreparedRecipe<InstalledSystemFacts> = {
  name: "plain-raid1-system",
  independentOf: TESTED_FROM_INSTALLED,
  inputs: { layout: LAB_RAID1_LVM },
  fixture: { server: SMALL_DISKS },
  build: async (lab, serverNumber) => {
    const operator = generateEd25519KeyPair("operator@prepared-host");
    const rescueBoot = await startRescueBootHarness(lab, serverNumber, operator);
    let rescueProfile: ConnectionProfile;
    try {
      await rescueBoot.up();
      rescueProfile = (rescueBoot.state.resources.get(rescueBoot.urn)!.plainOutputs as { profile: ConnectionProfile }).profile;
    } finally {
      await rescueBoot.stop();
    }
    const installImageInputs: Props = { ...LAB_RAID1_LVM, rescue: rescueProfile, drives: pinnedNvmeDrives(serverNumber) };
    const install = await ProviderHarness.start({ module: "providers/install-image", exportName: "InstallImage", args: installImageInputs, ...labStackConfig(lab, operator.private), callTimeoutMs: 50 * 60_000 });
    let installImageOutputs: Props;
    try {
      const result = await install.up();
      if (result.op !== "create") throw new Error(`InstallImage did ${result.op}, expected a create`);
      installImageOutputs = install.state.resources.get(install.urn)!.plainOutputs;
    } finally {
      await install.stop();
    }
    const systemProfile: ConnectionProfile = { environment: "system", host: "127.0.0.1", port: lab.server().sshPort, user: "root", hostKeyFingerprints: installImageOutputs.hostKeyFingerprints as string[] };
    const storage = await withProfile(systemProfile, operator.private, async (session) => {
      const facts = await storageStack(session, "facts");
      // A clean shutdown: the file systems are unmounted, so the saved disks need no journal replay.
      await session.exec(sh`sync; setsid sh -c 'sleep 1; systemctl poweroff' </dev/null >/dev/null 2>&1 &`);
      return facts;
    });
    await waitFor(async () => (await lab.supervisor.state(serverNumber)) === "off", { what: `server ${serverNumber} to power off after systemctl poweroff`, timeoutMs: 300_000, intervalMs: 1000 });
    return { operator: { public: operator.public, private: operator.private }, systemProfile, installImageInputs, installImageOutputs, storage };
  },
};
