// The background process `npm run lab -- up` leaves running: Robot emulator + QEMU supervisor +
// Debian mirror server. It outlives the CLI (detached), records its pid, and publishes a status
// file the CLI reads, so `status` and `console` need no IPC.
//   node dist/lab/daemon.js <lab.config.json>     (state dir: HFDE_LAB_DIR)

import * as fs from "fs";
import * as path from "path";
import { labStateDir, loadLabConfig } from "./config";
import { RunningLab, startLab } from "./lab";
import type { ServerStatus } from "./supervisor/supervisor";

export interface DaemonStatus {
  readonly pid: number;
  readonly ready: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly robotUrl?: string;
  readonly mirrorUrl?: string;
  readonly servers: readonly ServerStatus[];
  /** Set when start-up failed; the CLI prints it. */
  readonly error?: string;
}

export const daemonFiles = (stateDir: string) => ({
  pid: path.join(stateDir, "daemon.pid"),
  log: path.join(stateDir, "daemon.log"),
  status: path.join(stateDir, "status.json"),
});

export function readDaemonStatus(stateDir: string): DaemonStatus | undefined {
  try {
    return JSON.parse(fs.readFileSync(daemonFiles(stateDir).status, "utf8")) as DaemonStatus;
  } catch {
    return undefined;
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function main(configPath: string): Promise<void> {
  const stateDir = labStateDir();
  const files = daemonFiles(stateDir);
  const startedAt = new Date().toISOString();
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  fs.writeFileSync(files.pid, String(process.pid));
  let lab: RunningLab | undefined;
  const writeStatus = (extra: Partial<DaemonStatus> = {}) => {
    const status: DaemonStatus = {
      pid: process.pid,
      ready: lab !== undefined,
      startedAt,
      updatedAt: new Date().toISOString(),
      robotUrl: lab?.robotUrl,
      mirrorUrl: lab ? `http://127.0.0.1:${lab.config.mirror.port}/debian` : undefined,
      servers: lab?.supervisor.status() ?? [],
      ...extra,
    };
    // Atomic replace: the CLI may read at any moment.
    fs.writeFileSync(`${files.status}.tmp`, JSON.stringify(status, null, 2));
    fs.renameSync(`${files.status}.tmp`, files.status);
  };

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping the lab (VMs off, state kept)`);
    await lab?.close();
    lab = undefined;
    writeStatus({ servers: [] });
    fs.rmSync(files.pid, { force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));

  try {
    writeStatus();
    const config = loadLabConfig(configPath);
    const { ensureLabImages } = await import("./images");
    const images = await ensureLabImages();
    lab = await startLab({
      config,
      stateDir,
      rescue: { rescueKernel: images.rescueKernel, rescueInitrd: images.rescueInitrd, imagesDir: images.imagesDir },
      mirrorDir: images.mirrorDir,
      log,
    });
    for (const event of ["boot", "boot-failed", "state"]) lab.supervisor.on(event, () => writeStatus());
    writeStatus();
    log(`lab up: Robot ${lab.robotUrl}, ${config.servers.length} servers`);
  } catch (err) {
    log(`lab failed to start: ${(err as Error).stack ?? String(err)}`);
    writeStatus({ error: (err as Error).message });
    await lab?.close();
    fs.rmSync(files.pid, { force: true });
    process.exit(1);
  }
}

if (require.main === module) {
  void main(process.argv[2] ?? path.join(__dirname, "lab.config.json"));
}
