import { createServer, Server, Socket } from "net";
import { createLogger, memorySink } from "../../providers/plumbing/log";
import { sh } from "../../providers/plumbing/shell";
import { ConnectProgress, SshUnreachableError, connect, withSession } from "../../providers/plumbing/ssh";
import { SshdFixture, fixtureTarget, freeLoopbackPort, startSshd } from "../support/sshd";

let sshd: SshdFixture;

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.dispose();
});

const quiet = () => createLogger({ sink: memorySink().sink });

describe("connection retry", () => {
  it("waits for a server that comes up during the attempt, reporting each failed attempt", async () => {
    await sshd.stop();
    const progress: ConnectProgress[] = [];
    const { sink, lines } = memorySink();
    // The server comes back after the third refused attempt: driven by the attempts, not by a clock.
    let started: Promise<void> | undefined;
    const onProgress = (p: ConnectProgress): void => {
      progress.push(p);
      if (p.attempt === 3) started = sshd.start();
    };
    try {
      const out = await withSession(
        fixtureTarget(sshd),
        { budgetMs: 15_000, backoff: { initialMs: 200, maxMs: 1000 }, onProgress, logger: createLogger({ sink }) },
        async (s) => (await s.exec(sh`echo up`)).stdout,
      );
      expect(out).toBe("up\n");
    } finally {
      await (started ?? sshd.start());
    }
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.map((p) => p.attempt)).toEqual(progress.map((_, i) => i + 1));
    for (const p of progress) {
      expect(p.message).toMatch(new RegExp(`^waiting for ssh on 127\\.0\\.0\\.1:${sshd.port} \\(attempt ${p.attempt}, [\\d.]+ s of 15 s\\): ECONNREFUSED$`));
    }
    const elapsed = progress.map((p) => p.elapsedMs);
    expect(elapsed).toEqual([...elapsed].sort((a, b) => a - b)); // elapsed time is reported, and it only grows
    expect(lines.filter((l) => l.level === "info").map((l) => l.line)).toEqual(progress.map((p) => p.message));
  });

  // The bounded failures below touch no shared server, so they run side by side to keep this file fast.
  it.concurrent("gives up within its budget when the server never comes up", async () => {
    const port = await freeLoopbackPort();
    const progress: ConnectProgress[] = [];
    const options = { budgetMs: 1000, backoff: { initialMs: 100, maxMs: 300 }, onProgress: (p: ConnectProgress) => progress.push(p), logger: quiet() };
    const error = await connect(fixtureTarget(sshd, { port }), options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshUnreachableError);
    expect((error as Error).message).toMatch(new RegExp(`^ssh to 127\\.0\\.0\\.1:${port} not reachable after \\d+ attempts in [\\d.]+ s: ECONNREFUSED$`));
    const attempts = (error as SshUnreachableError).attempts;
    expect(attempts).toBeGreaterThan(2);
    // The budget decided: every retried attempt lay inside it, the one that gave up lay past it,
    // and each attempt but the last was reported.
    expect(progress.map((p) => p.attempt)).toEqual(progress.map((_, i) => i + 1));
    expect(progress).toHaveLength(attempts - 1);
    for (const p of progress) expect(p.elapsedMs).toBeLessThan(1000);
    expect((error as SshUnreachableError).elapsedMs).toBeGreaterThanOrEqual(1000);
  });

  it.concurrent("stops at maxAttempts", async () => {
    const port = await freeLoopbackPort();
    const error = await connect(fixtureTarget(sshd, { port }), { maxAttempts: 3, backoff: { initialMs: 50, maxMs: 50 }, logger: quiet() }).catch((e: unknown) => e);
    expect((error as SshUnreachableError).attempts).toBe(3);
  });

  it.concurrent("retries a connection closed before the handshake (a port forward to a guest still booting)", async () => {
    await withTcpServer(
      (socket) => socket.destroy(),
      async (port) => {
        const error = await connect(fixtureTarget(sshd, { port }), { budgetMs: 800, backoff: { initialMs: 100, maxMs: 200 }, logger: quiet() }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(SshUnreachableError);
        expect((error as SshUnreachableError).attempts).toBeGreaterThan(1);
        expect((error as Error).message).toMatch(/before handshake|ECONNRESET/);
      },
    );
  });

  it.concurrent("retries a server that never speaks, each attempt bounded by attemptTimeoutMs", async () => {
    const held: Socket[] = [];
    await withTcpServer(
      (socket) => held.push(socket),
      async (port) => {
        const options = { budgetMs: 800, attemptTimeoutMs: 300, backoff: { initialMs: 50, maxMs: 50 }, logger: quiet() };
        const error = await connect(fixtureTarget(sshd, { port }), options).catch((e: unknown) => e);
        held.forEach((s) => s.destroy());
        expect(error).toBeInstanceOf(SshUnreachableError);
        expect((error as Error).message).toMatch(/timed out waiting for the SSH handshake$/);
      },
    );
  });
});

/** A loopback TCP server that is not sshd: what a QEMU port forward looks like before the guest listens. */
async function withTcpServer(onSocket: (socket: Socket) => void, fn: (port: number) => Promise<void>): Promise<void> {
  const server: Server = createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await fn((server.address() as { port: number }).port);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
