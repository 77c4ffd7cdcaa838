// The SSH layer ends up inside provider text written by Pulumi's closure serializer and loaded by
// the dynamic-provider host. This proves that round trip: serialize a function that uses connect,
// sh, probe and the logger, load the text the way the host does, and run it against a real sshd.
import * as pulumi from "@pulumi/pulumi";
import Module from "module";
import { join } from "path";
import { createLogger, memorySink } from "../../providers/plumbing/log";
import { sh } from "../../providers/plumbing/shell";
import { RobotNetworkError } from "../../providers/plumbing/robot/errors";
import { RemoteCommandError, SshAuthError, SshTarget, probe, withSession } from "../../providers/plumbing/ssh";
import { SshdFixture, fixtureTarget, startSshd } from "../support/sshd";

let sshd: SshdFixture;

beforeAll(async () => {
  sshd = await startSshd();
});

afterAll(async () => {
  await sshd?.dispose();
});

async function readHostname(target: SshTarget): Promise<{ user: string; lines: string[] }> {
  const { sink, lines } = memorySink();
  const logger = createLogger({ context: "Serialized", sink });
  const user = await withSession(target, { logger }, (session) => probe(session, sh`printf '"%s"' "$(id -un)"`, (json) => String(json)));
  return { user, lines: lines.map((l) => l.line) };
}

// What the host does with `__provider`: compile the text as a CommonJS module and call handler().
function loadLikeTheHost(text: string): () => typeof readHostname {
  const mod = new Module("", module);
  mod.paths = (Module as unknown as { _nodeModulePaths(dir: string): string[] })._nodeModulePaths(join(__dirname, "..", "..", ".."));
  (mod as unknown as { _compile(code: string, filename: string): void })._compile(text, "");
  return mod.exports.handler;
}

describe("closure serialization", () => {
  it("captures ssh2 by reference, no live handle, and runs after loading", async () => {
    const serialized = await pulumi.runtime.serializeFunction(() => readHostname);
    expect(serialized.text).toMatch(/require\("ssh2(\/lib\/index\.js)?"\)/);
    expect(serialized.text).not.toContain(sshd.privateKey.reveal()); // credentials arrive as inputs, never in the text
    const handler = loadLikeTheHost(serialized.text);
    // The fixture's Secret is plain data here, as a provider would get it from its inputs.
    const result = await handler()(fixtureTarget(sshd));
    expect(result.user).toBe(sshd.user);
    expect(result.lines.some((line) => line.startsWith("[Serialized] run: "))).toBe(true);
  });
});

describe("Secret under closure serialization", () => {
  it("serializes, loads and still redacts in strings, JSON and inspect", async () => {
    const { Secret } = await import("../../providers/plumbing/secret");
    const { inspect } = await import("util");
    const wrap = (plain: string) => new Secret(plain);
    const serialized = await pulumi.runtime.serializeFunction(() => wrap);
    const loaded = loadLikeTheHost(serialized.text) as unknown as () => typeof wrap;
    const secret = loaded()("hunter2-passphrase");
    expect(secret.reveal()).toBe("hunter2-passphrase");
    expect(`${secret}`).toBe("[secret]");
    expect(JSON.stringify({ secret })).toBe('{"secret":"[secret]"}');
    expect(inspect({ secret })).not.toContain("hunter2");
  });
});

describe("errors under closure serialization", () => {
  // The serializer turns `super(message)` into `Error.call(this, message)` and does not link the
  // class to Error.prototype; without keepErrorMessage the engine would report "undefined".
  const factories: [string, () => Error][] = [
    ["SshAuthError", () => new SshAuthError("10.0.0.1:22", "root", "publickey")],
    ["RemoteCommandError", () => new RemoteCommandError({ host: "h", address: "h:22", command: "false", exitCode: 1, signal: null, timedOut: false, stdout: "", stderr: "nope", durationMs: 1 })],
    ["RobotNetworkError", () => new RobotNetworkError("no answer from robot", { method: "GET", path: "/server", params: [] }, 1)],
  ];

  it.each(factories)("%s keeps its message and is an Error inside the host", async (name, make) => {
    const serialized = await pulumi.runtime.serializeFunction(() => make);
    const loaded = loadLikeTheHost(serialized.text) as unknown as () => () => Error;
    const error = loaded()();
    expect(error.message).toBe(make().message);
    expect(error.message.length).toBeGreaterThan(10);
    // The loaded code runs in Node's realm, not jest's, so compare against that realm's Error.
    expect(protoChainNames(error)).toContain("Error");
    expect(error.stack).toContain(make().message.slice(0, 20));
    expect(error.name).toBe(name);
  });
});

function protoChainNames(value: object): string[] {
  const names: string[] = [];
  for (let proto = Object.getPrototypeOf(value); proto; proto = Object.getPrototypeOf(proto)) {
    names.push(proto.constructor?.name ?? "?");
  }
  return names;
}
