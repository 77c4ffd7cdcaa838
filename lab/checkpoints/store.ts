// The checkpoint cache on disk: save a stopped lab server (disks, the emulator's record of it,
// what it was running), restore it into a lab state directory, list, verify and prune.
//
//   <cache>/<name>/manifest.json     what was saved (plan.ts CheckpointManifest), 0600
//   <cache>/<name>/disk0.qcow2 …     flattened, sparse, read-only: the base of every restore
//   <cache>/<name>/leases/<id>.json  lab states whose disks are overlays on this checkpoint
//   <cache>/.tmp-<name>-<pid>-…      a save in progress (a killed one is swept by prune)
//
// Atomic both ways. A save fills a temp directory and renames it into place last, so a killed
// save leaves no checkpoint, only a temp dir. A restore prepares every new file beside its final
// name, then writes a journal (the commit point), then renames; a restore cut short after the
// journal is completed by completeRestores() before the lab next starts, one cut short before it
// leaves the server as it was.

import { execFile } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { promisify } from "util";
import { LabServerConfig, labStateDir } from "../config";
import type { ServerState, StoredKey } from "../robot/model";
import type { BootTarget } from "../robot/power";
import { consoleFileName, nextBootNo } from "../supervisor/decisions";
import { CacheEntryInfo, CheckpointFile, CheckpointManifest, CHECKPOINT_FORMAT, checkName, chooseToPrune, restoredBootTarget, SavedBoot, shapeMismatch } from "./plan";

const execFileAsync = promisify(execFile);

const MANIFEST = "manifest.json";
const LEASES = "leases";
const JOURNAL = "restore.journal.json";
/** Written by a restore, read once by the lab when it first boots the server (lab.ts). */
const RESTORED_BOOT = "restored-boot.json";
const ROBOT_STATE = "robot-state.json";
const OVMF_VARS = "OVMF_VARS.fd";

/** HFDE_CHECKPOINT_DIR, else `checkpoints/` in the lab's state directory (not removed by `lab destroy`). */
export function checkpointCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HFDE_CHECKPOINT_DIR || path.join(labStateDir(env), "checkpoints");
}

export class CorruptCheckpoint extends Error {
  constructor(
    readonly checkpoint: string,
    readonly reason: string,
  ) {
    super(`checkpoint ${checkpoint} is unusable: ${reason}. Delete it (npm run lab -- checkpoint prune --all) or save it again.`);
    this.name = "CorruptCheckpoint";
  }
}

export interface SaveOptions {
  readonly cacheDir: string;
  readonly stateDir: string;
  readonly server: LabServerConfig;
  readonly name: string;
  /** What the server was running. Default: the mode of its last boot (its newest console log). */
  readonly boot?: SavedBoot;
  readonly extra?: unknown;
}

/** Saves a server whose VM is off. Replaces an existing checkpoint of the same name only once the new one is complete. */
export async function saveCheckpoint(opts: SaveOptions): Promise<CheckpointManifest> {
  const name = checkName(opts.name);
  const dir = serverDir(opts.stateDir, opts.server.number);
  assertVmOff(dir, opts.server.number);
  const boot = opts.boot ?? lastBootMode(dir);
  if (!boot) throw new Error(`server ${opts.server.number} has never booted; there is no state to save (say --boot rescue|disk to save its blank disks anyway)`);
  const robot = readRobotState(opts.stateDir);
  const record = robot?.servers[String(opts.server.number)];
  if (!record) throw new Error(`no Robot emulator record of server ${opts.server.number} in ${path.join(opts.stateDir, ROBOT_STATE)}; start the lab once before saving`);
  if (boot === "rescue" && record.rescue) {
    // Restoring boots the saved rescue; a second arm waiting for the next boot would be lost.
    throw new Error(`server ${opts.server.number} runs rescue and has rescue armed again for its next boot; disarm it (DELETE /boot/${opts.server.number}/rescue) before saving`);
  }

  fs.mkdirSync(opts.cacheDir, { recursive: true, mode: 0o700 });
  const tmp = path.join(opts.cacheDir, `.tmp-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
  fs.mkdirSync(tmp, { mode: 0o700 });
  try {
    const files: CheckpointFile[] = [];
    for (let i = 0; i < opts.server.disks.count; i++) {
      const file = `disk${i}.qcow2`;
      // convert flattens a restored overlay into a base of its own and skips unallocated space.
      await qemuImg(["convert", "-q", "-f", "qcow2", "-O", "qcow2", path.join(dir, file), path.join(tmp, file)]);
      files.push({ name: file, bytes: fs.statSync(path.join(tmp, file)).size });
    }
    if (opts.server.firmware === "uefi") {
      fs.copyFileSync(path.join(dir, OVMF_VARS), path.join(tmp, OVMF_VARS));
      files.push({ name: OVMF_VARS, bytes: fs.statSync(path.join(tmp, OVMF_VARS)).size });
    }
    for (const file of files) fs.chmodSync(path.join(tmp, file.name), 0o444);
    const manifest: CheckpointManifest = {
      format: CHECKPOINT_FORMAT,
      name,
      createdAt: new Date().toISOString(),
      serverNumber: opts.server.number,
      shape: { disks: opts.server.disks, firmware: opts.server.firmware },
      boot,
      files,
      robot: { server: record, keys: robot.keys },
      extra: opts.extra,
    };
    writeFileSynced(path.join(tmp, MANIFEST), JSON.stringify(manifest, null, 2));
    fsyncDir(tmp);
    const final = path.join(opts.cacheDir, name);
    if (fs.existsSync(final)) await deleteCheckpoint(opts.cacheDir, name);
    fs.renameSync(tmp, final);
    fsyncDir(opts.cacheDir);
    return manifest;
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

export interface RestoreOptions {
  readonly cacheDir: string;
  readonly stateDir: string;
  readonly server: LabServerConfig;
  readonly name: string;
}

/**
 * Makes `server` in `stateDir` what the checkpoint saved: its disks become overlays on the
 * checkpoint's read-only bases, the emulator's record is replaced, and its next start boots what
 * it ran. The VM must be off and the lab's emulator not running on this state (it would overwrite
 * robot-state.json). Verifies the checkpoint first; throws CorruptCheckpoint when it is unusable.
 */
export async function restoreCheckpoint(opts: RestoreOptions): Promise<CheckpointManifest> {
  const checkpoint = path.join(opts.cacheDir, checkName(opts.name));
  const manifest = await verifyCheckpoint(opts.cacheDir, opts.name);
  const mismatch = shapeMismatch(manifest.shape, { disks: opts.server.disks, firmware: opts.server.firmware });
  if (mismatch) throw new Error(`checkpoint ${opts.name} does not fit server ${opts.server.number}: ${mismatch}`);
  const dir = serverDir(opts.stateDir, opts.server.number);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  assertVmOff(dir, opts.server.number);
  await completeRestores(opts.stateDir);

  const renames: [string, string][] = [];
  const staged = (final: string) => {
    const temp = `${final}.restoring`;
    fs.rmSync(temp, { force: true });
    renames.push([temp, final]);
    return temp;
  };
  try {
    for (const file of manifest.files) {
      const final = path.join(dir, file.name);
      if (file.name.endsWith(".qcow2")) {
        await qemuImg(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", path.join(checkpoint, file.name), staged(final)]);
      } else {
        const temp = staged(final);
        fs.copyFileSync(path.join(checkpoint, file.name), temp);
        fs.chmodSync(temp, 0o600);
      }
    }
    const robotFile = path.join(opts.stateDir, ROBOT_STATE);
    const robot = readRobotState(opts.stateDir) ?? { version: 1, servers: {}, keys: [] };
    const keys = new Map(robot.keys.map((k) => [k.fingerprint, k]));
    for (const key of manifest.robot.keys) keys.set(key.fingerprint, key);
    const restored: PersistedRobotState = { version: 1, servers: { ...robot.servers, [String(opts.server.number)]: manifest.robot.server }, keys: [...keys.values()] };
    fs.writeFileSync(staged(robotFile), JSON.stringify(restored, null, 2), { mode: 0o600 });
    fs.writeFileSync(staged(path.join(dir, RESTORED_BOOT)), JSON.stringify({ checkpoint: manifest.name, boot: manifest.boot }), { mode: 0o600 });
    // The commit point: from here on the restore is completed, even by the next process.
    writeFileSynced(path.join(dir, `${JOURNAL}.tmp`), JSON.stringify(renames));
    fs.renameSync(path.join(dir, `${JOURNAL}.tmp`), path.join(dir, JOURNAL));
  } catch (err) {
    for (const [temp] of renames) fs.rmSync(temp, { force: true });
    throw err;
  }
  await completeRestores(opts.stateDir);
  writeLease(checkpoint, dir);
  touch(checkpoint);
  return manifest;
}

/** Finishes restores whose journal was written but whose renames were cut short; drops staged files of uncommitted ones. */
export async function completeRestores(stateDir: string): Promise<void> {
  const servers = path.join(stateDir, "servers");
  const dirs = fs.existsSync(servers) ? fs.readdirSync(servers).map((entry) => path.join(servers, entry)) : [];
  // Every committed journal first: one may name robot-state.json's staged copy, which the sweep below removes.
  for (const dir of dirs) {
    const journal = path.join(dir, JOURNAL);
    if (!fs.existsSync(journal)) continue;
    const renames = JSON.parse(fs.readFileSync(journal, "utf8")) as [string, string][];
    for (const [temp, final] of renames) if (fs.existsSync(temp)) fs.renameSync(temp, final);
    fs.rmSync(journal);
  }
  for (const dir of dirs) {
    for (const stray of fs.readdirSync(dir).filter((f) => f.endsWith(".restoring") || f === `${JOURNAL}.tmp`)) fs.rmSync(path.join(dir, stray), { force: true });
  }
  fs.rmSync(path.join(stateDir, `${ROBOT_STATE}.restoring`), { force: true });
}

/**
 * The first boot of a server just restored: the rescue it ran when saved (same password, host key
 * and authorized keys, from the restored emulator record) or its disks. Taken once: the file is
 * removed, so later boots follow the Robot as usual. undefined when the server was not restored.
 */
export function takeRestoredBoot(stateDir: string, serverNumber: number, record: ServerState): BootTarget | undefined {
  const file = path.join(serverDir(stateDir, serverNumber), RESTORED_BOOT);
  let pending: { boot: SavedBoot };
  try {
    pending = JSON.parse(fs.readFileSync(file, "utf8")) as { boot: SavedBoot };
  } catch {
    return undefined;
  }
  fs.rmSync(file, { force: true });
  return restoredBootTarget({ boot: pending.boot, robot: { server: record, keys: [] }, serverNumber });
}

/** Reads the manifest and checks every file: present, its saved size, and `qemu-img check` clean. */
export async function verifyCheckpoint(cacheDir: string, name: string): Promise<CheckpointManifest> {
  const dir = path.join(cacheDir, checkName(name));
  let manifest: CheckpointManifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8")) as CheckpointManifest;
  } catch (err) {
    throw new CorruptCheckpoint(name, `its manifest cannot be read (${(err as Error).message})`);
  }
  if (manifest.format !== CHECKPOINT_FORMAT) throw new CorruptCheckpoint(name, `format ${String(manifest.format)}, this lab reads format ${CHECKPOINT_FORMAT}`);
  for (const file of manifest.files) {
    const full = path.join(dir, file.name);
    let size: number;
    try {
      size = fs.statSync(full).size;
    } catch {
      throw new CorruptCheckpoint(name, `${file.name} is missing`);
    }
    if (size !== file.bytes) throw new CorruptCheckpoint(name, `${file.name} has ${size} bytes, ${file.bytes} were saved`);
    if (!file.name.endsWith(".qcow2")) continue;
    // Exit 0: clean; 3: only leaked clusters (harmless, nothing reads them); 1 or 2: unusable.
    const check = await run("qemu-img", ["check", "-q", "-f", "qcow2", full]);
    if (check.code !== 0 && check.code !== 3) throw new CorruptCheckpoint(name, `qemu-img check ${file.name} failed (exit ${check.code}): ${check.stderr.trim().split("\n").slice(0, 3).join("; ")}`);
  }
  return manifest;
}

export interface CheckpointInfo extends CacheEntryInfo {
  readonly manifest?: CheckpointManifest;
}

export function listCheckpoints(cacheDir: string): CheckpointInfo[] {
  if (!fs.existsSync(cacheDir)) return [];
  return fs
    .readdirSync(cacheDir)
    .filter((name) => !name.startsWith("."))
    .map((name) => {
      const dir = path.join(cacheDir, name);
      let manifest: CheckpointManifest | undefined;
      try {
        manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), "utf8")) as CheckpointManifest;
      } catch {
        manifest = undefined;
      }
      return { name, bytes: allocatedBytes(dir), lastUsedMs: lastUsed(dir), inUse: inUse(dir), manifest };
    });
}

/** Sweeps temp dirs of dead saves, then deletes least recently used checkpoints until the cache fits. */
export async function pruneCheckpoints(cacheDir: string, maxBytes: number, keep: readonly string[] = []): Promise<string[]> {
  if (!fs.existsSync(cacheDir)) return [];
  for (const entry of fs.readdirSync(cacheDir)) {
    const pid = /^\.(?:tmp|trash)-.*-(\d+)-[0-9a-f]{8}$/.exec(entry)?.[1];
    if (pid && !isAlive(Number(pid))) fs.rmSync(path.join(cacheDir, entry), { recursive: true, force: true });
  }
  const victims = chooseToPrune(listCheckpoints(cacheDir), maxBytes, keep);
  for (const name of victims) await deleteCheckpoint(cacheDir, name);
  return victims;
}

/** Renames the checkpoint out of the way first, so no reader ever finds half of it. */
export async function deleteCheckpoint(cacheDir: string, name: string): Promise<void> {
  const dir = path.join(cacheDir, checkName(name));
  if (!fs.existsSync(dir)) return;
  const trash = path.join(cacheDir, `.trash-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
  fs.renameSync(dir, trash);
  fs.rmSync(trash, { recursive: true, force: true });
}

// ---- helpers -----------------------------------------------------------------------------

interface PersistedRobotState {
  readonly version: 1;
  readonly servers: Record<string, ServerState>;
  readonly keys: StoredKey[];
}

function readRobotState(stateDir: string): PersistedRobotState | undefined {
  const file = path.join(stateDir, ROBOT_STATE);
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, "utf8")) as PersistedRobotState;
}

function serverDir(stateDir: string, serverNumber: number): string {
  return path.join(stateDir, "servers", String(serverNumber));
}

/** A running QEMU keeps writing its disks; a copy of them would be torn. */
function assertVmOff(dir: string, serverNumber: number): void {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(dir, "qemu.pid"), "utf8").trim());
  } catch {
    return;
  }
  let cmdline = "";
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return;
  }
  if (cmdline.includes("qemu-system") && cmdline.includes(dir)) {
    throw new Error(`server ${serverNumber} is running (QEMU pid ${pid}); stop the lab first (npm run lab -- down)`);
  }
}

/** The mode of the server's newest boot, from its console file names. */
function lastBootMode(dir: string): SavedBoot | undefined {
  const files = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const last = nextBootNo(files) - 1;
  if (last < 1) return undefined;
  if (files.includes(consoleFileName(last, "rescue"))) return "rescue";
  if (files.includes(consoleFileName(last, "disk"))) return "disk";
  return undefined;
}

function writeLease(checkpoint: string, serverDirectory: string): void {
  const leases = path.join(checkpoint, LEASES);
  fs.mkdirSync(leases, { recursive: true, mode: 0o700 });
  const id = createHash("sha256").update(serverDirectory).digest("hex").slice(0, 16);
  fs.writeFileSync(path.join(leases, `${id}.json`), JSON.stringify({ serverDir: serverDirectory }));
}

/** In use while a leased server directory still has a disk whose backing file is in this checkpoint. */
function inUse(checkpoint: string): boolean {
  const leases = path.join(checkpoint, LEASES);
  if (!fs.existsSync(leases)) return false;
  for (const lease of fs.readdirSync(leases)) {
    let serverDirectory: string;
    try {
      serverDirectory = (JSON.parse(fs.readFileSync(path.join(leases, lease), "utf8")) as { serverDir: string }).serverDir;
    } catch {
      continue;
    }
    const live = fs.existsSync(serverDirectory) && fs.readdirSync(serverDirectory).some((f) => /^disk\d+\.qcow2$/.test(f) && backingFile(path.join(serverDirectory, f))?.startsWith(`${checkpoint}${path.sep}`));
    if (live) return true;
    fs.rmSync(path.join(leases, lease), { force: true });
  }
  return false;
}

/** The backing file named in a qcow2 header (offset 8: u64 name offset, 16: u32 name length). */
export function backingFile(qcow2: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(qcow2, "r");
    const header = Buffer.alloc(20);
    fs.readSync(fd, header, 0, 20, 0);
    if (header.readUInt32BE(0) !== 0x514649fb) return undefined;
    const offset = Number(header.readBigUInt64BE(8));
    const length = header.readUInt32BE(16);
    if (offset === 0 || length === 0 || length > 4096) return undefined;
    const name = Buffer.alloc(length);
    fs.readSync(fd, name, 0, length, offset);
    return name.toString("utf8");
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function allocatedBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? allocatedBytes(full) : fs.statSync(full).blocks * 512;
  }
  return total;
}

const LAST_USED = "last-used";

function touch(checkpoint: string): void {
  fs.writeFileSync(path.join(checkpoint, LAST_USED), new Date().toISOString());
}

function lastUsed(checkpoint: string): number {
  for (const file of [LAST_USED, MANIFEST]) {
    try {
      return fs.statSync(path.join(checkpoint, file)).mtimeMs;
    } catch {
      // next
    }
  }
  return 0;
}

function writeFileSynced(file: string, content: string): void {
  const fd = fs.openSync(file, "w", 0o600);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function qemuImg(args: string[]): Promise<void> {
  const result = await run("qemu-img", args);
  if (result.code !== 0) throw new Error(`qemu-img ${args[0]} failed (exit ${result.code}): ${result.stderr.trim()}`);
}

async function run(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await execFileAsync(cmd, args, { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stderr?: string; message: string };
    if (typeof e.code !== "number") throw new Error(`${cmd} could not run: ${e.message}`);
    return { code: e.code, stderr: e.stderr ?? "" };
  }
}
