// Shared fixture for lab tests: a Robot emulator + QEMU supervisor started in-process, with an
// isolated state dir and free ports, so tests never collide with a developer's `npm run lab -- up`.
//
//   const lab = await startLabFixture();                 // one server, booted from its blank disks
//   await lab.withRescue(lab.server().number, async (session, login) => { ... });
//   await lab.close();

import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { LabConfig, LabServerConfig, parseLabConfig } from "../../lab/config";
import { RunningLab, startLab } from "../../lab/lab";
import { nvmeSerial } from "../../lab/supervisor/qemu-args";
import { RescueAssets } from "../../lab/supervisor/supervisor";
import { GeneratedKeyPair, generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { RobotClient } from "../../providers/plumbing/robot";
import { Secret } from "../../providers/plumbing/secret";
import { connect, SshSession, SshTarget } from "../../providers/plumbing/ssh";
import { HarnessOptions, ProviderHarness, Props } from "../harness/harness";
import { track, untrack } from "./leftovers";

export interface LabFixtureOptions {
  /** Number of servers (100001, 100002, …). Default 1. */
  readonly servers?: number;
  /** Per-server overrides of the config (memoryMiB, disks, firmware, cpus). */
  readonly server?: Partial<Pick<LabServerConfig, "memoryMiB" | "cpus" | "disks" | "firmware">>;
  /**
   * true (default): ensureLabImages (rescue, OS images, mirror) and serve the mirror.
   * "rescue": only the rescue kernel/initrd, with an empty images dir and no mirror: for tests
   * that only need a rescue boot. false: nothing, so rescue boots fail (power tests).
   */
  readonly images?: boolean | "rescue";
  /** Boot the servers at start, as delivered. Default true. */
  readonly bootServers?: boolean;
  /** Keep the state dir after close (to read console logs of a failed run). Default: keep only if HFDE_KEEP_LAB=1. */
  readonly keepState?: boolean;
  /**
   * The mirror's port. Guests reach the mirror at 10.0.2.2:<port> (slirp maps it to 127.0.0.1:<port>),
   * and an installed system keeps that URL in its apt sources: a restored checkpoint needs the port
   * of the lab that built it. Default: a free port.
   */
  readonly mirrorPort?: number;
  /** Runs on the fresh state dir before the lab starts (test/support/prepared-host.ts restores a checkpoint here). */
  readonly beforeStart?: (stateDir: string, config: LabConfig) => Promise<void>;
}

/** What a test needs to log into a rescue boot. */
export interface RescueLogin {
  readonly serverNumber: number;
  readonly privateKey: Secret;
  readonly publicKey: string;
  /** SHA256 fingerprints the emulator reported in `host_key`. */
  readonly hostKeyFingerprints: readonly string[];
  readonly password: Secret;
  /** ms from `reset hw` to the SSH banner. */
  readonly bootToSshMs: number;
}

export interface LabFixture extends RunningLab {
  readonly robot: RobotClient;
  readonly logLines: string[];
  server(index?: number): LabServerConfig;
  /** Waits for an SSH banner on the server's port; fails early with the console tail if the boot failed. */
  waitForSsh(serverNumber: number, timeoutMs?: number): Promise<number>;
  /** Stores a fresh key, arms rescue with it, `reset hw`, and waits for the rescue's sshd. */
  bootIntoRescue(serverNumber: number): Promise<RescueLogin>;
  /** A verified SSH target for a rescue login (host key pinned to the emulator's host_key). */
  rescueTarget(login: RescueLogin): SshTarget;
  /** Boots into rescue (unless `login` of the current boot is given) and runs `fn` with a session. */
  withRescue<T>(serverNumber: number, fn: (session: SshSession, login: RescueLogin) => Promise<T>, login?: RescueLogin): Promise<T>;
  /** Pulls disk `index` out of the server from its next boot on (the file `npm run lab -- drive pull` writes); returns the pulled set. */
  pullDrive(serverNumber: number, index: number): number[];
  /** Inserts disk `index` back from the server's next boot on; returns the pulled set. */
  insertDrive(serverNumber: number, index: number): number[];
}

/** Rescue boots take ~45 s under TCG on the lab host; leave room for a loaded CI machine. */
export const RESCUE_BOOT_TIMEOUT_MS = 240_000;

/** Wall-clock phases of a lab file, printed at its end for bench/RESULTS.md. */
export function phaseTimer(title: string): { timed<T>(phase: string, fn: () => Promise<T>): Promise<T>; print(): void } {
  const timings: [string, number][] = [];
  return {
    async timed<T>(phase: string, fn: () => Promise<T>): Promise<T> {
      const started = Date.now();
      try {
        return await fn();
      } finally {
        timings.push([phase, Date.now() - started]);
      }
    },
    print(): void {
      process.stdout.write(`${title}:\n${timings.map(([phase, ms]) => `  ${(ms / 1000).toFixed(1).padStart(7)} s  ${phase}`).join("\n")}\n`);
    },
  };
}

/** A lab server's NVMe drives as InstallImage takes them, each pinned by the serial QEMU gives it. */
export function pinnedNvmeDrives(serverNumber: number, count = 2): { path: string; serial: string }[] {
  return Array.from({ length: count }, (_, i) => ({ path: `/dev/nvme${i}n1`, serial: nvmeSerial(serverNumber, i) }));
}

/** Stack config for a provider that logs in with `privateKey` and talks to this lab's Robot emulator. */
export function labStackConfig(lab: LabFixture, privateKey: string): Pick<HarnessOptions, "config" | "secretConfigKeys"> {
  return {
    config: {
      "hetzner-fde:sshPrivateKey": privateKey,
      "hetzner-fde:robotUrl": lab.robotUrl,
      "hetzner-fde:robotUser": lab.config.robot.user,
      "hetzner-fde:robotPassword": lab.config.robot.password,
    },
    secretConfigKeys: ["hetzner-fde:sshPrivateKey", "hetzner-fde:robotPassword"],
  };
}

/** A RescueBoot resource for a lab server, dialling its forwarded SSH port, in the real provider host. */
export function startRescueBootHarness(lab: LabFixture, serverNumber: number, operator: GeneratedKeyPair, args: Props = {}): Promise<ProviderHarness> {
  const port = lab.config.servers.find((s) => s.number === serverNumber)?.sshPort;
  if (port === undefined) throw new Error(`no lab server ${serverNumber}`);
  return ProviderHarness.start({
    module: "providers/rescue-boot",
    exportName: "RescueBoot",
    args: { serverNumber, authorizedKeys: [operator.public], connect: { host: "127.0.0.1", port }, ...args },
    ...labStackConfig(lab, operator.private),
    callTimeoutMs: 900_000,
  });
}

export async function startLabFixture(opts: LabFixtureOptions = {}): Promise<LabFixture> {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-lab-test-"));
  const config = await isolatedConfig(opts);
  if (opts.mirrorPort !== undefined && !(await portIsFree(opts.mirrorPort))) {
    throw new Error(`the lab mirror must listen on 127.0.0.1:${opts.mirrorPort} (the restored guests' apt sources name 10.0.2.2:${opts.mirrorPort}), but that port is in use; free it, or delete the checkpoint so it is built again`);
  }
  let rescue: RescueAssets | undefined;
  let mirrorDir: string | undefined;
  const images = opts.images ?? true;
  if (images === "rescue") {
    const { ensureRescue } = await import("../../lab/images");
    const built = await ensureRescue();
    const emptyImages = path.join(stateDir, "images");
    fs.mkdirSync(emptyImages);
    rescue = { rescueKernel: built.kernel, rescueInitrd: built.initrd, imagesDir: emptyImages };
  } else if (images) {
    const { ensureLabImages } = await import("../../lab/images");
    const built = await ensureLabImages();
    rescue = { rescueKernel: built.rescueKernel, rescueInitrd: built.rescueInitrd, imagesDir: built.imagesDir };
    mirrorDir = built.mirrorDir;
  }
  const logLines: string[] = [];
  try {
    await opts.beforeStart?.(stateDir, config);
  } catch (err) {
    fs.rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  const lab = await startLab({ config, stateDir, rescue, mirrorDir, bootServers: opts.bootServers, log: (line) => logLines.push(line) });
  // A test process that exits without afterAll (crash, --forceExit) must not leave VMs behind.
  const killVms = () => lab.supervisor.killAllNow();
  process.once("exit", killVms);
  const robot = new RobotClient({ user: config.robot.user, password: new Secret(config.robot.password), baseUrl: lab.robotUrl });

  const fixture: LabFixture = {
    ...lab,
    robot,
    logLines,
    server: (index = 0) => config.servers[index],
    waitForSsh: (serverNumber, timeoutMs = RESCUE_BOOT_TIMEOUT_MS) => waitForSshBanner(lab, serverNumber, timeoutMs),
    bootIntoRescue: (serverNumber) => bootIntoRescue(fixture, serverNumber),
    rescueTarget: (login) => ({
      host: "127.0.0.1",
      port: serverConfig(config, login.serverNumber).sshPort,
      user: "root",
      privateKey: login.privateKey,
      hostKey: { expect: login.hostKeyFingerprints },
      label: `rescue ${login.serverNumber}`,
    }),
    withRescue: async (serverNumber, fn, login) => {
      const current = login ?? (await fixture.bootIntoRescue(serverNumber));
      const session = await connect(fixture.rescueTarget(current), { budgetMs: 60_000 });
      try {
        return await fn(session, current);
      } finally {
        await Promise.resolve(session.close()).catch(() => undefined);
      }
    },
    pullDrive: (serverNumber, index) => lab.supervisor.pullDrive(serverNumber, index),
    insertDrive: (serverNumber, index) => lab.supervisor.insertDrive(serverNumber, index),
    close: async () => {
      if (closed) return;
      closed = true;
      untrack(fixture);
      process.removeListener("exit", killVms);
      await lab.close();
      if (!(opts.keepState ?? process.env.HFDE_KEEP_LAB === "1")) fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
  let closed = false;
  track(fixture, "lab fixture", () => fixture.close());
  return fixture;
}

async function bootIntoRescue(lab: LabFixture, serverNumber: number): Promise<RescueLogin> {
  const pair = generateEd25519KeyPair(`lab-test-${serverNumber}`);
  const { key } = await lab.robot.ensureKey(`lab-test-${process.pid}-${Date.now()}`, pair.public);
  const armed = await lab.robot.armRescue(serverNumber, { os: "linux", authorizedKeys: [key.fingerprint] });
  if (!armed.password) throw new Error(`Robot armed rescue on ${serverNumber} without a password`);
  const started = Date.now();
  await lab.robot.reset(serverNumber, "hw");
  await lab.waitForSsh(serverNumber);
  return {
    serverNumber,
    privateKey: new Secret(pair.private),
    publicKey: pair.public,
    hostKeyFingerprints: armed.hostKeys.map((k) => k.fingerprint),
    password: armed.password,
    bootToSshMs: Date.now() - started,
  };
}

/** Polls for `SSH-2.0-…`: QEMU's slirp accepts TCP even while the guest has no sshd, so a connect proves nothing. */
async function waitForSshBanner(lab: RunningLab, serverNumber: number, timeoutMs: number): Promise<number> {
  const port = serverConfig(lab.config, serverNumber).sshPort;
  const started = Date.now();
  for (;;) {
    const boot = lab.supervisor.currentBoot(serverNumber);
    if (boot?.failure) {
      throw new Error(`server ${serverNumber} boot ${boot.bootNo} (${boot.mode}) failed: ${boot.failure.reason}\nconsole tail:\n${boot.failure.consoleTail}`);
    }
    if ((await lab.supervisor.state(serverNumber)) === "off") throw new Error(`server ${serverNumber} is off; it will not answer SSH`);
    if (await readsSshBanner(port)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`server ${serverNumber}: no SSH banner on 127.0.0.1:${port} within ${timeoutMs / 1000} s (boot ${boot?.bootNo} ${boot?.mode}). Console tail:\n${lab.supervisor.consoleTail(serverNumber)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function readsSshBanner(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(3000, () => done(false));
    socket.once("data", (d) => done(d.toString("latin1").startsWith("SSH-")));
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
  });
}

function serverConfig(config: LabConfig, serverNumber: number): LabServerConfig {
  const server = config.servers.find((s) => s.number === serverNumber);
  if (!server) throw new Error(`no lab server ${serverNumber} in this fixture`);
  return server;
}

async function isolatedConfig(opts: LabFixtureOptions): Promise<LabConfig> {
  const count = opts.servers ?? 1;
  // All at once, so no two roles get the same just-released port.
  // One spare, so a fixed mirror port that the OS also handed out here can be skipped.
  const ports = (await freePorts(3 + 2 * count)).filter((port) => port !== opts.mirrorPort);
  return parseLabConfig(
    {
      robot: { port: ports[0], user: "robot", password: "lab-test-secret", reportHostKeys: true },
      mirror: { port: opts.mirrorPort ?? ports[1] },
      servers: Array.from({ length: count }, (_, i) => ({
        number: 100001 + i,
        name: `lab-${i + 1}`,
        sshPort: ports[2 + 2 * i],
        dropbearPort: ports[3 + 2 * i],
        ...opts.server,
      })),
    },
    "lab test fixture config",
  );
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve, reject) => {
      const s = net.createServer();
      s.once("error", reject);
      s.listen(0, "127.0.0.1", () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}
