// The harness proves itself against the real dynamic-provider host with the MarkerFile fixture:
// every provider method over gRPC, engine-style secrets and olds, partial creates, unknowns, drift,
// and secret-leak greps that pass on a clean provider and fail on a leaky one.

import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ENCRYPTED, PartialCreateFailure, ProviderCallError, ProviderHarness, UNKNOWN } from "./harness";
import { assertNoSecrets, checkSerializedProvider } from "./leaks";
import { PROVIDER_VERSION } from "../../providers/kernel/resource";
// Only a constant; the resource itself is constructed in the program runner, outside jest.
import { EMBEDDED_CREDENTIAL } from "./fixtures/leaky-marker";

jest.setTimeout(30_000);

const TOKEN = "tok-9c1e-never-in-state";
const sha256 = (s: string): string => crypto.createHash("sha256").update(s).digest("hex");

let dir: string;
let h: ProviderHarness;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "marker-"));
  h = await ProviderHarness.start({
    module: "test/harness/fixtures/marker-file",
    exportName: "MarkerFile",
    args: { path: path.join(dir, "initial"), content: "hello", token: TOKEN },
    secretPaths: ["token"],
    config: { "hetzner-fde:markerFileMode": "640" },
  });
});

afterAll(async () => {
  await h?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const fileAt = (name: string): string => path.join(dir, name);

describe("program side", () => {
  it("registers a dynamic resource with the secret wrapped and the provider text as plain string", () => {
    expect(h.program.type).toBe("pulumi-nodejs:dynamic/hetzner-fde:MarkerFile");
    expect(h.urn).toBe("urn:pulumi:test::hetzner-fde::pulumi-nodejs:dynamic/hetzner-fde:MarkerFile::test");
    expect(h.program.inputs.token).toEqual(expect.objectContaining({ value: TOKEN })); // the secret wrapper
    expect(h.inputs().token).toBe(TOKEN); // plain, as the engine sends it to a provider without acceptSecrets
    expect(h.program.providerIsSecret).toBe(false);
  });

  it("serializes the provider without the secret and with only allowed requires", () => {
    const modules = checkSerializedProvider(h.program.provider, { secrets: h.secrets });
    expect(modules).toEqual(expect.arrayContaining(["crypto", "fs", "@pulumi/pulumi/log/index.js"]));
    expect(h.secrets).toEqual([TOKEN]);
  });
});

describe("provider methods over gRPC", () => {
  it("round-trips check, create, diff, update, read and delete", async () => {
    const news = h.inputs({ path: fileAt("a"), content: "one" });
    const chk = await h.check(h.urn, {}, news);
    expect(chk.failures).toEqual([]);

    const cr = await h.create(h.urn, chk.inputs);
    expect(cr.id).toBe(fileAt("a"));
    expect(fs.readFileSync(fileAt("a"), "utf8")).toBe("one");
    expect(fs.statSync(fileAt("a")).mode & 0o777).toBe(0o640); // Configure reached the provider
    expect(cr.outs).toMatchObject({ path: fileAt("a"), content: "one", tokenSha256: sha256(TOKEN), providerVersion: PROVIDER_VERSION });
    expect(cr.outs).not.toHaveProperty("token");

    expect(await h.diff(cr.id, cr.outs, chk.inputs)).toEqual({ changes: "none", replaces: [], deleteBeforeReplace: false });
    expect(await h.diff(cr.id, cr.outs, { ...chk.inputs, content: "two" })).toEqual({ changes: "some", replaces: [], deleteBeforeReplace: false });
    expect(await h.diff(cr.id, cr.outs, { ...chk.inputs, token: "rotated" })).toMatchObject({ changes: "some", replaces: [] });
    expect(await h.diff(cr.id, cr.outs, { ...chk.inputs, providerVersion: `${PROVIDER_VERSION}-next` })).toMatchObject({ changes: "some" });
    expect(await h.diff(cr.id, cr.outs, { ...chk.inputs, path: fileAt("b") })).toEqual({
      changes: "some",
      replaces: ["path"],
      deleteBeforeReplace: true,
    });

    const up = await h.update(cr.id, cr.outs, { ...chk.inputs, content: "two" });
    expect(up.outs.content).toBe("two");
    expect(fs.readFileSync(fileAt("a"), "utf8")).toBe("two");

    const rd = await h.read(cr.id, up.outs, chk.inputs);
    expect(rd).toMatchObject({ id: cr.id, props: { content: "two" }, inputs: { path: fileAt("a"), content: "two" } });

    await h.delete(cr.id, up.outs);
    expect(fs.existsSync(fileAt("a"))).toBe(false);
    expect(h.state.resources.has(h.urn)).toBe(false);
  });

  it("returns check failures naming the field instead of throwing", async () => {
    const chk = await h.check(h.urn, {}, h.inputs({ path: "relative/file", content: "" }));
    expect(chk.failures).toEqual([
      { property: "path", reason: expect.stringContaining('must be an absolute path, got "relative/file"') },
      { property: "content", reason: expect.stringContaining("must be a non-empty string") },
    ]);
  });

  it("reports a partial create with its id, and the recorded outputs are enough to delete it", async () => {
    const chk = await h.check(h.urn, {}, h.inputs({ path: fileAt("partial"), content: "FAIL_AFTER_WRITE" }));
    const failure = await h.create(h.urn, chk.inputs).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(PartialCreateFailure);
    const partial = failure as PartialCreateFailure;
    expect(partial.id).toBe(fileAt("partial"));
    expect(partial.reasons).toEqual([expect.stringContaining("FAIL_AFTER_WRITE")]);
    expect(partial.message).toContain(`created ${fileAt("partial")} only partially`);
    expect(partial.properties).toMatchObject({ path: fileAt("partial"), __provider: h.program.provider });
    expect(h.state.resources.get(h.urn)).toMatchObject({ id: fileAt("partial"), op: "partial" });
    expect(fs.existsSync(fileAt("partial"))).toBe(true);

    await h.delete(partial.id, partial.properties); // what `pulumi destroy` would send
    expect(fs.existsSync(fileAt("partial"))).toBe(false);
  });

  it("throws other failures as ProviderCallError with the provider's message", async () => {
    const err = await h.read("imported", {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderCallError);
    expect((err as ProviderCallError).message).toMatch(/^read failed: .*code must be a string/);
  });
});

describe("preview", () => {
  it("defers validation of unknown values and diffs an existing resource as changed", async () => {
    const fresh = await h.preview("urn:pulumi:test::hetzner-fde::pulumi-nodejs:dynamic/hetzner-fde:MarkerFile::unknowns", h.inputs({ path: UNKNOWN, content: UNKNOWN }));
    expect(fresh.check.failures).toEqual([]);
    expect(fresh.diff).toBeUndefined();

    const urn = h.urn.replace(/::test$/, "::preview");
    await h.up(h.inputs({ path: fileAt("preview"), content: "known" }), urn);
    const known = await h.preview(urn, h.inputs({ path: fileAt("preview"), content: "known" }));
    expect(known.diff?.changes).toBe("none");
    const unknown = await h.preview(urn, h.inputs({ path: fileAt("preview"), content: UNKNOWN }));
    expect(unknown.diff).toEqual({ changes: "some", replaces: [], deleteBeforeReplace: false });
    expect(fs.readFileSync(fileAt("preview"), "utf8")).toBe("known"); // preview never writes
  });
});

describe("refresh", () => {
  it("detects drift made behind the engine's back, and a vanished file", async () => {
    const urn = h.urn.replace(/::test$/, "::drift");
    await h.up(h.inputs({ path: fileAt("drift"), content: "declared" }), urn);
    fs.writeFileSync(fileAt("drift"), "edited by hand");

    const rd = await h.refresh(urn);
    expect(rd).toMatchObject({ props: { content: "edited by hand" }, inputs: { content: "edited by hand" } });
    expect((await h.preview(urn, h.inputs({ path: fileAt("drift"), content: "declared" }))).diff?.changes).toBe("some");

    fs.rmSync(fileAt("drift"));
    expect((await h.refresh(urn))?.id).toBe("");
    expect(h.state.resources.has(urn)).toBe(false);
  });
});

describe("mini engine", () => {
  it("creates, keeps, updates and replaces like `pulumi up`, then destroys", async () => {
    const urn = h.urn.replace(/::test$/, "::engine");
    const ops: string[] = [];
    ops.push((await h.up(h.inputs({ path: fileAt("e1"), content: "v1" }), urn)).op);
    ops.push((await h.up(h.inputs({ path: fileAt("e1"), content: "v1" }), urn)).op);
    ops.push((await h.up(h.inputs({ path: fileAt("e1"), content: "v2" }), urn)).op);
    ops.push((await h.up(h.inputs({ path: fileAt("e2"), content: "v2" }), urn)).op);
    expect(ops).toEqual(["create", "same", "update", "replace"]);
    expect(fs.existsSync(fileAt("e1"))).toBe(false);
    expect(fs.readFileSync(fileAt("e2"), "utf8")).toBe("v2");
    expect(h.state.resources.get(urn)).toMatchObject({ id: fileAt("e2"), inputs: { token: ENCRYPTED } });

    await h.destroy();
    expect(fs.existsSync(fileAt("e2"))).toBe(false);
    expect(h.state.resources.size).toBe(0);
  });

  it("refuses an up whose check fails, naming the field", async () => {
    await expect(h.up(h.inputs({ path: "nope" }), h.urn.replace(/::test$/, "::bad"))).rejects.toThrow(/path: must be an absolute path/);
  });
});

describe("secret leaks", () => {
  it("finds no secret in recorded state or logs after a full lifecycle", async () => {
    const urn = h.urn.replace(/::test$/, "::leakcheck");
    await h.up(h.inputs({ path: fileAt("leak"), content: "c1" }), urn);
    await h.up(h.inputs({ path: fileAt("leak"), content: "c2" }), urn);
    await h.refresh(urn);
    await h.destroy();
    await h.stop(); // flushes the host's stdout into h.logs

    const state = h.state.text();
    expect(state).toContain(sha256(TOKEN)); // the grep looks at real content, not an empty string
    expect(h.logs).toContain("[MarkerFile localhost] step 1/1 write");
    assertNoSecrets("state", state, h.secrets);
    assertNoSecrets("logs", h.logs, h.secrets);
  });
});

describe("leak checks can fail", () => {
  let leaky: ProviderHarness;
  const LEAKED = "tok-leaky-5d21";

  beforeAll(async () => {
    leaky = await ProviderHarness.start({ module: "test/harness/fixtures/leaky-marker", exportName: "LeakyMarker", args: { token: LEAKED }, secretPaths: ["token"] });
  });
  afterAll(() => leaky?.stop());

  it("flags a credential captured into the serialized provider", () => {
    expect(() => checkSerializedProvider(leaky.program.provider, { secrets: [EMBEDDED_CREDENTIAL] })).toThrow(
      /serialized provider text contains a secret \d+ time\(s\): secret #0 at offset \d+/,
    );
  });

  it("flags a secret echoed into a differently named output and printed to the log", async () => {
    await leaky.up();
    await leaky.stop();
    expect(() => assertNoSecrets("state", leaky.state.text(), leaky.secrets)).toThrow(/state contains a secret/);
    expect(() => assertNoSecrets("logs", leaky.logs, leaky.secrets)).toThrow(/logs contains a secret/);
  });

  it("never prints the secret it found", () => {
    let message = "";
    try {
      assertNoSecrets("text", `prefix ${LEAKED} suffix`, [LEAKED]);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/secret #0 at offset 7/);
    expect(message).not.toContain(LEAKED);
  });

  it("flags requires of local files or unlisted packages", () => {
    const text = 'const a = require("fs"); const b = require("./helper"); const c = require("left-pad/index.js");';
    expect(() => checkSerializedProvider(text, { secrets: [] })).toThrow(/outside the allowed list: \.\/helper, left-pad\/index\.js/);
    const packaged = 'require("fs"); require("left-pad/index.js"); require("node:path")';
    expect(checkSerializedProvider(packaged, { secrets: [], allowedModules: ["left-pad"] })).toEqual(["fs", "left-pad/index.js", "node:path"]);
  });
});
