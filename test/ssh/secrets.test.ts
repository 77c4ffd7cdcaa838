import { execFileSync } from "child_process";
import { rmSync, writeFileSync } from "fs";
import * as os from "os";
import * as path from "path";
import { createHash, randomBytes } from "crypto";
import { inspect } from "util";
import { createLogger, memorySink } from "../../providers/plumbing/log";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { ProbeOutputError, RemoteCommandError, SshSession, connect, probe } from "../../providers/plumbing/ssh";
import { SshdFixture, fixtureTarget, startSshd } from "../support/sshd";
import { waitFor } from "../support/wait";

let sshd: SshdFixture;
let session: SshSession;
const logged = memorySink();
const passphrase = new Secret(`luks-${randomBytes(16).toString("hex")}`);

beforeAll(async () => {
  sshd = await startSshd();
  session = await connect(fixtureTarget(sshd), { logger: createLogger({ context: "test", sink: logged.sink }) });
});

afterAll(async () => {
  await session?.close();
  await sshd?.dispose();
});

const processTable = (): string => execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });

function everyRendering(error: unknown): string {
  const e = error as Error;
  return [String(e), e.message, e.stack, JSON.stringify(e), inspect(e, { depth: 5 })].join("\n");
}

describe("a secret on stdin", () => {
  it("arrives intact and never shows in any process's argv while the command runs", async () => {
    // The command holds its shell open until the test has looked (it waits for a file only the test
    // creates), so the scan cannot miss it however slow the machine is. `; true` keeps the shell from
    // exec-ing into the loop, so its argv stays visible as a whole.
    const release = path.join(os.tmpdir(), `hfde-secrets-${process.pid}-${randomBytes(4).toString("hex")}`);
    const command = sh`sha256sum; until [ -e ${release} ]; do sleep 0.05; done; true`;
    const running = session.exec(command, { stdin: passphrase });
    running.catch(() => undefined); // awaited below; this only stops an early failure turning unhandled
    try {
      // The sshd is local, so the host's process table is this machine's: look from both sides.
      const localArgv = await waitFor(() => { const table = processTable(); return table.includes(command.text) && table; }, { what: "the command in the local process table", timeoutMs: 10_000 });
      const remoteArgv = (await session.exec(sh`ps -eo args`)).stdout;
      for (const table of [localArgv, remoteArgv]) {
        expect(table).toContain(command.text); // the command really was running during the scan
        expect(table).not.toContain(passphrase.reveal());
      }
    } finally {
      writeFileSync(release, "");
    }

    const result = await running;
    rmSync(release);
    expect(result.stdout.split(" ")[0]).toBe(createHash("sha256").update(passphrase.reveal()).digest("hex"));
  });

  it("is redacted from the error and the log of a failing command that echoes it", async () => {
    const error = await session.exec(sh`tee /dev/stderr; exit 3`, { stdin: passphrase }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    const failure = error as RemoteCommandError;
    expect(failure.exitCode).toBe(3);
    expect(failure.stderr).toBe("[secret]"); // the output was there, and it was redacted
    expect(failure.stdout).toBe("[secret]");
    expect(failure.message).toContain("[secret]");
    expect(everyRendering(error)).not.toContain(passphrase.reveal());
    expect(logged.lines.length).toBeGreaterThan(0);
    expect(logged.lines.map((l) => l.line).join("\n")).not.toContain(passphrase.reveal());
  });

  it("is redacted from a probe's complaint about non-JSON output", async () => {
    const error = await probe(session, sh`cat`, (json) => json, { stdin: passphrase }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProbeOutputError);
    expect((error as Error).message).toContain("[secret]");
    expect(everyRendering(error)).not.toContain(passphrase.reveal());
  });

  it("redacts extra secrets named by the caller, even when stdin is a plain string", async () => {
    const rescuePassword = new Secret("rescue-" + randomBytes(8).toString("hex"));
    const error = await session
      .exec(sh`cat >&2; exit 1`, { stdin: rescuePassword.reveal(), secrets: [rescuePassword] })
      .catch((e: unknown) => e);
    expect((error as RemoteCommandError).stderr).toBe("[secret]");
    expect(everyRendering(error)).not.toContain(rescuePassword.reveal());
  });
});
