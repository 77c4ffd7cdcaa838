// The local engine over a stack of fixture resources (test/engine/fixtures/chain-stack.ts): a
// dependency chain through a component, driven through the real dynamic-provider host. The ORDER of
// provider effects is read from the resources' own journal, not from what the engine printed.
import { spawnSync } from "child_process";
import { readFileSync, statSync, writeFileSync } from "fs";
import { join } from "path";
import { findSecrets } from "../harness/leaks";
import { chainFixture, REPO_ROOT, TOKEN, upAndKill } from "./support";

jest.setTimeout(120_000);

describe("engine up/destroy on a chain with a component", () => {
  const f = chainFixture();

  it("creates in dependency order, passing outputs into inputs", () => {
    const r = f.run("up");
    expect(r.status).toBe(0);
    const lines = f.journalSince();
    const pos = (line: string): number => lines.indexOf(line);
    expect(lines.sort()).toEqual(["create a1", "create b(a1)", "create c(b(a1))", "create d@s1", "create e"].sort());
    const ordered = readFileSync(f.journal, "utf8").split("\n");
    const at = (line: string): number => ordered.indexOf(line);
    expect(at("create a1")).toBeLessThan(at("create b(a1)"));
    expect(at("create b(a1)")).toBeLessThan(at("create c(b(a1))"));
    expect(at("create c(b(a1))")).toBeLessThan(at("create e")); // dependsOn the component waits for its children
    expect(pos("create a1")).toBeGreaterThanOrEqual(0);
    expect(r.out).toContain("+ 7 created"); // the stack, the component and five resources
    expect(r.out).toContain('cValue: "c(b(a1))"');
    const pair = f.state().resources.find((s) => s.urn.endsWith("::pair"));
    expect(f.state().resources.find((s) => s.urn.endsWith("::pair-b"))?.parent).toBe(pair?.urn);
    expect(f.state().resources.find((s) => s.urn.endsWith("::pair-b"))?.urn).toContain("hetzner-fde:test:Pair$pulumi-nodejs:dynamic/hetzner-fde:Journaled::pair-b");
  });

  it("a second up is a no-op", () => {
    const r = f.run("up");
    expect(r.status).toBe(0);
    expect(f.journalSince()).toEqual([]);
    expect(r.out).toContain("7 unchanged");
  });

  it("a changed input updates only that resource, and what its outputs flow into", () => {
    f.setVariant({ aValue: "a2" });
    const preview = f.run("preview");
    expect(preview.status).toBe(0);
    expect(f.journalSince()).toEqual([]); // preview runs no effect
    // b and c take a's value: the host cannot preview, so (as under `pulumi`) a's checked inputs stand
    // in for its outputs and the change flows down the chain.
    expect(preview.out).toContain("~ 3 to update");
    expect(preview.out).toContain("aTokenSha256: \"[unknown]\""); // an output not among the inputs
    const r = f.run("up");
    expect(r.status).toBe(0);
    expect(f.journalSince()).toEqual(["update a2", "update b(a2)", "update c(b(a2))"]);
    expect(r.out).toContain("~ 3 updated");
  });

  it("a replace with deleteBeforeReplace deletes the old resource first", () => {
    f.setVariant({ aValue: "a2", dSlot: "s2" });
    const r = f.run("up");
    expect(r.status).toBe(0);
    expect(f.journalSince()).toEqual(["delete d@s1", "create d@s2"]);
    expect(r.out).toContain("+-1 replaced");
  });

  it("a resource the program no longer registers is deleted", () => {
    f.setVariant({ aValue: "a2", dSlot: "s2", withE: false });
    const r = f.run("up");
    expect(r.status).toBe(0);
    expect(f.journalSince()).toEqual(["delete e"]);
    expect(r.out).toContain("- 1 deleted");
    expect(f.state().resources.map((s) => s.urn).filter((u) => u.endsWith("::e"))).toEqual([]);
  });

  it("a second update in one process is refused: the cached program would register nothing and delete everything", () => {
    const before = f.state().resources.map((s) => s.urn);
    const r = spawnSync(process.execPath, [join(REPO_ROOT, "dist/test/engine/fixtures/two-ups.js"), f.dir, f.stateDir], {
      env: { ...process.env, HFDE_SECRET_TOKEN: TOKEN },
      encoding: "utf8",
      timeout: 120_000,
    });
    const out = r.stdout + r.stderr;
    expect(out).toMatch(/up 1 exit 0/);
    expect(out).toMatch(/up 2 exit 1/);
    expect(out).toMatch(/already ran in this process[\s\S]*start the engine CLI/);
    expect(f.journalSince()).toEqual([]);
    expect(f.state().resources.map((s) => s.urn)).toEqual(before);
  });

  it("a component renamed with an alias keeps its children: no create, no delete", () => {
    const f = chainFixture();
    expect(f.run("up").status).toBe(0);
    f.journalSince();
    f.setVariant({ pairName: "twin", pairAliases: ["pair"] });
    const r = f.run("up");
    expect(r.status).toBe(0);
    expect(r.out).toContain("+ 0 created");
    expect(r.out).toContain("- 0 deleted");
    expect(f.journalSince().filter((l) => /^(create|delete)/.test(l))).toEqual([]);
    expect(f.state().resources.map((x) => x.urn.split("::").pop())).toEqual(expect.arrayContaining(["twin", "twin-b", "twin-c"]));
    expect(f.state().resources.some((x) => /::pair(-[bc])?$/.test(x.urn))).toBe(false);
    // Without the alias, the same rename is a new component: its children are created and the old ones deleted.
    f.setVariant({ pairName: "pair" });
    const back = f.run("up");
    expect(back.status).toBe(0);
    expect(back.out).toMatch(/\+ 3 created/);
  });

  it("refresh reads every resource with the stored code", () => {
    const r = f.run("refresh");
    expect(r.status).toBe(0);
    expect(f.journalSince().sort()).toEqual(["read a2", "read b(a2)", "read c(b(a2))", "read d@s2"]);
  });

  it("no secret is in the state file, and its key is 0600", () => {
    const text = readFileSync(join(f.stateDir, "test.json"), "utf8");
    expect(findSecrets(text, [TOKEN])).toEqual([]);
    expect(text).toContain("ciphertext");
    const mode = statSync(join(f.stateDir, "test.key")).mode & 0o777;
    expect(mode).toBe(0o600);
    expect(f.run("output").out).toContain('"secretEcho":"[secret]"');
  });

  it("a check failure stops the update before any effect, naming the field", () => {
    f.setVariant({ aValue: "", dSlot: "s2", withE: false });
    const r = f.run("up");
    expect(r.status).toBe(1);
    expect(r.out).toContain("failed its check:\n  - value: must be a non-empty string");
    expect(f.journalSince()).toEqual([]);
  });

  it("protect refuses a replace and a delete with Pulumi's message", () => {
    f.setVariant({ aValue: "a2", dSlot: "s2", withE: false, protectA: true });
    expect(f.run("up").status).toBe(0);
    f.journalSince();
    f.setVariant({ aValue: "a2", aSlot: "s9", dSlot: "s2", withE: false, protectA: true });
    const replace = f.run("up");
    expect(replace.status).toBe(1);
    expect(replace.out).toContain(`unable to replace resource "urn:pulumi:test::engine-test::pulumi-nodejs:dynamic/hetzner-fde:Journaled::a"\nas it is currently marked for protection.`);
    expect(f.journalSince()).toEqual([]);
    f.setVariant({ aValue: "a2", dSlot: "s2", withE: false, protectA: true });
    const destroy = f.run("destroy");
    expect(destroy.status).toBe(1);
    expect(destroy.out).toContain("as it is currently marked for protection. To unprotect the resource, remove the `protect` flag");
    expect(f.journalSince()).toEqual([]); // nothing deleted
    f.setVariant({ aValue: "a2", dSlot: "s2", withE: false, protectA: false });
    expect(f.run("up").status).toBe(0);
  });

  it("destroy deletes in reverse dependency order", () => {
    f.journalSince();
    const r = f.run("destroy");
    expect(r.status).toBe(0);
    const lines = f.journalSince();
    expect(lines.sort()).toEqual(["delete a2", "delete b(a2)", "delete c(b(a2))", "delete d@s2"].sort());
    const ordered = readFileSync(f.journal, "utf8").split("\n");
    const at = (line: string): number => ordered.lastIndexOf(line);
    expect(at("delete c(b(a2))")).toBeLessThan(at("delete b(a2)"));
    expect(at("delete b(a2)")).toBeLessThan(at("delete a2"));
    expect(f.state().resources).toEqual([]);
  });
});

describe("engine refresh", () => {
  it("shows drift, records what it read, and the next up puts it back", () => {
    const f = chainFixture({ marker: true });
    expect(f.run("up").status).toBe(0);
    writeFileSync(`${f.journal}.marker`, "edited by hand");
    const refresh = f.run("refresh");
    expect(refresh.status).toBe(0);
    expect(refresh.out).toContain('m updated');
    expect(refresh.out).toContain('content: "original" => "edited by hand"');
    expect(refresh.out).toContain("~ 1 updated");
    const up = f.run("up");
    expect(up.status).toBe(0);
    expect(up.out).toContain("~ 1 updated");
    expect(readFileSync(`${f.journal}.marker`, "utf8")).toBe("original");
    expect(f.run("destroy").status).toBe(0);
  });
});

describe("engine up --refresh", () => {
  it("reads every resource first: drift a plain up cannot see is found and put back in one run", () => {
    const f = chainFixture({ marker: true });
    expect(f.run("up").status).toBe(0);
    writeFileSync(`${f.journal}.marker`, "edited by hand");
    // A plain up diffs against the recorded state (preview connects to nothing): it sees no drift.
    expect(f.run("up").status).toBe(0);
    expect(readFileSync(`${f.journal}.marker`, "utf8")).toBe("edited by hand");
    const up = f.run("up --refresh");
    expect(up.status).toBe(0);
    expect(up.out).toContain('content: "original" => "edited by hand"');
    expect(readFileSync(`${f.journal}.marker`, "utf8")).toBe("original");
    expect(f.run("preview --refresh").out).toMatch(/unknown option "--refresh"/);
    expect(f.run("destroy").status).toBe(0);
  });
});

describe("engine create-before-delete replace", () => {
  it("creates the new one first; a failed create keeps the old one as the resource", () => {
    const f = chainFixture({ fSlot: "s1" });
    expect(f.run("up").status).toBe(0);
    f.journalSince();
    f.setVariant({ fSlot: "s2", fFails: true });
    const failed = f.run("up");
    expect(failed.status).toBe(1);
    expect(failed.out).toContain("create of f failed, as asked");
    expect(f.journalSince()).toEqual([]);
    const fs = f.state().resources.filter((r) => r.urn.endsWith("::f"));
    expect(fs.map((r) => [r.id, r.pendingDelete ?? false])).toEqual([["f@s1", false]]);
    f.setVariant({ fSlot: "s2" });
    expect(f.run("up").status).toBe(0);
    expect(f.journalSince()).toEqual(["create f@s2", "delete f@s1"]);
    expect(f.state().resources.filter((r) => r.urn.endsWith("::f")).map((r) => r.id)).toEqual(["f@s2"]);
    expect(f.run("destroy").status).toBe(0);
  });
});

describe("engine parallelism", () => {
  it("runs independent resources at the same time", () => {
    const f = chainFixture({ delayMs: 300 });
    const r = f.run("up");
    expect(r.status).toBe(0);
    // a and d depend on nothing: both creates start before either ends (each waits 300 ms first).
    const at = (text: string): number => r.out.indexOf(text);
    expect(at(" d creating...")).toBeGreaterThan(-1);
    expect(at(" d creating...")).toBeLessThan(at(" a created ("));
    expect(at(" a creating...")).toBeLessThan(at(" d created ("));
    expect(f.run("destroy").status).toBe(0);
  });
});

describe("engine killed mid-up", () => {
  it("keeps every completed operation in the state, and the next up converges", async () => {
    const f = chainFixture({ delayMs: 400 });
    const out = await upAndKill(f, 2);
    const completed = [...out.matchAll(/ (\S+) created \(/g)].map((m) => m[1]);
    const recorded = f.state().resources.map((r) => r.urn.split("::").pop());
    for (const name of completed) expect(recorded).toContain(name);
    expect(recorded.length).toBeLessThan(7);
    const again = f.run("up");
    expect(again.status).toBe(0);
    expect(f.state().resources).toHaveLength(7);
    const third = f.run("up");
    expect(third.out).toContain("7 unchanged");
    expect(findSecrets(readFileSync(join(f.stateDir, "test.json"), "utf8"), [TOKEN])).toEqual([]);
  });
});
