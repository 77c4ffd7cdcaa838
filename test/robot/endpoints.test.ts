// Every endpoint of the subset and every error code, through the project's client against the
// emulator over HTTP.
import { RobotApiError } from "../../providers/plumbing/robot";
import { md5Fingerprint, parsePublicKey } from "../../providers/plumbing/keys";
import { Lab, newPublicKey, rawRequest, rejection, startLab } from "./support";

let lab: Lab;

beforeAll(async () => {
  lab = await startLab();
});
afterAll(() => lab.emulator.close());
beforeEach(async () => {
  await fetch(`${lab.emulator.url}/__emulator/reset`, { method: "POST", headers: { "X-Emulator-Token": lab.emulator.hookToken } });
  lab.power.calls.length = 0;
  lab.power.states.clear();
});

async function apiError(promise: Promise<unknown>): Promise<RobotApiError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(RobotApiError);
  return err as unknown as RobotApiError;
}

describe("servers", () => {
  it("lists servers, unwrapped and normalised", async () => {
    const servers = await lab.client.listServers();
    expect(servers.map((s) => s.serverNumber)).toEqual([1001, 1002, 1003]);
    expect(servers[0]).toMatchObject({ serverName: "alpha", serverIp: "203.0.113.10", product: "AX41-NVMe", subnet: [], features: null });
    expect(servers[2].serverIp).toBeNull();
  });

  it("gets one server with its feature flags", async () => {
    const server = await lab.client.getServer(1002);
    expect(server.serverIpv6Net).toBe("2a01:4f8:111:4222::");
    expect(server.features).toMatchObject({ reset: true, rescue: true, wol: false });
  });

  it("renames a server", async () => {
    expect((await lab.client.renameServer(1001, "db-1")).serverName).toBe("db-1");
    expect((await lab.client.getServer(1001)).serverName).toBe("db-1");
  });

  it("answers SERVER_NOT_FOUND for an unknown number, and accepts it in the allowlist", async () => {
    const err = await apiError(lab.client.getServer(4242));
    expect([err.status, err.code]).toEqual([404, "SERVER_NOT_FOUND"]);
    expect(err.message).toContain("GET /server/4242 answered 404 SERVER_NOT_FOUND");
    const result = await lab.client.getServer(4242, { accept: ["SERVER_NOT_FOUND"] });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.code).toBe("SERVER_NOT_FOUND");
  });

  it("an empty account lists as []", async () => {
    const empty = await startLab({ servers: [], emptyServerList: "not_found" });
    try {
      expect(await empty.client.listServers()).toEqual([]);
    } finally {
      await empty.emulator.close();
    }
  });
});

describe("resets", () => {
  it("lists reset options of servers that have them", async () => {
    const resets = await lab.client.listResets();
    expect(resets.map((r) => [r.serverNumber, r.types])).toEqual([
      [1001, ["sw", "hw", "power", "power_long", "man"]],
      [1002, ["sw", "hw", "man"]],
    ]);
  });

  it("reports the power state as operating_status", async () => {
    expect((await lab.client.getReset(1001)).operatingStatus).toBe("running");
    await lab.client.reset(1001, "power_long");
    expect((await lab.client.getReset(1001)).operatingStatus).toBe("off");
  });

  it("drives the power controller for each reset type", async () => {
    expect(await lab.client.reset(1001, "hw")).toEqual({ serverIp: "203.0.113.10", serverIpv6Net: "2a01:4f8:111:4221::", type: "hw" });
    await lab.client.reset(1001, "sw");
    await lab.client.reset(1001, "power"); // running → button
    await lab.client.reset(1001, "power"); // off → power on
    await lab.client.reset(1001, "power_long");
    expect(lab.power.calls).toEqual([
      { op: "reset", server: 1001, target: { kind: "disk" } },
      { op: "reset", server: 1001, target: { kind: "disk" } },
      { op: "powerButton", server: 1001 },
      { op: "powerOn", server: 1001, target: { kind: "disk" } },
      { op: "powerOff", server: 1001 },
    ]);
    expect(lab.emulator.model.resets.map((r) => r.type)).toEqual(["hw", "sw", "power", "power", "power_long"]);
  });

  it("rejects a type the server does not offer with INVALID_INPUT invalid:[type]", async () => {
    const err = await apiError(lab.client.reset(1002, "power"));
    expect([err.status, err.code, err.invalid, err.missing]).toEqual([400, "INVALID_INPUT", ["type"], null]);
    expect(err.message).toMatch(/reset type is not offered/);
  });

  it("answers RESET_NOT_AVAILABLE for a server without reset", async () => {
    const err = await apiError(lab.client.reset(1003, "hw"));
    expect([err.status, err.code]).toEqual([404, "RESET_NOT_AVAILABLE"]);
  });

  it("answers RESET_MANUAL_ACTIVE while a manual reset is pending, until it completes", async () => {
    await lab.client.reset(1002, "man");
    const err = await apiError(lab.client.reset(1002, "hw"));
    expect([err.status, err.code]).toEqual([409, "RESET_MANUAL_ACTIVE"]);
    await lab.emulator.model.completeManualReset(1002);
    await expect(lab.client.reset(1002, "hw")).resolves.toMatchObject({ type: "hw" });
  });

  it("answers RESET_FAILED when the hook says so, and when the power controller fails", async () => {
    lab.emulator.model.failNextReset(1001);
    const err = await apiError(lab.client.reset(1001, "hw"));
    expect([err.status, err.code, err.attempts]).toEqual([500, "RESET_FAILED", 1]);
    expect(err.message).toMatch(/not retried automatically/);
    lab.power.failNext = true;
    expect((await apiError(lab.client.reset(1001, "hw"))).code).toBe("RESET_FAILED");
  });
});

describe("boot", () => {
  it("gets all boot configs with an inactive rescue menu", async () => {
    const boot = await lab.client.getBoot(1001);
    expect(boot.rescue).toMatchObject({ active: false, os: null, availableOs: ["linux", "linuxold", "vkvm"], availableArch: [64, 32], password: null });
    expect(boot.linux).toEqual({ active: false });
    expect(boot.windows).toBeNull();
  });

  it("arms and disarms rescue", async () => {
    const armed = await lab.client.armRescue(1001);
    expect(armed).toMatchObject({ active: true, os: "linux", arch: 64, availableOs: [] });
    expect(armed.password?.reveal()).toMatch(/^[A-Za-z0-9]{16}$/);
    expect((await lab.client.getRescue(1001)).active).toBe(true);
    const disarmed = await lab.client.disarmRescue(1001);
    expect(disarmed).toMatchObject({ active: false, password: null });
    expect(lab.power.calls).toEqual([]); // arming never reboots
  });

  it("gives a new password and host key on every arm", async () => {
    const first = await lab.client.armRescue(1001);
    const second = await lab.client.armRescue(1001);
    expect(first.password?.reveal()).not.toBe(second.password?.reveal());
    expect(first.hostKeys[0].fingerprint).not.toBe(second.hostKeys[0].fingerprint);
  });

  it("answers BOOT_NOT_AVAILABLE for a server without rescue", async () => {
    const err = await apiError(lab.client.getRescue(1003));
    expect([err.status, err.code]).toEqual([404, "BOOT_NOT_AVAILABLE"]);
    const accepted = await lab.client.armRescue(1003, {}, { accept: ["BOOT_NOT_AVAILABLE"] });
    expect(accepted.ok ? "ok" : accepted.code).toBe("BOOT_NOT_AVAILABLE");
  });

  it("answers BOOT_ALREADY_ENABLED when another boot config is active", async () => {
    lab.emulator.model.setOtherBootActive(1001, "linux");
    expect((await lab.client.getBoot(1001)).linux).toEqual({ active: true });
    const err = await apiError(lab.client.armRescue(1001));
    expect([err.status, err.code]).toEqual([409, "BOOT_ALREADY_ENABLED"]);
  });

  it("rejects an unknown key fingerprint and an unknown os", async () => {
    const err = await apiError(lab.client.armRescue(1001, { os: "dos", authorizedKeys: ["00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff"] }));
    expect([err.status, err.code, err.invalid]).toEqual([400, "INVALID_INPUT", ["os", "authorized_key"]]);
    expect(err.message).toMatch(/stored via POST \/key/);
  });

  it("answers NOT_FOUND for /rescue/last before any activation", async () => {
    expect((await apiError(lab.client.getLastRescue(1001))).code).toBe("NOT_FOUND");
  });
});

describe("keys", () => {
  it("lists no keys as [] (Robot's 404 NOT_FOUND)", async () => {
    expect(await lab.client.listKeys()).toEqual([]);
  });

  it("adds (201), gets, lists, renames and deletes a key", async () => {
    const line = newPublicKey("op@laptop");
    const fingerprint = md5Fingerprint(parsePublicKey(line));
    const added = await lab.client.addKey("op", line);
    expect(added).toMatchObject({ name: "op", fingerprint, type: "ED25519", size: 256, data: line });
    expect(added.createdAt).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    expect(lab.emulator.model.requests.at(-1)).toMatchObject({ method: "POST", path: "/key", status: 201 });
    expect(await lab.client.getKey(fingerprint)).toEqual(added);
    expect((await lab.client.listKeys()).map((k) => k.fingerprint)).toEqual([fingerprint]);
    expect((await lab.client.renameKey(fingerprint, "op2")).name).toBe("op2");
    await lab.client.deleteKey(fingerprint);
    expect((await apiError(lab.client.getKey(fingerprint))).code).toBe("NOT_FOUND");
    expect((await apiError(lab.client.deleteKey(fingerprint))).status).toBe(404);
  });

  it("answers KEY_ALREADY_EXISTS for the same material under another name", async () => {
    const line = newPublicKey();
    await lab.client.addKey("a", line);
    const err = await apiError(lab.client.addKey("b", line.replace(/ \S+$/, " other-comment")));
    expect([err.status, err.code]).toEqual([409, "KEY_ALREADY_EXISTS"]);
  });

  it("rejects a key without data and with garbage data", async () => {
    const missing = await apiError(lab.client.addKey("a", ""));
    expect([missing.code, missing.missing]).toEqual(["INVALID_INPUT", ["data"]]);
    const invalid = await apiError(lab.client.addKey("a", "ssh-ed25519 AAAAnotakey"));
    expect(invalid.invalid).toEqual(["data"]);
  });

  it("ensureKey is idempotent by fingerprint", async () => {
    const line = newPublicKey();
    const first = await lab.client.ensureKey("deploy", line);
    const second = await lab.client.ensureKey("renamed-elsewhere", line);
    expect(first.created).toBe(true);
    expect(second).toEqual({ key: first.key, created: false });
    expect(await lab.client.listKeys()).toHaveLength(1);
  });
});

describe("wake-on-LAN", () => {
  it("gets and sends WoL; a packet boots a server that is off", async () => {
    expect(await lab.client.getWol(1001)).toEqual({ serverNumber: 1001, serverIp: "203.0.113.10", serverIpv6Net: "2a01:4f8:111:4221::" });
    await lab.client.sendWol(1001);
    expect(lab.power.calls).toEqual([]);
    await lab.client.reset(1001, "power_long");
    await lab.client.sendWol(1001);
    expect(lab.power.calls.at(-1)).toEqual({ op: "powerOn", server: 1001, target: { kind: "disk" } });
  });

  it("answers WOL_NOT_AVAILABLE where there is none", async () => {
    const err = await apiError(lab.client.sendWol(1002));
    expect([err.status, err.code]).toEqual([404, "WOL_NOT_AVAILABLE"]);
  });
});

describe("malformed requests never get a 500", () => {
  const cases: [string, string, string, string | undefined, number, string][] = [
    ["unknown path", "GET", "/nothing/here", undefined, 404, "NOT_FOUND"],
    ["wrong method", "DELETE", "/server/1001", undefined, 405, "METHOD_NOT_ALLOWED"],
    ["non-numeric server id", "GET", "/server/abc", undefined, 404, "SERVER_NOT_FOUND"],
    ["bad percent escape", "GET", "/key/%E0%A4%A", undefined, 404, "NOT_FOUND"],
    ["JSON body instead of a form", "POST", "/reset/1001", '{"type":"hw"}', 400, "INVALID_INPUT"],
    ["list where a scalar belongs", "POST", "/reset/1001", "type[]=hw&type[]=sw", 400, "INVALID_INPUT"],
    ["missing os on rescue", "POST", "/boot/1001/rescue", "", 400, "INVALID_INPUT"],
    ["yaml output", "GET", "/server.yaml", undefined, 404, "NOT_FOUND"],
    ["oversized body", "POST", "/key", "name=a&data=" + "A".repeat(200_000), 400, "INVALID_INPUT"],
  ];
  it.each(cases)("%s → %s %s", async (_name, method, path, body, status, code) => {
    const response = await rawRequest(lab.emulator.url, method, path, body);
    expect(response.status).toBe(status);
    expect(JSON.parse(response.text)).toMatchObject({ error: { status, code } });
    expect(response.text).not.toMatch(/at .*\.js:\d+/);
  });

  it("serves the .json suffix like the bare path", async () => {
    const response = await rawRequest(lab.emulator.url, "GET", "/server/1001.json");
    expect(JSON.parse(response.text).server.server_number).toBe(1001);
  });
});
