// The lab's QEMU supervisor: one VM per lab server, driven by the Robot emulator through
// PowerController. It carries out boots; the emulator (BootArbiter) decides where a server boots.
// Lab-side only: process handles live here and never reach anything Pulumi serializes.

import { ChildProcess, execFile, execFileSync, spawn } from "child_process";
import { createHash } from "crypto";
import { EventEmitter } from "events";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import type { LabServerConfig } from "../config";
import type { BootArbiter, BootTarget, PowerController, PowerState, RescueBootSpec } from "../robot/power";
import { changePulledDrives, readPulledDrives } from "./drives";
import { AfterExit, consoleFileName, consoleTailOf, decideAfterExit, decidePowerAction, detectBootFailure, ExitIntent, nextBootNo, PowerAction, VmExit } from "./decisions";
import { QmpClient } from "./qmp";
import { Accel, qemuArgv, RescueBootLaunch, rescueCmdline, VmLaunch, VmPaths } from "./qemu-args";

const execFileAsync = promisify(execFile);

export type BootMode = BootTarget["kind"];

export interface BootRecord {
  readonly bootNo: number;
  readonly mode: BootMode;
  /** Disks that were pulled for this boot (lab/supervisor/drives.ts), ascending; [] when all were in. */
  readonly pulledDrives: readonly number[];
  readonly consoleLog: string;
  readonly startedAt: string;
  endedAt?: string;
  /** How it ended: QMP shutdown reason or process exit. */
  exit?: VmExit;
  /** Set when the console showed a boot that goes nowhere, or QEMU died. */
  failure?: { readonly reason: string; readonly consoleTail: string };
}

export interface RescueAssets {
  readonly rescueKernel: string;
  readonly rescueInitrd: string;
  readonly imagesDir: string;
}

export interface SupervisorOptions {
  readonly stateDir: string;
  readonly servers: readonly LabServerConfig[];
  /** Rescue kernel/initrd and the images dir; a rescue boot without them fails with a clear error. */
  readonly rescue?: RescueAssets;
  /** Directory exposed read-only as /root/.oldroot/nfs/install (the repo's lab/installimage). */
  readonly installDir: string;
  /** Debian mirror as the guest sees it, e.g. http://10.0.2.2:40081/debian. */
  readonly mirrorUrl: string;
  readonly accel?: Accel;
  readonly arbiter?: BootArbiter;
  readonly qemuBinary?: string;
  readonly log?: (line: string) => void;
}

export interface ServerStatus {
  readonly number: number;
  readonly name: string;
  readonly power: PowerState;
  readonly boot?: BootRecord;
  readonly sshPort: number;
  readonly dropbearPort: number;
}

const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";
const STOP_GRACE_MS = 5_000;

/** Events: `boot` (number, BootRecord), `boot-failed` (number, BootRecord), `state` (number, PowerState). */
export class LabSupervisor extends EventEmitter implements PowerController {
  private readonly vms = new Map<number, ServerVm>();
  private arbiter?: BootArbiter;

  constructor(private readonly opts: SupervisorOptions) {
    super();
    this.arbiter = opts.arbiter;
    for (const server of opts.servers) this.vms.set(server.number, new ServerVm(server, this, opts));
  }

  /**
   * SIGKILLs every QEMU at once, synchronously: for `process.on("exit")`, where nothing async runs,
   * so a test run that dies does not leave VMs holding its ports.
   */
  killAllNow(): void {
    for (const vm of this.vms.values()) vm.killNow();
  }

  /** The emulator's model; set after construction because the emulator needs this supervisor first. */
  setArbiter(arbiter: BootArbiter): void {
    this.arbiter = arbiter;
  }

  /** Creates missing disks and directories, and kills QEMUs a crashed earlier supervisor left behind. */
  async prepare(): Promise<void> {
    for (const vm of this.vms.values()) await vm.prepare();
  }

  /** Boots every server the way a delivered Hetzner server is: running, into whatever the Robot says next. */
  async startAll(): Promise<void> {
    await Promise.all([...this.vms.values()].map((vm) => vm.enqueue(() => vm.startIfOff(() => this.nextBoot(vm.server.number)))));
  }

  /** Forces every VM off (state on disk is kept). */
  async stopAll(): Promise<void> {
    await Promise.all([...this.vms.values()].map((vm) => vm.enqueue(() => vm.stop({ kind: "stayOff" }))));
  }

  reset(serverNumber: number, target: BootTarget): Promise<void> {
    return this.act(serverNumber, { kind: "reset", target });
  }
  powerOff(serverNumber: number): Promise<void> {
    return this.act(serverNumber, { kind: "powerOff" });
  }
  powerOn(serverNumber: number, target: BootTarget): Promise<void> {
    return this.act(serverNumber, { kind: "powerOn", target });
  }
  powerButton(serverNumber: number): Promise<void> {
    return this.act(serverNumber, { kind: "powerButton" });
  }
  /** Ctrl-Alt-Del on the server's keyboard, as on a KVM console: the guest decides what happens (usually a reboot). */
  async ctrlAltDelete(serverNumber: number): Promise<void> {
    await this.vm(serverNumber).sendKeys(["ctrl", "alt", "delete"]);
  }

  /** Takes disk `index` out of the chassis from the server's next power-on, reset or reboot on; returns the pulled set. */
  pullDrive(serverNumber: number, index: number): number[] {
    const vm = this.vm(serverNumber);
    return changePulledDrives(vm.dir, vm.server, { kind: "pull", index });
  }

  /** Puts disk `index` back from the server's next power-on, reset or reboot on; returns the pulled set. */
  insertDrive(serverNumber: number, index: number): number[] {
    const vm = this.vm(serverNumber);
    return changePulledDrives(vm.dir, vm.server, { kind: "insert", index });
  }

  /** The disks pulled as of now (what the next boot runs without; the current boot's are in its BootRecord). */
  pulledDrives(serverNumber: number): number[] {
    const vm = this.vm(serverNumber);
    return readPulledDrives(vm.dir, vm.server);
  }

  async state(serverNumber: number): Promise<PowerState> {
    return this.vm(serverNumber).powerState();
  }

  bootHistory(serverNumber: number): readonly BootRecord[] {
    return [...this.vm(serverNumber).history];
  }

  currentBoot(serverNumber: number): BootRecord | undefined {
    return this.vm(serverNumber).current;
  }

  /** Last `lines` lines of the current (or last) boot's console, escape sequences stripped. */
  consoleTail(serverNumber: number, lines = 40): string {
    const boot = this.vm(serverNumber).current;
    return boot ? consoleTailOf(readText(boot.consoleLog), lines) : "";
  }

  /** Waits until the current boot's console matches; fails with the console tail on timeout or a failed boot. */
  async waitForConsole(serverNumber: number, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const vm = this.vm(serverNumber);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const boot = vm.current;
      const match = boot ? readText(boot.consoleLog).match(pattern) : null;
      if (match && boot) {
        // Classify now: the caller saw the console, so the boot record must agree with it.
        vm.checkConsole(boot);
        return match;
      }
      if (Date.now() > deadline) {
        throw new Error(`server ${serverNumber}: console did not show ${pattern} within ${timeoutMs} ms (boot ${boot?.bootNo ?? "-"} ${boot?.mode ?? ""}). Console tail:\n${this.consoleTail(serverNumber)}`);
      }
      await sleep(250);
    }
  }

  status(): ServerStatus[] {
    return [...this.vms.values()].map((vm) => ({
      number: vm.server.number,
      name: vm.server.name,
      power: vm.powerState(),
      boot: vm.current,
      sshPort: vm.server.sshPort,
      dropbearPort: vm.server.dropbearPort,
    }));
  }

  /** @internal used by ServerVm for guest-initiated reboots. */
  nextBoot(serverNumber: number): BootTarget {
    return this.arbiter ? this.arbiter.takeNextBoot(serverNumber) : { kind: "disk" };
  }

  /** @internal */
  logLine(line: string): void {
    this.opts.log?.(line);
  }

  private async act(serverNumber: number, action: PowerAction): Promise<void> {
    const vm = this.vm(serverNumber);
    await vm.enqueue(async () => {
      const effect = decidePowerAction(action, vm.powerState());
      this.logLine(`[${vm.server.name}] ${action.kind}: ${effect.kind === "none" ? `nothing to do (${effect.why})` : effect.kind}`);
      switch (effect.kind) {
        case "none":
          return;
        case "start":
          return vm.start(effect.target);
        case "restart":
          return vm.restart(effect.target);
        case "stop":
          return void (await vm.stop({ kind: "stayOff" }));
        case "acpiPowerdown":
          return vm.acpiPowerdown();
      }
    });
  }

  private vm(serverNumber: number): ServerVm {
    const vm = this.vms.get(serverNumber);
    if (!vm) throw new Error(`no lab server ${serverNumber}; known: ${[...this.vms.keys()].join(", ")}`);
    return vm;
  }
}

/** One server's VM: at most one QEMU process, and every action on it serialized. */
class ServerVm {
  readonly history: BootRecord[] = [];
  current?: BootRecord;
  private proc?: ChildProcess;
  private qmp?: QmpClient;
  private intent?: ExitIntent;
  private shutdownReason?: string;
  private exited?: Promise<AfterExit>;
  private startPending = false;
  /** Bumped by every Robot action, so a queued restart after a guest reboot knows it was overtaken. */
  private rebootToken = 0;
  private consoleWatch?: NodeJS.Timeout;
  private queue: Promise<unknown> = Promise.resolve();
  readonly dir: string;

  constructor(
    readonly server: LabServerConfig,
    private readonly supervisor: LabSupervisor,
    private readonly opts: SupervisorOptions,
  ) {
    this.dir = path.join(opts.stateDir, "servers", String(server.number));
  }

  enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(job, job);
    this.queue = run.catch(() => undefined);
    return run;
  }

  powerState(): PowerState {
    return this.proc || this.startPending ? "running" : "off";
  }

  async prepare(): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    await killStaleQemu(path.join(this.dir, "qemu.pid"), this.dir);
    for (const disk of this.diskPaths()) {
      if (fs.existsSync(disk)) continue;
      const qemuImg = this.opts.qemuBinary ? path.join(path.dirname(this.opts.qemuBinary), "qemu-img") : "qemu-img";
      // Sparse: a 20 GiB qcow2 starts at a few hundred KiB.
      await execFileAsync(qemuImg, ["create", "-q", "-f", "qcow2", disk, `${this.server.disks.sizeGiB}G`]);
    }
    if (this.server.firmware === "uefi" && !fs.existsSync(this.ovmfVarsPath())) fs.copyFileSync(OVMF_VARS, this.ovmfVarsPath());
  }

  async startIfOff(target: () => BootTarget): Promise<void> {
    if (this.powerState() === "off") await this.start(target());
  }

  async restart(target: BootTarget): Promise<void> {
    const after = await this.stop({ kind: "restart", target });
    if (after.kind === "boot") await this.start(after.target);
  }

  /** Stops QEMU (QMP quit, then SIGKILL) and resolves with what the exit means. */
  async stop(intent: ExitIntent): Promise<AfterExit> {
    this.rebootToken++;
    this.startPending = false;
    if (!this.proc || !this.exited) return intent.kind === "restart" ? { kind: "boot", target: intent.target } : { kind: "off" };
    this.intent = intent;
    const exited = this.exited;
    const proc = this.proc;
    await this.qmp?.execute("quit").catch(() => undefined);
    const killTimer = setTimeout(() => proc.kill("SIGKILL"), STOP_GRACE_MS);
    try {
      return await exited;
    } finally {
      clearTimeout(killTimer);
    }
  }

  killNow(): void {
    this.intent = { kind: "stayOff" };
    this.proc?.kill("SIGKILL");
  }

  async sendKeys(keys: readonly string[]): Promise<void> {
    if (!this.qmp) throw new Error(`server ${this.server.number} is off; no keyboard to type on`);
    await this.qmp.execute("send-key", { keys: keys.map((data) => ({ type: "qcode", data })) });
  }

  async acpiPowerdown(): Promise<void> {
    await this.qmp?.execute("system_powerdown");
  }

  async start(target: BootTarget): Promise<void> {
    this.startPending = true;
    try {
      await this.spawnQemu(target);
    } finally {
      this.startPending = false;
    }
  }

  private async spawnQemu(target: BootTarget): Promise<void> {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const bootNo = nextBootNo(fs.readdirSync(this.dir));
    // Read at every launch: the CLI changes the file from another process, and a pull acts like one
    // done on a powered-off chassis, seen by the next boot and never by a running one.
    const pulledDrives = readPulledDrives(this.dir, this.server);
    const record: BootRecord = { bootNo, mode: target.kind, pulledDrives, consoleLog: path.join(this.dir, consoleFileName(bootNo, target.kind)), startedAt: new Date().toISOString() };
    const fifo = target.kind === "rescue" ? path.join(this.dir, "rescue.json.fifo") : undefined;
    const launch: VmLaunch = { server: this.server, paths: this.vmPaths(record.consoleLog), boot: target.kind === "rescue" ? this.rescueLaunch(fifo as string) : { kind: "disk" }, accel: this.opts.accel ?? "tcg", pulledDrives };
    const argv = qemuArgv(launch);
    // Only now: a boot that cannot even be described must not leave a console file that claims a boot number.
    fs.writeFileSync(record.consoleLog, "");
    if (fifo) makeFifo(fifo);

    const qemu = this.opts.qemuBinary ?? "qemu-system-x86_64";
    const proc = spawn(qemu, argv, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    proc.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
    this.proc = proc;
    this.current = record;
    this.history.push(record);
    this.shutdownReason = undefined;
    this.exited = new Promise<AfterExit>((resolve) => {
      proc.once("exit", (code, signal) => resolve(this.onExit(proc, record, { exitCode: code, signal, shutdownReason: this.shutdownReason }, stderr)));
      proc.once("error", (err) => {
        stderr += `\n${err.message}`;
      });
    });
    // The rescue secrets go through a FIFO: QEMU reads fw_cfg files once at start-up, so the
    // password and private host key never rest in a file on disk.
    const feeding = fifo && target.kind === "rescue" ? feedFifo(fifo, rescueJson(target.rescue, this.opts.mirrorUrl)) : undefined;
    try {
      this.qmp = await QmpClient.connect(this.qmpSocketPath(), { isAlive: () => this.proc === proc });
      this.qmp.on("event", (e: { event: string; data?: Record<string, unknown> }) => {
        if (e.event === "SHUTDOWN") this.shutdownReason = String(e.data?.reason ?? "");
      });
    } catch (err) {
      proc.kill("SIGKILL");
      await this.exited;
      throw new Error(`server ${this.server.number} (${this.server.name}): QEMU did not start: ${(err as Error).message}\n${stderr.trim()}`);
    } finally {
      if (fifo) {
        unblockFifo(fifo);
        await feeding;
        fs.rmSync(fifo, { force: true });
      }
    }
    this.watchConsole(record);
    this.supervisor.logLine(`[${this.server.name}] boot ${bootNo} (${target.kind}) started${pulledDrives.length > 0 ? ` with disk ${pulledDrives.join(", ")} pulled` : ""}, console ${record.consoleLog}`);
    this.supervisor.emit("boot", this.server.number, record);
  }

  private onExit(proc: ChildProcess, record: BootRecord, exit: VmExit, stderr: string): AfterExit {
    if (this.proc === proc) {
      this.proc = undefined;
      this.qmp?.close();
      this.qmp = undefined;
    }
    if (this.consoleWatch) clearInterval(this.consoleWatch);
    this.consoleWatch = undefined;
    record.endedAt = new Date().toISOString();
    record.exit = exit;
    const intent = this.intent;
    this.intent = undefined;
    const after = decideAfterExit(intent, exit);
    this.checkConsole(record);
    if (after.kind === "off" && after.failure && !record.failure) {
      this.fail(record, `${after.failure}${stderr.trim() ? `; QEMU said: ${stderr.trim()}` : ""}`);
    }
    this.supervisor.logLine(`[${this.server.name}] boot ${record.bootNo} (${record.mode}) ended: ${exit.shutdownReason ?? `exit ${exit.exitCode ?? exit.signal}`} → ${after.kind}`);
    if (!intent) this.followUnrequestedExit(after);
    this.supervisor.emit("state", this.server.number, this.powerState());
    return after;
  }

  /** The guest rebooted or powered off by itself: carry out what that means, in the queue. */
  private followUnrequestedExit(after: AfterExit): void {
    if (after.kind === "off") return;
    const token = ++this.rebootToken;
    this.startPending = true; // a rebooting server reads as running, as on real hardware
    void this.enqueue(async () => {
      if (token !== this.rebootToken || this.proc) return; // a Robot action got there first
      const target = after.kind === "boot" ? after.target : this.supervisor.nextBoot(this.server.number);
      await this.start(target);
    }).catch((err) => this.supervisor.logLine(`[${this.server.name}] restart after guest reboot failed: ${(err as Error).message}`));
  }

  private watchConsole(record: BootRecord): void {
    this.consoleWatch = setInterval(() => this.checkConsole(record), 1000);
    this.consoleWatch.unref();
  }

  checkConsole(record: BootRecord): void {
    if (record.failure) return;
    const reason = detectBootFailure(readText(record.consoleLog));
    if (reason) this.fail(record, reason);
  }

  private fail(record: BootRecord, reason: string): void {
    record.failure = { reason, consoleTail: consoleTailOf(readText(record.consoleLog), 30) };
    this.supervisor.logLine(`[${this.server.name}] boot ${record.bootNo} (${record.mode}) failed: ${reason}\n${record.failure.consoleTail}`);
    this.supervisor.emit("boot-failed", this.server.number, record);
  }

  private rescueLaunch(fifo: string): RescueBootLaunch {
    const assets = this.opts.rescue;
    if (!assets) throw new Error(`server ${this.server.number}: a rescue boot was requested but the lab has no rescue kernel/initrd (ensureLabImages() did not run)`);
    return { kind: "rescue", kernel: assets.rescueKernel, initrd: assets.rescueInitrd, cmdline: rescueCmdline(), rescueJson: fifo, imagesDir: assets.imagesDir, installDir: this.opts.installDir };
  }

  private vmPaths(consoleLog: string): VmPaths {
    const uefi = this.server.firmware === "uefi";
    return {
      disks: this.diskPaths(),
      consoleLog,
      qmpSocket: this.qmpSocketPath(),
      pidFile: path.join(this.dir, "qemu.pid"),
      ovmfCode: uefi ? OVMF_CODE : undefined,
      ovmfVars: uefi ? this.ovmfVarsPath() : undefined,
    };
  }

  private qmpSocketPath(): string {
    const inDir = path.join(this.dir, "qmp.sock");
    // sun_path holds 108 bytes; a deep state dir would make QEMU refuse the socket.
    if (Buffer.byteLength(inDir) < 100) return inDir;
    return path.join(os.tmpdir(), `hfde-qmp-${createHash("sha256").update(inDir).digest("hex").slice(0, 16)}.sock`);
  }

  private diskPaths(): string[] {
    return Array.from({ length: this.server.disks.count }, (_, i) => path.join(this.dir, `disk${i}.qcow2`));
  }

  private ovmfVarsPath(): string {
    return path.join(this.dir, "OVMF_VARS.fd");
  }
}

/** The fw_cfg rescue.json the rescue init reads (contract). */
export function rescueJson(spec: RescueBootSpec, mirrorUrl: string): string {
  return JSON.stringify({
    hostname: "rescue",
    password: spec.password,
    authorizedKeys: spec.authorizedKeys,
    hostKeys: spec.hostKeys.map((k) => ({ type: k.type, privateKey: k.privateKey, publicKey: k.publicKey })),
    mirrorUrl,
  });
}

function makeFifo(fifo: string): void {
  fs.rmSync(fifo, { force: true });
  // mkfifo(1): Node has no mkfifo binding; the path is ours, no user input reaches argv.
  execFileSync("mkfifo", ["-m", "0600", fifo]);
}

async function feedFifo(fifo: string, content: string): Promise<void> {
  try {
    // Opening for write blocks until QEMU opens the FIFO for reading.
    await fs.promises.writeFile(fifo, content);
  } catch {
    // QEMU died before reading; the start error reports why.
  }
}

/** If QEMU died before opening the FIFO, our writer still waits on open(); a reader releases it. */
function unblockFifo(fifo: string): void {
  try {
    const fd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    setTimeout(() => fs.closeSync(fd), 100);
  } catch {
    // already gone
  }
}

export async function killStaleQemu(pidFile: string, dir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(pidFile, "utf8").trim());
  } catch {
    return;
  }
  // Only a QEMU whose command line names this server's directory: pids get reused.
  let cmdline = "";
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    fs.rmSync(pidFile, { force: true });
    return;
  }
  if (!cmdline.includes("qemu-system") || !cmdline.includes(dir)) return;
  process.kill(pid, "SIGKILL");
  for (let i = 0; i < 50 && fs.existsSync(`/proc/${pid}`); i++) await sleep(100);
  fs.rmSync(pidFile, { force: true });
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "latin1");
  } catch {
    return "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
