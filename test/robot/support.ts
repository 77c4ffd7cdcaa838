// Shared by the Robot tests: an emulator on port 0 with a recording fake PowerController, and a
// client of the project pointed at it. Waits are tiny (rate-limit interval 0.05 s) so files stay fast.
import { mkdtempSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";
import { RobotClient, RobotClientOptions } from "../../providers/plumbing/robot";
import type { BootTarget, PowerController, PowerState } from "../../lab/robot/power";
import { RobotEmulator, RobotEmulatorOptions, startRobotEmulator, ServerSpec } from "../../lab/robot/server";

export const USER = "#ws+robot";
export const PASSWORD = "s3cret-webservice-pw";

export type PowerCall =
  | { op: "reset"; server: number; target: BootTarget }
  | { op: "powerOn"; server: number; target: BootTarget }
  | { op: "powerOff"; server: number }
  | { op: "powerButton"; server: number };

/** Records every call; a running guest obeys the power button by switching off. */
export class RecordingPower implements PowerController {
  readonly calls: PowerCall[] = [];
  readonly states = new Map<number, PowerState>();
  failNext = false;

  async reset(server: number, target: BootTarget): Promise<void> {
    this.maybeFail();
    this.calls.push({ op: "reset", server, target });
  }
  async powerOff(server: number): Promise<void> {
    this.calls.push({ op: "powerOff", server });
    this.states.set(server, "off");
  }
  async powerOn(server: number, target: BootTarget): Promise<void> {
    this.calls.push({ op: "powerOn", server, target });
    this.states.set(server, "running");
  }
  async powerButton(server: number): Promise<void> {
    this.calls.push({ op: "powerButton", server });
    this.states.set(server, "off");
  }
  async state(server: number): Promise<PowerState> {
    return this.states.get(server) ?? "running";
  }
  private maybeFail(): void {
    if (!this.failNext) return;
    this.failNext = false;
    throw new Error("qemu refused");
  }
}

export const SERVERS: ServerSpec[] = [
  { number: 1001, name: "alpha", ipv4: "203.0.113.10", ipv6Net: "2a01:4f8:111:4221::", product: "AX41-NVMe", dc: "FSN1-DC10" },
  { number: 1002, ipv4: "203.0.113.11", ipv6Net: "2a01:4f8:111:4222::", resetTypes: ["sw", "hw", "man"], features: { wol: false } },
  { number: 1003, ipv4: null, ipv6Net: "2a01:4f8:111:4223::", features: { reset: false, rescue: false } },
];

/** A clock that follows real time plus a settable offset, so expiry can be jumped over. */
export class TestClock {
  offsetMs = 0;
  readonly now = (): number => Date.now() + this.offsetMs;
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface Lab {
  emulator: RobotEmulator;
  power: RecordingPower;
  clock: TestClock;
  client: RobotClient;
  clientWith(options: Partial<RobotClientOptions>): RobotClient;
}

export async function startLab(options: Partial<RobotEmulatorOptions> = {}): Promise<Lab> {
  const power = new RecordingPower();
  const clock = new TestClock();
  const emulator = await startRobotEmulator({
    users: [{ user: USER, password: PASSWORD }],
    servers: SERVERS,
    power,
    clock: clock.now,
    rateLimits: { interval: 0.05 },
    ...options,
  });
  const clientWith = (more: Partial<RobotClientOptions>): RobotClient =>
    new RobotClient({ user: USER, password: new Secret(PASSWORD), baseUrl: emulator.url, ...more });
  return { emulator, power, clock, client: clientWith({}), clientWith };
}

export function newPublicKey(comment = "test@host"): string {
  return generateEd25519KeyPair(comment).public;
}

export function tempStateFile(): string {
  return join(mkdtempSync(join(tmpdir(), "robot-emu-")), "state", "robot.json");
}

/** Runs `fn` expecting a rejection and returns the error (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** A raw HTTP request with the right credentials, for shapes the client never sends. */
export async function rawRequest(url: string, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const auth = "Basic " + Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
  const response = await fetch(url + path, { method, body, headers: { Authorization: auth, "Content-Type": "application/x-www-form-urlencoded", ...headers } });
  return { status: response.status, text: await response.text() };
}
