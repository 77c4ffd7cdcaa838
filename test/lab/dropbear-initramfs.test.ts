// DropbearInitramfs on a lab server, through the real dynamic-provider host (the harness), from an
// installed crypt RAID1 host still in the rescue that installed it (RescueBoot → InstallImage with
// crypt and reboot: false; a lab checkpoint), the default flow's two boots:
//   1. create: configure in a chroot, one initramfs build, the gate, reboot, dropbear answers with
//      the pinned key, the passphrase on stdin, sshd with the system's pinned key, verified; a
//      second up plans nothing;
//   3 + 7. static IPv4 and IPv6 and a shell key, in place with a reboot; the provider killed after
//      its reboot: the locked initramfs shows both addresses to the shell key, the re-run unlocks
//      it, and the system's network is its own afterwards;
//   6 + 7. the host rebooted by hand sits locked: refresh says so; the provider killed during the
//      unlock, and the re-run converges;
//   5 + 7. drift: an initrd rebuilt without the dropbear hook (as a kernel update might) is reported
//      by read; its repair is killed during update-initramfs, and the re-run converges;
//   4. the gate refuses an image without the NIC's driver before the reboot;
//   2. the dropbear host key swapped behind the stack's back: the unlock refuses, names both
//      fingerprints and sends no passphrase;
//   8. the passphrase and the private keys appear in no log, no state, no argv in the rescue during
//      create (sampled twice a second), not in the initrd, root's shell history or the disk images.
// The phase timings and the loop's figures are printed for bench/RESULTS.md.
import * as path from "path";
import { ProviderHarness, Props } from "../harness/harness";
import { assertNoSecrets } from "../harness/leaks";
import type { ConnectionProfile } from "../../providers/kernel/host-access";
import { generateEd25519KeyPair } from "../../providers/plumbing/keys";
import { Secret } from "../../providers/plumbing/secret";
import { sh, ShellCommand } from "../../providers/plumbing/shell";
import { connect, SshSession } from "../../providers/plumbing/ssh";
import { LabFixture, labStackConfig, phaseTimer, pinnedNvmeDrives } from "../support/lab";
import { CRYPT_RAID1_IN_RESCUE, InstalledInRescueFacts, LAB_LUKS_PASSPHRASE, PreparedHost, preparedHost } from "../support/prepared-host";
import { waitFor } from "../support/wait";
import { ArgvSampler, diskImagesHolding, privateKeyLines, sampleArgv, SEARCH_INITRD_AND_HISTORY } from "../support/leak-search";
import { describeOptIn } from "../support/opt-in";

jest.setTimeout(90 * 60_000);

const PASSPHRASE = LAB_LUKS_PASSPHRASE;
const HOSTNAME = "lab-1.example.com";

const phases = phaseTimer("DropbearInitramfs lab phases");
const timed = phases.timed;

/** The loop's own figures and the builds, from the provider's log lines. */
function figures(logs: string): string[] {
  return logs.split("\n").filter((l) => /dropbear \d+(\.\d+)? s → unlocked|update-initramfs (built|ran)|installed dropbear-initramfs|gate:/.test(l));
}

// The whole-host e2e (host-stack.test.ts) runs this loop in CI through the stack: create in the
// rescue, the gate, the reboot, the unlock, the drill and the secrets search. This file drives the
// resource alone, case by case, each reboot and unlock 2–5 minutes: it is opt-in, to keep CI near
// its 45-minute aim:
//   HFDE_LAB_DROPBEAR=1 npx jest --selectProjects lab --testPathPattern 'dist/test/lab/dropbear-initramfs'
const describeDropbear = describeOptIn("HFDE_LAB_DROPBEAR", "test/lab/dropbear-initramfs.test.ts, DropbearInitramfs alone, case by case (about 66 min, 80 with the crypt checkpoint's first build; one VM): CI runs its loop through the whole-host e2e");

describeDropbear("lab: DropbearInitramfs", () => {
  let lab: LabFixture;
  let server: number;
  let operator: { public: string; private: string };
  let rescue: ConnectionProfile;
  let system: ConnectionProfile;
  let mac: string;
  let h: ProviderHarness | undefined;
  let prepared: PreparedHost<InstalledInRescueFacts>;
  /** A key that may open a shell in the initramfs (the operator key may only unlock). */
  const shellKey = generateEd25519KeyPair("shell@dropbear-test");
  /** Logs of provider hosts killed mid-run: checked for secrets with the rest. */
  const killedLogs: string[] = [];
  const initramfsAddresses: string[] = [];

  beforeAll(async () => {
    // The installed crypt RAID1 host, still in the rescue that installed it, from its checkpoint
    // (built once by RescueBoot and InstallImage through the harness when missing).
    const host = await timed("installed crypt RAID1 host in rescue (checkpoint)", () => preparedHost(CRYPT_RAID1_IN_RESCUE));
    prepared = host;
    lab = host.lab;
    server = host.serverNumber;
    process.stdout.write(`checkpoint ${host.checkpoint}: ${host.builtBecause ? `built (${host.builtBecause}) in ${host.timings.buildMs} ms, ` : ""}restored in ${host.timings.restoreMs} ms, rescue answered after ${host.timings.bootMs} ms\n`);
    operator = host.facts.operator;
    rescue = host.facts.rescueProfile;
    system = { environment: "system", host: "127.0.0.1", port: lab.server().sshPort, user: "root", hostKeyFingerprints: host.facts.installImageOutputs.hostKeyFingerprints as string[] };
    mac = (await onProfile(rescue, sh`cat /sys/class/net/eth0/address`)).trim();
  });

  afterAll(async () => {
    argvSampler?.close();
    await h?.stop();
    phases.print();
    await lab?.close();
  });

  async function onProfile(profile: ConnectionProfile, command: ShellCommand, timeoutMs = 600_000, stdin?: Secret): Promise<string> {
    const session: SshSession = await connect(
      { host: profile.host, port: profile.port, user: "root", privateKey: new Secret(operator.private), hostKey: { expect: [...profile.hostKeyFingerprints] }, label: profile.environment },
      { budgetMs: 120_000 },
    );
    try {
      return (await session.exec(command, { timeoutMs, stdin })).stdout;
    } finally {
      await session.close();
    }
  }

  const args = (): Props => ({
    connection: [rescue, system],
    hostname: HOSTNAME,
    // The provider's own key may only unlock: the loop works through the forced command.
    authorizedKeys: [operator.public],
    reach: { host: "127.0.0.1", port: lab.server().dropbearPort },
    network: { mac, ipv4: "dhcp" },
    passphrase: PASSPHRASE,
  });

  const outputs = (): Props => h!.state.resources.get(h!.urn)!.plainOutputs;

  const startDropbearHarness = () =>
    ProviderHarness.start({
      module: "providers/dropbear-initramfs",
      exportName: "DropbearInitramfs",
      args: args(),
      // hostKeyPrivate is a secret output (additionalSecretOutputs); the harness marks secrets by key.
      secretPaths: ["passphrase", "hostKeyPrivate"],
      ...labStackConfig(lab, operator.private),
      callTimeoutMs: 60 * 60_000,
    });

  /** A command in the locked initramfs through the shell key (dropbear's pinned host key), once dropbear answers. */
  async function initramfsShell(command: ShellCommand): Promise<string> {
    const session = await waitFor(
      () => connect({ host: "127.0.0.1", port: lab.server().dropbearPort, user: "root", privateKey: new Secret(shellKey.private), hostKey: { expect: [String(outputs().hostKeyFingerprint)] }, label: "dropbear (shell key)" }, { maxAttempts: 1, attemptTimeoutMs: 20_000 }).catch(() => false as const),
      { what: "dropbear to answer the shell key", timeoutMs: 20 * 60_000, intervalMs: 3000 },
    );
    try {
      return (await session.exec(command, { timeoutMs: 120_000 })).stdout;
    } finally {
      await session.close();
    }
  }

  it("1: create configures in rescue, builds once, gates, reboots, unlocks through dropbear with the pinned key and verifies; a second up plans nothing", async () => {
    // The loop's errors carry the console tail in the lab (the provider host inherits this).
    process.env.HFDE_LAB_CONSOLE_DIR = path.join(lab.stateDir, "servers", String(server));
    h = await startDropbearHarness();
    argvSampler = await sampleArgv((command) => onProfile(rescue, command));
    const bootsBefore = lab.supervisor.bootHistory(server).length;
    const result = await timed("create (rescue → chroot config → one build → gate → reboot → unlock → verify)", () => h!.up());
    expect(result.op).toBe("create");
    process.stdout.write(`create figures:\n  ${figures(h.logs).join("\n  ")}\n`);
    expect(h.logs).toMatch(/step \d+\/\d+ openRoot done/);
    expect(h.logs).toMatch(/update-initramfs ran 1 time\(s\)/);
    expect(h.logs).toMatch(/gate: the built initramfs has dropbear/);
    expect(h.logs).toMatch(/reboot → dropbear [\d.]+ s → unlocked [\d.]+ s → sshd [\d.]+ s; arrays, LUKS, mounts and host name verified/);
    expect(lab.supervisor.bootHistory(server).length).toBe(bootsBefore + 1);
    expect(lab.supervisor.currentBoot(server)?.mode).toBe("disk");

    const outs = outputs();
    expect(outs.environment).toBe("system");
    expect(outs.drift).toEqual([]);
    expect(outs.distro).toBe("debian-12");
    expect(outs.hostKeyFingerprint).toMatch(/^SHA256:/);
    expect(outs.knownHosts).toEqual([expect.stringMatching(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${lab.server().dropbearPort} ssh-ed25519 `))]);
    expect(outs.unlockCommand).toBe(`ssh -o UserKnownHostsFile=dropbear_known_hosts -o StrictHostKeyChecking=yes -p ${lab.server().dropbearPort} root@127.0.0.1 cryptroot-unlock`);
    // The host key on the host is the pinned one, and the only one.
    expect(await onProfile(system, sh`ls /etc/dropbear/initramfs/; dropbearkey -y -f /etc/dropbear/initramfs/dropbear_ed25519_host_key | grep Fingerprint`)).toMatch(
      new RegExp(`^authorized_keys\\ndropbear\\.conf\\n(dropbear\\.conf\\.dpkg-dist\\n)?dropbear_ed25519_host_key\\nFingerprint: ${String(outs.hostKeyFingerprint).replace(/[+/]/g, "\\$&")}`),
    );

    const again = await timed("second up", () => h!.up());
    expect(again.op).toBe("same");
    expect(again.diff).toMatchObject({ changes: "none" });
  });

  let argvSampler: ArgvSampler | undefined;

  /** Reboots the installed system by hand and waits until the new boot shows the cryptroot prompt. */
  async function rebootByHand(what: string): Promise<void> {
    const boots = lab.supervisor.bootHistory(server).length;
    await onProfile(system, sh`sync; setsid sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 &`);
    // The boot before this one showed the same prompt: wait for the new boot before reading the console.
    await waitFor(() => lab.supervisor.bootHistory(server).length > boots, { what: `the reboot (${what})`, timeoutMs: 5 * 60_000, intervalMs: 500 });
    await timed(`${what}: reboot → console prompt`, () => lab.supervisor.waitForConsole(server, /Please unlock disk luks-/, 15 * 60_000));
  }

  /** DropbearInitramfs's refresh of a host waiting in its initramfs (dropbear may still be starting when the prompt shows). */
  async function refreshLocked(): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await h!.refresh();
        if (outputs().environment === "initramfs" || i >= 10) return;
      } catch (error) {
        if (i >= 10) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    }
  }

  /** InstallImage on the checkpoint's install, as its create recorded it, with the stack's reassemble: "scan". */
  async function adoptInstallImage(): Promise<ProviderHarness> {
    const { installImageInputs, installImageOutputs } = prepared.facts;
    const inputs = { ...installImageInputs, cryptPassphrase: PASSPHRASE, reassemble: "scan" };
    const ii = await ProviderHarness.start({
      module: "providers/install-image",
      exportName: "InstallImage",
      args: inputs,
      secretPaths: ["cryptPassphrase"],
      ...labStackConfig(lab, operator.private),
      callTimeoutMs: 30 * 60_000,
    });
    await ii.read(String(installImageOutputs.installId), installImageOutputs, inputs);
    return ii;
  }

  it("drill: with a RAID1 drive pulled the host boots, dropbear answers, the unlock works and the system runs degraded, as InstallImage's read says; with the drive back, up re-adds it and the resync completes", async () => {
    const ii = await adoptInstallImage();
    const iiOutputs = (): Props => ii.state.resources.get(ii.urn)!.plainOutputs;
    const arrays = (): { device: string; degraded: boolean }[] => (iiOutputs().layout as { arrays: { device: string; degraded: boolean }[] }).arrays;
    const pulled = pinnedNvmeDrives(server)[0];
    try {
      // The stack's reassemble: "scan" recorded while the host is healthy: nothing to do but record it.
      expect((await ii.up(ii.inputs())).op).not.toBe("replace");
      lab.pullDrive(server, 0);
      await rebootByHand(`drive ${pulled.serial} pulled`);
      expect(lab.supervisor.currentBoot(server)?.pulledDrives).toEqual([0]);
      await timed("degraded: refresh finds the host locked", refreshLocked);
      expect(outputs().environment).toBe("initramfs");
      const unlocked = await timed("degraded: up unlocks through dropbear", () => h!.up());
      expect(unlocked.op).toBe("update");
      expect(h!.logs).toMatch(/locked host → dropbear [\d.]+ s → unlocked [\d.]+ s → sshd [\d.]+ s; arrays, LUKS, mounts and host name verified/);
      expect(outputs().environment).toBe("system");
      // The kernel renumbered the drive left in: its serial answers as nvme0n1.
      expect(await onProfile(system, sh`lsblk -dno NAME,SERIAL | grep nvme`)).toBe(`nvme0n1 ${pinnedNvmeDrives(server)[1].serial}\n`);

      await timed("degraded: InstallImage refresh", () => ii.refresh());
      expect(arrays().map((a) => a.degraded)).toEqual([true, true]);
      expect((iiOutputs().drift as { message: string }[]).map((d) => d.message)).toEqual([
        expect.stringMatching(new RegExp(`^array /dev/md0 is degraded: 1 of 2 members active, a member is missing; not on the host: /dev/nvme0n1 serial ${pulled.serial}$`)),
        expect.stringMatching(new RegExp(`^array /dev/md1 is degraded: 1 of 2 members active, a member is missing; not on the host: /dev/nvme0n1 serial ${pulled.serial}$`)),
      ]);
      // Nothing to do while the drive is out: the preview says why, and up changes nothing.
      const preview = await ii.preview(ii.urn, ii.inputs());
      expect(preview.diff?.changes).not.toBe("some");
      expect(ii.logs).toMatch(/running degraded until a drive is back/);

      lab.insertDrive(server, 0);
      await rebootByHand(`drive ${pulled.serial} back`);
      expect(lab.supervisor.currentBoot(server)?.pulledDrives).toEqual([]);
      await timed("drive back: refresh finds the host locked", refreshLocked);
      await timed("drive back: up unlocks", () => h!.up());
      expect(outputs().environment).toBe("system");
      // The returning members are stale (the arrays ran on without them): md keeps them out until
      // they are re-added. (Were md to take one back by itself, its rebuild would be under way, which
      // is no drift and needs no step.)
      await timed("drive back: InstallImage refresh", () => ii.refresh());
      const missing = (iiOutputs().drift as { message: string }[]).filter((d) => /a member is missing/.test(d.message));
      process.stdout.write(`drive back: ${missing.length} array(s) with a member missing: ${missing.map((d) => d.message).join("; ")}\n`);
      if (missing.length > 0) {
        expect(missing.every((d) => !/not on the host/.test(d.message))).toBe(true);
        const readd = await timed("drive back: up re-adds the members", () => ii.up(ii.inputs()));
        expect(readd.op).toBe("update");
        expect(ii.logs).toMatch(/readdMember/);
      }
      await timed("resync to complete", () => waitOnSystem(sh`grep -qE 'recovery|resync' /proc/mdstat && echo no || echo yes`, "the resync to complete"));
      await ii.refresh();
      expect(arrays().map((a) => a.degraded)).toEqual([false, false]);
      expect(iiOutputs().drift).toEqual([]);
      expect((await ii.up(ii.inputs())).op).toBe("same");
    } finally {
      lab.insertDrive(server, 0);
      await ii.stop();
      killedLogs.push(ii.logs);
    }
  });

  /**
   * A provider host killed mid-up, as a crash would: `whenToKill` returns once the moment has come.
   * Pulumi keeps the old outputs of an interrupted update, so the next run starts a fresh host on
   * that recorded entry, and its up with the same inputs must converge.
   */
  async function killAndRerun(news: Props, whenToKill: () => Promise<unknown>, what: string, whileKilled?: () => Promise<void>): Promise<void> {
    const stored = h!.state.resources.get(h!.urn)!;
    const interrupted = h!.up(news).then(() => null, (error: unknown) => error);
    await whenToKill();
    h!.killHost();
    expect(await interrupted).toBeInstanceOf(Error);
    await h!.stop();
    killedLogs.push(h!.logs);
    await whileKilled?.();
    h = await startDropbearHarness();
    h.state.record(stored);
    const rerun = await timed(`re-run after a kill ${what}`, () => h!.up(news));
    expect(rerun.op).toBe("update");
    expect(outputs().drift).toEqual([]);
    expect((await h!.up(news)).op).toBe("same");
  }

  const waitOnSystem = (command: ShellCommand, what: string) =>
    waitFor(async () => (await onProfile(system, command).catch(() => "")).trim() === "yes", { what, timeoutMs: 40 * 60_000, intervalMs: 1000 });

  it("3 + kill after the reboot: static IPv4 and IPv6 in place; the provider killed after its reboot; the locked host shows both addresses to a shell key, and the re-run unlocks it", async () => {
    const staticNetwork = { mac, ipv4: { address: "10.0.2.15/24", gateway: "10.0.2.2" }, ipv6: { address: "fec0::15/64", gateway: "fec0::2" } };
    const news = h!.inputs({ network: staticNetwork, authorizedKeys: [operator.public, { key: shellKey.public, shell: true }], rebootOnUpdate: true });
    const bootsBefore = lab.supervisor.bootHistory(server).length;
    await killAndRerun(news, () => timed("update → build → gate → reboot", () => waitFor(() => lab.supervisor.bootHistory(server).length > bootsBefore, { what: "the update's reboot", timeoutMs: 40 * 60_000, intervalMs: 500 })), "after its reboot, before the unlock", async () => {
      initramfsAddresses.push(await timed("locked initramfs: the addresses, through a shell key", () => initramfsShell(sh`i=0; while [ $i -lt 60 ] && ! ip -6 addr show | grep -q fec0::15; do sleep 1; i=$((i+1)); done; ip -4 addr show; ip -6 addr show`)));
    });
    expect(h!.logs).toMatch(/locked host → dropbear [\d.]+ s → unlocked/);
    expect(lab.supervisor.bootHistory(server).length).toBe(bootsBefore + 1);
    // What the locked initramfs showed to the shell key while the host waited.
    expect(initramfsAddresses.join("\n")).toMatch(/10\.0\.2\.15\/24/);
    expect(initramfsAddresses.join("\n")).toMatch(/fec0::15\/64/);
    // After the unlock the system's own network runs, and nothing of the initramfs's IPv6 is left.
    expect(await onProfile(system, sh`ip -6 addr show | grep -c 'fec0::15/64' || true`)).toBe("0\n");
    expect(await onProfile(system, sh`ip -4 route show default | grep -c . || true`)).not.toBe("0\n");
  });

  it("6 + kill during the unlock: a host rebooted by hand sits locked; refresh says so; the provider killed during the unlock; the re-run unlocks or finds it unlocked", async () => {
    await rebootByHand("by hand");
    await timed("refresh of a locked host", refreshLocked);
    expect(outputs().environment).toBe("initramfs");
    expect(outputs().drift).toEqual(["the host waits locked in its initramfs; the next `pulumi up` unlocks it"]);
    const logsBefore = h!.logs.length;
    await killAndRerun(h!.inputs(), () => waitFor(() => /sending the passphrase/.test(h!.logs.slice(logsBefore)), { what: "the unlock to start", timeoutMs: 10 * 60_000, intervalMs: 100 }), "during the unlock");
    expect(outputs().environment).toBe("system");
  });

  it("5 + kill during update-initramfs: an initrd rebuilt without the dropbear hook is reported by read; the repair is killed mid-build and the re-run converges", async () => {
    await timed("rebuild without the dropbear hook (by hand)", () =>
      onProfile(system, sh`chmod -x /usr/share/initramfs-tools/hooks/dropbear && update-initramfs -u >/dev/null 2>&1; chmod +x /usr/share/initramfs-tools/hooks/dropbear`, 30 * 60_000),
    );
    await h!.refresh();
    const drift = outputs().drift as string[];
    expect(drift.join("\n")).toMatch(/newest kernel's image \(\S+\): dropbear: the image has no dropbear binary/);
    await killAndRerun(h!.inputs(), () => waitOnSystem(sh`pgrep -f mkinitramfs >/dev/null && echo yes || echo no`, "update-initramfs to run"), "during update-initramfs");
    expect(h!.logs).toMatch(/step \d+\/\d+ buildInitramfs done/);
  });

  it("4: gate: an image without the NIC's driver is refused before the reboot, with the reason", async () => {
    // The installed system names its NIC its own way (ens2, enp0s2, …): found by the MAC the initramfs uses.
    // (`true` at the end: the loop's status is its last test's, false for every other interface.)
    const nic = (await onProfile(system, sh`for i in /sys/class/net/*; do [ "$(cat $i/address)" = ${mac} ] && basename $i && basename $(readlink -f $i/device/driver/module); done; true`)).trim().split("\n");
    expect(nic[1]).toBe("virtio_net");
    // The driver goes missing from the kernel's tree, as a broken kernel package would leave it.
    await onProfile(system, sh`f=$(modinfo -n virtio_net) && mv $f /root/virtio_net.ko.away && echo $f > /root/virtio_net.path && depmod`);
    const bootsBefore = lab.supervisor.bootHistory(server).length;
    const refused = await timed("update with reboot, refused by the gate", () => h!.up(h!.inputs({ idleTimeoutSeconds: 600, rebootOnUpdate: true })).then(() => null, (error: unknown) => error));
    expect(String((refused as Error).message)).toMatch(/not rebooted:[\s\S]*NIC driver: the image has no virtio_net module for \S+/);
    expect(lab.supervisor.bootHistory(server).length).toBe(bootsBefore);
    await onProfile(system, sh`mv /root/virtio_net.ko.away $(cat /root/virtio_net.path) && depmod`);
    const fixed = await timed("update without reboot, gate passes", () => h!.up(h!.inputs({ idleTimeoutSeconds: 600 })));
    expect(fixed.op).toBe("update");
    expect(outputs().drift).toEqual([]);
  });

  it("2: a dropbear host key swapped behind the stack's back: the unlock refuses with both fingerprints and sends no passphrase", async () => {
    const boots = lab.supervisor.bootHistory(server).length;
    const swapped = await timed("swap the initramfs host key, rebuild, reboot (by hand)", () =>
      onProfile(
        system,
        sh`f=/etc/dropbear/initramfs/dropbear_ed25519_host_key; rm -f $f && dropbearkey -t ed25519 -f $f >/dev/null 2>&1 && update-initramfs -u >/dev/null 2>&1 && dropbearkey -y -f $f | sed -n 's/^Fingerprint: //p'; sync; setsid sh -c 'sleep 1; reboot' </dev/null >/dev/null 2>&1 &`,
        30 * 60_000,
      ),
    );
    const swappedFingerprint = swapped.trim();
    expect(swappedFingerprint).toMatch(/^SHA256:/);
    // The boot before this one showed the same prompt: wait for the new boot before reading the console.
    await waitFor(() => lab.supervisor.bootHistory(server).length > boots, { what: "the reboot by hand", timeoutMs: 5 * 60_000, intervalMs: 500 });
    await lab.supervisor.waitForConsole(server, /Please unlock disk luks-/, 15 * 60_000);
    const logsBefore = h!.logs.length;
    let refused: unknown;
    // refresh reaches the host (up would plan against the recorded, unlocked facts and not connect);
    // dropbear may still be starting when the prompt shows.
    const deadline = Date.now() + 10 * 60_000;
    do {
      refused = await h!.refresh().then(() => null, (error: unknown) => error);
      if (refused && /host key/i.test(String((refused as Error).message))) break;
      await new Promise((resolve) => setTimeout(resolve, 10_000));
    } while (Date.now() < deadline);
    expect(String((refused as Error).message)).toContain(swappedFingerprint);
    expect(String((refused as Error).message)).toContain(String(outputs().hostKeyFingerprint));
    expect(h!.logs.slice(logsBefore)).not.toMatch(/sending the passphrase/);
    // Unlock by hand with the key we now know, then up puts the stack's key back (one build).
    const session = await connect(
      { host: "127.0.0.1", port: lab.server().dropbearPort, user: "root", privateKey: new Secret(operator.private), hostKey: { expect: [swappedFingerprint] }, label: "swapped dropbear" },
      { budgetMs: 120_000 },
    );
    await session.exec(sh`cryptroot-unlock`, { stdin: new Secret(PASSPHRASE), okExitCodes: [0, 1] }).catch(() => undefined);
    await session.close();
    await connect({ host: system.host, port: system.port, user: "root", privateKey: new Secret(operator.private), hostKey: { expect: [...system.hostKeyFingerprints] }, label: "system" }, { budgetMs: 15 * 60_000 }).then((s) => s.close());
    await h!.refresh();
    expect((outputs().drift as string[]).join("\n")).toMatch(/changed on the host: .*dropbear_ed25519_host_key/);
    const repaired = await timed("up restores the pinned key", () => h!.up());
    expect(repaired.op).toBe("update");
    expect(outputs().drift).toEqual([]);
  });

  it("8: the passphrase and the private keys are in no log, no state, no argv, no initrd", async () => {
    await h!.stop();
    const passphrase = new Secret(PASSPHRASE);
    const hostKey = new Secret(String(outputs().hostKeyPrivate));
    // argv in the rescue during create (test 1): the sampler saw the chroot's build (minutes long; the
    // mapping's opening takes a second or two and may fall between samples), and nothing carried a secret.
    argvSampler?.close();
    const argv = argvSampler?.text() ?? "";
    expect(argv).toMatch(/update-initramfs/);
    for (const secret of [PASSPHRASE, String(outputs().hostKeyPrivate), ...privateKeyLines(operator.private)]) {
      expect(argv.includes(secret)).toBe(false);
    }
    assertNoSecrets("state", h!.state.text(), [passphrase, hostKey, new Secret(operator.private)]);
    for (const logs of [h!.logs, ...killedLogs]) assertNoSecrets("logs", logs, [passphrase, hostKey, new Secret(operator.private), new Secret(shellKey.private)]);
    // The initrd's files and root's shell history (inside the encrypted root, so the disk search below cannot see it).
    const inInitrd = await onProfile(system, SEARCH_INITRD_AND_HISTORY, 600_000, new Secret(`${PASSPHRASE}\n`));
    expect(inInitrd).toBe("checked\n");
    const disks = diskImagesHolding(path.join(lab.stateDir, "servers", String(server)), [PASSPHRASE, ...privateKeyLines(operator.private)]);
    // Each disk as raw plus the overlay and the checkpoint's base beneath it, at the least.
    expect(disks.searched.length).toBeGreaterThanOrEqual(6);
    expect(disks.holding).toEqual([]);
    h = undefined;
  });
});
