// The no-CLI path of `npm run demo`: the real program, fed from a real stack file.
import { mkdtempSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { labSecretFor, LAB_SECRETS } from "../../lab/secrets";
import { runStackProgram } from "./stack-runner";

const repoRoot = resolve(__dirname, "..", "..", "..");

describe("runStackProgram", () => {
  beforeAll(() => {
    process.env.HFDE_LAB_DIR = mkdtempSync(join(tmpdir(), "hfde-stack-runner-")); // the lab operator key lands here
  });

  it("runs infra/index.ts on Pulumi.lab.yaml and returns its outputs, with no secret in them", async () => {
    const run = await runStackProgram(repoRoot, "lab", labSecretFor);
    const hosts = run.outputs.hosts as { name: string; layout: string[] }[];
    expect(hosts.map((h) => h.name)).toEqual(["lab-1", "lab-2"]);
    expect(hosts[0].layout).toContain("PART lvm vg0 all crypt");
    const text = JSON.stringify(run.outputs);
    for (const passphrase of Object.values(LAB_SECRETS.luksPassphrases)) expect(text).not.toContain(passphrase);
    expect(text).not.toContain("PRIVATE KEY");
  });
});
