// `preview` makes no connection to any host: run under a network trap (net-trap.ts) in the engine
// and in its provider host, it records zero outbound attempts, while `up` under the same trap
// records the attempts the resources make (so the trap can see them).
import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { secretEnvName } from "../../engine/secrets";
import { chainFixture, CLI, plannedCreates, REPO_ROOT } from "./support";

jest.setTimeout(120_000);

const TRAP = join(REPO_ROOT, "dist", "test", "engine", "net-trap.js");

function trapped(): { env: NodeJS.ProcessEnv; attempts: () => string[] } {
  const file = join(mkdtempSync(join(tmpdir(), "hfde-trap-")), "trap.log");
  writeFileSync(file, "");
  return {
    env: { NODE_OPTIONS: `--require ${TRAP}`, HFDE_NET_TRAP_FILE: file },
    attempts: () => readFileSync(file, "utf8").split("\n").filter((l) => l.startsWith("connect ") || l.startsWith("dns ")),
  };
}

describe("preview never connects to a host", () => {
  it("previews Pulumi.prod.yaml (hosts unreachable from here) with zero connection attempts", () => {
    const trap = trapped();
    const secrets: Record<string, string> = {
      robotPassword: "prod-robot-password-for-preview",
      sshPrivateKey: generateEd25519KeyPair("preview-test").private,
      "luksPassphrases.fsn1-app1": "amber-Quokka-83-lantern-prod1",
      "luksPassphrases.hel1-ca1": "quokka-Amber-27-harbour-prod2",
    };
    const env = Object.fromEntries(Object.entries(secrets).map(([k, v]) => [secretEnvName(k), v]));
    const r = spawnSync(process.execPath, [CLI, "preview", "--stack", "prod", "--state-dir", join(tmpdir(), `hfde-prod-${process.pid}`)], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, ...trap.env },
      encoding: "utf8",
    });
    expect(r.stdout + r.stderr).toContain("Previewing update (prod)");
    expect(r.status).toBe(0);
    expect(trap.attempts()).toEqual([]);
    // The whole tree was checked by the real provider host: the hel1-ca1 ssh target has no RescueBoot.
    expect(plannedCreates(r.stdout)).toEqual(
      [
        "Stack hetzner-fde-prod",
        ...["fsn1-app1", "hel1-ca1"].map((h) => `EncryptedRaidHost ${h}`),
        "RescueBoot fsn1-app1-rescue",
        ...["fsn1-app1", "hel1-ca1"].flatMap((h) => [`InstallImage ${h}-install`, `DropbearInitramfs ${h}-dropbear`, `LuksVolume ${h}-root-luks`]),
      ].sort(),
    );
    expect(r.stdout + r.stderr).toContain("host hel1-ca1: the mirror (/dev/sdb at /mirror) is NOT managed yet");
    // target.robot.allowFirstContactHostKey reaches RescueBoot, whose check warns on every preview.
    expect(r.stdout + r.stderr).toMatch(/RescueBoot server 2345678: allowFirstContactHostKey is true: .*the pinned driveSerials/);
    for (const value of Object.values(secrets)) expect(r.stdout + r.stderr).not.toContain(value);
  });

  it("previews resources whose effects connect, with zero attempts; up with the same trap records them", () => {
    const f = chainFixture();
    expect(f.run("up").status).toBe(0); // recorded state, so the preview below runs Diff as well
    f.setVariant({ aValue: "a2", reach: { host: "192.0.2.1", port: 22 } });
    const trap = trapped();
    const preview = f.run("preview", trap.env);
    expect(preview.status).toBe(0);
    expect(preview.out).toContain("~ 3 to update"); // a, and b and c which take its value
    expect(trap.attempts()).toEqual([]);
    const up = f.run("up", trap.env);
    expect(up.status).toBe(1);
    expect(trap.attempts().some((a) => a.startsWith("connect 192.0.2.1:22"))).toBe(true);
  });
});
