// Shell files the project runs are linted with shellcheck (installed by scripts/setup.sh from
// lab/host-tools.txt), following sourced files (-x), at severity warning.
//
// Listed, not globbed: lab/images and lab/mirror scripts are image recipes (a change rebuilds
// every cached image) and still have known findings (unquoted package lists on purpose, lib.sh
// without a shell directive); they join this list with their next recipe change.
import { spawnSync } from "child_process";
import { join } from "path";

const ROOT = join(__dirname, "..", "..", "..");
const CHECKED = ["scripts/setup.sh"];

describe("shellcheck", () => {
  it.each(CHECKED)("%s has no findings at severity warning", (file) => {
    const result = spawnSync("shellcheck", ["-x", "--severity=warning", "--format=gcc", file], { cwd: ROOT, encoding: "utf8" });
    if (result.error) throw new Error(`shellcheck did not run (${result.error.message}); run scripts/setup.sh, which installs it`);
    expect(result.stdout).toBe("");
    expect(result.status).toBe(0);
  });

  it("finds a real mistake (the check can fail)", () => {
    const result = spawnSync("shellcheck", ["--severity=warning", "--format=gcc", "-"], { input: "#!/bin/bash\nrm -rf $1/*\n", encoding: "utf8" });
    expect(result.stdout).toMatch(/SC2115|SC2086/);
  });
});
