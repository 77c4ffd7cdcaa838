// infra/index.ts under Pulumi's mock runtime: it reads pulumi.Config, and either builds the hosts
// and exports their summaries or stops with ONE RunError listing every problem, without quoting
// secrets. A program that registers resources runs in a process of its own (the closure serializer
// must not see jest's module registry): test/engine/fixtures/mocked-outputs.ts.
import { spawnSync } from "child_process";
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import type * as PulumiModule from "@pulumi/pulumi";
import { PASSPHRASE_CA, PASSPHRASE_WEB, Raw, validConfig } from "./config-fixtures";

type Program = { hosts: { name: string; layout: string[] }[] };

const SECRET_KEYS = ["hetzner-fde:robotPassword", "hetzner-fde:luksPassphrases", "hetzner-fde:sshPrivateKey"];

function namespaced(config: Raw): Record<string, string> {
  return Object.fromEntries(Object.entries(config).map(([k, v]) => [`hetzner-fde:${k}`, typeof v === "string" ? v : JSON.stringify(v)]));
}

/** The program with resources: in the mocked-outputs process. */
function runHosts(config: Raw): { planned: { name: string; layout: string[] }[]; warnings: string[]; stdout: string } {
  const file = join(mkdtempSync(join(tmpdir(), "hfde-program-")), "config.json");
  writeFileSync(file, JSON.stringify({ values: namespaced(config), secretKeys: SECRET_KEYS, secrets: [] }));
  const root = resolve(__dirname, "../../..");
  const r = spawnSync(process.execPath, [join(root, "dist", "test", "engine", "fixtures", "mocked-outputs.js"), file], { cwd: root, encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  const reply = JSON.parse(r.stdout) as { outputs: { planned: { value: { name: string; layout: string[] }[] } }; warnings: string[] };
  return { planned: reply.outputs.planned.value, warnings: reply.warnings, stdout: r.stdout };
}

/** Loads a fresh copy of the program with the given stack config, as the engine would pass it. */
function runProgram(config: Raw): Program {
  let program: Program | undefined;
  jest.isolateModules(() => {
    const pulumi = require("@pulumi/pulumi") as typeof PulumiModule; // eslint-disable-line @typescript-eslint/no-require-imports
    pulumi.runtime.setMocks(
      { newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }), call: (args) => args.inputs },
      "hetzner-fde",
      "test",
      true,
    );
    pulumi.runtime.setAllConfig(namespaced(config), SECRET_KEYS);
    program = require("../../infra") as Program; // eslint-disable-line @typescript-eslint/no-require-imports
  });
  return program as Program;
}

describe("infra/index.ts", () => {
  it("builds the hosts and exports a summary per host for a valid config, quoting no secret", () => {
    const run = runHosts(validConfig());
    expect(run.planned.map((h) => h.name)).toEqual(["web1", "ca1"]);
    expect(run.planned[0].layout).toContain("PART lvm vg0 all crypt");
    expect(run.stdout).not.toContain(PASSPHRASE_WEB);
    expect(run.stdout).not.toContain(PASSPHRASE_CA);
  });

  it("prints what validation could not check, and the unmanaged mirror, as warnings", () => {
    expect(runHosts(validConfig()).warnings).toEqual([
      expect.stringMatching(/hosts\[0\]\.luks\.pbkdf\.memoryKiB: 1048576 KiB is not checked against the host's RAM/),
      expect.stringMatching(/host ca1: the mirror \(\/dev\/sdb at \/mirror\) is NOT managed yet/),
    ]);
  });

  it("throws one RunError that lists every problem and no secret", () => {
    const config = validConfig();
    config.hosts[0].raid.level = 6;
    config.hosts[1].mirror.schedule = "often";
    config.luksPassphrases.web1 = `${PASSPHRASE_WEB.slice(0, 6)}`;
    let thrown: unknown;
    try {
      runProgram(config);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    const error = thrown as Error & { __pulumiRunError?: boolean };
    expect(error.__pulumiRunError).toBe(true);
    expect(error.message.split("\n")).toEqual([
      '3 problems in the config of stack "test":',
      expect.stringMatching(/^ {2}- hosts\[0\]\.raid\.level: RAID 6 needs at least 4 drives/),
      expect.stringMatching(/^ {2}- hosts\[1\]\.mirror\.schedule: /),
      expect.stringMatching(/^ {2}- luksPassphrases\.web1: is too weak/),
    ]);
    expect(error.message).not.toContain(PASSPHRASE_WEB.slice(0, 6));
  });
});
