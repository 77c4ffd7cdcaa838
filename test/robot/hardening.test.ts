// The emulator as an outside caller finds it (it runs inside the lab daemon, next to the QEMU
// supervisor, and the guests reach it through slirp): no request kills it, every refusal is the
// documented one, its test hooks need the start's token, and forms are read as strictly as Robot's.
import { connect } from "net";
import { Lab, USER, newPublicKey, rawRequest, startLab } from "./support";

let lab: Lab;

beforeAll(async () => {
  lab = await startLab();
});
afterAll(() => lab.emulator.close());
beforeEach(() => {
  lab.emulator.model.resetState();
  lab.power.calls.length = 0;
});

function keyCount(): number {
  try {
    return lab.emulator.model.listKeys().length;
  } catch {
    return 0; // the model throws NOT_FOUND for an empty list, as Robot answers
  }
}

/** One request with a raw request target, which fetch() would normalise away. */
function rawTarget(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(`GET ${target} HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\n\r\n`));
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.on("end", () => resolve(text));
    socket.on("error", reject);
  });
}

describe("requests that used to crash or mislead", () => {
  it("a request target URL() rejects (GET //a:999999) is a 404, and the emulator keeps serving", async () => {
    const internal: unknown[] = [];
    const own = await startLab({ onInternalError: (err) => internal.push(err) });
    try {
      const answer = await rawTarget(own.emulator.port, "//a:999999");
      expect(answer).toMatch(/^HTTP\/1\.1 404 /);
      expect(answer).toContain('"code":"NOT_FOUND"');
      expect(internal).toEqual([]);
      await expect(own.client.getServer(1001)).resolves.toMatchObject({ serverNumber: 1001 });
    } finally {
      await own.emulator.close();
    }
  });

  it("POST /key with a truncated RSA blob is 400 INVALID_INPUT invalid [data], not 500", async () => {
    // string "ssh-rsa", mpint e = 65537, then a modulus that announces 257 bytes and holds 10.
    const sshString = (bytes: Buffer): Buffer => Buffer.concat([Buffer.from([0, 0, 0, bytes.length]), bytes]);
    const blob = Buffer.concat([sshString(Buffer.from("ssh-rsa")), sshString(Buffer.from([1, 0, 1])), Buffer.from([0, 0, 1, 1]), Buffer.alloc(10, 0xc7)]);
    const truncated = `ssh-rsa ${blob.toString("base64")} cut@host`;
    const response = await rawRequest(lab.emulator.url, "POST", "/key", `name=cut&data=${encodeURIComponent(truncated)}`);
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toMatchObject({ error: { status: 400, code: "INVALID_INPUT", invalid: ["data"] } });
    expect(keyCount()).toBe(0);
  });

  it("a 401 carries a Basic challenge, so standard HTTP clients send their credentials", async () => {
    const response = await fetch(`${lab.emulator.url}/server`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Basic realm="[^"]+"$/);
  });
});

describe("test hooks", () => {
  async function hookReset(headers: Record<string, string>): Promise<number> {
    return (await fetch(`${lab.emulator.url}/__emulator/reset`, { method: "POST", headers })).status;
  }

  it("POST /__emulator/reset without the start's token does not exist (404) and changes nothing", async () => {
    await lab.client.addKey("kept", newPublicKey());
    expect(await hookReset({})).toBe(404);
    expect(await hookReset({ "X-Emulator-Token": "0".repeat(lab.emulator.hookToken.length) })).toBe(404);
    // Robot credentials are no key to the hooks either.
    const auth = "Basic " + Buffer.from(`${USER}:s3cret-webservice-pw`).toString("base64");
    expect(await hookReset({ Authorization: auth })).toBe(404);
    expect(keyCount()).toBe(1);
  });

  it("with the token it resets the state", async () => {
    await lab.client.addKey("gone", newPublicKey());
    expect(await hookReset({ "X-Emulator-Token": lab.emulator.hookToken })).toBe(200);
    expect(keyCount()).toBe(0);
  });

  it("each start has its own token", async () => {
    const other = await startLab();
    try {
      expect(other.emulator.hookToken).toMatch(/^[0-9a-f]{48}$/);
      expect(other.emulator.hookToken).not.toBe(lab.emulator.hookToken);
    } finally {
      await other.emulator.close();
    }
  });
});

describe("forms as strict as Robot's", () => {
  it("a POST reads only its body: a query-string parameter is not part of the form", async () => {
    const response = await rawRequest(lab.emulator.url, "POST", "/reset/1001?type=hw", "");
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toMatchObject({ error: { code: "INVALID_INPUT", missing: ["type"] } });
    expect(lab.power.calls).toEqual([]);
  });

  it("the body wins nothing from the query either: ?type=hw with body type=sw resets sw", async () => {
    const response = await rawRequest(lab.emulator.url, "POST", "/reset/1001?type=hw", "type=sw");
    expect(response.status).toBe(200);
    expect(JSON.parse(response.text)).toMatchObject({ reset: { type: "sw" } });
  });

  it("a list of one (type[]=hw) where a scalar belongs is INVALID_INPUT", async () => {
    const response = await rawRequest(lab.emulator.url, "POST", "/reset/1001", "type[]=hw");
    expect(response.status).toBe(400);
    expect(JSON.parse(response.text)).toMatchObject({ error: { code: "INVALID_INPUT", invalid: ["type"] } });
  });

  it("a list of one still works where a list belongs (authorized_key[]=fp)", async () => {
    const key = newPublicKey();
    const stored = await lab.client.addKey("k", key);
    const response = await rawRequest(lab.emulator.url, "POST", "/boot/1001/rescue", `os=linux&authorized_key[]=${encodeURIComponent(stored.fingerprint)}`);
    expect(response.status).toBe(200);
  });
});
