// The pure parts of RescueBoot: validation, the boot plan (including when a rescue booted earlier
// counts as this run's), the diff, the refresh classification and the no-boot update.
import { generateEd25519KeyPair, md5Fingerprint, parsePublicKey } from "../../providers/plumbing/keys";
import type { EndpointObservation } from "../../providers/plumbing/ssh";
import {
  buildOutputs,
  compareOutputs,
  DEFAULT_SSH_MS,
  desiredFromRecipe,
  explainPlan,
  firstContactWarning,
  outputsFrom,
  planRescue,
  inputsOf,
  withRequest,
  plan,
  planDelete,
  RescueBootInputs,
  RescueBootOutputs,
  RescueObserved,
  RescuePlanInput,
  resolveInputs,
  restate,
  validate,
} from "../../providers/rescue-boot";
import { identityProblems, parseIdentity } from "../../providers/rescue-boot/identity";
import { classifyHost, validateProfiles } from "../../providers/kernel/host-access";
import { RefusalError, UNKNOWN } from "../../providers/kernel/resource";

const KEY_A = generateEd25519KeyPair("a@test").public;
const KEY_B = generateEd25519KeyPair("b@test").public;
const FP_A = md5Fingerprint(parsePublicKey(KEY_A));
const FP_B = md5Fingerprint(parsePublicKey(KEY_B));
const RESCUE_KEY = "SHA256:" + "R".repeat(43);
const OTHER_KEY = "SHA256:" + "S".repeat(43);
const NOW = "2026-11-22T10:00:00.000Z";

const inputs = (over: Partial<Record<keyof RescueBootInputs, unknown>> = {}): RescueBootInputs =>
  ({ serverNumber: 100001, authorizedKeys: [KEY_A], providerVersion: "1", ...over }) as RescueBootInputs;

const desired = (over: Partial<RescuePlanInput> = {}): RescuePlanInput => ({ ...resolveInputs(inputs()), bootedAfter: null, ...over });

const ssh = (fingerprint: string | null, software = "OpenSSH_9.2p1"): EndpointObservation => ({
  kind: "ssh",
  software,
  hostKey: fingerprint === null ? null : { type: "ssh-ed25519", base64: "AAAA", fingerprint },
});
const NOTHING: EndpointObservation = { kind: "none", reason: "127.0.0.1:22: ECONNREFUSED" };

const observed = (over: Partial<RescueObserved> = {}): RescueObserved => ({
  now: NOW,
  server: { ipv4: "203.0.113.10", ipv6Net: "2a01:4f8:111:4221::", product: "EX44", datacenter: "FSN1-DC10" },
  resetTypes: ["sw", "hw", "man", "power", "power_long"],
  otherActiveBoots: [],
  rescueArmed: false,
  missingKeys: [],
  lastRescue: null,
  endpoint: { host: "203.0.113.10", port: 22, observation: ssh(OTHER_KEY) },
  environment: "unknown-key",
  reached: null,
  ...over,
});

const minutesBefore = (iso: string, minutes: number): string => new Date(Date.parse(iso) - minutes * 60_000).toISOString();

describe("validate", () => {
  it("accepts minimal inputs", () => {
    expect(validate(inputs())).toEqual([]);
  });

  it.each<[string, Partial<Record<keyof RescueBootInputs, unknown>>, string, RegExp]>([
    ["server number 0", { serverNumber: 0 }, "serverNumber", /positive integer\), found 0/],
    ["fractional server number", { serverNumber: 1.5 }, "serverNumber", /positive integer/],
    ["server number as text", { serverNumber: "100001" }, "serverNumber", /found "100001"/],
    ["no keys", { authorizedKeys: [] }, "authorizedKeys", /at least one OpenSSH public key line.*found none/],
    ["keys not a list", { authorizedKeys: "ssh-ed25519 AAAA" }, "authorizedKeys", /found "ssh-ed25519 AAAA"/],
    ["malformed key", { authorizedKeys: ["ssh-ed25519 not!base64"] }, "authorizedKeys[0]", /outside base64.*paste the whole line/],
    ["private key pasted", { authorizedKeys: ["-----BEGIN OPENSSH PRIVATE KEY-----"] }, "authorizedKeys[0]", /key type/],
    ["same key twice (comment differs)", { authorizedKeys: [KEY_A, KEY_A.replace("a@test", "other")] }, "authorizedKeys[1]", /same key as authorizedKeys\[0\]/],
    ["negative generation", { generation: -1 }, "generation", /integer >= 0/],
    ["fractional generation", { generation: 0.5 }, "generation", /integer >= 0/],
    ["unknown reset type", { resetType: "reboot" }, "resetType", /hw, sw, man.*found "reboot"/],
    ["power reset", { resetType: "power" }, "resetType", /shuts down instead of rebooting/],
    ["power_long reset", { resetType: "power_long" }, "resetType", /switches the server off/],
    ["bad connect host", { connect: { host: "not a host" } }, "connect.host", /address or a host name/],
    ["bad connect port", { connect: { port: 70000 } }, "connect.port", /70000/],
    ["ssh timeout too short", { timeouts: { sshMs: 10 } }, "timeouts.sshMs", /between 1000 and 3600000/],
    ["first-contact flag as text", { allowFirstContactHostKey: "yes" }, "allowFirstContactHostKey", /true or false/],
  ])("rejects %s", (_case, over, property, reason) => {
    const failures = validate(inputs(over));
    expect(failures.map((f) => f.property)).toEqual([property]);
    expect(failures[0].reason).toMatch(reason);
  });

  it("collects every failure at once", () => {
    const failures = validate(inputs({ serverNumber: 0, authorizedKeys: [], resetType: "x", generation: -2 }));
    expect(failures.map((f) => f.property).sort()).toEqual(["authorizedKeys", "generation", "resetType", "serverNumber"]);
  });

  it("skips values still unknown in preview", () => {
    expect(validate(inputs({ serverNumber: UNKNOWN, authorizedKeys: UNKNOWN, resetType: UNKNOWN, connect: { host: UNKNOWN, port: UNKNOWN } }))).toEqual([]);
    expect(validate(inputs({ authorizedKeys: [KEY_A, UNKNOWN] }))).toEqual([]);
  });

  it("fills defaults: generation 0, hw, port 22, 10 min, first contact refused", () => {
    expect(resolveInputs(inputs())).toEqual({
      serverNumber: 100001,
      authorizedKeys: [KEY_A],
      generation: 0,
      resetType: "hw",
      connect: { host: null, port: 22 },
      timeouts: { sshMs: DEFAULT_SSH_MS },
      allowFirstContactHostKey: false,
      driveSerials: [],
      providerVersion: "1",
    });
  });
});

describe("plan", () => {
  const FRESH = ["armRescue", "reset", "awaitRescue"];

  it.each<[string, Partial<RescueObserved>, Partial<RescuePlanInput>, string[]]>([
    ["blank server: arm, reset, wait", {}, {}, FRESH],
    ["missing key: register it first", { missingKeys: [FP_A] }, {}, ["registerKey", ...FRESH]],
    ["linux install armed: disarm it first", { otherActiveBoots: ["linux"] }, {}, ["disarmBoot", ...FRESH]],
    [
      "rescue of the last activation still up with its key: adopt",
      { lastRescue: { bootedAt: minutesBefore(NOW, 30), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: ssh(RESCUE_KEY) } },
      {},
      ["awaitRescue"],
    ],
    [
      "last rescue booted 1 min ago, nothing answers yet (create killed while waiting): wait, no second reset",
      { lastRescue: { bootedAt: minutesBefore(NOW, 1), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: NOTHING } },
      {},
      ["awaitRescue"],
    ],
    [
      "last rescue booted 1 min ago but another key answers: the server is elsewhere, boot again",
      { lastRescue: { bootedAt: minutesBefore(NOW, 1), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: ssh(OTHER_KEY) } },
      {},
      FRESH,
    ],
    [
      "last rescue booted long ago and gone: boot again",
      { lastRescue: { bootedAt: minutesBefore(NOW, 120), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: NOTHING } },
      {},
      FRESH,
    ],
    [
      "last rescue armed with other keys: boot again",
      { lastRescue: { bootedAt: minutesBefore(NOW, 1), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_B] }, endpoint: { host: "h", port: 22, observation: ssh(RESCUE_KEY) } },
      {},
      FRESH,
    ],
    [
      "armed but never booted (killed between arm and reset): arm again and reset",
      { rescueArmed: true, lastRescue: { bootedAt: null, hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: NOTHING } },
      {},
      FRESH,
    ],
    [
      "update: the running rescue is the one stored (not newer): generation bump boots again",
      { lastRescue: { bootedAt: minutesBefore(NOW, 10), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: ssh(RESCUE_KEY) } },
      { bootedAfter: minutesBefore(NOW, 10) },
      FRESH,
    ],
    [
      "update killed after its reset: the newer boot is adopted",
      { lastRescue: { bootedAt: minutesBefore(NOW, 2), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: NOTHING } },
      { bootedAfter: minutesBefore(NOW, 10) },
      ["awaitRescue"],
    ],
    [
      "Robot gave no host key, booted 1 min ago, some sshd answers: wait and verify it (first contact)",
      { lastRescue: { bootedAt: minutesBefore(NOW, 1), hostKeyFingerprints: [], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: ssh(OTHER_KEY) } },
      {},
      ["awaitRescue"],
    ],
  ])("%s", (_case, obs, want, kinds) => {
    expect(plan(observed(obs), desired(want)).map((s) => s.kind)).toEqual(kinds);
  });

  it("arms with the MD5 fingerprints of every key and resets with the chosen type once", () => {
    const steps = plan(observed({ missingKeys: [FP_B] }), desired({ authorizedKeys: [KEY_A, KEY_B], resetType: "sw" }));
    expect(steps).toEqual([
      { kind: "registerKey", fingerprint: FP_B, publicKey: KEY_B },
      { kind: "armRescue", fingerprints: [FP_A, FP_B], allowFirstContactHostKey: false },
      { kind: "reset", resetType: "sw" },
      { kind: "awaitRescue", host: "203.0.113.10", port: 22, pin: { source: "armed" }, allowFirstContactHostKey: false, identity: { driveSerials: [], address: "203.0.113.10" }, budgetMs: DEFAULT_SSH_MS },
    ]);
    expect(steps.filter((s) => s.kind === "reset")).toHaveLength(1);
  });

  it("adopting pins the last activation's host keys", () => {
    const steps = plan(
      observed({ lastRescue: { bootedAt: minutesBefore(NOW, 3), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 2201, observation: ssh(RESCUE_KEY) } }),
      desired(),
    );
    expect(steps).toEqual([{ kind: "awaitRescue", host: "h", port: 2201, pin: { source: "last-rescue", fingerprints: [RESCUE_KEY] }, allowFirstContactHostKey: false, identity: { driveSerials: [], address: "203.0.113.10" }, budgetMs: DEFAULT_SSH_MS }]);
  });

  it("waits for a boot still coming up only for what is left of its SSH budget", () => {
    const steps = plan(
      observed({ lastRescue: { bootedAt: minutesBefore(NOW, 4), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: NOTHING } }),
      desired(),
    );
    expect(steps).toEqual([expect.objectContaining({ kind: "awaitRescue", budgetMs: DEFAULT_SSH_MS - 4 * 60_000 })]);
  });

  it("without a booted last rescue the endpoint was not looked at, and a fresh boot is planned", () => {
    expect(plan(observed({ endpoint: { host: "h", port: 22, observation: null } }), desired()).map((s) => s.kind)).toEqual(["armRescue", "reset", "awaitRescue"]);
  });

  it("refuses a reset type the server does not offer, naming resetType and the allowed list", () => {
    const run = () => plan(observed({ resetTypes: ["sw", "man"] }), desired());
    expect(run).toThrow(RefusalError);
    expect(run).toThrow(/resetType: "hw" is not offered for server 100001; Robot allows \["sw","man"\]\. Set resetType to "sw" or "man"/);
  });

  it("refuses when Robot has no reset for the server (RESET_NOT_AVAILABLE), saying what to do", () => {
    expect(() => plan(observed({ resetTypes: null }), desired())).toThrow(/RESET_NOT_AVAILABLE for server 100001.*Reboot it by other means/);
  });

  it("does not need a reset, so does not refuse one, when it adopts", () => {
    const obs = observed({ resetTypes: null, lastRescue: { bootedAt: minutesBefore(NOW, 3), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: ssh(RESCUE_KEY) } });
    expect(plan(obs, desired()).map((s) => s.kind)).toEqual(["awaitRescue"]);
  });

  it("delete disarms only a rescue that is still armed", () => {
    expect(planDelete(observed({ rescueArmed: true }))).toEqual([{ kind: "disarmRescue" }]);
    expect(planDelete(observed({ rescueArmed: false }))).toEqual([]);
  });
});

// Refresh classifies with the kernel's classifyHost and RescueBoot's one rescue profile.
describe("classifyHost (refresh)", () => {
  const profiles = [{ environment: "rescue" as const, hostKeyFingerprints: [RESCUE_KEY] }];
  it.each<[string, EndpointObservation, string]>([
    ["the pinned rescue key", ssh(RESCUE_KEY), "rescue"],
    ["a dropbear banner", ssh(OTHER_KEY, "dropbear_2022.83"), "initramfs"],
    // No key exchange: nothing to identify it by (classifyEnvironment said "initramfs" here).
    ["a dropbear banner whose key exchange failed", ssh(null, "dropbear"), "unreachable"],
    // An unknown key is never guessed to be the installed system (classifyEnvironment said "system").
    ["another OpenSSH key", ssh(OTHER_KEY), "unknown-key"],
    ["nothing", NOTHING, "unreachable"],
  ])("%s → %s", (_case, observation, environment) => {
    expect(classifyHost(observation, profiles).kind).toBe(environment);
  });
});

describe("diff", () => {
  const reached = { hostKey: { type: "ssh-ed25519", base64: parsePublicKey(KEY_B).blob.toString("base64"), fingerprint: RESCUE_KEY }, source: "robot" as const, pinned: [RESCUE_KEY] };
  const olds: RescueBootOutputs = buildOutputs(resolveInputs(inputs()), observed({ endpoint: { host: "127.0.0.1", port: 2201, observation: ssh(RESCUE_KEY) }, reached }), NOW);

  it.each<[string, Partial<Record<keyof RescueBootInputs, unknown>>, { changes: boolean; replaces?: string[] }]>([
    ["identical inputs", {}, { changes: false }],
    ["defaults spelled out", { generation: 0, resetType: "hw", allowFirstContactHostKey: false, driveSerials: [], timeouts: { sshMs: DEFAULT_SSH_MS }, connect: { port: 22 } }, { changes: false }],
    ["a key's comment changed (same key)", { authorizedKeys: [KEY_A.replace("a@test", "renamed")] }, { changes: false }],
    ["generation bumped", { generation: 1 }, { changes: true }],
    ["a key added", { authorizedKeys: [KEY_A, KEY_B] }, { changes: true }],
    ["reset type", { resetType: "sw" }, { changes: true }],
    ["timeouts", { timeouts: { sshMs: 60_000 } }, { changes: true }],
    ["first-contact flag", { allowFirstContactHostKey: true }, { changes: true }],
    ["provider version", { providerVersion: "2" }, { changes: true }],
    ["another server", { serverNumber: 100002 }, { changes: true, replaces: ["serverNumber"] }],
  ])("%s", (_case, over, expected) => {
    const result = compareOutputs(olds, inputs(over));
    expect(result.changes).toBe(expected.changes);
    expect(result.replaces ?? []).toEqual(expected.replaces ?? []);
    expect(result.deleteBeforeReplace ?? false).toBe(false);
  });

  it("outputs record the request as the program gave it, so read returns it; older outputs (defaults filled in) diff the same", () => {
    const request = inputs({ connect: { host: "127.0.0.1", port: 2201 } });
    const recorded = withRequest(olds, request);
    expect(inputsOf(recorded)).toEqual(request);
    expect(recorded.generation).toBeUndefined();
    expect(recorded.profile).toEqual(olds.profile);
    expect(compareOutputs(recorded, request)).toEqual({ changes: false });
    expect(compareOutputs(recorded, inputs({ connect: { host: "127.0.0.1", port: 2201 }, generation: 0, resetType: "hw" }))).toEqual({ changes: false });
    expect(compareOutputs(recorded, inputs({ connect: { host: "127.0.0.1", port: 2201 }, generation: 1 })).changes).toBe(true);
  });

  it("outputs carry a rescue profile InstallImage can take, and a known_hosts line for the port", () => {
    expect(olds.profile).toEqual({
      environment: "rescue",
      host: "127.0.0.1",
      port: 2201,
      user: "root",
      hostKeyFingerprints: [RESCUE_KEY],
      robot: { serverNumber: 100001, authorizedKeys: [KEY_A], resetType: "hw", allowFirstContactHostKey: false, sshMs: DEFAULT_SSH_MS },
    });
    expect(validateProfiles([olds.profile], "rescue")).toEqual([]);
    expect(olds.knownHosts).toEqual([`[127.0.0.1]:2201 ssh-ed25519 ${parsePublicKey(KEY_B).blob.toString("base64")}`]);
    expect(olds.hostKeySource).toBe("robot");
    expect(olds.bootedAt).toBe(NOW);
    expect(JSON.stringify(olds)).not.toMatch(/password/i);
  });

  it("an update that does not boot keeps the boot's facts and moves the endpoint when connect changes", () => {
    const moved = restate(olds, resolveInputs(inputs({ connect: { host: "198.51.100.7" }, resetType: "sw" })));
    expect(moved.resetType).toBe("sw");
    expect(moved.bootedAt).toBe(olds.bootedAt);
    expect(moved.hostKeyFingerprints).toEqual(olds.hostKeyFingerprints);
    expect(moved.profile).toEqual({ ...olds.profile, host: "198.51.100.7", port: 22, robot: { ...olds.profile.robot, resetType: "sw" } });
    expect(moved.knownHosts[0]).toMatch(/^198\.51\.100\.7 ssh-ed25519 /);
  });

  it("the profile's recipe boots the same rescue again: RescueBoot's inputs, dialling the profile's address", () => {
    const again = desiredFromRecipe(olds.profile.robot!, { host: olds.profile.host, port: olds.profile.port }, "2");
    expect(again).toEqual({ ...resolveInputs(inputs({ connect: { host: "127.0.0.1", port: 2201 } })), providerVersion: "2" });
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ["server number", { serverNumber: 0 }, "rescue[0].robot.serverNumber", /positive integer/],
    ["reset type that switches the server off", { resetType: "power" }, "rescue[0].robot.resetType", /shuts down instead of rebooting/],
    ["no keys", { authorizedKeys: [] }, "rescue[0].robot.authorizedKeys", /at least one OpenSSH public key/],
    ["a broken key", { authorizedKeys: ["ssh-ed25519 AAAA"] }, "rescue[0].robot.authorizedKeys[0]", /key data does not match its type: the line says "ssh-ed25519"/],
    ["first-contact flag", { allowFirstContactHostKey: "yes" }, "rescue[0].robot.allowFirstContactHostKey", /true or false/],
    ["ssh budget", { sshMs: -1 }, "rescue[0].robot.sshMs", /positive integer/],
    ["drive serials", { driveSerials: "S1" }, "rescue[0].robot.driveSerials", /list of drive serials or WWNs.*found "S1"/],
  ])("a profile whose recipe has a bad %s is refused, naming the field", (_case, over, property, reason) => {
    const failures = validateProfiles([{ ...olds.profile, robot: { ...olds.profile.robot, ...over } }], "rescue");
    expect(failures).toEqual([{ property, reason: expect.stringMatching(reason) }]);
  });
});

describe("first contact (#10 §4)", () => {
  it("is off unless the stack turns it on for this server, and check warns whenever it is on", () => {
    expect(resolveInputs(inputs()).allowFirstContactHostKey).toBe(false);
    expect(firstContactWarning(inputs())).toBeNull();
    expect(firstContactWarning(inputs({ allowFirstContactHostKey: false }))).toBeNull();
    expect(firstContactWarning(inputs({ allowFirstContactHostKey: true }))).toMatch(
      /^RescueBoot server 100001: allowFirstContactHostKey is true: .*trusted on first contact.*\(no driveSerials pinned\).*README "First contact"/,
    );
  });

  it("pins drive serials as an optional input, refused field by field when malformed", () => {
    expect(validate(inputs({ driveSerials: ["S6P7NS0T123456", "0x5002538e4092b1c7"] }))).toEqual([]);
    expect(validate(inputs({ driveSerials: "S6P7" })).map((f) => f.property)).toEqual(["driveSerials"]);
    const failures = validate(inputs({ driveSerials: ["ok", "two words", 7] }));
    expect(failures.map((f) => f.property)).toEqual(["driveSerials[1]", "driveSerials[2]"]);
    expect(failures[0].reason).toMatch(/one serial or WWN as lsblk -dn -o SERIAL,WWN prints it \(no spaces\), found "two words"/);
  });

  it("the wait checks Robot's address only where it is the one dialled, and the pinned serials always", () => {
    const dialledRobot = plan(observed(), desired({ driveSerials: ["S1"] })).find((s) => s.kind === "awaitRescue");
    expect(dialledRobot).toMatchObject({ identity: { driveSerials: ["S1"], address: "203.0.113.10" } });
    const forwarded = plan(observed({ endpoint: { host: "127.0.0.1", port: 2201, observation: null } }), desired({ connect: { host: "127.0.0.1", port: 2201 } }));
    expect(forwarded.find((s) => s.kind === "awaitRescue")).toMatchObject({ identity: { driveSerials: [], address: null } });
  });
});

describe("identity after login", () => {
  const stdout = [
    "rescue",
    "installimage",
    "--drives",
    "S6P7NS0T123456 eui.002538b921b1c7a0",
    "WD-WX12345     0x50014ee2b5c3d4e5",
    "--addresses",
    "2: eth0    inet 203.0.113.10/26 brd 203.0.113.63 scope global eth0\\       valid_lft forever preferred_lft forever",
    "2: eth0    inet6 2a01:4f8:111:4221::2/64 scope global \\       valid_lft forever preferred_lft forever",
    "",
  ].join("\n");
  const identity = parseIdentity(stdout);

  it("parses hostname, marker, serials and WWNs, and global addresses", () => {
    expect(identity).toEqual({
      hostname: "rescue",
      installimage: true,
      drives: ["S6P7NS0T123456", "eui.002538b921b1c7a0", "WD-WX12345", "0x50014ee2b5c3d4e5"],
      addresses: ["203.0.113.10", "2a01:4f8:111:4221::2"],
    });
  });

  it.each<[string, { driveSerials: string[]; address: string | null }, RegExp | null]>([
    ["pinned serial and Robot's address present", { driveSerials: ["S6P7NS0T123456"], address: "203.0.113.10" }, null],
    ["a WWN without its 0x", { driveSerials: ["50014ee2b5c3d4e5"], address: null }, null],
    ["nothing pinned", { driveSerials: [], address: null }, null],
    ["a serial of another server", { driveSerials: ["S6P7NS0T999999"], address: null }, /driveSerials \["S6P7NS0T999999"\] not found among its drives \(S6P7NS0T123456, /],
    ["another address", { driveSerials: [], address: "198.51.100.1" }, /the address Robot reports for the server, 198\.51\.100\.1, is not configured on it \(found 203\.0\.113\.10, /],
  ])("%s", (_case, pins, problem) => {
    const problems = identityProblems(identity, pins);
    if (problem === null) expect(problems).toEqual([]);
    else expect(problems).toEqual([expect.stringMatching(problem)]);
  });

  it("a host that is not a rescue system is named as such", () => {
    expect(identityProblems(parseIdentity("debian\nnone\n--drives\n--addresses\n"), { driveSerials: [], address: null })).toEqual([
      expect.stringMatching(/not a rescue system: hostname "debian" \(expected "rescue"\), no \/root\/\.oldroot/),
    ]);
  });
});

describe("the kernel's plan (planRescue): a finished boot is what the probe observes", () => {
  const verified = { hostKey: { type: "ssh-ed25519", base64: parsePublicKey(KEY_B).blob.toString("base64"), fingerprint: RESCUE_KEY }, source: "robot" as const, pinned: [RESCUE_KEY] };
  const booted = (minutes: number, over: Partial<RescueObserved> = {}) =>
    observed({ lastRescue: { bootedAt: minutesBefore(NOW, minutes), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_A] }, endpoint: { host: "h", port: 22, observation: ssh(RESCUE_KEY) }, ...over });
  const recordedAt = (bootedAt: string, over: Partial<RescueBootInputs> = {}) =>
    withRequest({ ...buildOutputs(resolveInputs(inputs()), booted(0, { reached: verified }), bootedAt) }, inputs(over));

  it("create: a verified rescue of the last activation, armed with our keys, is the end (nothing to run)", () => {
    expect(planRescue(booted(2, { reached: verified }), inputs(), null)).toEqual([]);
  });

  it("create: the same rescue not yet verified by a login is waited for, never reset", () => {
    expect(planRescue(booted(2), inputs(), null).map((s) => s.kind)).toEqual(["awaitRescue"]);
  });

  it("a verified rescue armed with other keys is not ours: boot afresh", () => {
    const other = booted(2, { reached: verified, lastRescue: { bootedAt: minutesBefore(NOW, 2), hostKeyFingerprints: [RESCUE_KEY], authorizedKeys: [FP_B] } });
    expect(planRescue(other, inputs(), null).map((s) => s.kind)).toEqual(["armRescue", "reset", "awaitRescue"]);
  });

  it("update with a generation bump: the recorded boot does not count, a newer verified one does", () => {
    const recorded = recordedAt(minutesBefore(NOW, 10));
    expect(planRescue(booted(10, { reached: verified }), inputs({ generation: 1 }), recorded).map((s) => s.kind)).toEqual(["armRescue", "reset", "awaitRescue"]);
    expect(planRescue(booted(2, { reached: verified }), inputs({ generation: 1 }), recorded)).toEqual([]);
  });

  it("a recorded boot with the same generation stands, wherever the server is now (leaving rescue is not drift)", () => {
    const recorded = recordedAt(minutesBefore(NOW, 10));
    expect(planRescue(observed({ endpoint: { host: "h", port: 22, observation: NOTHING } }), inputs({ resetType: "sw", authorizedKeys: [KEY_A, KEY_B] }), recorded)).toEqual([]);
  });

  it("another server is a replacement", () => {
    expect(planRescue(observed(), inputs({ serverNumber: 100002 }), recordedAt(NOW))).toEqual([{ kind: "replace", fields: ["serverNumber"] }]);
  });

  it("explains adoption, a key change that waits for the next boot, and a delete with nothing armed", () => {
    const recorded = recordedAt(minutesBefore(NOW, 10));
    expect(explainPlan({ observed: booted(2, { reached: verified }), plan: [], desired: inputs({ generation: 1 }), recorded })).toBe(
      `adopting the rescue booted at ${minutesBefore(NOW, 2)}: it was armed with these keys after ${minutesBefore(NOW, 10)}, so no reset is sent`,
    );
    expect(explainPlan({ observed: booted(2), plan: [], desired: inputs({ authorizedKeys: [KEY_A, KEY_B] }), recorded })).toMatch(/^authorizedKeys changed: the running rescue keeps its keys/);
    expect(explainPlan({ observed: booted(2), plan: [], desired: inputs({ authorizedKeys: [KEY_A.replace("a@test", "renamed")] }), recorded })).toBeNull();
    expect(explainPlan({ observed: booted(2, { rescueArmed: false }), plan: [], desired: null, recorded })).toBe("no rescue armed for server 100001: nothing to disarm; removed from the stack only");
    expect(explainPlan({ observed: booted(2), plan: [{ kind: "armRescue" }], desired: inputs(), recorded: null })).toBeNull();
  });

  it("outputs: a verified boot gives its facts; a refresh keeps the record and reports where the server is", () => {
    const fresh = outputsFrom(inputs(), booted(2, { reached: verified, rescueArmed: false }), null, null);
    expect(fresh.bootedAt).toBe(minutesBefore(NOW, 2));
    expect(fresh.hostKeyFingerprints).toEqual([RESCUE_KEY]);
    expect(fresh.generation).toBeUndefined();
    const recorded = recordedAt(minutesBefore(NOW, 10));
    const refreshed = outputsFrom(inputsOf(recorded), observed({ environment: "unreachable", rescueArmed: true }), null, recorded);
    expect(refreshed).toEqual({ ...recorded, environment: "unreachable", rescueArmed: true });
    expect(() => outputsFrom(inputs(), observed(), null, null)).toThrow(/ended without a verified rescue/);
  });
});
