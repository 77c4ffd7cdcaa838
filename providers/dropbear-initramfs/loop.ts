// The closed loop: reboot → dropbear answers with the pinned key → the passphrase on stdin to
// cryptroot-unlock → sshd answers with the system's pinned key → verify. Each stage that fails says
// how far the loop got, because that is what tells an operator where to look:
//   no dropbear                → the initramfs has no network or no dropbear (console needed);
//   dropbear, unlock failed    → wrong passphrase or crypttab; the host still waits, retry is safe;
//   unlocked, no sshd          → the system's boot or network after the switch (console needed).
// A dropbear that answers with another key is never sent the passphrase: the mismatch error names
// both fingerprints.
import type { ConnectionProfile } from "../kernel/host-access";
import { keepErrorMessage } from "../plumbing/errors";
import type { Logger } from "../plumbing/log";
import type { Secret } from "../plumbing/secret";
import { sh } from "../plumbing/shell";
import { connect, SshSession } from "../plumbing/ssh";
import { VERIFY_SH } from "./scripts";
import type { LoopTargets } from "./types";

/** How long each stage may take (software emulation boots in minutes; real hardware POSTs for several). */
export interface LoopBudget {
  readonly dropbearMs: number;
  readonly unlockMs: number;
  readonly systemMs: number;
  readonly pollMs: number;
}

export const DEFAULT_LOOP_BUDGET: LoopBudget = { dropbearMs: 20 * 60_000, unlockMs: 5 * 60_000, systemMs: 20 * 60_000, pollMs: 5000 };

export interface LoopResult {
  /** Seconds from the reboot (or from finding the host locked) to dropbear, to the unlock, to sshd. */
  readonly dropbearSeconds: number;
  readonly unlockedSeconds: number;
  readonly sshdSeconds: number;
  /** A session to the verified installed system. */
  readonly session: SshSession;
}

/** A stage of the loop failed; `stage` is how far it got. */
export class LoopError extends Error {
  readonly stage: "no-dropbear" | "unlock-failed" | "no-sshd" | "not-verified";
  constructor(stage: LoopError["stage"], message: string) {
    super(message);
    this.name = "LoopError";
    this.stage = stage;
    keepErrorMessage(this, message);
  }
}

function targetOf(profile: ConnectionProfile, privateKey: Secret) {
  return { host: profile.host, port: profile.port, user: profile.user, privateKey, hostKey: { expect: profile.hostKeyFingerprints }, label: `${profile.environment} ${profile.host}:${profile.port}` };
}

/**
 * Dials `profile` until it answers with its pinned key or the budget runs out. A key that belongs
 * to `alsoOurs` (the environment that is going away, or the one that comes next) means "not yet";
 * any other key is a hard error.
 */
async function waitFor(profile: ConnectionProfile, privateKey: Secret, log: Logger, budgetMs: number, pollMs: number, alsoOurs: readonly string[], what: string): Promise<SshSession> {
  const started = Date.now();
  let lastReport = 0;
  let why = "not tried yet";
  for (;;) {
    try {
      return await connect(targetOf(profile, privateKey), { maxAttempts: 1, attemptTimeoutMs: 20_000 });
    } catch (error) {
      if (error instanceof Error && error.name === "HostKeyMismatchError") {
        const observed = (error as Error & { observed?: { fingerprint?: string } }).observed?.fingerprint ?? "";
        if (!alsoOurs.includes(observed)) throw error;
        why = "the previous environment still answers";
      } else {
        why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      }
    }
    const elapsed = Date.now() - started;
    if (elapsed > budgetMs) throw new Error(`${what} did not answer on ${profile.host}:${profile.port} with the pinned key ${profile.hostKeyFingerprints.join(", ")} within ${Math.round(budgetMs / 1000)} s (last: ${why})`);
    if (elapsed - lastReport >= 30_000) {
      log.info(`waiting for ${what} on ${profile.host}:${profile.port} (${Math.round(elapsed / 1000)} s): ${why}`);
      lastReport = elapsed;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/**
 * Sends the passphrase to cryptroot-unlock. dropbear's init-bottom kills the session once the root
 * is unlocked, so a lost connection right after sending is the usual way success looks; the next
 * stage (sshd) tells. "Try again later" means the cryptroot prompt is not up yet.
 */
async function sendPassphrase(session: SshSession, passphrase: Secret, budgetMs: number, pollMs: number): Promise<void> {
  const started = Date.now();
  for (;;) {
    let output = "";
    try {
      // Any command runs cryptroot-unlock for an unlock-only key; a shell key runs it explicitly.
      const result = await session.exec(sh`/bin/cryptroot-unlock`, { stdin: passphrase, timeoutMs: budgetMs, okExitCodes: [0, 1] });
      if (result.exitCode === 0) return;
      output = `${result.stdout}\n${result.stderr}`.trim();
    } catch (error) {
      const failure = error as { name?: string; exitCode?: number | null; timedOut?: boolean; message?: string };
      // No exit status: the session was cut, which is what dropbear's init-bottom does after a good unlock.
      if (failure.name === "RemoteCommandError" && failure.exitCode === null && !failure.timedOut) return;
      const text = failure.message ?? String(error);
      throw new LoopError("unlock-failed", `dropbear answered with the pinned key, but cryptroot-unlock failed: ${text}`);
    }
    // Too early: cryptroot has not written its crypttab or started askpass yet.
    if (/try again later|waiting for askpass/i.test(output) && Date.now() - started < budgetMs) {
      await new Promise((resolve) => setTimeout(resolve, pollMs));
      continue;
    }
    // cryptroot-unlock gives cryptsetup 10 s; a slow KDF (or an emulated CPU) takes longer. The
    // passphrase was delivered; whether it opened the device, the next stage tells.
    if (/Timeout reached while waiting for PID/i.test(output)) return;
    throw new LoopError(
      "unlock-failed",
      `dropbear answered with the pinned key, but the unlock failed (${output.split("\n").filter(Boolean).slice(-2).join("; ") || "exit 1"}): ` +
        "check the passphrase (the stack's secret) and /etc/crypttab; the host still waits in its initramfs, so `pulumi up` can retry",
    );
  }
}

/**
 * The lab's hook for "no dropbear" and "no sshd": HFDE_LAB_CONSOLE_DIR names a lab server's state
 * directory, whose console-<boot>-<mode>.log files the lab supervisor writes; the tail of the
 * newest one goes into the error. Outside the lab the variable is unset and this returns "".
 */
export function labConsoleTail(lines = 30): string {
  const dir = process.env.HFDE_LAB_CONSOLE_DIR;
  if (!dir) return "";
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("fs") as typeof import("fs");
  try {
    const newest = fs
      .readdirSync(dir)
      .map((name) => ({ name, boot: Number(/^console-(\d+)-(?:rescue|disk)\.log$/.exec(name)?.[1] ?? -1) }))
      .filter((f) => f.boot >= 0)
      .sort((a, b) => b.boot - a.boot)[0];
    if (!newest) return "";
    // eslint-disable-next-line no-control-regex
    const text = fs.readFileSync(`${dir}/${newest.name}`, "utf8").replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** What verify.sh found that is not as configured. */
export function verifyProblems(text: string, hostname: string): string[] {
  const problems: string[] = [];
  const names: string[] = [];
  for (const line of text.split("\n")) {
    const [kind, name, state] = line.split(" ");
    if (kind === "hostname") names.push(line.slice("hostname ".length).trim());
    else if ((kind === "array" || kind === "luks" || kind === "mount") && state !== "1") {
      problems.push(kind === "array" ? `array ${name} is not assembled` : kind === "luks" ? `LUKS mapping ${name} is not open` : `${name} is not mounted`);
    }
  }
  const short = hostname.split(".")[0];
  if (!names.some((n) => n === hostname || n === short)) problems.push(`the host name is ${JSON.stringify(names[0] ?? "")}, expected ${JSON.stringify(hostname)}`);
  return problems;
}

/**
 * Waits for dropbear with the pinned key and sends it the passphrase; returns the seconds dropbear
 * took to answer. Another key is a HostKeyMismatchError naming both, and no passphrase is sent.
 */
export async function unlockThroughDropbear(
  initramfs: ConnectionProfile,
  passphrase: Secret,
  privateKey: Secret,
  log: Logger,
  previous: readonly string[],
  budget: LoopBudget = DEFAULT_LOOP_BUDGET,
  withConsole: (message: string) => string = (message) => message,
): Promise<number> {
  const started = Date.now();
  let dropbear: SshSession;
  try {
    dropbear = await waitFor(initramfs, privateKey, log, budget.dropbearMs, budget.pollMs, previous, "dropbear in the initramfs");
  } catch (error) {
    if (error instanceof Error && error.name === "HostKeyMismatchError") throw error;
    throw new LoopError("no-dropbear", withConsole(`no dropbear: ${(error as Error).message}. The initramfs has no network, no dropbear or another host key; the console shows which`));
  }
  const dropbearSeconds = Math.round((Date.now() - started) / 100) / 10;
  log.info(`dropbear answered with the pinned key after ${dropbearSeconds} s; sending the passphrase to cryptroot-unlock`);
  try {
    await sendPassphrase(dropbear, passphrase, budget.unlockMs, budget.pollMs);
  } finally {
    await dropbear.close();
  }
  return dropbearSeconds;
}

/**
 * Waits for dropbear, unlocks, waits for sshd and verifies. `started` is when the reboot was issued
 * (or the host found locked). Returns the verified system session; the caller closes it.
 */
export async function unlockAndVerify(
  targets: LoopTargets,
  passphrase: Secret,
  privateKey: Secret,
  log: Logger,
  previous: readonly string[],
  budget: LoopBudget = DEFAULT_LOOP_BUDGET,
  consoleTail: () => string = labConsoleTail,
): Promise<LoopResult> {
  const started = Date.now();
  const seconds = () => Math.round((Date.now() - started) / 100) / 10;
  const withConsole = (message: string) => {
    const tail = consoleTail();
    return tail ? `${message}\nConsole tail:\n${tail}` : message;
  };
  const dropbearSeconds = await unlockThroughDropbear(targets.initramfs, passphrase, privateKey, log, previous, budget, withConsole);
  const unlockedSeconds = seconds();
  let system: SshSession;
  try {
    system = await waitFor(targets.system, privateKey, log, budget.systemMs, budget.pollMs, targets.initramfs.hostKeyFingerprints, "the installed system's sshd");
  } catch (error) {
    if (error instanceof Error && error.name === "HostKeyMismatchError") throw error;
    // Still in the initramfs: the passphrase did not open the device.
    const stillLocked = await connect(targetOf(targets.initramfs, privateKey), { maxAttempts: 1, attemptTimeoutMs: 20_000 }).then(
      async (session) => {
        await session.close();
        return true;
      },
      () => false,
    );
    if (stillLocked) {
      throw new LoopError("unlock-failed", withConsole("the passphrase was sent to cryptroot-unlock, but the host still waits in its initramfs: the passphrase is wrong or the crypttab names another device; the host can be unlocked again by `pulumi up`"));
    }
    throw new LoopError("no-sshd", withConsole(`unlocked (dropbear is gone), but no sshd: ${(error as Error).message}. The system's boot or its network after the initramfs failed; the console shows which`));
  }
  const sshdSeconds = seconds();
  log.info(`the installed system answered with its pinned key after ${sshdSeconds} s; verifying`);
  const verified = await system.exec(sh`bash -s`, { stdin: VERIFY_SH, timeoutMs: 120_000 });
  const problems = verifyProblems(verified.stdout, targets.hostname);
  if (problems.length > 0) {
    await system.close();
    throw new LoopError("not-verified", `unlocked and sshd answers, but the system is not as configured: ${problems.join("; ")}`);
  }
  return { dropbearSeconds, unlockedSeconds, sshdSeconds, session: system };
}
