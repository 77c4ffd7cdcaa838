// RescueBoot's Robot paths through the real dynamic-provider host (the harness) against the Robot
// emulator with a recording power controller, no VM: input refused at check time without a single
// Robot or SSH call, wrong credentials, RESET_NOT_AVAILABLE, a reset type the server does not
// offer, a rate-limited reset that waits and resets once, another boot config disarmed first.
// Plus the unauthenticated endpoint look refresh uses, against a real OpenSSH sshd.
import * as net from "net";
import { ProviderHarness, Props } from "../harness/harness";
import { assertNoSecrets, checkSerializedProvider } from "../harness/leaks";
import { RecordingPower } from "./support";
import { startSshd, SshdFixture } from "../support/sshd";
import { waitFor } from "../support/wait";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { classifyHost } from "../../providers/kernel/host-access";
import { observeEndpoint } from "../../providers/plumbing/ssh";
import { RobotEmulator, startRobotEmulator } from "../../lab/robot/server";

jest.setTimeout(60_000);

const USER = "#ws+rescue-test";
const PASSWORD = "robot-webservice-pw-7f3k";
const RATE_WINDOW_S = 3;

describe("RescueBoot against the Robot emulator (no VM)", () => {
  let emulator: RobotEmulator;
  let power: RecordingPower;
  let closedPort: number;
  let trap: net.Server;
  let trapConnections = 0;
  const operator = generateEd25519KeyPair("operator@rescue-boot-robot");
  const harnesses: ProviderHarness[] = [];

  const startHarness = async (args: Props, robotPassword = PASSWORD): Promise<ProviderHarness> => {
    const h = await ProviderHarness.start({
      module: "providers/rescue-boot",
      exportName: "RescueBoot",
      args: { authorizedKeys: [operator.public], connect: { host: "127.0.0.1", port: closedPort }, timeouts: { sshMs: 2000 }, ...args },
      config: {
        "hetzner-fde:sshPrivateKey": operator.private,
        "hetzner-fde:robotUrl": emulator.url,
        "hetzner-fde:robotUser": USER,
        "hetzner-fde:robotPassword": robotPassword,
      },
      secretConfigKeys: ["hetzner-fde:sshPrivateKey", "hetzner-fde:robotPassword"],
    });
    harnesses.push(h);
    return h;
  };
  const resetsOf = (server: number) => emulator.model.resets.filter((r) => r.server === server).length;

  beforeAll(async () => {
    power = new RecordingPower();
    emulator = await startRobotEmulator({
      users: [{ user: USER, password: PASSWORD }],
      servers: [
        { number: 1001, ipv4: "127.0.0.1", ipv6Net: "2a01:4f8:111:4221::" },
        { number: 1002, ipv4: "127.0.0.1", ipv6Net: "2a01:4f8:111:4222::", resetTypes: ["sw", "man"] },
        { number: 1003, ipv4: "127.0.0.1", ipv6Net: "2a01:4f8:111:4223::", features: { reset: false } },
      ],
      power,
      rateLimits: { interval: RATE_WINDOW_S },
    });
    // A port where connections are counted and dropped: anything dialing it during check is a bug.
    trap = net.createServer((socket) => {
      trapConnections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
    // A port nobody listens on, for "the rescue never answers".
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedPort = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
  });
  afterAll(async () => {
    for (const h of harnesses) await h.stop();
    for (const h of harnesses) assertNoSecrets("provider logs", h.logs + h.state.text(), [PASSWORD, operator.private]);
    await new Promise((resolve) => trap?.close(resolve));
    await emulator?.close();
  });

  it("refuses bad input at check time, field by field, with no Robot request and no SSH connection", async () => {
    const trapPort = (trap.address() as net.AddressInfo).port;
    const h = await startHarness({ serverNumber: 1001, connect: { host: "127.0.0.1", port: trapPort } });
    const bad = h.inputs({ serverNumber: 0, authorizedKeys: ["ssh-ed25519 AAAA-not-a-key"], resetType: "reboot", generation: -1 });
    const checked = await h.check(h.urn, {}, bad);
    expect(checked.failures.map((f) => f.property).sort()).toEqual(["authorizedKeys[0]", "generation", "resetType", "serverNumber"]);
    await expect(h.up(h.inputs({ authorizedKeys: [] }))).rejects.toThrow(/check failed: authorizedKeys: expected at least one OpenSSH public key line/);
    await expect(h.up(h.inputs({ resetType: "power" }))).rejects.toThrow(/resetType: "power" presses the power button/);
    expect(emulator.model.requests).toEqual([]);
    expect(trapConnections).toBe(0);
  });

  it("a preview of a server that allows first contact warns about it at check time; one that does not is silent", async () => {
    const trusting = await startHarness({ serverNumber: 1001, allowFirstContactHostKey: true });
    const strict = await startHarness({ serverNumber: 1002 });
    expect((await trusting.check(trusting.urn, {}, trusting.inputs())).failures).toEqual([]);
    expect((await strict.check(strict.urn, {}, strict.inputs())).failures).toEqual([]);
    await trusting.stop();
    await strict.stop();
    expect(trusting.logs).toMatch(/RescueBoot server 1001: allowFirstContactHostKey is true: where Robot reports no host key, the rescue's key is trusted on first contact/);
    expect(strict.logs).not.toMatch(/allowFirstContactHostKey/);
    expect(emulator.model.requests).toEqual([]);
  });

  it("serializes a provider that holds no credential and requires only allowed packages (zod by its main entry)", async () => {
    const h = await startHarness({ serverNumber: 1001 });
    const modules = checkSerializedProvider(h.program.provider, { secrets: [PASSWORD, operator.private] });
    expect(modules).toContain("zod");
    expect(modules.filter((m) => m.startsWith("zod/"))).toEqual([]);
  });

  it("wrong Robot credentials: one 401, not retried, with a message that says what to do and no password", async () => {
    const wrong = "not-the-robot-password";
    const h = await startHarness({ serverNumber: 1001 }, wrong);
    const before = emulator.model.requests.length;
    const failure = await h.up().then(() => null, (err: Error) => err);
    expect(failure?.message).toMatch(/RescueBoot step probe on 1001 failed.*Robot GET \/server\/1001 answered 401 UNAUTHORIZED/);
    const after = emulator.model.requests.slice(before);
    expect(after.map((r) => r.status)).toEqual([401]);
    expect(resetsOf(1001)).toBe(0);
    expect(h.logs).not.toContain(wrong);
  });

  it("RESET_NOT_AVAILABLE: refused before anything is armed, with what to do", async () => {
    const h = await startHarness({ serverNumber: 1003 });
    await expect(h.up()).rejects.toThrow(/RESET_NOT_AVAILABLE for server 1003.*Reboot it by other means/);
    expect((await emulatorRescue(1003)).active).toBe(false);
    expect(power.calls).toEqual([]);
  });

  it("a reset type the server does not offer: refused naming resetType and the allowed list, nothing armed or uploaded", async () => {
    const h = await startHarness({ serverNumber: 1002 });
    await expect(h.up()).rejects.toThrow(/resetType: "hw" is not offered for server 1002; Robot allows \["sw","man"\]\. Set resetType to "sw" or "man"/);
    expect((await emulatorRescue(1002)).active).toBe(false);
    expect(emulator.model.requests.filter((r) => r.method !== "GET")).toEqual([]);
  });

  it("disarms another active boot config, waits out a rate-limited reset (saying so) and resets exactly once", async () => {
    const h = await startHarness({ serverNumber: 1001 });
    emulator.model.setOtherBootActive(1001, "linux");
    emulator.model.setRateLimit("POST /reset", 1);
    // Use up the budget right before the run, so the resource's reset hits the limit.
    await emulator.model.reset(emulator.model.server("1001"), "hw");
    emulator.model.countRequest("POST /reset");
    const resetsBefore = resetsOf(1001);
    const failure = await h.up().then(() => null, (err: Error) => err);
    // The lab has no VM here, so nothing answers SSH: the run ends in the wait, after its one reset.
    expect(failure?.message).toMatch(/RescueBoot step awaitRescue on 1001 failed after .*: ssh to 127\.0\.0\.1:\d+ not reachable/);
    expect(h.logs).toMatch(/step 5\/5 awaitRescue/);
    expect(resetsOf(1001)).toBe(resetsBefore + 1);
    await h.stop(); // logs are complete once the host stopped
    expect(h.logs).toMatch(/\[RescueBoot 1001 ssh\] waiting for ssh on 127\.0\.0\.1:\d+ \(attempt 1, [\d.]+ s of 2 s\): ECONNREFUSED/);
    expect(h.logs).toMatch(/\[RescueBoot 1001\] Robot rate limit on POST \/reset\/1001: waiting \d+(\.\d)? s \(retry 1 of 3\)/);
    expect(h.logs).toMatch(/step 2\/5 disarmBoot/);
    const resetPosts = emulator.model.requests.filter((r) => r.method === "POST" && r.path === "/reset/1001");
    expect(resetPosts.map((r) => r.status)).toEqual([403, 200]);
    expect(power.calls.filter((c) => c.server === 1001).map((c) => c.op)).toEqual(["reset", "reset"]);
    const boot = await bootOf(1001);
    expect(boot.linux.active).toBe(false);
  });

  const emulatorRescue = async (server: number) => (await fetchJson(`/boot/${server}/rescue`)).rescue as { active: boolean };
  const bootOf = async (server: number) => (await fetchJson(`/boot/${server}`)).boot as { linux: { active: boolean } };
  const fetchJson = async (path: string): Promise<Record<string, unknown>> => {
    const response = await fetch(emulator.url + path, { headers: { Authorization: "Basic " + Buffer.from(`${USER}:${PASSWORD}`).toString("base64") } });
    return (await response.json()) as Record<string, unknown>;
  };
});

describe("observeEndpoint (what refresh classifies)", () => {
  let sshd: SshdFixture;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.dispose();
  });

  it("reads an OpenSSH server's identification and host key without logging in", async () => {
    const logBefore = sshd.log().length;
    const seen = await observeEndpoint(sshd.host, sshd.port);
    expect(seen).toEqual({ kind: "ssh", software: expect.stringMatching(/^OpenSSH_/), hostKey: expect.objectContaining({ fingerprint: sshd.hostKeyFingerprint }) });
    expect(classifyHost(seen, [{ environment: "rescue", hostKeyFingerprints: [sshd.hostKeyFingerprint] }]).kind).toBe("rescue");
    expect(classifyHost(seen, [{ environment: "rescue", hostKeyFingerprints: ["SHA256:" + "x".repeat(43)] }]).kind).toBe("unknown-key");
    // No credentials were offered: sshd saw no authentication attempt. It logs the preauth
    // disconnect once it has seen the client go; only then is the absence of an attempt final.
    await waitFor(() => /\[preauth\]/.test(sshd.log().slice(logBefore)), { what: "sshd to log the preauth disconnect", timeoutMs: 5000 });
    expect(sshd.log()).not.toMatch(/Accepted|Failed (publickey|password|none)|Invalid user/);
  });

  it("a closed port is nothing, not an error", async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const seen = await observeEndpoint("127.0.0.1", port);
    expect(seen).toEqual({ kind: "none", reason: `127.0.0.1:${port}: ECONNREFUSED` });
    expect(classifyHost(seen, []).kind).toBe("unreachable");
  });
});
