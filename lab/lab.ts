// Assembles a running lab: Robot emulator + QEMU supervisor (+ the Debian mirror server when
// images are built). Used by the `lab up` daemon and, in-process, by the lab tests' fixture.

import * as fs from "fs";
import * as path from "path";
import { completeRestores, takeRestoredBoot } from "./checkpoints/store";
import type { LabConfig } from "./config";
import type { RobotModel } from "./robot/model";
import type { BootArbiter } from "./robot/power";
import { RobotEmulator, startRobotEmulator } from "./robot/server";
import { Accel } from "./supervisor/qemu-args";
import { LabSupervisor, RescueAssets } from "./supervisor/supervisor";

export interface LabRuntimeOptions {
  readonly config: LabConfig;
  readonly stateDir: string;
  /** Rescue kernel/initrd and images; without them a rescue boot fails with a clear error. */
  readonly rescue?: RescueAssets;
  /** Local Debian mirror directory to serve on config.mirror.port; omitted → no mirror server. */
  readonly mirrorDir?: string;
  /** Default: the repo's lab/installimage. */
  readonly installDir?: string;
  readonly accel?: Accel;
  /** Boot every server (as delivered Hetzner servers run). Default true. */
  readonly bootServers?: boolean;
  readonly log?: (line: string) => void;
}

export interface RunningLab {
  readonly config: LabConfig;
  readonly stateDir: string;
  readonly robotUrl: string;
  readonly emulator: RobotEmulator;
  readonly supervisor: LabSupervisor;
  /** Forces the VMs off and stops the servers; disks and emulator state stay. */
  close(): Promise<void>;
}

/** Repo root, from both lab/ (ts-node) and dist/lab/ (compiled). */
export const REPO_ROOT = path.resolve(__dirname, __dirname.split(path.sep).includes("dist") ? "../.." : "..");
export const DEFAULT_INSTALL_DIR = path.join(REPO_ROOT, "lab", "installimage");

/** QEMU accelerator: HFDE_LAB_ACCEL=tcg|tcg-multi|kvm; TCG by default since lab hosts have no KVM. */
export function accelFromEnv(env: NodeJS.ProcessEnv = process.env): Accel {
  const value = env.HFDE_LAB_ACCEL ?? "tcg";
  if (value === "tcg" || value === "tcg-multi" || value === "kvm") return value;
  throw new Error(`HFDE_LAB_ACCEL must be tcg, tcg-multi or kvm, got "${value}"`);
}

export async function startLab(opts: LabRuntimeOptions): Promise<RunningLab> {
  const { config, stateDir } = opts;
  fs.mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const closers: Array<() => Promise<void>> = [];
  try {
    // A checkpoint restore cut short after its commit point is finished before anything reads the state.
    await completeRestores(stateDir);
    if (opts.mirrorDir) {
      const { startMirrorServer } = await import("./mirror/server");
      const mirror = await startMirrorServer({ dir: opts.mirrorDir, port: config.mirror.port });
      closers.unshift(() => mirror.close());
    }
    const supervisor = new LabSupervisor({
      stateDir,
      servers: config.servers,
      rescue: opts.rescue,
      installDir: opts.installDir ?? DEFAULT_INSTALL_DIR,
      // The guest reaches the host's loopback through slirp's gateway.
      mirrorUrl: `http://10.0.2.2:${config.mirror.port}/debian`,
      accel: opts.accel ?? accelFromEnv(),
      log: opts.log,
    });
    await supervisor.prepare();
    closers.unshift(() => supervisor.stopAll());
    const emulator = await startRobotEmulator({
      port: config.robot.port,
      users: [{ user: config.robot.user, password: config.robot.password }],
      servers: config.servers.map((s) => ({ number: s.number, name: s.name, ipv4: "127.0.0.1", ipv6Net: `2a01:4f8:0:${(s.number % 0xffff).toString(16)}::` })),
      stateFile: path.join(stateDir, "robot-state.json"),
      power: supervisor,
      reportHostKeys: config.robot.reportHostKeys,
      onInternalError: (err) => opts.log?.(`Robot emulator internal error: ${(err as Error)?.stack ?? String(err)}`),
    });
    closers.unshift(() => emulator.close());
    if (opts.bootServers ?? true) {
      // Only this first start: any later boot (a Robot reset, a guest reboot) is the Robot's to decide.
      supervisor.setArbiter(restoredBootsFirst(stateDir, emulator.model));
      await supervisor.startAll();
    }
    supervisor.setArbiter(emulator.model);
    return {
      config,
      stateDir,
      robotUrl: emulator.url,
      emulator,
      supervisor,
      close: () => closeAll(closers),
    };
  } catch (err) {
    await closeAll(closers);
    throw err;
  }
}

/** A server restored from a checkpoint first boots what it ran when saved (lab/checkpoints); then the Robot decides. */
function restoredBootsFirst(stateDir: string, model: RobotModel): BootArbiter {
  return {
    takeNextBoot: (serverNumber) => takeRestoredBoot(stateDir, serverNumber, model.state(model.server(String(serverNumber)))) ?? model.takeNextBoot(serverNumber),
  };
}

async function closeAll(closers: Array<() => Promise<void>>): Promise<void> {
  // Emulator first (no new resets arrive), then VMs, then the mirror.
  for (const close of closers.splice(0)) await close().catch(() => undefined);
}
