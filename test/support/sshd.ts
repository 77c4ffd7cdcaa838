// A real OpenSSH sshd on a free loopback port, with its own host key and one authorized user key,
// all inside a temp dir. Tests talk to it exactly as the providers talk to a server.
import { ChildProcess, execFileSync, spawn } from "child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { createServer } from "net";
import { tmpdir, userInfo } from "os";
import { join } from "path";
import { parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";
import type { SshTarget } from "../../providers/plumbing/ssh";

const SSHD = "/usr/sbin/sshd";
const STARTUP_TIMEOUT_MS = 10_000;

export interface SshdFixture {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly privateKey: Secret;
  /** `SHA256:…` of the fixture's ed25519 host key. */
  readonly hostKeyFingerprint: string;
  /** The temp dir holding keys, config and pid file. */
  readonly dir: string;
  /** Stops sshd (existing sessions keep running in their own processes). Safe to call twice. */
  stop(): Promise<void>;
  /** Starts sshd again on the same port with the same keys. */
  start(): Promise<void>;
  /** stop() and remove the temp dir. */
  dispose(): Promise<void>;
  /** What sshd printed on stderr (-e), for diagnosing a failing test. */
  log(): string;
}

export async function startSshd(options: { extraConfig?: readonly string[] } = {}): Promise<SshdFixture> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} not found: the SSH tests need a real OpenSSH server. Install it with: apt-get install -y openssh-server`);
  }
  // sshd refuses to start without its privilege separation directory.
  mkdirSync("/run/sshd", { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), "fde-sshd-"));
  generateKey(join(dir, "host_ed25519"));
  generateKey(join(dir, "user_ed25519"));
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "user_ed25519.pub")));
  const hostKeyFingerprint = sha256Fingerprint(parsePublicKey(readFileSync(join(dir, "host_ed25519.pub"), "utf8")));
  const user = userInfo().username;

  let port = 0;
  let child: ChildProcess | undefined;
  let stderr = "";
  const killOnExit = (): void => {
    child?.kill("SIGKILL");
  };
  process.once("exit", killOnExit);

  const start = async (): Promise<void> => {
    if (child) return;
    writeFileSync(join(dir, "sshd_config"), sshdConfig(dir, port, options.extraConfig ?? []));
    const proc = spawn(SSHD, ["-D", "-e", "-f", join(dir, "sshd_config")], { stdio: ["ignore", "ignore", "pipe"] });
    child = proc;
    // Only this run's output counts: a restart must not match the previous "Server listening".
    const from = stderr.length;
    await waitForListening(proc, () => stderr.slice(from), (chunk) => (stderr += chunk));
  };
  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    child = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once("exit", () => resolve());
      proc.kill("SIGTERM");
    });
  };

  // Another process may take the port between our probe and sshd's bind; try a fresh one.
  for (let tries = 1; ; tries++) {
    port = await freeLoopbackPort();
    try {
      await start();
      break;
    } catch (error) {
      await stop();
      if (tries >= 3) throw error;
    }
  }

  return {
    host: "127.0.0.1",
    get port() {
      return port;
    },
    user,
    privateKey: new Secret(readFileSync(join(dir, "user_ed25519"), "utf8")),
    hostKeyFingerprint,
    dir,
    stop,
    start,
    dispose: async () => {
      await stop();
      process.removeListener("exit", killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
    log: () => stderr,
  };
}

function generateKey(path: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "fde-test", "-f", path], { stdio: "ignore" });
}

function sshdConfig(dir: string, port: number, extra: readonly string[]): string {
  return [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${join(dir, "host_ed25519")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    `PidFile ${join(dir, "sshd.pid")}`,
    "UsePAM no",
    "StrictModes no",
    "PubkeyAuthentication yes",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "PermitRootLogin prohibit-password",
    // Tests open several connections at once; the default 10:30:100 drops some at random.
    "MaxStartups 100",
    ...(extra.some((line) => /^LogLevel/i.test(line)) ? [] : ["LogLevel INFO"]),
    ...extra,
    "",
  ].join("\n");
}

/** A port that was free a moment ago: bind :0 on loopback, read the port, close. */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function waitForListening(proc: ChildProcess, log: () => string, append: (chunk: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`sshd did not report "Server listening" within ${STARTUP_TIMEOUT_MS} ms; its output:\n${log()}`));
    }, STARTUP_TIMEOUT_MS);
    proc.stderr!.setEncoding("utf8");
    proc.stderr!.on("data", (chunk: string) => {
      append(chunk);
      if (/Server listening on/.test(log())) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`sshd exited (${code ?? signal}) before listening; its output:\n${log()}`));
    });
  });
}

/** An SshTarget for the fixture, pinned to its host key unless overridden. */
export function fixtureTarget(fixture: SshdFixture, overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    host: fixture.host,
    port: fixture.port,
    user: fixture.user,
    privateKey: fixture.privateKey,
    hostKey: { expect: [fixture.hostKeyFingerprint] },
    ...overrides,
  };
}
