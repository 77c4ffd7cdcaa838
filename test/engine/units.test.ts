// The engine's pure parts and its state file, without a program or a host.
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { makeUrn } from "../../engine/monitor";
import { secretEnvName, secretResolver } from "../../engine/secrets";
import { readStackConfig } from "../../engine/stack-config";
import { StateStore } from "../../engine/state";
import { decideStep, deletionOrder, emptyCounts, summaryLines } from "../../engine/steps";
import { secretWrapper } from "../../engine/wire";

describe("decideStep", () => {
  const old = { inputs: { a: 1 }, partial: false };
  it.each([
    ["no record", undefined, undefined, "create", false],
    ["no change", old, { changes: "none", replaces: [], deleteBeforeReplace: false }, "same", false],
    ["a change", old, { changes: "some", replaces: [], deleteBeforeReplace: false }, "update", false],
    ["a replace", old, { changes: "some", replaces: ["x"], deleteBeforeReplace: false }, "replace", false],
    ["a replace, delete first", old, { changes: "some", replaces: ["x"], deleteBeforeReplace: true }, "replace", true],
    ["no diff method, same inputs", old, { changes: "unknown", replaces: [], deleteBeforeReplace: false }, "same", false],
    ["partial create, no change", { inputs: { a: 1 }, partial: true }, { changes: "none", replaces: [], deleteBeforeReplace: false }, "update", false],
  ] as const)("%s", (_name, recorded, diff, op, dbr) => {
    expect(decideStep(recorded, { a: 1 }, diff && { ...diff, replaces: [...diff.replaces] })).toEqual({ op, deleteBeforeReplace: dbr });
  });

  it("no diff method and changed inputs is an update; the option forces delete-before-replace", () => {
    expect(decideStep(old, { a: 2 }, { changes: "unknown", replaces: [], deleteBeforeReplace: false }).op).toBe("update");
    expect(decideStep(old, { a: 1 }, { changes: "some", replaces: ["x"], deleteBeforeReplace: false }, true).deleteBeforeReplace).toBe(true);
  });
});

describe("deletionOrder", () => {
  it("puts dependents and children before what they depend on", () => {
    const order = deletionOrder([
      { urn: "stack", dependencies: [] },
      { urn: "a", parent: "stack", dependencies: [] },
      { urn: "comp", parent: "stack", dependencies: [] },
      { urn: "b", parent: "comp", dependencies: ["a"] },
      { urn: "e", parent: "stack", dependencies: ["comp", "b"] },
    ]);
    const before = (x: string, y: string): boolean => order.indexOf(x) < order.indexOf(y);
    expect(before("e", "b") && before("b", "a") && before("b", "comp") && before("e", "comp") && before("a", "stack")).toBe(true);
  });
});

describe("summaryLines", () => {
  it("speaks pulumi's words", () => {
    const counts = { ...emptyCounts(), create: 3, update: 1, same: 2 };
    expect(summaryLines(counts, true)).toEqual(["Resources:", "    + 3 to create", "    ~ 1 to update", "    - 0 to delete", "    2 unchanged"]);
    expect(summaryLines({ ...counts, replace: 1 }, false)).toContain("    +-1 replaced");
  });
});

describe("makeUrn", () => {
  it("qualifies the type with the parent's type chain, except under the root stack", () => {
    const stack = makeUrn("dev", "p", "pulumi:pulumi:Stack", "p-dev");
    const comp = makeUrn("dev", "p", "x:y:Host", "h", stack);
    expect(comp).toBe("urn:pulumi:dev::p::x:y:Host::h");
    expect(makeUrn("dev", "p", "x:y:Disk", "d", comp)).toBe("urn:pulumi:dev::p::x:y:Host$x:y:Disk::d");
  });
});

describe("StateStore", () => {
  it("encrypts every secret, keeps its key at 0600, and reads back what it wrote", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-state-"));
    const store = new StateStore(dir, "s");
    const resource = {
      urn: "u", type: "t", custom: true, id: "i", dependencies: [], protect: false, retainOnDelete: false, additionalSecretOutputs: [],
      inputs: { pass: secretWrapper("hunter2-passphrase"), nested: { list: [secretWrapper({ k: "deep-secret-value" })] } },
      outputs: { plain: "visible" },
    };
    store.save({ project: "p", stack: "s", resources: [resource] });
    const text = readFileSync(store.file, "utf8");
    expect(text).not.toContain("hunter2-passphrase");
    expect(text).not.toContain("deep-secret-value");
    expect(text).toContain("visible");
    expect(statSync(store.keyFile).mode & 0o777).toBe(0o600);
    expect(new StateStore(dir, "s").load("p").resources[0]).toEqual(resource);
  });

  it("locks the stack against a second engine, and takes over the lock of a dead one", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-state-"));
    const store = new StateStore(dir, "s");
    const release = store.lock();
    expect(() => new StateStore(dir, "s").lock()).toThrow(`stack s is being updated by process ${process.pid}`);
    release();
    writeFileSync(join(dir, "s.lock"), "999999999\n"); // no such process
    new StateStore(dir, "s").lock()();
  });

  it("refuses a state whose key is gone, rather than losing its secrets", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-state-"));
    writeFileSync(join(dir, "s.json"), JSON.stringify({ version: 1, project: "p", stack: "s", resources: [] }));
    expect(() => new StateStore(dir, "s").load("p")).toThrow(/exists but its key .* does not: its secrets cannot be read; restore the key file/);
  });
});

describe("secrets and the stack file", () => {
  it("names the variable for a config path", () => {
    expect(secretEnvName("luksPassphrases.fsn1-app1")).toBe("HFDE_SECRET_LUKSPASSPHRASES_FSN1_APP1");
  });

  it("substitutes secure nodes by path, one at a time, and lists the secret keys", async () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-config-"));
    writeFileSync(join(dir, "Pulumi.t.yaml"), "config:\n  p:plain: 1\n  p:pw:\n    secure: x\n  p:map:\n    a:\n      secure: x\n    b: [ { secure: x } ]\n");
    const asked: string[] = [];
    let open = 0;
    const resolve = async (path: string): Promise<string> => {
      expect(open++).toBe(0);
      asked.push(path);
      await new Promise((r) => setTimeout(r, 5));
      open--;
      return `value-of-${path}`;
    };
    const config = await readStackConfig({ name: "p", dir, program: "" }, "t", resolve);
    expect(asked).toEqual(["pw", "map.a", "map.b[0]"]);
    expect(config.values).toEqual({ "p:plain": "1", "p:pw": "value-of-pw", "p:map": JSON.stringify({ a: "value-of-map.a", b: ["value-of-map.b[0]"] }) });
    expect(config.secretKeys).toEqual(["p:pw", "p:map"]);
  });

  it("says which variable to set when nothing supplies a secret", async () => {
    await expect(secretResolver({ stack: "prod", env: {}, prompt: false })("robotPassword")).rejects.toThrow(
      "Pulumi.prod.yaml has a secret at robotPassword and nothing supplies its value: set the environment variable HFDE_SECRET_ROBOTPASSWORD",
    );
  });
});
