// infra/index.ts under Pulumi's mock runtime: it reads pulumi.Config, and either exports the host
// summaries or stops with ONE RunError listing every problem, without quoting secrets.
import type * as PulumiModule from "@pulumi/pulumi";
import { PASSPHRASE_WEB, Raw, validConfig } from "./config-fixtures";

type Program = { hosts: { name: string; layout: string[] }[] };

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
    const namespaced = Object.fromEntries(Object.entries(config).map(([k, v]) => [`hetzner-fde:${k}`, typeof v === "string" ? v : JSON.stringify(v)]));
    pulumi.runtime.setAllConfig(namespaced, ["hetzner-fde:robotPassword", "hetzner-fde:luksPassphrases", "hetzner-fde:sshPrivateKey"]);
    program = require("../../infra") as Program; // eslint-disable-line @typescript-eslint/no-require-imports
  });
  return program as Program;
}

describe("infra/index.ts", () => {
  it("exports a summary per host for a valid config", () => {
    const program = runProgram(validConfig());
    expect(program.hosts.map((h) => h.name)).toEqual(["web1", "ca1"]);
    expect(program.hosts[0].layout).toContain("PART lvm vg0 all crypt");
    expect(JSON.stringify(program.hosts)).not.toContain(PASSPHRASE_WEB);
  });

  it("prints what validation could not check as warnings (here: the Argon2 memory against unknown RAM)", () => {
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      runProgram(validConfig());
      expect(warn.mock.calls.map((call) => String(call[0]))).toEqual([expect.stringMatching(/hosts\[0\]\.luks\.pbkdf\.memoryKiB: 1048576 KiB is not checked against the host's RAM/)]);
    } finally {
      warn.mockRestore();
    }
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
