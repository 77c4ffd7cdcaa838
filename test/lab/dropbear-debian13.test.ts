// DropbearInitramfs on Debian 13 (trixie), issue 13's test 9: the same closed loop as test 1 of
// dropbear-initramfs.test.ts, from an installed crypt RAID1 trixie host still in the rescue that
// installed it (its own checkpoint): create configures in a chroot, builds once, gates, reboots,
// unlocks through dropbear with the pinned key and verifies; a second up plans nothing.
// Opt-in (HFDE_LAB_DEBIAN13=1): the trixie checkpoint is built on first use (RescueBoot and
// InstallImage, about 8 min), and the loop takes another 6–8 min under TCG. Run it under the VM lock:
//   HFDE_LAB_DEBIAN13=1 flock /tmp/hfde-vm.lock npx jest --selectProjects lab --testPathPattern dist/test/lab/dropbear-debian13
import * as path from "path";
import { ProviderHarness, Props } from "../harness/harness";
import type { ConnectionProfile } from "../../providers/kernel/host-access";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { connect } from "../../providers/plumbing/ssh";
import { LabFixture, labStackConfig, phaseTimer } from "../support/lab";
import { describeOptIn } from "../support/opt-in";
import { CRYPT_RAID1_IN_RESCUE_TRIXIE, LAB_LUKS_PASSPHRASE, preparedHost } from "../support/prepared-host";

jest.setTimeout(90 * 60_000);

const describeDebian13 = describeOptIn("HFDE_LAB_DEBIAN13", "test/lab/dropbear-debian13.test.ts, DropbearInitramfs on Debian 13 (about 15 min with its checkpoint's first build, one VM)");
const phases = phaseTimer("DropbearInitramfs on Debian 13");

describeDebian13("lab: DropbearInitramfs on Debian 13", () => {
  let lab: LabFixture;
  let h: ProviderHarness | undefined;

  afterAll(async () => {
    await h?.stop();
    phases.print();
    await lab?.close();
  });

  it("9: create on trixie configures in rescue, builds once, gates, reboots, unlocks through dropbear and verifies; a second up plans nothing", async () => {
    const host = await phases.timed("installed crypt RAID1 trixie host in rescue (checkpoint)", () => preparedHost(CRYPT_RAID1_IN_RESCUE_TRIXIE));
    lab = host.lab;
    const { operator, rescueProfile: rescue, installImageOutputs } = host.facts;
    const system: ConnectionProfile = { environment: "system", host: "127.0.0.1", port: lab.server().sshPort, user: "root", hostKeyFingerprints: installImageOutputs.hostKeyFingerprints as string[] };
    const onRescue = await connect({ host: rescue.host, port: rescue.port, user: "root", privateKey: new Secret(operator.private), hostKey: { expect: [...rescue.hostKeyFingerprints] }, label: "rescue" }, { budgetMs: 120_000 });
    const mac = (await onRescue.exec(sh`cat /sys/class/net/eth0/address`)).stdout.trim();
    await onRescue.close();

    process.env.HFDE_LAB_CONSOLE_DIR = path.join(lab.stateDir, "servers", String(host.serverNumber));
    const args: Props = {
      connection: [rescue, system],
      hostname: "lab-1.example.com",
      authorizedKeys: [operator.public],
      reach: { host: "127.0.0.1", port: lab.server().dropbearPort },
      network: { mac, ipv4: "dhcp" },
      passphrase: LAB_LUKS_PASSPHRASE,
    };
    h = await ProviderHarness.start({
      module: "providers/dropbear-initramfs",
      exportName: "DropbearInitramfs",
      args,
      secretPaths: ["passphrase", "hostKeyPrivate"],
      ...labStackConfig(lab, operator.private),
      callTimeoutMs: 60 * 60_000,
    });
    const result = await phases.timed("create (rescue → chroot config → one build → gate → reboot → unlock → verify)", () => h!.up());
    expect(result.op).toBe("create");
    expect(h.logs).toMatch(/update-initramfs ran 1 time\(s\)/);
    expect(h.logs).toMatch(/gate: the built initramfs has dropbear/);
    expect(h.logs).toMatch(/reboot → dropbear [\d.]+ s → unlocked [\d.]+ s → sshd [\d.]+ s; arrays, LUKS, mounts and host name verified/);
    const outs = h.state.resources.get(h.urn)!.plainOutputs;
    expect(outs.environment).toBe("system");
    expect(outs.distro).toBe("debian-13");
    expect(outs.drift).toEqual([]);

    const again = await phases.timed("second up", () => h!.up());
    expect(again.op).toBe("same");
  });
});
