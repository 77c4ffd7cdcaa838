// The real program (infra/index.ts) on the real lab stack file, through the engine's CLI: the lab's
// fixed secrets stand in for `pulumi config set --secret`, and none of them reaches the output.
import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { parse, stringify } from "yaml";
import { drillTarget } from "../../engine/drill";
import { prepareLabStack } from "../../engine/lab-stack";
import { LAB_SECRETS } from "../../lab/secrets";
import { CLI, plannedCreates, REPO_ROOT } from "./support";

jest.setTimeout(60_000);

describe("npm run stack -- preview --stack lab", () => {
  it("runs infra/index.ts on Pulumi.lab.yaml, shows its outputs and no secret", () => {
    const labDir = mkdtempSync(join(tmpdir(), "hfde-lab-stack-")); // the lab operator key and the state land here
    const r = spawnSync(process.execPath, [CLI, "preview", "--stack", "lab"], { cwd: REPO_ROOT, env: { ...process.env, HFDE_LAB_DIR: labDir }, encoding: "utf8" });
    const out = r.stdout + r.stderr;
    expect(r.status).toBe(0);
    expect(out).toContain('"name":"lab-1"');
    expect(out).toContain('"name":"lab-2"');
    expect(out).toContain("PART lvm vg0 all crypt");
    // The full tree: per host a component and its four resources, parented under it.
    expect(plannedCreates(r.stdout)).toEqual(
      ["Stack hetzner-fde-lab", ...["lab-1", "lab-2"].flatMap((h) => [`EncryptedRaidHost ${h}`, `RescueBoot ${h}-rescue`, `InstallImage ${h}-install`, `DropbearInitramfs ${h}-dropbear`, `LuksVolume ${h}-root-luks`])].sort(),
    );
    expect(out).toContain("host lab-2: the mirror (/dev/nvme1n1 at /mirror) is NOT managed yet");
    expect(out).not.toContain("host lab-1: the mirror");
    for (const passphrase of Object.values(LAB_SECRETS.luksPassphrases)) expect(out).not.toContain(passphrase);
    expect(out).not.toContain(LAB_SECRETS.robotPassword);
    expect(out).not.toContain("PRIVATE KEY");
  });

  it("prepareLabStack (the demo's and the e2e's project): one host's lab config and stack, previewed", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-lab-one-"));
    const stack = prepareLabStack(dir, ["lab-1"]);
    expect((JSON.parse(readFileSync(stack.labConfig, "utf8")) as { servers: { number: number }[] }).servers.map((s) => s.number)).toEqual([100001]);
    const r = spawnSync(process.execPath, [CLI, "preview", "--stack", "lab", "--dir", stack.projectDir, "--state-dir", join(dir, "state")], { cwd: REPO_ROOT, env: { ...process.env, HFDE_LAB_DIR: dir }, encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(plannedCreates(r.stdout)).toEqual(["Stack hetzner-fde-lab", "EncryptedRaidHost lab-1", "RescueBoot lab-1-rescue", "InstallImage lab-1-install", "DropbearInitramfs lab-1-dropbear", "LuksVolume lab-1-root-luks"].sort());
    expect(() => prepareLabStack(dir, ["lab-9"])).toThrow(/Pulumi.lab.yaml has no host lab-9; its hosts are lab-1, lab-2/);
  });

  it("the degraded-boot drill finds lab-1's server and pinned drives in the stack, and refuses before touching a host when the stack has none", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-drill-"));
    const target = drillTarget(dir);
    expect([target.serverNumber, target.drives.map((d) => d.serial), target.robotUrl]).toEqual([100001, ["LAB100001N0", "LAB100001N1"], "http://127.0.0.1:40080"]);
    const drill = (...args: string[]) => spawnSync(process.execPath, [join(REPO_ROOT, "dist", "lab", "cli.js"), "drill", ...args], { cwd: REPO_ROOT, env: { ...process.env, HFDE_LAB_DIR: dir }, encoding: "utf8" });
    const empty = drill("--dir", dir);
    expect([empty.status, empty.stdout]).toEqual([2, expect.stringMatching(/no lab-1 in the demo's stack \(.*\): run npm run demo first/)]);
    expect(drill("--drive", "first").stderr).toMatch(/--drive expects a disk index like 0, found "first"/);
    expect(drill("--now").stderr).toMatch(/drill takes \[--drive <index>\] \[--dir <dir>\], found --now/);
  });

  it("the drill runs against the stack as deployed: a config edited after the demo (a key added) is kept, not rewritten from the repository", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-drill-kept-"));
    const stack = prepareLabStack(dir, ["lab-1"]);
    const file = join(stack.projectDir, "Pulumi.lab.yaml");
    const doc = parse(readFileSync(file, "utf8")) as { config: Record<string, { dropbear: { authorizedKeys: string[] } }[]> };
    doc.config["hetzner-fde:hosts"][0].dropbear.authorizedKeys.push("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGclfHjGSW7TPWzLPDYFNrSOaNCKRWn4PQeTNyvzr8lG added-later");
    writeFileSync(file, stringify(doc));
    const edited = readFileSync(file, "utf8");
    expect(edited).toContain("added-later");
    expect(drillTarget(dir).stack.projectDir).toBe(stack.projectDir);
    expect(readFileSync(file, "utf8")).toBe(edited);
  });

  it("fails with the variable to set when a secret has no value", () => {
    const r = spawnSync(process.execPath, [CLI, "preview", "--stack", "prod", "--state-dir", mkdtempSync(join(tmpdir(), "hfde-prod-"))], { cwd: REPO_ROOT, encoding: "utf8", env: { ...process.env, HFDE_SECRET_ROBOTPASSWORD: "" } });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("Pulumi.prod.yaml has a secret at robotPassword and nothing supplies its value: set the environment variable HFDE_SECRET_ROBOTPASSWORD");
  });
});
