// The alert rules shipped in monitoring/: promtool accepts them and their unit tests pass, a broken
// rule makes those tests fail, and the rules select on the labels prometheusTargets sets. promtool
// is required (lab/host-tools.txt): a missing one fails here instead of skipping in silence on CI.
import { spawnSync } from "child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { parse } from "yaml";
import { LABELS, ROLES } from "../../infra/outputs";

const DIR = resolve(__dirname, "../../../monitoring");

function promtool(args: string[], cwd = DIR): { status: number | null; out: string } {
  const r = spawnSync("promtool", args, { cwd, encoding: "utf8" });
  if (r.error) throw new Error(`promtool could not run (${r.error.message}): install Debian's prometheus package (apt-get install prometheus; lab/host-tools.txt lists it)`);
  return { status: r.status, out: r.stdout + r.stderr };
}

describe("monitoring/alerts.yml", () => {
  it("passes promtool check rules", () => {
    const r = promtool(["check", "rules", "alerts.yml"]);
    expect(r.out).toContain("SUCCESS: 3 rules found");
    expect(r.status).toBe(0);
  });

  it("passes its promtool unit tests (alerts.test.yml)", () => {
    const r = promtool(["test", "rules", "alerts.test.yml"]);
    expect(r.out).toContain("SUCCESS");
    expect(r.status).toBe(0);
  });

  it("fails those unit tests when a rule is broken (the tests can fail)", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-alerts-"));
    copyFileSync(join(DIR, "alerts.test.yml"), join(dir, "alerts.test.yml"));
    // A locked host alerting at once would page for every ordinary reboot.
    writeFileSync(join(dir, "alerts.yml"), readFileSync(join(DIR, "alerts.yml"), "utf8").replace('probe_success{hfde_role="initramfs-probe"} == 1\n        for: 10m', 'probe_success{hfde_role="initramfs-probe"} == 1\n        for: 0m'));
    const r = promtool(["test", "rules", "alerts.test.yml"], dir);
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/HfdeHostLockedInInitramfs/);
  });

  it("selects on the labels and roles that the prometheusTargets output sets", () => {
    const doc = parse(readFileSync(join(DIR, "alerts.yml"), "utf8")) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const rules = doc.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(["HfdeArrayDegraded", "HfdeMirrorLagging", "HfdeHostLockedInInitramfs"]);
    const roles = new Set(rules.flatMap((r) => [...r.expr.matchAll(/(\w+)="([^"]+)"/g)].filter((m) => m[1] === LABELS.role).map((m) => m[2])));
    expect([...roles].sort()).toEqual([ROLES.initramfsProbe, ROLES.node].sort());
  });
});
