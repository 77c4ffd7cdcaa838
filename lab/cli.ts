// `npm run lab -- up|down|status|console <server> [-f]|destroy|checkpoint …|drive … [--config <file>]`
// The CLI only starts/stops the background daemon (lab/daemon.ts) and reads the files it writes.

import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { findServer, LabConfig, labStateDir, loadLabConfig } from "./config";
import { daemonFiles, DaemonStatus, isProcessAlive, readDaemonStatus } from "./daemon";
import { findMissingTools, LAB_TOOLS, missingToolsMessage, UEFI_TOOLS } from "./prereqs";
import { consoleFileName, consoleTailOf, detectBootFailure, nextBootNo } from "./supervisor/decisions";
import { changePulledDrives, describeDrives, parseDiskIndex, readPulledDrives, takesEffectAt } from "./supervisor/drives";
import { diskSerial } from "./supervisor/qemu-args";
import { killStaleQemu } from "./supervisor/supervisor";

const USAGE = `usage: npm run lab -- <command> [--config <lab.config.json>]
  up                  build what is missing, start the Robot emulator, mirror and servers in the background
  down                stop the servers and the background process (disks and Robot state are kept)
  status              servers, power state, boot mode, ports, Robot URL
  console <server> [-f]  print (or follow) the current console log of a server (number or name)
  destroy             down, then delete disks, consoles and the emulator's state (other files in the state dir stay)
  checkpoint save <server> <name> [--boot rescue|disk]
                      (lab down) save a server's disks, its Robot record and what it ran
  checkpoint restore <server> <name>
                      (lab down) make the server what was saved; \`up\` then boots what it ran
  checkpoint list     checkpoints in the cache, with size, last use and whether a lab state uses them
  checkpoint prune [--max-gib N] [--all]
                      delete least recently used checkpoints until the cache fits (default HFDE_CHECKPOINT_MAX_GIB or 16)
  drive pull <server> <index>
                      take disk <index> out of the server (lab up or down); from its next power-on or reset
                      (a Robot reset, or a reboot in the guest) it boots without it, the other disks keep their serials
  drive insert <server> <index>
                      put disk <index> back, from the server's next power-on or reset
  drive list [<server>]
                      which disks are in and which are pulled, with their serials
  drill [--drive <index>] [--dir <dir>]
                      the degraded-boot drill on the host \`npm run demo\` built (lab-1): each RAID1 drive in turn
                      (or only <index>) pulled, reset, unlocked by \`up\`, reported degraded; put back, re-added
                      by \`up\`, resynced. <dir>: another lab stack directory (the e2e test's)`;

const DAEMON_READY_TIMEOUT_MS = 120_000;

interface Args {
  readonly command: string;
  readonly rest: string[];
  readonly configPath?: string;
  readonly follow: boolean;
}

export function parseArgs(argv: readonly string[]): Args {
  const rest: string[] = [];
  let configPath: string | undefined;
  let follow = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--config") configPath = argv[++i];
    else if (argv[i] === "-f" || argv[i] === "--follow") follow = true;
    else rest.push(argv[i]);
  }
  return { command: rest[0] ?? "", rest: rest.slice(1), configPath, follow };
}

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const configPath = args.configPath ? path.resolve(args.configPath) : defaultConfigPath();
  const stateDir = labStateDir();
  switch (args.command) {
    case "up":
      return up(configPath, stateDir);
    case "down":
      await down(loadLabConfig(configPath), stateDir);
      return 0;
    case "status":
      printStatus(loadLabConfig(configPath), stateDir);
      return 0;
    case "console":
      if (!args.rest[0]) throw new Error(`console needs a server (number or name)\n${USAGE}`);
      return printConsole(loadLabConfig(configPath), stateDir, args.rest[0], args.follow);
    case "destroy":
      await down(loadLabConfig(configPath), stateDir);
      destroyState(stateDir);
      console.log(`Deleted the lab state in ${stateDir} (disks, consoles, Robot emulator state).`);
      return 0;
    case "checkpoint":
      return checkpoint(loadLabConfig(configPath), stateDir, args.rest);
    case "drive":
      return drive(loadLabConfig(configPath), stateDir, args.rest);
    case "drill":
      return drill(args.rest);
    default:
      console.error(args.command ? `unknown command "${args.command}"\n${USAGE}` : USAGE);
      return 2;
  }
}

async function checkpoint(config: LabConfig, stateDir: string, rest: readonly string[]): Promise<number> {
  const { checkpointCacheDir, listCheckpoints, pruneCheckpoints, restoreCheckpoint, saveCheckpoint } = await import("./checkpoints/store");
  const { cacheMaxBytes } = await import("./checkpoints/plan");
  const cacheDir = checkpointCacheDir();
  const [action, ...words] = rest;
  const flag = (name: string): string | undefined => {
    const at = words.indexOf(name);
    return at >= 0 ? words[at + 1] : undefined;
  };
  const positional = words.filter((w, i) => !w.startsWith("--") && !words[i - 1]?.startsWith("--"));
  const needsDown = (): void => {
    const running = runningDaemon(stateDir);
    if (running) throw new Error(`the lab is up (daemon pid ${running.pid}); a checkpoint needs its servers off: run npm run lab -- down first`);
  };
  switch (action) {
    case "save": {
      if (positional.length !== 2) throw new Error(`checkpoint save needs <server> <name>\n${USAGE}`);
      const boot = flag("--boot");
      if (boot !== undefined && boot !== "rescue" && boot !== "disk") throw new Error(`--boot must be rescue or disk, got "${boot}"`);
      needsDown();
      const started = Date.now();
      const manifest = await saveCheckpoint({ cacheDir, stateDir, server: findServer(config, positional[0]), name: positional[1], boot });
      console.log(`Saved server ${manifest.serverNumber} (${manifest.boot}) as ${manifest.name} in ${((Date.now() - started) / 1000).toFixed(1)} s (${cacheDir}).`);
      const pruned = await pruneCheckpoints(cacheDir, cacheMaxBytes(), [manifest.name]);
      if (pruned.length > 0) console.log(`Pruned to fit the cache: ${pruned.join(", ")}`);
      return 0;
    }
    case "restore": {
      if (positional.length !== 2) throw new Error(`checkpoint restore needs <server> <name>\n${USAGE}`);
      needsDown();
      const started = Date.now();
      const server = findServer(config, positional[0]);
      const manifest = await restoreCheckpoint({ cacheDir, stateDir, server, name: positional[1] });
      console.log(`Restored ${manifest.name} onto server ${server.number} in ${((Date.now() - started) / 1000).toFixed(1)} s; npm run lab -- up boots it into its ${manifest.boot === "rescue" ? "saved rescue (same password and host key)" : "disks"}.`);
      return 0;
    }
    case "list": {
      const entries = listCheckpoints(cacheDir);
      if (entries.length === 0) console.log(`No checkpoints in ${cacheDir}.`);
      for (const e of entries.sort((a, b) => b.lastUsedMs - a.lastUsedMs)) {
        const what = e.manifest ? `server ${e.manifest.serverNumber} ${e.manifest.boot.padEnd(6)} saved ${e.manifest.createdAt}` : "(no readable manifest)";
        console.log(`${e.name.padEnd(40)} ${(e.bytes / 2 ** 30).toFixed(2).padStart(6)} GiB  ${what}  last used ${new Date(e.lastUsedMs).toISOString()}${e.inUse ? "  IN USE" : ""}`);
      }
      return 0;
    }
    case "prune": {
      const maxGib = flag("--max-gib");
      const max = words.includes("--all") ? 0 : maxGib !== undefined ? cacheMaxBytes({ HFDE_CHECKPOINT_MAX_GIB: maxGib }) : cacheMaxBytes();
      const pruned = await pruneCheckpoints(cacheDir, max);
      console.log(pruned.length > 0 ? `Deleted ${pruned.join(", ")}.` : "Nothing to prune.");
      const left = listCheckpoints(cacheDir).filter((e) => e.inUse);
      if (max === 0 && left.length > 0) console.log(`Kept (a lab state's disks still use them): ${left.map((e) => e.name).join(", ")}`);
      return 0;
    }
    default:
      console.error(`checkpoint needs save, restore, list or prune\n${USAGE}`);
      return 2;
  }
}

/** The drill drives the stack (engine/), which the lab itself never needs: loaded only for this command. */
async function drill(rest: readonly string[]): Promise<number> {
  const value = (flag: string): string | undefined => {
    const at = rest.indexOf(flag);
    return at >= 0 ? rest[at + 1] : undefined;
  };
  const unknown = rest.filter((w, i) => !["--drive", "--dir"].includes(w) && !["--drive", "--dir"].includes(rest[i - 1]));
  if (unknown.length > 0) throw new Error(`drill takes [--drive <index>] [--dir <dir>], found ${unknown.join(" ")}\n${USAGE}`);
  const driveFlag = value("--drive");
  if (driveFlag !== undefined && !/^\d+$/.test(driveFlag)) throw new Error(`--drive expects a disk index like 0, found ${JSON.stringify(driveFlag)}`);
  const { runDrill } = await import("../engine/drill");
  return runDrill({ drives: driveFlag === undefined ? undefined : [Number(driveFlag)], dir: value("--dir") });
}

/** Writes the file the supervisor reads at each QEMU launch, so it works with the lab up or down. */
function drive(config: LabConfig, stateDir: string, rest: readonly string[]): number {
  const [action, ...words] = rest;
  switch (action) {
    case "pull":
    case "insert": {
      if (words.length !== 2) throw new Error(`drive ${action} needs <server> <index>\n${USAGE}`);
      const server = findServer(config, words[0]);
      const index = parseDiskIndex(server, words[1]);
      const dir = serverDir(stateDir, server.number);
      const before = readPulledDrives(dir, server);
      const pulled = changePulledDrives(dir, server, { kind: action, index });
      const what = `disk ${index} (${diskSerial(server, index)}) of server ${server.number} (${server.name})`;
      const unchanged = before.join() === pulled.join();
      console.log(`${unchanged ? `Nothing to do: ${what} is already ${action === "pull" ? "pulled" : "in"}` : `${action === "pull" ? "Pulled" : "Inserted"} ${what}`}; pulled now: ${pulled.length > 0 ? `disk ${pulled.join(", ")}` : "none"}.`);
      if (unchanged) return 0;
      console.log(`It takes effect ${takesEffectAt(server.number)}.`);
      console.log(
        runningDaemon(stateDir) !== undefined
          ? `The lab is up: curl -u ${config.robot.user}:<password> -d type=hw http://127.0.0.1:${config.robot.port}/reset/${server.number} resets it (password: npm run lab -- status).`
          : `The lab is down: npm run lab -- up powers the servers on with this set.`,
      );
      return 0;
    }
    case "list": {
      if (words.length > 1) throw new Error(`drive list takes at most one <server>\n${USAGE}`);
      const servers = words[0] ? [findServer(config, words[0])] : config.servers;
      const status = runningDaemon(stateDir) ? readDaemonStatus(stateDir) : undefined;
      for (const server of servers) {
        console.log(`${server.number} ${server.name}:`);
        const pulled = readPulledDrives(serverDir(stateDir, server.number), server);
        for (const line of describeDrives(server, pulled)) console.log(`  ${line}`);
        const note = runningBootNote(pulled, status?.servers.find((s) => s.number === server.number)?.boot?.pulledDrives, server.number);
        if (note) console.log(`  ${note}`);
      }
      return 0;
    }
    default:
      console.error(`drive needs pull, insert or list\n${USAGE}`);
      return 2;
  }
}

/**
 * Set when the running boot was launched with another pulled set than the one on file: the change
 * waits for the next power-on or reset. A status file from before pulled drives existed has none.
 */
export function runningBootNote(pulled: readonly number[], runningBoot: readonly number[] | undefined, serverNumber: number): string | undefined {
  if (runningBoot === undefined || runningBoot.join() === pulled.join()) return undefined;
  return `the running boot has ${runningBoot.length > 0 ? `disk ${runningBoot.join(", ")} pulled` : "every disk in"}; the pulled set above takes effect ${takesEffectAt(serverNumber)}`;
}

async function up(configPath: string, stateDir: string): Promise<number> {
  const config = loadLabConfig(configPath);
  const tools = config.servers.some((s) => s.firmware === "uefi") ? [...LAB_TOOLS, ...UEFI_TOOLS] : LAB_TOOLS;
  const missing = missingToolsMessage(findMissingTools(tools));
  if (missing) {
    console.error(missing);
    return 3;
  }
  const running = runningDaemon(stateDir);
  if (running) {
    console.log(`The lab is already up (daemon pid ${running.pid}).`);
    printStatus(config, stateDir);
    return 0;
  }
  // Built in the foreground so the user sees progress; the daemon's own call is then a cache hit.
  console.log("Checking lab images (rescue system, OS images, Debian mirror)…");
  const { ensureLabImages } = await import("./images");
  await ensureLabImages();

  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const files = daemonFiles(stateDir);
  fs.rmSync(files.status, { force: true });
  const logFd = fs.openSync(files.log, "a", 0o600);
  const child = spawn(process.execPath, [path.join(__dirname, "daemon.js"), configPath], {
    detached: true,
    stdio: ["ignore", logFd, logFd],
    env: { ...process.env, HFDE_LAB_DIR: stateDir },
  });
  fs.closeSync(logFd);
  child.unref();
  const status = await waitForDaemon(stateDir, child.pid as number);
  if (!status?.ready) {
    console.error(`The lab did not start${status?.error ? `: ${status.error}` : ""}. Last lines of ${files.log}:\n${tail(files.log, 30)}`);
    return 1;
  }
  printStatus(config, stateDir);
  return 0;
}

async function waitForDaemon(stateDir: string, pid: number): Promise<DaemonStatus | undefined> {
  const deadline = Date.now() + DAEMON_READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const status = readDaemonStatus(stateDir);
    if (status?.pid === pid && (status.ready || status.error)) return status;
    if (!isProcessAlive(pid)) return readDaemonStatus(stateDir);
    await sleep(300);
  }
  return undefined;
}

async function down(config: LabConfig, stateDir: string): Promise<void> {
  const running = runningDaemon(stateDir);
  if (running) {
    process.kill(running.pid, "SIGTERM");
    for (let i = 0; i < 100 && isProcessAlive(running.pid); i++) await sleep(300);
    if (isProcessAlive(running.pid)) process.kill(running.pid, "SIGKILL");
    console.log(`Stopped the lab (daemon pid ${running.pid}); disks and Robot state are kept in ${stateDir}.`);
  } else {
    console.log("The lab is not running.");
  }
  // A daemon that was killed hard leaves its QEMUs behind; their pid files name them.
  for (const server of config.servers) await killStaleQemu(path.join(serverDir(stateDir, server.number), "qemu.pid"), serverDir(stateDir, server.number));
  fs.rmSync(daemonFiles(stateDir).pid, { force: true });
}

/** Deletes only what the lab daemon owns: other tools keep files in the same dir (e.g. the lab operator key). */
function destroyState(stateDir: string): void {
  const files = daemonFiles(stateDir);
  for (const owned of [path.join(stateDir, "servers"), path.join(stateDir, "robot-state.json"), files.status, files.log, files.pid]) {
    fs.rmSync(owned, { recursive: true, force: true });
  }
  // Remove the dir itself only when nothing else lives there.
  if (fs.existsSync(stateDir) && fs.readdirSync(stateDir).length === 0) fs.rmdirSync(stateDir);
}

function runningDaemon(stateDir: string): { pid: number } | undefined {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(daemonFiles(stateDir).pid, "utf8").trim());
  } catch {
    return undefined;
  }
  return Number.isInteger(pid) && pid > 0 && isProcessAlive(pid) ? { pid } : undefined;
}

/** `pulledDrives`: each server's pulled set on file (lab/supervisor/drives.ts), by server number. */
export function formatStatus(config: LabConfig, stateDir: string, status: DaemonStatus | undefined, up: boolean, pulledDrives: Readonly<Record<number, readonly number[]>> = {}): string {
  const lines: string[] = [];
  lines.push(up ? `Lab is up (daemon pid ${status?.pid}, state ${stateDir})` : `Lab is down (state ${stateDir}); start it with: npm run lab -- up`);
  const robotUrl = status?.robotUrl ?? `http://127.0.0.1:${config.robot.port}`;
  lines.push(`Robot:   ${robotUrl}  user ${config.robot.user}  password ${config.robot.password}`);
  lines.push(`Mirror:  http://127.0.0.1:${config.mirror.port}/debian  (guests: http://10.0.2.2:${config.mirror.port}/debian)`);
  lines.push("Servers:");
  for (const server of config.servers) {
    const live = up ? status?.servers.find((s) => s.number === server.number) : undefined;
    const power = live?.power ?? "off";
    const boot = live?.boot ? `boot ${live.boot.bootNo} ${live.boot.mode}${live.boot.failure ? ` (FAILED: ${live.boot.failure.reason})` : ""}` : "-";
    lines.push(`  ${server.number} ${server.name.padEnd(8)} ${power.padEnd(8)} ${boot.padEnd(20)} ssh 127.0.0.1:${server.sshPort}  dropbear 127.0.0.1:${server.dropbearPort}  ${server.disks.count}×${server.disks.sizeGiB} GiB ${server.disks.type}, ${server.memoryMiB} MiB, ${server.firmware}`);
    const pulled = pulledDrives[server.number] ?? [];
    if (pulled.length > 0) lines.push(`    pulled: ${pulled.map((i) => `disk ${i} (${diskSerial(server, i)})`).join(", ")}`);
    const note = runningBootNote(pulled, live?.power === "running" ? live.boot?.pulledDrives : undefined, server.number);
    if (note) lines.push(`    ${note}`);
  }
  if (up) lines.push(`Console: npm run lab -- console <server> -f    Log: ${daemonFiles(stateDir).log}`);
  return lines.join("\n");
}

function printStatus(config: LabConfig, stateDir: string): void {
  const running = runningDaemon(stateDir);
  const status = readDaemonStatus(stateDir);
  const pulledDrives = Object.fromEntries(config.servers.map((server) => [server.number, readPulledDrives(serverDir(stateDir, server.number), server)]));
  console.log(formatStatus(config, stateDir, status && withConsoleVerdicts(stateDir, status), running !== undefined, pulledDrives));
}

/**
 * The daemon classifies consoles once a second; a user who has just read `lab console` must not see
 * status disagree with it, so a boot the daemon has not yet judged is judged here from the same file.
 */
function withConsoleVerdicts(stateDir: string, status: DaemonStatus): DaemonStatus {
  const servers = status.servers.map((server) => {
    const boot = server.boot;
    if (!boot || boot.failure) return server;
    let text: string;
    try {
      text = fs.readFileSync(path.join(serverDir(stateDir, server.number), consoleFileName(boot.bootNo, boot.mode)), "latin1");
    } catch {
      return server;
    }
    const reason = detectBootFailure(text);
    return reason ? { ...server, boot: { ...boot, failure: { reason, consoleTail: consoleTailOf(text, 30) } } } : server;
  });
  return { ...status, servers };
}

async function printConsole(config: LabConfig, stateDir: string, ref: string, follow: boolean): Promise<number> {
  const server = findServer(config, ref);
  const dir = serverDir(stateDir, server.number);
  let file = latestConsole(dir);
  if (!file && !follow) {
    console.error(`server ${server.number} (${server.name}) has not booted yet: no console in ${dir}`);
    return 1;
  }
  if (!follow) {
    process.stdout.write(consoleTailOf(fs.readFileSync(file as string, "latin1"), Number.MAX_SAFE_INTEGER) + "\n");
    return 0;
  }
  let offset = 0;
  for (;;) {
    const newest = latestConsole(dir);
    if (newest && newest !== file) {
      file = newest;
      offset = 0;
      process.stdout.write(`\n----- ${path.basename(newest)} -----\n`);
    }
    if (file) {
      const size = fs.statSync(file).size;
      if (size > offset) {
        const fd = fs.openSync(file, "r");
        const chunk = Buffer.alloc(size - offset);
        fs.readSync(fd, chunk, 0, chunk.length, offset);
        fs.closeSync(fd);
        process.stdout.write(chunk);
        offset = size;
      }
    }
    await sleep(500);
  }
}

function latestConsole(dir: string): string | undefined {
  let files: string[];
  try {
    files = fs.readdirSync(dir);
  } catch {
    return undefined;
  }
  const last = nextBootNo(files) - 1;
  const name = files.find((f) => f.startsWith(`console-${last}-`));
  return name ? path.join(dir, name) : undefined;
}

function serverDir(stateDir: string, serverNumber: number): string {
  return path.join(stateDir, "servers", String(serverNumber));
}

function tail(file: string, lines: number): string {
  try {
    return consoleTailOf(fs.readFileSync(file, "utf8"), lines);
  } catch {
    return "(no log)";
  }
}

function defaultConfigPath(): string {
  // dist/lab/cli.js → edit the source copy in lab/, not a stale copy in dist.
  const source = path.resolve(__dirname, "..", "..", "lab", "lab.config.json");
  return fs.existsSync(source) ? source : path.join(__dirname, "lab.config.json");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
