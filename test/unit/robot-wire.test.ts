// Pure parts of the Robot client and emulator: form encoding, PHP form parsing, envelopes, the
// error envelope, and normalisation of fields that flip with state. Fixtures are shaped like
// real Robot answers (doc examples and community.hrobot fixtures).
import { inspect } from "util";
import { encodeForm, parseErrorEnvelope, unwrap, unwrapList } from "../../providers/plumbing/robot/wire";
import { read, toHostKey } from "../../providers/plumbing/robot/model";
import { formatApiErrorMessage } from "../../providers/plumbing/robot/errors";
import { formatSeconds } from "../../providers/plumbing/robot/transport";
import { parsePhpForm, formList, formScalar } from "../../lab/robot/form";
import { validateServerSpecs, ServerSpec } from "../../lab/robot/model";
import { generateEd25519KeyPair, parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";

// ---- fixture factories ------------------------------------------------------------------

const address = { server_ip: "123.123.123.123", server_ipv6_net: "2a01:4f8:111:4221::", server_number: 321 };

function keyRef(name = "key1", fingerprint = "56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:dd:10") {
  return { key: { name, fingerprint, type: "ED25519", size: 256, created_at: "2021-12-31 23:59:59" } };
}

function rescueInactive() {
  return {
    rescue: {
      ...address,
      os: ["linux", "linuxold", "vkvm"],
      arch: [64, 32],
      active: false,
      password: null,
      authorized_key: [],
      host_key: [],
      boot_time: null,
    },
  };
}

function rescueActive(overrides: Record<string, unknown> = {}) {
  return {
    rescue: {
      ...address,
      os: "linux",
      arch: 64,
      active: true,
      password: "jEt0dtUvomJ7",
      authorized_key: [keyRef()],
      host_key: [],
      boot_time: null,
      ...overrides,
    },
  };
}

function serverDetail() {
  return {
    server: {
      ...address,
      server_name: "server1",
      product: "EX 8",
      dc: "NBG1-DC1",
      traffic: "5 TB",
      status: "ready",
      cancelled: false,
      paid_until: "2010-09-02",
      ip: ["123.123.123.123"],
      subnet: [{ ip: "2a01:4f8:111:4221::", mask: "64" }],
      reset: true,
      rescue: true,
      vnc: true,
      windows: true,
      plesk: true,
      cpanel: true,
      wol: true,
      hot_swap: true,
      linked_storagebox: 12345,
    },
  };
}

// ---- client wire ------------------------------------------------------------------------

describe("encodeForm", () => {
  it.each([
    [{ type: "hw" }, "type=hw"],
    [{ os: "linux", authorized_key: ["aa:bb", "cc:dd"] }, "os=linux&authorized_key[]=aa%3Abb&authorized_key[]=cc%3Add"],
    [{ name: "my key", data: "ssh-ed25519 AAAA+/= c" }, "name=my%20key&data=ssh-ed25519%20AAAA%2B%2F%3D%20c"],
    [{ os: "linux", keyboard: undefined, authorized_key: [] }, "os=linux"],
  ])("%j → %s", (fields, expected) => {
    expect(encodeForm(fields)).toBe(expected);
  });

  it("round-trips through the emulator's PHP parser", () => {
    const body = encodeForm({ os: "linux", authorized_key: ["a", "b", "c"] });
    expect(parsePhpForm(body)).toEqual({ os: "linux", authorized_key: ["a", "b", "c"] });
  });
});

describe("envelopes", () => {
  it("unwraps objects and lists", () => {
    expect(unwrap({ wol: { server_number: 1 } }, "wol")).toEqual({ server_number: 1 });
    expect(unwrapList([{ key: { a: 1 } }, { key: { a: 2 } }], "key")).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it("names what it expected and what it found", () => {
    expect(() => unwrap({ server: {} }, "rescue")).toThrow('expected an object wrapped as {"rescue": {…}}, found an object with keys [server]');
    expect(() => unwrapList([{ key: {} }, { server: {} }], "key")).toThrow(/^item 1: expected an object wrapped as \{"key"/);
    expect(() => unwrapList({ key: {} }, "key")).toThrow(/expected a list of \{"key": \{…\}\} objects, found an object/);
  });
});

describe("parseErrorEnvelope", () => {
  it("reads INVALID_INPUT's missing/invalid", () => {
    const body = { error: { status: 400, code: "INVALID_INPUT", message: "invalid input", missing: null, invalid: ["type"] } };
    expect(parseErrorEnvelope(body, 400)).toEqual({ status: 400, code: "INVALID_INPUT", message: "invalid input", missing: null, invalid: ["type"], maxRequest: null, interval: null });
  });

  it.each(["max_request", "max_requests"])("reads the rate limit count spelled %s", (spelling) => {
    const body = { error: { status: 403, code: "RATE_LIMIT_EXCEEDED", message: "Rate limit exceeded", [spelling]: 50, interval: 3600 } };
    expect(parseErrorEnvelope(body, 403)).toMatchObject({ maxRequest: 50, interval: 3600 });
  });

  it("returns null for anything else", () => {
    expect(parseErrorEnvelope({ server: {} }, 500)).toBeNull();
    expect(parseErrorEnvelope("<html>", 502)).toBeNull();
  });

  it("formats a message with request, answer and advice", () => {
    const fields = parseErrorEnvelope({ error: { status: 403, code: "RATE_LIMIT_EXCEEDED", message: "Rate limit exceeded", max_request: 50, interval: 3600 } }, 403)!;
    expect(formatApiErrorMessage(fields, { method: "POST", path: "/reset/1", params: ["type=hw"] }, 4)).toBe(
      'Robot POST /reset/1 (type=hw) answered 403 RATE_LIMIT_EXCEEDED after 4 attempts: "Rate limit exceeded" (max_request: 50; interval: 3600 s). ' +
        "Robot allows 50 such requests per 3600 s; wait and run again later.",
    );
  });
});

describe("rescue normalisation", () => {
  it("inactive: os/arch are menus, no password", () => {
    const rescue = read.rescue(rescueInactive());
    expect(rescue).toMatchObject({ active: false, os: null, availableOs: ["linux", "linuxold", "vkvm"], arch: null, availableArch: [64, 32], password: null, hostKeys: [] });
  });

  it("active: os/arch are scalars, password is a Secret, keys unwrapped", () => {
    const rescue = read.rescue(rescueActive());
    expect(rescue).toMatchObject({ active: true, os: "linux", availableOs: [], arch: 64 });
    expect(rescue.password?.reveal()).toBe("jEt0dtUvomJ7");
    expect(inspect(rescue)).not.toContain("jEt0dtUvomJ7");
    expect(rescue.authorizedKeys).toEqual([
      { name: "key1", fingerprint: "56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:dd:10", type: "ED25519", size: 256, createdAt: "2021-12-31 23:59:59" },
    ]);
  });

  it("names the field when the shape is wrong", () => {
    expect(() => read.rescue(rescueActive({ active: "yes" }))).toThrow(/rescue\.active: Invalid input: expected boolean/);
  });
});

describe("host_key normalisation", () => {
  const line = generateEd25519KeyPair("").public;
  const sha = sha256Fingerprint(parsePublicKey(line));

  it.each<[string, unknown, { type: string; fingerprint: string }]>([
    ["wrapped SHA256 (the lab)", { key: { type: "ssh-ed25519", fingerprint: sha, size: 256 } }, { type: "ssh-ed25519", fingerprint: sha }],
    ["wrapped key data", { key: { data: line } }, { type: "ssh-ed25519", fingerprint: sha }],
    ["bare key line", line, { type: "ssh-ed25519", fingerprint: sha }],
    ["MD5 only", { key: { type: "ED25519", fingerprint: "56:29:99:A4:5D:ED:AC:95:C1:F5:88:82:90:5D:DD:10" } }, { type: "ED25519", fingerprint: "MD5:56:29:99:a4:5d:ed:ac:95:c1:f5:88:82:90:5d:dd:10" }],
  ])("%s", (_name, raw, expected) => {
    expect(toHostKey(raw)).toEqual(expected);
  });

  it("an empty host_key list (real Robot) stays empty", () => {
    expect(read.rescue(rescueActive({ host_key: [] })).hostKeys).toEqual([]);
    expect(read.rescue(rescueActive({ host_key: null })).hostKeys).toEqual([]);
  });

  it("refuses an entry with nothing to pin", () => {
    expect(() => toHostKey({ key: { type: "ssh-ed25519", size: 256 } })).toThrow(/expected a fingerprint or key data, found keys \[type, size\]/);
  });
});

describe("server normalisation", () => {
  it("maps fields and feature flags", () => {
    const server = read.server(serverDetail());
    expect(server).toMatchObject({ serverNumber: 321, serverName: "server1", traffic: "5 TB", paidUntil: "2010-09-02", subnet: [{ ip: "2a01:4f8:111:4221::", mask: "64" }] });
    expect(server.features).toEqual({ reset: true, rescue: true, vnc: true, windows: true, plesk: true, cpanel: true, wol: true, hotSwap: true });
  });

  it("subnet null becomes [], and list entries carry no features", () => {
    const { reset: _r, rescue: _s, vnc: _v, windows: _w, plesk: _p, cpanel: _c, wol: _o, hot_swap: _h, linked_storagebox: _l, ...plain } = serverDetail().server;
    const [server] = read.servers([{ server: { ...plain, subnet: null } }]);
    expect(server.subnet).toEqual([]);
    expect(server.features).toBeNull();
  });
});

describe("boot configs", () => {
  it("reads rescue and the active flag of the others; null stays null", () => {
    const boot = read.boot({ boot: { rescue: rescueInactive().rescue, linux: { active: true, dist: ["Debian"] }, vnc: { active: false }, windows: null, plesk: null, cpanel: null } });
    expect(boot.rescue?.active).toBe(false);
    expect([boot.linux, boot.vnc, boot.windows]).toEqual([{ active: true }, { active: false }, null]);
  });
});

describe("emulator PHP form parsing", () => {
  it.each<[string, Record<string, unknown>]>([
    ["a=1&a=2", { a: "2" }],
    ["a[]=1&a[]=2", { a: ["1", "2"] }],
    ["a%5B%5D=1&a%5B%5D=2", { a: ["1", "2"] }],
    ["a[0]=1&a[1]=2&a[0]=3", { a: ["3", "2"] }],
    ["a=1&a[]=2", { a: ["2"] }],
    ['{"type":"hw"}', { '{"type":"hw"}': "" }],
    ["", {}],
  ])("%s", (body, expected) => {
    expect(parsePhpForm(body)).toEqual(expected);
  });

  it("scalar vs list access", () => {
    const form = parsePhpForm("os=linux&k[]=a&k[]=b&one=x");
    expect([formScalar(form, "os"), formScalar(form, "k"), formScalar(form, "missing")]).toEqual(["linux", null, undefined]);
    expect([formList(form, "k"), formList(form, "one"), formList(form, "missing")]).toEqual([["a", "b"], ["x"], []]);
  });
});

describe("formatSeconds", () => {
  it.each([
    [12_000, "12 s"],
    [50, "50 ms"],
    [1_500, "1.5 s"],
    [3_600_000, "3600 s"],
  ])("%d ms → %s", (ms, text) => {
    expect(formatSeconds(ms)).toBe(text);
  });
});

describe("emulator server spec validation", () => {
  it("collects every problem with its path", () => {
    const specs = [
      { number: 1001, ipv4: "203.0.113.1", ipv6Net: "2a01::" },
      { number: 1001, ipv4: null, ipv6Net: "2a01::" },
      { number: -3, ipv4: null, ipv6Net: 7, resetTypes: ["reboot"] },
    ] as unknown as ServerSpec[];
    expect(() => validateServerSpecs(specs)).toThrow(
      [
        "Robot emulator config is invalid:",
        "  servers[1].number: 1001 is used twice; server numbers identify servers and must be unique",
        "  servers[2].number: expected a positive integer, found -3",
        '  servers[2].ipv6Net: expected a string such as "2a01:4f8:111:4221::", found 7',
        '  servers[2].resetTypes: "reboot" is not one of sw, hw, power, power_long, man',
      ].join("\n"),
    );
  });
});
