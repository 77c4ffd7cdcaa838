// Failure handling end to end: 403 rate limits (retried, bounded, reported), the 401 lockout (never
// retried), network failures (GET retried, POST not), state persisted across restarts, and no
// password in any error text.
import { createServer } from "net";
import { inspect } from "util";
import { Secret } from "../../providers/plumbing/secret";
import { RobotApiError, RobotNetworkError, RobotWaitEvent } from "../../providers/plumbing/robot";
import { PASSWORD, newPublicKey, rejection, startLab, tempStateFile, USER } from "./support";

describe("rate limits", () => {
  it("waits the reported interval and retries a 403, reporting the wait", async () => {
    // A 30 s window that the client's "sleep" jumps over on the emulator's clock: the second
    // reset always lands inside the window, however slow the machine, and the test waits nothing.
    const lab = await startLab({ rateLimits: { interval: 30, limits: { "POST /reset": 1 } } });
    try {
      const waits: RobotWaitEvent[] = [];
      const slept: number[] = [];
      const sleep = async (ms: number) => {
        slept.push(ms);
        lab.clock.advance(ms);
      };
      const client = lab.clientWith({ onWait: (event) => waits.push(event), sleep, random: () => 0.5 });
      await client.reset(1001, "hw");
      await expect(client.reset(1001, "hw")).resolves.toMatchObject({ type: "hw" });
      expect(slept).toEqual([31_500]); // the interval plus half of the 10 % jitter
      expect(waits).toHaveLength(1);
      expect(waits[0].message).toMatch(/^Robot rate limit on POST \/reset\/1001: waiting 32 s \(retry 1 of 3\)$/);
      const statuses = lab.emulator.model.requests.map((r) => r.status);
      expect(statuses).toEqual([200, 403, 200]);
      expect(lab.power.calls).toHaveLength(2);
    } finally {
      await lab.emulator.close();
    }
  });

  it("gives up after the retry bound with the limit fields, and never waits past the time budget", async () => {
    const lab = await startLab({ rateLimits: { interval: 0.02, limits: { "GET /server": 0 } } });
    try {
      const waits: RobotWaitEvent[] = [];
      const client = lab.clientWith({ maxRateLimitRetries: 2, onWait: (event) => waits.push(event) });
      const err = (await rejection(client.getServer(1001))) as unknown as RobotApiError;
      expect(err).toBeInstanceOf(RobotApiError);
      expect([err.status, err.code, err.maxRequest, err.interval, err.attempts]).toEqual([403, "RATE_LIMIT_EXCEEDED", 0, 0.02, 3]);
      expect(err.message).toContain("after 3 attempts");
      expect(waits.map((w) => w.retry)).toEqual([1, 2]);
      expect(lab.emulator.model.requests).toHaveLength(3);

      const impatient = lab.clientWith({ maxRateLimitWaitMs: 10 });
      expect(await rejection(impatient.getServer(1001))).toMatchObject({ code: "RATE_LIMIT_EXCEEDED", attempts: 1 });
    } finally {
      await lab.emulator.close();
    }
  });
});

describe("401 lockout", () => {
  it("locks the source out after 3 bad logins, one request each, until the window passes", async () => {
    const lab = await startLab({ lockout: { failures: 3, windowMs: 10 * 60_000 } });
    try {
      const wrongPassword = "wrong-password-123";
      const bad = lab.clientWith({ password: new Secret(wrongPassword) });
      for (let i = 0; i < 3; i++) {
        const err = (await rejection(bad.listServers())) as unknown as RobotApiError;
        expect([err.status, err.code, err.attempts]).toEqual([401, "UNAUTHORIZED", 1]);
        expect(err.message).toMatch(/Not retried: three failed logins block this IP for 10 minutes/);
        expect(err.message).not.toContain(wrongPassword);
      }
      expect(lab.emulator.model.requests.map((r) => r.status)).toEqual([401, 401, 401]);

      expect(await rejection(lab.client.getServer(1001))).toMatchObject({ status: 401, code: "UNAUTHORIZED" });
      expect(lab.emulator.model.requests).toHaveLength(4);

      lab.clock.advance(10 * 60_000 + 1);
      await expect(lab.client.getServer(1001)).resolves.toMatchObject({ serverNumber: 1001 });
    } finally {
      await lab.emulator.close();
    }
  });
});

describe("network failures", () => {
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return port;
  }

  it("retries a GET boundedly but never a POST", async () => {
    const lab = await startLab();
    await lab.emulator.close();
    const waits: RobotWaitEvent[] = [];
    const client = lab.clientWith({ baseUrl: `http://127.0.0.1:${await closedPort()}`, networkRetryDelayMs: 5, onWait: (event) => waits.push(event) });
    const get = await rejection(client.getServer(1001));
    expect(get).toBeInstanceOf(RobotNetworkError);
    expect(get).toMatchObject({ attempts: 3 });
    expect(waits.map((w) => w.reason)).toEqual(["network", "network"]);
    const post = await rejection(client.reset(1001, "hw"));
    expect(post).toMatchObject({ attempts: 1 });
    expect(post.message).toMatch(/Not retried because it changes state/);
    expect(post.message).not.toContain(PASSWORD);
  });
});

describe("persistence", () => {
  it("keeps keys, names and an armed rescue across a restart with the same state file", async () => {
    const stateFile = tempStateFile();
    const first = await startLab({ stateFile });
    const line = newPublicKey();
    await first.client.addKey("kept", line);
    await first.client.renameServer(1001, "persisted");
    const armed = await first.client.armRescue(1001, { authorizedKeys: [line] });
    await first.emulator.close();

    const second = await startLab({ stateFile });
    try {
      expect((await second.client.listKeys()).map((k) => k.name)).toEqual(["kept"]);
      expect((await second.client.getServer(1001)).serverName).toBe("persisted");
      const rescue = await second.client.getRescue(1001);
      expect(rescue.active).toBe(true);
      expect(rescue.password?.reveal()).toBe(armed.password?.reveal());
      await second.client.reset(1001, "hw");
      expect(second.power.calls[0]).toMatchObject({ target: { kind: "rescue", rescue: { authorizedKeys: [line] } } });
    } finally {
      await second.emulator.close();
    }
  });
});

describe("secrets", () => {
  it("never puts the webservice or rescue password into error text or inspection", async () => {
    const lab = await startLab();
    try {
      const armed = await lab.client.armRescue(1001);
      const rescuePassword = armed.password!.reveal();
      expect(JSON.stringify(armed)).not.toContain(rescuePassword);
      expect(inspect(armed, { depth: 5 })).not.toContain(rescuePassword);
      const errors = [
        await rejection(lab.client.armRescue(1001, { os: "nope" })),
        await rejection(lab.client.getServer(999)),
        await rejection(lab.clientWith({ user: USER + "x" }).getServer(1001)),
      ];
      for (const err of errors) {
        const text = `${err.message} ${JSON.stringify(err)} ${inspect(err)}`;
        expect(text).not.toContain(PASSWORD);
        expect(text).not.toContain(rescuePassword);
      }
    } finally {
      await lab.emulator.close();
    }
  });
});
