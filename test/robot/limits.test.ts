// Failure handling end to end: 403 rate limits (retried, bounded, reported), the 401 lockout (never
// retried), network failures (GET retried, POST not), state persisted across restarts, and no
// password in any error text.
import * as pulumi from "@pulumi/pulumi";
import Module from "module";
import { createServer as createHttpServer } from "http";
import { createServer } from "net";
import { join } from "path";
import { inspect } from "util";
import { Secret } from "../../providers/plumbing/secret";
import { RobotApiError, RobotClient, RobotNetworkError, RobotWaitEvent } from "../../providers/plumbing/robot";
import { PASSWORD, newPublicKey, rawRequest, rejection, startLab, tempStateFile, USER } from "./support";

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
  it("the emulator locks the source out after 3 bad logins, until the window passes", async () => {
    const lab = await startLab({ lockout: { failures: 3, windowMs: 10 * 60_000 } });
    try {
      const wrong = "Basic " + Buffer.from(`${USER}:wrong-password-123`).toString("base64");
      for (let i = 0; i < 3; i++) expect((await rawRequest(lab.emulator.url, "GET", "/server", undefined, { Authorization: wrong })).status).toBe(401);
      expect((await rawRequest(lab.emulator.url, "GET", "/server/1001")).status).toBe(401); // right password, locked out
      lab.clock.advance(10 * 60_000 + 1);
      expect((await rawRequest(lab.emulator.url, "GET", "/server/1001")).status).toBe(200);
    } finally {
      await lab.emulator.close();
    }
  });

  it("one 401 stops the client: the next calls send nothing and say why", async () => {
    const lab = await startLab({ lockout: { failures: 3, windowMs: 10 * 60_000 } });
    try {
      const wrongPassword = "wrong-password-123";
      const bad = lab.clientWith({ password: new Secret(wrongPassword) });
      const first = (await rejection(bad.listServers())) as unknown as RobotApiError;
      expect([first.status, first.code, first.attempts]).toEqual([401, "UNAUTHORIZED", 1]);
      expect(first.message).toMatch(/Not retried: three failed logins block this IP for 10 minutes/);
      for (let i = 0; i < 3; i++) {
        const err = (await rejection(bad.getServer(1001))) as unknown as RobotApiError;
        expect([err.status, err.code, err.attempts]).toEqual([401, "UNAUTHORIZED", 0]);
        expect(err.message).toMatch(/^Robot GET \/server\/1001 was not sent: GET \/server got 401 UNAUTHORIZED from http:\/\/127\.0\.0\.1:\d+ for webservice user "#ws\+robot" earlier in this run/);
        expect(err.message).toMatch(/Check robotUser and robotPassword/);
        expect(err.message).not.toContain(wrongPassword);
      }
      expect(lab.emulator.model.requests.map((r) => r.status)).toEqual([401]);
      // Another client of this process with the same URL and user is stopped too: no lockout.
      expect(await rejection(lab.client.getServer(1001))).toMatchObject({ code: "UNAUTHORIZED", attempts: 0 });
      expect(lab.emulator.model.requests).toHaveLength(1);
    } finally {
      await lab.emulator.close();
    }
  });

  it("three parallel resources with a bad password send one login, not three, and are not locked out", async () => {
    const lab = await startLab({ lockout: { failures: 3, windowMs: 10 * 60_000 } });
    try {
      const clients = [1, 2, 3].map(() => lab.clientWith({ password: new Secret("wrong-password-123") }));
      const results = await Promise.allSettled(clients.map((client, i) => client.getServer(1001 + i)));
      expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
      expect(lab.emulator.model.requests.map((r) => r.status)).toEqual([401]);
      // The source is not locked out: the right password works from a fresh process (a raw request here).
      expect((await rawRequest(lab.emulator.url, "GET", "/server/1001")).status).toBe(200);
    } finally {
      await lab.emulator.close();
    }
  });

  it("with good credentials, parallel calls wait only for the first answer, then run together", async () => {
    const lab = await startLab();
    try {
      const clients = [1, 2, 3].map(() => lab.clientWith({}));
      const servers = await Promise.all(clients.map((client, i) => client.getServer(1001 + i)));
      expect(servers.map((s) => s.serverNumber)).toEqual([1001, 1002, 1003]);
      expect(lab.emulator.model.requests.map((r) => r.status)).toEqual([200, 200, 200]);
    } finally {
      await lab.emulator.close();
    }
  });

  it("the latch survives Pulumi's closure serializer: two resources' provider texts share it", async () => {
    const lab = await startLab();
    try {
      // Each resource's provider is its own serialized text, loaded as its own module in the
      // provider host process: a module-level latch would be one copy per resource.
      const url = lab.emulator.url;
      const makeCall =
        (password: string) =>
        async (server: number): Promise<string> => {
          try {
            await new RobotClient({ user: USER, password: new Secret(password), baseUrl: url }).getServer(server);
            return "ok";
          } catch (err) {
            return `${(err as { code?: string }).code} attempts=${(err as { attempts?: number }).attempts}`;
          }
        };
      const first = loadLikeTheHost(await pulumi.runtime.serializeFunction(() => makeCall("wrong-password-123")));
      const second = loadLikeTheHost(await pulumi.runtime.serializeFunction(() => makeCall("wrong-password-123")));
      expect(await first(1001)).toBe("UNAUTHORIZED attempts=1");
      expect(await second(1002)).toBe("UNAUTHORIZED attempts=0");
      expect(lab.emulator.model.requests).toHaveLength(1);
    } finally {
      await lab.emulator.close();
    }
  });
});

// What the dynamic-provider host does with `__provider`: compile the text as a CommonJS module.
function loadLikeTheHost(serialized: { text: string; exportName: string }): (server: number) => Promise<string> {
  const mod = new Module("", module);
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(join(__dirname, "..", "..", ".."));
  (mod as unknown as { _compile(code: string, filename: string): void })._compile(serialized.text, "");
  return mod.exports[serialized.exportName]();
}

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

describe("answers that are not what Robot sends", () => {
  /**
   * A proxy in front of the emulator that hands on the emulator's real answer, changed by `mangle`
   * (as a proxy that cuts a connection or a Robot format change would).
   */
  async function mangledRobot(lab: Awaited<ReturnType<typeof startLab>>, mangle: (text: string) => string): Promise<{ url: string; close(): Promise<void> }> {
    const proxy = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        void fetch(lab.emulator.url + req.url, { method: req.method, headers: req.headers as Record<string, string>, body: req.method === "GET" ? undefined : Buffer.concat(chunks) })
          .then(async (answer) => {
            const text = mangle(await answer.text());
            res.writeHead(answer.status, { "Content-Type": "application/json" });
            res.end(text);
          })
          .catch(() => res.destroy());
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(proxy.address() as { port: number }).port}`, close: () => new Promise((resolve) => proxy.close(() => resolve())) };
  }

  function everyText(err: Error): string {
    return `${err.message} ${JSON.stringify(err)} ${inspect(err, { depth: 5 })} ${err.stack ?? ""}`;
  }

  it("a truncated answer to POST /boot/{n}/rescue: the error describes it and never quotes it (it holds the root password)", async () => {
    const lab = await startLab();
    let answered = "";
    const proxy = await mangledRobot(lab, (text) => {
      answered = text;
      return text.slice(0, text.indexOf('"password"') + 40); // cut after the password
    });
    try {
      const err = await rejection(lab.clientWith({ baseUrl: proxy.url }).armRescue(1001));
      const password = (JSON.parse(answered) as { rescue: { password: string } }).rescue.password;
      expect(password.length).toBeGreaterThan(8);
      expect(everyText(err)).not.toContain(password);
      expect(err.message).toMatch(/POST \/boot\/1001\/rescue .*answered 200 UNEXPECTED_RESPONSE: "not a Robot error envelope: \d+ bytes that are not JSON, Content-Type application\/json \(not shown: a Robot answer can hold a password\)"/);
    } finally {
      await proxy.close();
      await lab.emulator.close();
    }
  });

  it("an answer of the wrong shape that holds a password: the password is redacted from the parser's message", async () => {
    const lab = await startLab();
    let password = "";
    const proxy = await mangledRobot(lab, (text) => {
      const body = JSON.parse(text) as { rescue: Record<string, unknown> };
      password = String(body.rescue.password);
      // A shape change that puts the password where the parser reports a value.
      body.rescue.active = password;
      return JSON.stringify(body);
    });
    try {
      const err = await rejection(lab.clientWith({ baseUrl: proxy.url }).armRescue(1001));
      expect(err.name).toBe("RobotResponseError");
      expect(everyText(err)).not.toContain(password);
      expect(err.message).toMatch(/answered 200 with an unexpected shape: .*rescue\.active/);
    } finally {
      await proxy.close();
      await lab.emulator.close();
    }
  });

  it("an error status with a body that is no envelope: only its shape is shown", async () => {
    const lab = await startLab();
    const proxy = await mangledRobot(lab, () => '{"note":"maintenance","password":"leaked-by-a-proxy"}');
    try {
      const err = await rejection(lab.clientWith({ baseUrl: proxy.url }).getServer(999));
      expect(err.message).toContain("answered 404 UNEXPECTED_RESPONSE");
      expect(err.message).toContain("a JSON object with the keys note, password");
      expect(everyText(err)).not.toContain("leaked-by-a-proxy");
    } finally {
      await proxy.close();
      await lab.emulator.close();
    }
  });

  it("a short webservice password (under 6 characters) echoed by Robot is redacted too", async () => {
    const lab = await startLab();
    const proxy = await mangledRobot(lab, () => '{"error":{"status":400,"code":"INVALID_INPUT","message":"password pw1 is not valid here","missing":null,"invalid":["pw1"]}}');
    try {
      const err = await rejection(lab.clientWith({ baseUrl: proxy.url, password: new Secret("pw1") }).getServer(1001));
      expect(err.message).toContain("password [secret] is not valid here");
      expect(everyText(err)).not.toMatch(/\bpw1\b/);
    } finally {
      await proxy.close();
      await lab.emulator.close();
    }
  });
});
