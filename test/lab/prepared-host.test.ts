// The prepared host DropbearInitramfs starts from: an installed crypt RAID1 host (md RAID1, LUKS2,
// LVM root + swap) still in the rescue that installed it. preparedHost builds it once with the
// real RescueBoot and InstallImage through the harness, then restores it from the checkpoint cache
// (<lab state dir>/checkpoints). The restored host must be indistinguishable from the saved one:
// the rescue host key RescueBoot pinned answers, the arrays, LUKS and LVM carry the same UUIDs,
// and the Robot reports the same. At the end, save and restore of that host are timed for
// bench/RESULTS.md. The booted plain RAID1 recipe is opt-in (below).
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { restoreCheckpoint, saveCheckpoint } from "../../lab/checkpoints/store";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { connect } from "../../providers/plumbing/ssh";
import { phaseTimer } from "../support/lab";
import { CRYPT_RAID1_IN_RESCUE, InstalledInRescueFacts, InstalledSystemFacts, LAB_LUKS_PASSPHRASE, PLAIN_RAID1_BOOTED, PreparedHost, preparedHost, robotView, storageStack, withProfile } from "../support/prepared-host";
import { describeOptIn } from "../support/opt-in";

jest.setTimeout(60 * 60_000);

const phases = phaseTimer("Prepared host lab phases");
afterAll(() => phases.print());

// Opt-in: in a fresh cache (every CI run) it builds the crypt host first (~9-10 min), and no CI
// test consumes that state (the DropbearInitramfs lab file, its first user, is opt-in too).
const describeCrypt = describeOptIn("HFDE_LAB_PREPARED", "test/lab/prepared-host.test.ts, the installed crypt RAID1 host in rescue (about 10 min with its first build)");

describeCrypt("lab: prepared host — installed crypt RAID1, still in rescue", () => {
  let host: PreparedHost<InstalledInRescueFacts>;

  beforeAll(async () => {
    host = await phases.timed("preparedHost(crypt RAID1 in rescue)", () => preparedHost(CRYPT_RAID1_IN_RESCUE));
    const t = host.timings;
    process.stdout.write(`prepared host ${host.checkpoint}: ${host.builtBecause ? `built (${host.builtBecause}) in ${t.buildMs} ms, saved in ${t.saveMs} ms; ` : "cache hit; "}restored in ${t.restoreMs} ms, rescue boot to SSH ${t.bootMs} ms\n`);
  });

  afterAll(async () => {
    await host?.lab.close();
  });

  it("runs the saved rescue: the host key RescueBoot pinned answers (and only it), with the operator key RescueBoot authorized", async () => {
    const { lab, serverNumber, facts } = host;
    expect(lab.supervisor.currentBoot(serverNumber)?.mode).toBe("rescue");
    expect(facts.rescueProfile).toMatchObject({ environment: "rescue", host: "127.0.0.1", port: lab.server().sshPort, user: "root" });
    expect(facts.installImageInputs.rescue).toEqual(facts.rescueProfile);
    expect(await withProfile(facts.rescueProfile, facts.operator.private, async (s) => (await s.exec(sh`hostname`)).stdout)).toBe("rescue\n");
    await expect(
      connect(
        { host: "127.0.0.1", port: lab.server().sshPort, user: "root", privateKey: new Secret(facts.operator.private), hostKey: { expect: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }, label: "wrong pin" },
        { budgetMs: 20_000 },
      ),
    ).rejects.toThrow(/host key/i);
  });

  it("holds what InstallImage installed: the same md arrays, LUKS header and LVM (UUIDs), opened by the lab passphrase, with InstallImage's marker", async () => {
    const { facts } = host;
    expect(facts.storage).toMatch(/^array .*UUID=/m);
    expect(facts.storage).toMatch(/^luks uuid=[0-9a-f-]{36} keyslots=1$/m);
    expect(facts.storage).toMatch(/^lv vg0 root /m);
    const seen = await withProfile(facts.rescueProfile, facts.operator.private, async (session) => {
      await storageStack(session, "open", new Secret(LAB_LUKS_PASSPHRASE));
      try {
        const storage = await storageStack(session, "facts");
        await session.exec(sh`mount -o ro /dev/vg0/root /mnt`);
        const marker = (await session.exec(sh`cat /mnt/etc/hetzner-fde/install-image.json; umount /mnt`)).stdout;
        return { storage, marker };
      } finally {
        await storageStack(session, "close");
      }
    });
    expect(seen.storage).toBe(facts.storage);
    expect(seen.marker).toContain(`"installId":"${facts.installImageOutputs.installId as string}"`);
  });

  it("the Robot reports the same: server, boot configurations, last rescue (password, host key), stored keys", async () => {
    expect(await robotView(host.lab, host.serverNumber)).toEqual(host.robotAtSave);
  });

  it("figures: save and restore of this installed RAID1 host (3 runs each)", async () => {
    const { lab, serverNumber } = host;
    await lab.supervisor.powerOff(serverNumber);
    const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-checkpoint-bench-"));
    const saves: number[] = [];
    const restores: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        let started = Date.now();
        await saveCheckpoint({ cacheDir, stateDir: lab.stateDir, server: lab.server(), name: `bench-${i}`, boot: "rescue" });
        saves.push(Date.now() - started);
        const target = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-restore-bench-"));
        try {
          started = Date.now();
          await restoreCheckpoint({ cacheDir, stateDir: target, server: lab.server(), name: `bench-${i}` });
          restores.push(Date.now() - started);
        } finally {
          fs.rmSync(target, { recursive: true, force: true });
        }
      }
      const allocated = fs.readdirSync(path.join(cacheDir, "bench-0")).filter((f) => f.endsWith(".qcow2")).reduce((sum, f) => sum + fs.statSync(path.join(cacheDir, "bench-0", f)).blocks * 512, 0);
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
      process.stdout.write(`checkpoint of an installed crypt RAID1 host (2 × 6 GiB): save ${saves.join("/")} ms (median ${median(saves)}), restore ${restores.join("/")} ms (median ${median(restores)}), ${(allocated / 2 ** 20).toFixed(0)} MiB allocated\n`);
      expect(saves).toHaveLength(3);
    } finally {
      fs.rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});

// Opt-in: no test needs this state yet, and in a fresh cache (every CI run, whose sources differ
// from any earlier build) it costs another install.
const describePlain = describeOptIn("HFDE_LAB_PREPARED_PLAIN", "test/lab/prepared-host.test.ts, the installed plain RAID1 host booted into its system (about 7 min more)");

describePlain("lab: prepared host — installed plain RAID1, booted into its system", () => {
  let host: PreparedHost<InstalledSystemFacts>;

  beforeAll(async () => {
    host = await phases.timed("preparedHost(plain RAID1 booted)", () => preparedHost(PLAIN_RAID1_BOOTED));
    const t = host.timings;
    process.stdout.write(`prepared host ${host.checkpoint}: ${host.builtBecause ? `built (${host.builtBecause}) in ${t.buildMs} ms, saved in ${t.saveMs} ms; ` : "cache hit; "}restored in ${t.restoreMs} ms, disk boot to SSH ${t.bootMs} ms\n`);
  });

  afterAll(async () => {
    await host?.lab.close();
  });

  it("boots its installed system from the restored disks: the host key InstallImage pinned answers, the same arrays and LVM, the Robot says the same", async () => {
    const { lab, serverNumber, facts } = host;
    expect(lab.supervisor.currentBoot(serverNumber)?.mode).toBe("disk");
    expect(facts.systemProfile.port).toBe(lab.server().sshPort);
    const seen = await withProfile(facts.systemProfile, facts.operator.private, async (session) => ({
      hostname: (await session.exec(sh`hostname`)).stdout,
      storage: await storageStack(session, "facts"),
    }));
    expect(seen.hostname).toBe("lab-1\n");
    expect(seen.storage).toBe(facts.storage);
    expect(facts.storage).toMatch(/^lv vg0 root /m);
    expect(await robotView(lab, serverNumber)).toEqual(host.robotAtSave);
  });
});
