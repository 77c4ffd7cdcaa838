// RescueBoot through the real dynamic-provider host (the harness) against the lab: the Robot
// emulator and one QEMU server that starts on blank disks. The steps build on each other the way
// an operator's successive `up`s do, sharing one lab: create, no-op up, refresh, a generation bump,
// a provider host killed after its reset, first contact when Robot reports no host key, refresh
// after the server left rescue, delete, and the leak greps over everything recorded.
import { ProviderHarness, Props, StateEntry } from "../harness/harness";
import { assertNoSecrets } from "../harness/leaks";
import { generateEd25519KeyPair, md5Fingerprint, parsePublicKey } from "../../providers/plumbing/keys";
import type { ConnectionProfile } from "../../providers/kernel/host-access";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { connect, observeEndpoint } from "../../providers/plumbing/ssh";
import { describeResourceContract } from "../support/contract";
import { LabFixture, pinnedNvmeDrives, startLabFixture, startRescueBootHarness } from "../support/lab";
import { waitFor } from "../support/wait";

jest.setTimeout(900_000);

describe("lab: RescueBoot", () => {
  let lab: LabFixture;
  let server: number;
  let h: ProviderHarness;
  const operator = generateEd25519KeyPair("operator@rescue-boot-test");
  const privateKey = new Secret(operator.private);
  /** Every rescue root password Robot generated during this file: none may reach state or logs. */
  const rescuePasswords: Secret[] = [];
  /** State and logs of harnesses replaced during the file (the killed one), for the leak greps. */
  const earlier: { state: string; logs: string }[] = [];

  const startHarness = (args: Props = {}) => startRescueBootHarness(lab, server, operator, args);

  const resets = () => lab.emulator.model.resets.filter((r) => r.server === server).length;
  const rescueBoots = () => lab.supervisor.bootHistory(server).filter((b) => b.mode === "rescue").length;
  const current = (harness: ProviderHarness = h): StateEntry => harness.state.resources.get(harness.urn)!;
  const outputs = (harness: ProviderHarness = h) => current(harness).plainOutputs as Props & { profile: ConnectionProfile; hostKeyFingerprints: string[]; bootedAt: string };

  /** Logs in with the profile the resource handed out, independently of the provider. */
  const hostnameVia = async (profile: ConnectionProfile): Promise<string> => {
    const session = await connect(
      { host: profile.host, port: profile.port, user: profile.user, privateKey, hostKey: { expect: profile.hostKeyFingerprints }, label: "test" },
      { budgetMs: 60_000 },
    );
    try {
      return (await session.exec(sh`hostname`)).stdout.trim();
    } finally {
      await session.close();
    }
  };

  const collectRescuePassword = async (): Promise<void> => {
    const last = await lab.robot.getLastRescue(server);
    if (last.password) rescuePasswords.push(last.password);
  };

  beforeAll(async () => {
    lab = await startLabFixture({ images: "rescue", server: { disks: { count: 2, sizeGiB: 2, type: "nvme" } } });
    server = lab.server().number;
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.stop();
    await lab?.close();
  });

  it("boots a blank server into rescue with one reset and hands back a profile whose pinned key works", async () => {
    expect(resets()).toBe(0);
    const started = Date.now();
    expect((await h.up()).op).toBe("create");
    const wallMs = Date.now() - started;
    await collectRescuePassword();

    const outs = outputs();
    expect(current().id).toBe(String(server));
    expect(resets()).toBe(1);
    expect(lab.supervisor.bootHistory(server).map((b) => b.mode)).toEqual(["disk", "rescue"]);
    const last = await lab.robot.getLastRescue(server);
    expect(outs.hostKeySource).toBe("robot");
    expect(outs.hostKeyFingerprints).toEqual(last.hostKeys.map((k) => k.fingerprint));
    expect(outs.profile).toEqual({
      environment: "rescue",
      host: "127.0.0.1",
      port: lab.server().sshPort,
      user: "root",
      hostKeyFingerprints: outs.hostKeyFingerprints,
      // How to boot this rescue again (InstallImage's delete on an installed host).
      robot: { serverNumber: server, authorizedKeys: [operator.public], resetType: "hw", allowFirstContactHostKey: false, sshMs: 600_000 },
    });
    expect(outs.knownHosts).toEqual([expect.stringMatching(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${lab.server().sshPort} ssh-ed25519 AAAA`))]);
    expect(outs.environment).toBe("rescue");
    expect(outs.rescueArmed).toBe(false); // the boot consumed the arm
    expect(outs.bootedAt).toBe(last.bootTime);
    expect(outs.serverIpv4).toBe("127.0.0.1");
    expect(outs.product).toBe("EX44");
    expect(outs.datacenter).toBe("FSN1-DC10");
    // The key was uploaded to Robot and the rescue was armed with it (matched by MD5).
    const fingerprint = md5Fingerprint(parsePublicKey(operator.public));
    expect((await lab.robot.listKeys()).map((k) => k.fingerprint)).toContain(fingerprint);
    expect(last.authorizedKeys.map((k) => k.fingerprint)).toEqual([fingerprint]);
    expect(await hostnameVia(outs.profile)).toBe("rescue");
    process.stdout.write(`RescueBoot create, blank server to verified rescue SSH: ${wallMs} ms, resets: ${resets()}\n`);
  });

  it("a second identical up proposes no change and touches nothing", async () => {
    const requestsBefore = lab.emulator.model.requests.length;
    const preview = await h.preview(h.urn, h.inputs());
    expect(preview.diff?.changes).toBe("none");
    expect((await h.up()).op).toBe("same");
    expect(resets()).toBe(1);
    // Check and diff are pure: not one Robot request.
    expect(lab.emulator.model.requests.length).toBe(requestsBefore);
  });

  it("refresh in rescue reports the rescue environment and proposes no change", async () => {
    const started = Date.now();
    const read = await h.refresh();
    process.stdout.write(`RescueBoot refresh (one unauthenticated SSH look + one Robot GET): ${Date.now() - started} ms\n`);
    expect(read?.props.environment).toBe("rescue");
    expect(read?.props.rescueArmed).toBe(false);
    expect(read?.props.hostKeyFingerprints).toEqual(outputs().hostKeyFingerprints);
    expect((await h.up()).op).toBe("same");
  });

  // The kernel's contract, on the rescue the first test booted: the contract's create adopts it (no
  // reset, no boot). RescueBoot has no allowWipe (it holds no data): its delete case checks that Robot's
  // rescue and boot state, the reset count and the rescue's host key are unchanged, that the resource
  // left the stack, and that the log says nothing was armed.
  describeResourceContract("RescueBoot", {
    start: (overrides = {}) => startHarness(overrides),
    connectionTo: (port) => ({ connect: { host: "127.0.0.1", port } }),
    invalid: { resetType: "reboot" },
    change: { generation: 1 },
    hostState: async () => {
      const seen = await observeEndpoint("127.0.0.1", lab.server().sshPort);
      const last = await lab.robot.getLastRescue(server);
      return JSON.stringify({
        armed: (await lab.robot.getRescue(server)).active,
        lastBoot: last.bootTime,
        resets: resets(),
        rescueBoots: rescueBoots(),
        hostKey: seen.kind === "ssh" ? seen.hostKey?.fingerprint : null,
      });
    },
    withoutAllowWipe: { says: /no rescue armed for server 100001: nothing to disarm; removed from the stack only/ },
  });

  it("another key or reset type is an in-place update that boots nothing and keeps the profile", async () => {
    const before = outputs();
    const extra = generateEd25519KeyPair("second@rescue-boot-test").public;
    const news = h.inputs({ authorizedKeys: [operator.public, extra], resetType: "sw" });
    expect((await h.preview(h.urn, news)).diff?.changes).toBe("some");
    expect((await h.up(news)).op).toBe("update");
    const after = outputs();
    expect(resets()).toBe(1);
    expect(after.authorizedKeys).toEqual([operator.public, extra]);
    expect(after.resetType).toBe("sw");
    for (const key of ["bootedAt", "hostKeyFingerprints", "knownHosts"]) expect(after[key]).toEqual(before[key]);
    // The way in is unchanged; the recipe for the next boot follows the new inputs.
    expect(after.profile).toEqual({ ...before.profile, robot: { ...before.profile.robot, authorizedKeys: [operator.public, extra], resetType: "sw" } });
    expect((await h.up(news)).op).toBe("same");
  });

  it("a generation bump boots rescue afresh with exactly one more reset: new host key, new bootedAt", async () => {
    const before = outputs();
    const started = Date.now();
    expect((await h.up(h.inputs({ generation: 1 }))).op).toBe("update");
    process.stdout.write(`RescueBoot generation bump, rescue to fresh verified rescue SSH: ${Date.now() - started} ms, resets: ${resets() - 1}\n`);
    await collectRescuePassword();
    const after = outputs();
    expect(resets()).toBe(2);
    expect(rescueBoots()).toBe(2);
    expect(Date.parse(after.bootedAt)).toBeGreaterThan(Date.parse(before.bootedAt));
    expect(after.hostKeyFingerprints).not.toEqual(before.hostKeyFingerprints);
    expect(after.generation).toBe(1);
    expect(await hostnameVia(after.profile)).toBe("rescue");
    // The old profile no longer matches: the rescue's key changed with the boot.
    await expect(hostnameVia(before.profile)).rejects.toThrow(/host key mismatch/);
  });

  it("a provider host killed right after its reset: the re-run adopts that boot instead of resetting again", async () => {
    const stored = current();
    const running = h.up(h.inputs({ generation: 2 })).catch((err: Error) => err);
    await waitFor(() => resets() >= 3, { what: "the third Robot reset", timeoutMs: 300_000 });
    expect(resets()).toBe(3);
    h.killHost();
    expect(await running).toBeInstanceOf(Error);
    await h.stop();
    earlier.push({ state: h.state.text(), logs: h.logs });

    h = await startHarness({ generation: 2 });
    const news = (await h.check(h.urn, stored.plainInputs, h.inputs())).inputs;
    const { outs } = await h.update(stored.id, stored.plainOutputs, news);
    await collectRescuePassword();
    expect(resets()).toBe(3);
    expect(rescueBoots()).toBe(3);
    expect(outs.bootedAt).toBe((await lab.robot.getLastRescue(server)).bootTime);
    expect(await hostnameVia(outs.profile as ConnectionProfile)).toBe("rescue");
  });

  describe("when Robot reports no host key (as real Robot does)", () => {
    beforeAll(() => lab.emulator.model.setReportHostKeys(false));
    afterAll(() => lab.emulator.model.setReportHostKeys(true));

    it("with allowFirstContactHostKey false it refuses before the reset and leaves rescue disarmed", async () => {
      const before = resets();
      const strict = h.inputs({ generation: 3, allowFirstContactHostKey: false });
      const stored = current();
      await expect(h.update(stored.id, stored.plainOutputs, (await h.check(h.urn, stored.plainInputs, strict)).inputs)).rejects.toThrow(
        /no host key for the rescue of server 100001, and allowFirstContactHostKey is false.*disarmed again and the server was not reset/,
      );
      expect(resets()).toBe(before);
      expect((await lab.robot.getRescue(server)).active).toBe(false);
    });

    it("with allowFirstContactHostKey true for this server, trusts the first key for this boot only, says so in hostKeySource, and finds the pinned drives", async () => {
      const stored = current();
      // First contact is the stack's explicit choice for this server; the drive serials are what
      // tells this server from another after it (QEMU's serials, as lsblk reports them).
      const firstContact = h.inputs({ generation: 3, allowFirstContactHostKey: true, driveSerials: pinnedNvmeDrives(server).map((d) => d.serial) });
      const { outs } = await h.update(stored.id, stored.plainOutputs, (await h.check(h.urn, stored.plainInputs, firstContact)).inputs);
      await collectRescuePassword();
      expect(outs.hostKeySource).toBe("first-contact");
      expect(resets()).toBe(4);
      const profile = outs.profile as ConnectionProfile;
      expect(profile.hostKeyFingerprints).toHaveLength(1);
      expect(await hostnameVia(profile)).toBe("rescue");
    });
  });

  it("the server reset to disk while the rescue boots: the run fails after its SSH budget, and the re-run boots afresh", async () => {
    const quick = h.inputs({ generation: 4, timeouts: { sshMs: 45_000 } });
    const before = resets();
    const running = h.up(quick).then(() => null, (err: Error) => err);
    await waitFor(() => resets() > before, { what: "the Robot reset of this up", timeoutMs: 120_000 });
    // Behind Robot's back, as a power glitch or a watchdog would: the server boots its blank disks.
    await lab.supervisor.reset(server, { kind: "disk" });
    const failure = await running;
    expect(failure?.message).toMatch(/RescueBoot step awaitRescue on 100001 failed after .*not reachable/);
    expect(resets()).toBe(before + 1);

    // Same inputs again: that boot is older than the budget and nothing answers, so it is not awaited again.
    expect((await h.up(quick)).op).toBe("update");
    await collectRescuePassword();
    expect(resets()).toBe(before + 2);
    expect(await hostnameVia(outputs().profile)).toBe("rescue");
  });

  it("refresh after the server rebooted to its (blank) disks reports unreachable and proposes no change", async () => {
    const stored = current();
    const session = await connect(
      { host: "127.0.0.1", port: lab.server().sshPort, user: "root", privateKey, hostKey: { expect: (stored.plainOutputs.hostKeyFingerprints as string[]) } },
      { budgetMs: 60_000 },
    );
    await session.exec(sh`reboot`).catch(() => undefined);
    await session.close();
    await lab.supervisor.waitForConsole(server, /No bootable device/, 180_000);

    const read = await h.read(stored.id, stored.plainOutputs, stored.plainInputs);
    expect(read.id).toBe(stored.id);
    expect(read.props.environment).toBe("unreachable");
    expect(read.props.rescueArmed).toBe(false);
    // Everything the boot established is kept: leaving rescue is not drift.
    for (const key of ["hostKeyFingerprints", "bootedAt", "profile", "knownHosts", "generation"]) expect(read.props[key]).toEqual(stored.plainOutputs[key]);
    const diff = await h.diff(read.id, read.props, h.inputs({ generation: 4, timeouts: { sshMs: 45_000 } }));
    expect(diff.changes).toBe("none");
  });

  it("delete disarms a rescue that is still armed, and a second delete is a no-op", async () => {
    const stored = current();
    await lab.robot.armRescue(server, { os: "linux", authorizedKeys: [operator.public] });
    expect((await lab.robot.getRescue(server)).active).toBe(true);
    await h.delete(stored.id, stored.plainOutputs);
    expect((await lab.robot.getRescue(server)).active).toBe(false);
    await h.delete(stored.id, stored.plainOutputs);
    expect((await lab.robot.getRescue(server)).active).toBe(false);
  });

  it("logged each step, the adoption and the first-contact trust (logs are complete once a host stopped)", async () => {
    await h.stop();
    const [killed] = earlier;
    const resetSteps = (logs: string) => logs.match(/\[RescueBoot 100001\] step \d\/\d reset$/gm) ?? [];
    // First harness: create (with the key upload), the generation bump, and the killed run.
    expect(killed.logs).toMatch(/\[RescueBoot 100001\] step 1\/4 registerKey[\s\S]*step 3\/4 reset done[\s\S]*step 4\/4 awaitRescue done/);
    expect(resetSteps(killed.logs)).toHaveLength(3);
    expect(killed.logs).toMatch(/\[RescueBoot 100001\] authorizedKeys changed: the running rescue keeps its keys; they take effect on the next rescue boot \(bump generation to boot now\)/);
    // Second harness: the adopting re-run and the refused strict run sent none; first contact one,
    // the run whose boot was cut short one, its re-run one.
    expect(resetSteps(h.logs)).toHaveLength(3);
    expect(h.logs).toMatch(/adopting the rescue booted at \S+: it was armed with these keys after \S+, so no reset is sent/);
    expect(h.logs).toMatch(/trusted ssh-ed25519 SHA256:\S+ on first contact, for this rescue boot only \(hostKeySource: first-contact\)/);
  });

  it("no Robot password, SSH private key or rescue root password in state or logs", async () => {
    expect(rescuePasswords.length).toBeGreaterThanOrEqual(5);
    const secrets = [...h.secrets, lab.config.robot.password, operator.private, ...rescuePasswords];
    expect(h.secrets).toContain(lab.config.robot.password);
    for (const [i, run] of [...earlier, { state: h.state.text(), logs: h.logs }].entries()) {
      assertNoSecrets(`recorded state of harness ${i}`, run.state, secrets);
      assertNoSecrets(`provider logs of harness ${i}`, run.logs, secrets);
    }
    // No output field carries a password, not even as a secret.
    for (const entry of [...h.state.history]) expect(Object.keys(entry.outputs).filter((k) => /password/i.test(k))).toEqual([]);
  });
});
