// `npm run lab -- drill [--drive 0|1]`: the degraded-boot drill (issue 14 §7) on the host the demo
// built (`npm run demo`: the lab stack, host lab-1, state under the lab's demo directory). For each
// RAID1 drive in turn: pull it, reset the server through Robot, and let the stack do its job:
// refresh finds the host locked in its initramfs, `up` unlocks it through dropbear, the system comes
// up degraded and refresh reports the arrays degraded. Then the drive goes back, another reset, and
// `up` unlocks and re-adds the members (raid.reassemble: scan); the drill waits for the resync.
// Every line carries the elapsed time. A drill that fails says at which drive and which stage.
import { spawn } from "child_process";
import * as path from "path";
import * as readline from "readline";
import { childNames } from "../components/encrypted-raid-host";
import { labStateDir } from "../lab/config";
import { LAB_SECRETS } from "../lab/secrets";
import { RobotClient } from "../providers/plumbing/robot/client";
import { Secret } from "../providers/plumbing/secret";
import { LAB_STACK, LabStack, labCommand, labHost, openLabStack } from "./lab-stack";
import { readProject } from "./stack-config";
import { StateStore } from "./state";
import { plainValues } from "./wire";

const HOST = "lab-1";
const LOCKED_TIMEOUT_MS = 20 * 60_000;
const RESYNC_TIMEOUT_MS = 60 * 60_000;
const POLL_MS = 15_000;

interface HostView {
  readonly dropbear: { environment: string };
  readonly layout: { arrays: { device: string; degraded: boolean }[] };
}

export interface DrillOptions {
  /** Drive indexes to pull, one after the other (default: every drive of the host). */
  readonly drives?: readonly number[];
  readonly print?: (line: string) => void;
  /** Where the stack lives (its project and state): the demo's directory unless given (the e2e test has its own). */
  readonly dir?: string;
}

/** What a drill run needs to know about the demo's stack: where it is and which server/drives lab-1 is. */
interface DrillTarget {
  readonly stack: LabStack;
  readonly stateDir: string;
  readonly serverNumber: number;
  readonly drives: readonly { path: string; serial?: string }[];
  readonly robotUrl: string;
  readonly robotUser: string;
}

export function drillTarget(dir: string = path.join(labStateDir(), "demo")): DrillTarget {
  const stack = openLabStack(dir, [HOST]);
  const { host, robotUrl, robotUser } = labHost(stack, HOST);
  return { stack, stateDir: path.join(dir, "state"), serverNumber: host.target.robot.serverNumber, drives: host.drives, robotUrl, robotUser };
}

export async function runDrill(opts: DrillOptions = {}): Promise<number> {
  const started = Date.now();
  const say = opts.print ?? ((line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s] ${line}`));
  const target = drillTarget(opts.dir);
  const project = readProject(target.stack.projectDir);
  // The resources' own outputs, not the stack's: refresh updates those, and never re-runs the
  // program that computes the stack outputs (the first e2e drill waited on them for 20 min).
  const hostView = (): HostView | undefined => {
    const resources = new StateStore(target.stateDir, LAB_STACK).load(project.name).resources;
    const outputsOf = (name: string): Record<string, unknown> | undefined => {
      const entry = resources.find((r) => r.custom && r.urn.endsWith(`::${name}`));
      return entry ? (plainValues(entry.outputs) as Record<string, unknown>) : undefined;
    };
    const names = childNames(HOST);
    const dropbear = outputsOf(names.dropbear);
    const install = outputsOf(names.install);
    if (!dropbear || !install) return undefined;
    return { dropbear: { environment: String(dropbear.environment) }, layout: { arrays: (install.layout as HostView["layout"]).arrays } };
  };
  if (!hostView()) {
    say(`no ${HOST} in the demo's stack (${target.stateDir}): run npm run demo first, then the drill`);
    return 2;
  }
  const drives = opts.drives ?? target.drives.map((_, i) => i);
  const outOfRange = drives.filter((i) => i >= target.drives.length);
  if (outOfRange.length > 0) throw new Error(`--drive ${outOfRange.join(", ")}: ${HOST} has ${target.drives.length} drives, numbered from 0`);
  const robot = new RobotClient({ user: target.robotUser, password: new Secret(LAB_SECRETS.robotPassword), baseUrl: target.robotUrl });
  const verb = async (name: "up" | "refresh"): Promise<void> => {
    const code = await engineVerb(name, target, (line) => say(`  ${line}`));
    if (code !== 0) throw new Error(`${name} failed (exit ${code}); its output is above`);
  };
  const drive = (action: "pull" | "insert", index: number): void => {
    const r = labCommand(target.stack, ["drive", action, String(target.serverNumber), String(index)], process.env, false);
    if (r.status !== 0) throw new Error(`npm run lab -- drive ${action} failed:\n${r.out}`);
  };
  /** Refresh until the stack sees the host waiting in its initramfs (dropbear may take a while to answer). */
  const refreshUntilLocked = async (): Promise<void> => {
    const deadline = Date.now() + LOCKED_TIMEOUT_MS;
    for (;;) {
      await verb("refresh").catch((error: unknown) => say(`  (${(error as Error).message}; trying again)`));
      if (hostView()?.dropbear.environment === "initramfs") return;
      if (Date.now() > deadline) throw new Error(`the host did not show up locked in its initramfs within ${LOCKED_TIMEOUT_MS / 60_000} min; npm run lab -- console ${target.serverNumber} shows why`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  const arraysLine = (): string => (hostView()?.layout.arrays ?? []).map((a) => `${a.device} ${a.degraded ? "DEGRADED" : "clean"}`).join(", ");

  for (const index of drives) {
    const which = `drive ${index} (${target.drives[index].path}${target.drives[index].serial ? ` serial ${target.drives[index].serial}` : ""})`;
    say(`== ${which}: pulled, reset`);
    drive("pull", index);
    try {
      await robot.reset(target.serverNumber, "hw");
      await refreshUntilLocked();
      say(`${which} out: the host waits locked in its initramfs; up unlocks it`);
      await verb("up");
      await verb("refresh");
      const degraded = hostView()?.layout.arrays.filter((a) => a.degraded) ?? [];
      say(`${which} out: booted, unlocked, arrays: ${arraysLine()}`);
      if (hostView()?.dropbear.environment !== "system" || degraded.length === 0) throw new Error(`${which} out: expected the system up with degraded arrays, found ${hostView()?.dropbear.environment} and ${arraysLine()}`);
    } finally {
      drive("insert", index);
    }
    say(`== ${which}: back, reset`);
    await robot.reset(target.serverNumber, "hw");
    await refreshUntilLocked();
    say(`${which} back: the host waits locked; up unlocks it, the next re-adds the members, and the drill waits for the resync`);
    const deadline = Date.now() + RESYNC_TIMEOUT_MS;
    for (;;) {
      // The first up unlocks; the refresh after it sees the returned drive's stale members out of the
      // arrays, and the next up re-adds them; then nothing is planned while the resync runs.
      await verb("up");
      await verb("refresh");
      if (hostView()?.layout.arrays.every((a) => !a.degraded)) break;
      if (Date.now() > deadline) throw new Error(`${which} back: the arrays are still degraded after ${RESYNC_TIMEOUT_MS / 60_000} min: ${arraysLine()}`);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    say(`${which} back: ${arraysLine()}`);
  }
  // The stack's outputs (what monitoring reads) are computed by up, not by refresh: bring them up to date.
  await verb("up");
  say(`drill done: ${drives.length} drive(s), each pulled and put back; the host is clean and unlocked`);
  return 0;
}

/**
 * One verb of the engine CLI in its own process, its output line by line. Never in this process:
 * Node runs the program module once, so a second `up` here would register nothing and delete the
 * whole stack (the engine now refuses that; the drill's first version wiped its host so).
 */
async function engineVerb(name: "up" | "refresh", target: DrillTarget, print: (line: string) => void): Promise<number> {
  const cli = path.join(__dirname, "cli.js");
  const child = spawn(process.execPath, [cli, name, "--stack", LAB_STACK, "--dir", target.stack.projectDir, "--state-dir", target.stateDir], { env: process.env, stdio: ["ignore", "pipe", "pipe"] });
  const lines = [child.stdout, child.stderr].map((stream) => new Promise<void>((resolve) => readline.createInterface({ input: stream }).on("line", print).on("close", resolve)));
  const code = await new Promise<number>((resolve) => child.on("close", (status) => resolve(status ?? 1)));
  await Promise.all(lines);
  return code;
}
