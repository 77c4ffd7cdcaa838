// The kernel's pure parts: the one host classifier, the missing-key message, the give-up message of
// the converge loop, diff = the plan against the recorded facts, and the definition hooks.
import type * as pulumi from "@pulumi/pulumi";
import { classifyHost, KernelProvider, MISSING_PRIVATE_KEY, notConvergedMessage, readProviderConfig, requirePrivateKey, ResourceDefinition } from "../../providers/kernel";
import { validateProfiles } from "../../providers/kernel/host-access";
import { UNKNOWN } from "../../providers/kernel/resource";
import type { EndpointObservation } from "../../providers/plumbing/ssh";

const RESCUE = "SHA256:" + "r".repeat(43);
const SYSTEM = "SHA256:" + "s".repeat(43);
const DROPBEAR = "SHA256:" + "d".repeat(43);
const OTHER = "SHA256:" + "o".repeat(43);

const seen = (fingerprint: string | null, software = "OpenSSH_9.2p1"): EndpointObservation =>
  ({ kind: "ssh", software, hostKey: fingerprint === null ? null : { type: "ssh-ed25519", base64: "", fingerprint } });

describe("classifyHost (the one host classifier)", () => {
  const all = [
    { environment: "rescue" as const, hostKeyFingerprints: [RESCUE] },
    { environment: "system" as const, hostKeyFingerprints: [SYSTEM] },
    { environment: "initramfs" as const, hostKeyFingerprints: [DROPBEAR] },
  ];

  it.each<[string, EndpointObservation, string]>([
    ["the rescue key", seen(RESCUE), "rescue"],
    ["the installed system's key", seen(SYSTEM), "system"],
    ["the pinned dropbear key", seen(DROPBEAR, "dropbear_2022.83"), "initramfs"],
    ["a key no profile pins", seen(OTHER), "unknown-key"],
    ["an unpinned dropbear while initramfs keys are pinned", seen(OTHER, "dropbear_2022.83"), "unknown-key"],
    ["nothing on the port", { kind: "none", reason: "ECONNREFUSED" }, "unreachable"],
    ["no key exchange", seen(null), "unreachable"],
  ])("classifies %s", (_name, observation, kind) => {
    expect(classifyHost(observation, all).kind).toBe(kind);
  });

  it("never calls an unknown key 'system' (RescueBoot's old classifier did), and names the key", () => {
    expect(classifyHost(seen(OTHER), [all[0]])).toEqual({ kind: "unknown-key", fingerprint: OTHER, software: "OpenSSH_9.2p1" });
  });

  it("takes an unpinned dropbear for the initramfs when no profile pins initramfs keys", () => {
    expect(classifyHost(seen(OTHER, "dropbear_2022.83"), [all[0]]).kind).toBe("initramfs");
  });
});

describe("configure", () => {
  it("reads the key and Robot credentials, and names the one missing-key fix: the key on stdin, never in argv", () => {
    const config = readProviderConfig((key) => ({ robotUser: "#ws+x", robotPassword: "pw" })[key as "robotUser"]);
    expect(config.robot).toMatchObject({ user: "#ws+x", url: "https://robot-ws.your-server.de" });
    expect(() => requirePrivateKey(config, "LvmGroup")).toThrow(`LvmGroup: ${MISSING_PRIVATE_KEY}`);
    expect(MISSING_PRIVATE_KEY).toContain("pulumi config set --secret hetzner-fde:sshPrivateKey < ~/.ssh/key");
    expect(MISSING_PRIVATE_KEY).not.toMatch(/\$\(cat/);
  });
});

describe("the converge loop's give-up message", () => {
  it("names the steps that kept coming back", () => {
    const message = notConvergedMessage("LvmGroup", "127.0.0.1:2201", 4, [{ kind: "lvextend" }, { kind: "growFilesystem" }, { kind: "lvextend" }]);
    expect(message).toMatch(/after 4 rounds.*kept returning lvextend, growFilesystem\./);
  });
});

// The kernel's hooks, through KernelProvider itself with a definition whose `reach` hands out an
// in-memory "host" (a counter the steps raise): no SSH, so every call the kernel makes is visible.
describe("KernelProvider hooks: reach, outputs(…, recorded), restate, requestKey, explain, deleteKeepsData, checkWarnings", () => {
  interface Inputs { readonly providerVersion: string; readonly want: number; readonly spelling?: string; readonly allowWipe?: boolean }
  interface Outputs extends Inputs { readonly have: number; readonly note: string }
  interface Host { value: number; armed: boolean }
  type Step = { readonly kind: "raise" } | { readonly kind: "disarm" };
  const calls: string[] = [];
  const situations: { plan: string[]; desired: boolean; recorded: boolean }[] = [];

  const build = (host: Host, keepsData: boolean): ResourceDefinition<Inputs, Outputs, Host, Step, Host> => ({
    type: "Counter",
    maxRounds: 5,
    validate: (news) => (news.want < 0 ? [{ property: "want", reason: "expected >= 0" }] : []),
    checkWarnings: (news) => (news.want > 2 ? ["want is large"] : []),
    reach: async (_ctx, subject) => {
      calls.push(`reach ${subject.want}`);
      return { session: host, reached: { environment: "system", host: "memory" }, close: async () => void calls.push("close") };
    },
    probe: async (ctx) => ({ ...ctx.session }),
    plan: (observed, desired) => (observed.value < desired.want ? [{ kind: "raise" }] : []),
    recordedFacts: (recorded) => ({ value: recorded.have, armed: false }),
    steps: {
      raise: async (ctx) => void (ctx.session.value += 1),
      disarm: async (ctx) => void (ctx.session.armed = false),
    },
    outputs: (inputs, observed, _reached, recorded) => ({ ...inputs, have: observed.value, note: recorded === null ? "fresh" : `after ${recorded.have}` }),
    restate: (recorded, news) => ({ ...recorded, ...news, note: "restated" }),
    requestKey: (inputs) => ({ want: inputs.want }),
    explain: (s) => {
      situations.push({ plan: s.plan.map((p) => p.kind), desired: s.desired !== null, recorded: s.recorded !== null });
      return null;
    },
    inputsOf: ({ providerVersion, want, spelling, allowWipe }) => JSON.parse(JSON.stringify({ providerVersion, want, spelling, allowWipe })),
    id: () => "counter",
    exists: () => true,
    planDelete: (observed) => (observed.armed ? [{ kind: "disarm" }] : []),
    deleteKeepsData: keepsData,
    retained: () => "the counter",
  });
  const configured = async (def: ResourceDefinition<Inputs, Outputs, Host, Step, Host>) => {
    const provider = new KernelProvider(def);
    await provider.configure({ config: new Map([["sshPrivateKey", "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----"]]) } as unknown as pulumi.dynamic.ConfigureRequest);
    return provider;
  };
  beforeEach(() => {
    calls.length = 0;
    situations.length = 0;
  });

  it("create reaches the host through reach, loops until the plan is empty, explains round 1 only, outputs without a record", async () => {
    const host = { value: 0, armed: false };
    const provider = await configured(build(host, false));
    const { outs } = await provider.create({ providerVersion: "1", want: 3 });
    expect(host.value).toBe(3);
    expect(outs).toEqual({ providerVersion: "1", want: 3, have: 3, note: "fresh" });
    expect(calls).toEqual(["reach 3", "close"]);
    expect(situations).toEqual([{ plan: ["raise"], desired: true, recorded: false }]);
  });

  it("an update the recorded facts need no host work for is restated without reaching the host; another spelling is no change", async () => {
    const provider = await configured(build({ value: 3, armed: false }, false));
    const recorded: Outputs = { providerVersion: "1", want: 3, have: 3, note: "fresh" };
    expect(await provider.diff("counter", recorded, { providerVersion: "1", want: 3, spelling: "three" })).toEqual({ changes: false });
    expect(await provider.diff("counter", recorded, { providerVersion: "1", want: 4 })).toEqual({ changes: true });
    const { outs } = await provider.update("counter", recorded, { providerVersion: "2", want: 3 });
    expect(outs).toEqual({ providerVersion: "2", want: 3, have: 3, note: "restated" });
    expect(calls).toEqual([]);
    expect(situations).toEqual([{ plan: [], desired: true, recorded: true }]);
  });

  it("read hands the recorded outputs to outputs", async () => {
    const provider = await configured(build({ value: 5, armed: false }, false));
    const read = await provider.read("counter", { providerVersion: "1", want: 3, have: 3, note: "fresh" });
    expect(read.props).toEqual({ providerVersion: "1", want: 3, have: 5, note: "after 3" });
    expect(read.inputs).toEqual({ providerVersion: "1", want: 3 });
  });

  it("a delete that keeps data runs planDelete without allowWipe and explains it; one that would destroy data retains, reaching nothing", async () => {
    const host = { value: 3, armed: true };
    await (await configured(build(host, true))).delete("counter", { providerVersion: "1", want: 3, have: 3, note: "fresh" });
    expect(host.armed).toBe(false);
    expect(calls).toEqual(["reach 3", "close"]);
    expect(situations).toEqual([{ plan: ["disarm"], desired: false, recorded: true }]);
    calls.length = 0;
    const kept = { value: 3, armed: true };
    await (await configured(build(kept, false))).delete("counter", { providerVersion: "1", want: 3, have: 3, note: "fresh" });
    expect(kept.armed).toBe(true);
    expect(calls).toEqual([]);
  });

  it("carry hands each round's facts and the steps that ran to the outputs as the record (plan keeps the previous outputs)", async () => {
    const host = { value: 0, armed: false };
    const planned: (Outputs | null)[] = [];
    const reachedBefore: string[] = [];
    const def = build(host, false);
    const carrying: ResourceDefinition<Inputs, Outputs, Host, Step, Host> = {
      ...def,
      plan: (observed, desired, recorded) => {
        planned.push(recorded);
        return def.plan(observed, desired, recorded);
      },
      carry: (inputs, observed, reached, carried, applied) => {
        reachedBefore.push(reached.host);
        return { ...inputs, have: observed.value, note: `${carried?.note ?? "none"} + ${applied.map((s) => s.kind).join(",")}` };
      },
    };
    const { outs } = await (await configured(carrying)).create({ providerVersion: "1", want: 2 });
    // Rounds: 0 → raise (carried: have 0), 1 → raise (have 1), 2 → converged; outputs get the last carried record.
    expect(outs).toEqual({ providerVersion: "1", want: 2, have: 2, note: "after 1" });
    expect(planned).toEqual([null, null, null]);
    expect(reachedBefore).toEqual(["memory", "memory"]);
  });

  it("diff logs diffWarnings about the recorded state, and they change nothing", async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pulumiRuntime = require("@pulumi/pulumi") as typeof pulumi;
    const warned = jest.spyOn(pulumiRuntime.log, "warn").mockImplementation(() => Promise.resolve());
    try {
      const def: ResourceDefinition<Inputs, Outputs, Host, Step, Host> = { ...build({ value: 3, armed: false }, false), diffWarnings: (recorded) => (recorded.have < recorded.want ? [`have ${recorded.have} of ${recorded.want}`] : []) };
      const provider = await configured(def);
      expect(await provider.diff("counter", { providerVersion: "1", want: 3, have: 3, note: "fresh" }, { providerVersion: "1", want: 3 })).toEqual({ changes: false });
      expect(warned).not.toHaveBeenCalled();
      await provider.diff("counter", { providerVersion: "1", want: 3, have: 1, note: "fresh" }, { providerVersion: "1", want: 3 });
      expect(warned.mock.calls.map((c) => c[0])).toEqual(["[Counter counter] have 1 of 3"]);
    } finally {
      warned.mockRestore();
    }
  });

  it("check refuses bad input without reaching anything, and warns only about valid input", async () => {
    const provider = await configured(build({ value: 0, armed: false }, false));
    expect((await provider.check({} as Inputs, { providerVersion: "1", want: -1 })).failures).toEqual([{ property: "want", reason: "expected >= 0" }]);
    expect((await provider.check({} as Inputs, { providerVersion: "1", want: 5 })).failures).toBeUndefined();
    expect(calls).toEqual([]);
  });
});

describe("validateProfiles at preview", () => {
  const profile = { environment: "system", host: "203.0.113.7", port: 22, user: "root", hostKeyFingerprints: ["SHA256:" + "A".repeat(43)] };

  it("checks the known entries and fields, and leaves another resource's not-yet-known output for up", () => {
    expect(validateProfiles([UNKNOWN, profile])).toEqual([]);
    expect(validateProfiles([{ ...profile, environment: "rescue", host: UNKNOWN, hostKeyFingerprints: [UNKNOWN] }, profile])).toEqual([]);
    expect(validateProfiles([UNKNOWN, { ...profile, port: 0 }])).toEqual([{ property: "connection[1].port", reason: expect.stringMatching(/port/) }]);
  });

  it("still refuses a known bad entry and two known profiles for one environment", () => {
    expect(validateProfiles([profile, profile]).map((f) => f.property)).toEqual(["connection[1].environment"]);
    expect(validateProfiles([{ ...profile, hostKeyFingerprints: ["md5:x"] }]).map((f) => f.property)).toEqual(["connection[0].hostKeyFingerprints[0]"]);
  });
});
