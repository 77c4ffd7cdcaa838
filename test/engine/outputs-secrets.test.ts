// No secret in any stack output that is not marked secret: the real program on Pulumi.lab.yaml,
// every resource answering with outputs shaped as its provider records them (the dropbear private
// host key among them), and every output checked for each secret of the stack.
import { spawnSync } from "child_process";
import { mkdtempSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { REPO_ROOT } from "./support";

jest.setTimeout(60_000);

interface Reply {
  readonly outputs: Record<string, { secret: boolean; value: unknown }>;
  readonly secrets: string[];
  readonly warnings: string[];
}

describe("stack outputs", () => {
  it("carry no secret unless marked secret, and the operator's outputs are not secret", () => {
    const r = spawnSync(process.execPath, [join(REPO_ROOT, "dist", "test", "engine", "fixtures", "mocked-outputs.js")], {
      cwd: REPO_ROOT,
      env: { ...process.env, HFDE_LAB_DIR: mkdtempSync(join(tmpdir(), "hfde-outputs-")) },
      encoding: "utf8",
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const reply = JSON.parse(r.stdout) as Reply;
    expect(Object.keys(reply.outputs).sort()).toEqual(["hosts", "planned", "prometheusTargets"]);
    // The secrets themselves, and every line of the private key (a leak may be one line of it).
    const needles = reply.secrets.flatMap((s) => [s, ...s.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----"))]);
    expect(needles.length).toBeGreaterThan(4);
    for (const [name, { secret, value }] of Object.entries(reply.outputs)) {
      expect([name, secret]).toEqual([name, false]);
      const text = JSON.stringify(value);
      for (const needle of needles) expect(text.includes(needle) ? `${name} contains a secret` : "clean").toBe("clean");
    }
    const lab1 = (reply.outputs.hosts.value as Record<string, { unlockCommand: string; knownHosts: string; layout: { luks: { keyslots: number } } }>)["lab-1"];
    expect(lab1.unlockCommand).toBe("ssh -o UserKnownHostsFile=lab-1.known_hosts -o HostKeyAlias=lab-1-initramfs -o StrictHostKeyChecking=yes -p 2221 root@127.0.0.1 cryptroot-unlock");
    expect(lab1.knownHosts.split("\n").filter(Boolean).map((l) => l.split(" ")[0])).toEqual(["lab-1-rescue", "lab-1-initramfs", "lab-1-system"]);
    expect(lab1.layout.luks.keyslots).toBe(1);
    expect(reply.outputs.prometheusTargets.value).toHaveLength(4);
    expect(reply.warnings).toEqual([expect.stringContaining("host lab-2: the mirror (/dev/nvme1n1 at /mirror) is NOT managed yet")]);
  });
});
