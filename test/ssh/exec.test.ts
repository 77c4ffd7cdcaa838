import { execFileSync } from "child_process";
import { createLogger, memorySink } from "../../providers/plumbing/log";
import { sh } from "../../providers/plumbing/shell";
import { RemoteCommandError, SshSession, connect, withSession } from "../../providers/plumbing/ssh";
import { SshdFixture, fixtureTarget, startSshd } from "../support/sshd";
import { waitFor } from "../support/wait";

let sshd: SshdFixture;
let session: SshSession;

beforeAll(async () => {
  sshd = await startSshd();
  session = await connect(fixtureTarget(sshd), { logger: createLogger({ sink: memorySink().sink }) });
});

afterAll(async () => {
  await session?.close();
  await sshd?.dispose();
});

describe("exec", () => {
  it("counts the commands run on the session, failed ones too (each is one round trip)", async () => {
    const before = session.commandsRun;
    await session.exec(sh`true`);
    await session.exec(sh`exit 3`).catch(() => undefined);
    expect(session.commandsRun).toBe(before + 2);
  });

  it("returns stdout, stderr and exit code 0", async () => {
    const result = await session.exec(sh`printf %s ${"out put"}; printf %s ${"err"} >&2`);
    expect(result).toMatchObject({ exitCode: 0, stdout: "out put", stderr: "err" });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("runs in the C locale", async () => {
    const result = await session.exec(sh`printf '%s|%s' "$LC_ALL" "$(locale 2>/dev/null | sed -n 's/^LC_MESSAGES=//p')"`);
    expect(result.stdout).toBe('C|"C"');
  });

  it("throws RemoteCommandError with exit code, command, host and stderr for a failing command", async () => {
    const error = await session.exec(sh`echo partial; echo ${"no such device"} >&2; exit 5`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RemoteCommandError);
    const failure = error as RemoteCommandError;
    expect(failure).toMatchObject({ exitCode: 5, stdout: "partial\n", stderr: "no such device\n", host: "127.0.0.1", address: `127.0.0.1:${sshd.port}`, timedOut: false });
    expect(failure.command).toBe("echo partial; echo 'no such device' >&2; exit 5");
    expect(failure.message).toBe(`\`echo partial; echo 'no such device' >&2; exit 5\` on 127.0.0.1:${sshd.port} failed (exit 5): no such device`);
  });

  it("accepts exit codes listed in okExitCodes and still throws for others", async () => {
    await expect(session.exec(sh`exit 1`, { okExitCodes: [0, 1] })).resolves.toMatchObject({ exitCode: 1 });
    await expect(session.exec(sh`exit 2`, { okExitCodes: [0, 1] })).rejects.toMatchObject({ exitCode: 2 });
  });

  it("delivers stdin and closes it, so readers see EOF", async () => {
    const result = await session.exec(sh`wc -c`, { stdin: "12345" });
    expect(result.stdout.trim()).toBe("5");
  });

  it("gives commands without stdin an immediate EOF instead of hanging", async () => {
    const result = await session.exec(sh`cat`, { timeoutMs: 5000 });
    expect(result.stdout).toBe("");
  });

  it("kills a command that outlives its timeout and names it", async () => {
    const marker = `${process.pid}${Date.now() % 100000}`;
    const error = (await session.exec(sh`sleep ${"7" + marker.slice(0, 3)}.${marker}`, { timeoutMs: 400 }).catch((e: unknown) => e)) as RemoteCommandError;
    expect(error).toBeInstanceOf(RemoteCommandError);
    expect(error.timedOut).toBe(true);
    expect(error.exitCode).toBeNull();
    expect(error.message).toMatch(new RegExp(`^\`sleep 7\\d+\\.${marker}\` on 127\\.0\\.0\\.1:\\d+ timed out after 0\\.4 s and was killed`));
    // The sleep runs for two hours unless killed; returning at all (within jest's timeout) shows
    // the timeout fired. The server is local, so the remote process table is ours to inspect: the
    // sleep must be gone, not merely abandoned.
    await waitFor(() => !execFileSync("ps", ["-eo", "args"], { encoding: "utf8" }).includes(marker), { what: `the killed \`sleep …${marker}\` to leave the process table`, timeoutMs: 5000 });
  });

  it("keeps the session usable after a failure and a timeout", async () => {
    await expect(session.exec(sh`echo still here`)).resolves.toMatchObject({ stdout: "still here\n" });
  });

  it("refuses text that was not built with sh", async () => {
    await expect(session.exec({ text: "id" } as never)).rejects.toThrow(/built with sh/);
  });

  it("runs commands concurrently on one session", async () => {
    const results = await Promise.all([1, 2, 3].map((n) => session.exec(sh`echo ${n}`)));
    expect(results.map((r) => r.stdout.trim())).toEqual(["1", "2", "3"]);
  });
});

describe("withSession", () => {
  it("closes the session when the callback throws", async () => {
    let seen: SshSession | undefined;
    await expect(
      withSession(fixtureTarget(sshd), {}, async (s) => {
        seen = s;
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await expect(seen!.exec(sh`true`)).rejects.toThrow(/closed/);
  });

  it("returns the callback's value", async () => {
    await expect(withSession(fixtureTarget(sshd), {}, async (s) => (await s.exec(sh`echo ok`)).stdout)).resolves.toBe("ok\n");
  });
});
