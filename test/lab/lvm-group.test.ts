// LvmGroup on a lab server in rescue, through the real dynamic-provider host (the harness): PVs on
// the second (and later the first) NVMe disk, no LUKS needed. One rescue boot is shared by the
// lifecycle steps, which build on each other the way an operator's successive `up`s do; the
// kill-and-rerun tests follow, each starting from blank disks.
// Opt-in (HFDE_LAB_LVM=1) since stop 19: no stack uses LvmGroup yet (the installed root's LVM is
// installimage's), and CI's 90 minutes did not hold it beside the whole-host e2e on a slow machine.
import * as net from "net";
import { ProviderHarness, Props } from "../harness/harness";
import { assertNoSecrets } from "../harness/leaks";
import { sh } from "../../providers/plumbing/shell";
import type { ConnectionProfile } from "../../providers/kernel/host-access";
import { LabFixture, RescueLogin, startLabFixture } from "../support/lab";
import { describeOptIn } from "../support/opt-in";
import { waitFor } from "../support/wait";
import { describeResourceContract } from "../support/contract";

jest.setTimeout(900_000);

const DATA_LVS = [
  { name: "data", size: "512M", filesystem: "ext4", mountPoint: "/srv" },
  { name: "swap", size: "64M", filesystem: "swap" },
  { name: "rest", size: "all", filesystem: "xfs", mountPoint: "/rest" },
];
const TARGET_ROOT = "/tmp/target";

const describeLvm = describeOptIn("HFDE_LAB_LVM", "test/lab/lvm-group.test.ts, LvmGroup on a lab server (lifecycle, drift, kill points; about 7 min on a slow machine): no stack uses it yet");

describeLvm("lab: LvmGroup", () => {
  let lab: LabFixture;
  let server: number;
  let login: RescueLogin;

  beforeAll(async () => {
    lab = await startLabFixture({ images: "rescue", server: { disks: { count: 2, sizeGiB: 4, type: "nvme" } } });
    server = lab.server().number;
    login = await lab.bootIntoRescue(server);
  });
  afterAll(async () => {
    await lab?.close();
  });

  const onHost = async (command: string): Promise<string> =>
    lab.withRescue(server, async (session) => (await session.exec(sh`bash -c ${command}`, { timeoutMs: 300_000 })).stdout, login);

  const connection = (): ConnectionProfile[] => [
    { environment: "rescue", host: "127.0.0.1", port: lab.server().sshPort, user: "root", hostKeyFingerprints: [...login.hostKeyFingerprints] },
  ];

  const startHarness = (args: Props, connectionOverride?: ConnectionProfile[]) =>
    ProviderHarness.start({
      module: "providers/lvm-group",
      exportName: "LvmGroup",
      args: { connection: connectionOverride ?? connection(), pvs: ["/dev/nvme1n1"], vgName: "vg0", volumes: DATA_LVS, ...args },
      config: { "hetzner-fde:sshPrivateKey": login.privateKey.reveal() },
      secretConfigKeys: ["hetzner-fde:sshPrivateKey"],
      callTimeoutMs: 600_000,
    });

  /** name → [bytes, fs type] as the host reports them, independently of the provider. */
  const lvsOnHost = async (): Promise<Record<string, [number, string]>> => {
    const out = await onHost("lvs --noheadings --units b --nosuffix -o lv_name,lv_size vg0 2>/dev/null | while read n s; do printf '%s %s %s\\n' $n $s $(blkid -p -s TYPE -o value /dev/vg0/$n); done");
    return Object.fromEntries(out.trim().split("\n").filter(Boolean).map((line) => {
      const [name, size, type] = line.trim().split(/\s+/);
      return [name, [Number(size), type]];
    }));
  };

  const wipeDisks = () => onHost("umount -q /mnt/data 2>/dev/null; vgremove -y -ff vg0 >/dev/null 2>&1; for d in /dev/nvme0n1 /dev/nvme1n1; do pvremove -y -ff $d >/dev/null 2>&1; wipefs -a -q $d; done; true");

  describe("validation at check time", () => {
    it("refuses bad input field by field, with no SSH connection made", async () => {
      let connections = 0;
      const trap = net.createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => trap.listen(0, "127.0.0.1", resolve));
      const port = (trap.address() as net.AddressInfo).port;
      const h = await startHarness({}, [{ environment: "rescue", host: "127.0.0.1", port, user: "root", hostKeyFingerprints: [...login.hostKeyFingerprints] }]);
      try {
        const bad = h.inputs({
          pvs: ["sdb"],
          volumes: [
            { name: "root", size: "all", filesystem: "ext4", mountPoint: "/" },
            { name: "root", size: "8", filesystem: "swap", mountPoint: "/swap" },
          ],
        });
        const { failures } = await h.check(h.urn, {}, bad);
        expect(failures.map((f) => f.property).sort()).toEqual(["pvs[0]", "volumes[0].size", "volumes[1].mountPoint", "volumes[1].name", "volumes[1].size"]);
        expect(failures.find((f) => f.property === "pvs[0]")?.reason).toMatch(/under \/dev.*"\/dev\/sdb"/);
        await expect(h.up(bad)).rejects.toThrow(/check failed: .*pvs\[0\]/);
        expect(connections).toBe(0);
      } finally {
        await h.stop();
        trap.close();
      }
    });
  });

  describe("lifecycle", () => {
    let h: ProviderHarness;
    beforeAll(async () => {
      await onHost(`mkdir -p ${TARGET_ROOT}/etc && printf 'proc /proc proc defaults 0 0\\n' > ${TARGET_ROOT}/etc/fstab`);
      h = await startHarness({ fstabRoot: TARGET_ROOT });
    });
    afterAll(async () => {
      await h?.stop();
    });

    it("creates PV, VG, LVs, filesystems and fstab lines", async () => {
      const started = Date.now();
      expect((await h.up()).op).toBe("create");
      process.stdout.write(`LvmGroup create (3 LVs): ${Date.now() - started} ms\n`);
      const onDisk = await lvsOnHost();
      expect(onDisk.data).toEqual([512 * 1024 * 1024, "ext4"]);
      expect(onDisk.swap).toEqual([64 * 1024 * 1024, "swap"]);
      expect(onDisk.rest[1]).toBe("xfs");
      expect(await onHost("vgs --noheadings -o vg_free_count,vg_tags vg0")).toMatch(/^\s*0 hetzner-fde\s*$/);
      expect(await onHost(`cat ${TARGET_ROOT}/etc/fstab`)).toBe(
        "proc /proc proc defaults 0 0\n/dev/vg0/data /srv ext4 defaults 0 2\n/dev/vg0/rest /rest xfs defaults 0 0\n/dev/vg0/swap none swap sw 0 0\n",
      );
    });

    it("reads the VG and every LV with real size, filesystem and UUID, and where it read from", async () => {
      const started = Date.now();
      const read = await h.refresh();
      process.stdout.write(`LvmGroup refresh: ${Date.now() - started} ms\n`);
      expect(read?.id).toMatch(/^vg0:/);
      const props = read?.props as Props & { observedVolumes: Array<Record<string, unknown>> };
      expect(props.environment).toBe("rescue");
      expect(props.freeExtents).toBe(0);
      const onDisk = await lvsOnHost();
      const uuids = await onHost("blkid -p -s UUID -o value /dev/vg0/data");
      expect(props.observedVolumes.find((v) => v.name === "data")).toMatchObject({ sizeBytes: onDisk.data[0], filesystem: "ext4", filesystemUuid: uuids.trim(), managed: true });
      expect(props.observedVolumes.find((v) => v.name === "rest")).toMatchObject({ sizeBytes: onDisk.rest[0], filesystem: "xfs" });
      expect(read?.inputs).toMatchObject({ vgName: "vg0", volumes: DATA_LVS, fstabRoot: TARGET_ROOT });
    });

    it("a second identical up proposes no change (the `all` LV converges)", async () => {
      const again = await h.up(h.inputs({ fstabRoot: TARGET_ROOT }));
      expect(again.op).toBe("same");
      expect(again.diff?.changes).toBe("none");
      expect((await h.preview(h.urn, h.inputs({ fstabRoot: TARGET_ROOT }))).diff?.changes).toBe("none");
    });

    it("grows an LV in place (mounted, online), adds a PV and an LV; a sentinel file survives", async () => {
      await onHost("mkdir -p /mnt/data && mount /dev/vg0/data /mnt/data && echo keep-me > /mnt/data/sentinel");
      const fsBefore = Number(await onHost("df -B1 --output=size /mnt/data | tail -n1"));
      const lvs = [{ ...DATA_LVS[0], size: "768M" }, DATA_LVS[1], { name: "logs", size: "128M", filesystem: "ext4" }, DATA_LVS[2]];
      const news = h.inputs({ fstabRoot: TARGET_ROOT, pvs: ["/dev/nvme1n1", "/dev/nvme0n1"], volumes: lvs });
      expect((await h.preview(h.urn, news)).diff).toEqual({ changes: "some", replaces: [], deleteBeforeReplace: false });
      expect((await h.up(news)).op).toBe("update");
      expect(await onHost("cat /mnt/data/sentinel")).toBe("keep-me\n");
      const fsAfter = Number(await onHost("df -B1 --output=size /mnt/data | tail -n1"));
      expect(fsAfter).toBeGreaterThan(fsBefore + 200 * 1024 * 1024);
      const onDisk = await lvsOnHost();
      expect(onDisk.data).toEqual([768 * 1024 * 1024, "ext4"]);
      expect(onDisk.logs).toEqual([128 * 1024 * 1024, "ext4"]);
      expect(onDisk.rest[0]).toBeGreaterThan(6 * 1024 * 1024 * 1024); // took the second disk too
      expect(await onHost("vgs --noheadings -o vg_free_count vg0")).toMatch(/^\s*0\s*$/);
      expect((await h.up(news)).op).toBe("same");
    });

    it("refuses a shrink at check without allowWipe, naming the LV", async () => {
      const current = h.state.resources.get(h.urn)?.plainInputs as Props;
      const lvs = (current.volumes as Props[]).map((lv) => (lv.name === "data" ? { ...lv, size: "512M" } : lv));
      const { failures } = await h.check(h.urn, current, { ...current, volumes: lvs });
      expect(failures).toEqual([{ property: "volumes[0].size", reason: expect.stringMatching(/shrinking LV "data" \(vg0\/data\) from 768M to 512M destroys its data.*allowWipe: true/) }]);
      expect(await onHost("cat /mnt/data/sentinel")).toBe("keep-me\n");
    });

    it("drift: LVs resized by hand show in read and diff; up refuses the shrink it would take, and restores the rest", async () => {
      const current = h.state.resources.get(h.urn)?.plainInputs as Props;
      // swap loses 8 extents, data takes them (its filesystem is not grown, so this is undone safely below).
      await onHost("lvreduce -q -y -f -L 32M vg0/swap >/dev/null && lvextend -q -l +8 vg0/data >/dev/null");
      const read = await h.refresh();
      const volumes = (read?.props as { observedVolumes: Array<{ name: string; sizeBytes: number }> }).observedVolumes;
      expect(volumes.find((v) => v.name === "data")?.sizeBytes).toBe(800 * 1024 * 1024);
      expect(volumes.find((v) => v.name === "swap")?.sizeBytes).toBe(32 * 1024 * 1024);
      expect(read?.inputs).toMatchObject({ volumes: current.volumes }); // the request, unchanged: drift is outputs vs inputs
      expect((await h.preview(h.urn, current)).diff?.changes).toBe("some");
      // data is now bigger than asked: putting it back is a shrink, which needs allowWipe.
      await expect(h.up(current)).rejects.toThrow(/shrinking LV "data" \(vg0\/data\) from 200 to 192 extents.*allowWipe: true/);
      expect(await onHost("cat /mnt/data/sentinel")).toBe("keep-me\n");
      await onHost("lvreduce -q -y -f -l -8 vg0/data >/dev/null");
      expect((await h.up(current)).op).toBe("update");
      const onDisk = await lvsOnHost();
      expect(onDisk.swap).toEqual([64 * 1024 * 1024, "swap"]);
      expect(onDisk.data[0]).toBe(768 * 1024 * 1024);
      expect((await h.up(current)).op).toBe("same");
    });

    it("delete without allowWipe leaves VG, LVs, data and fstab, and says so", async () => {
      const entry = h.state.resources.get(h.urn);
      await h.delete(entry?.id as string, entry?.plainOutputs as Props);
      expect(await onHost("cat /mnt/data/sentinel")).toBe("keep-me\n");
      expect(Object.keys(await lvsOnHost()).sort()).toEqual(["data", "logs", "rest", "swap"]);
      await h.stop();
      expect(h.logs).toMatch(/delete leaves VG "vg0" with its LVs \(data, swap, logs, rest\), their data and fstab lines .* untouched: allowWipe is false/);
    });

    it("delete with allowWipe refuses a mounted LV by name, then removes LVs, VG, PV labels and fstab lines", async () => {
      h = await startHarness({ fstabRoot: TARGET_ROOT });
      const current = h.inputs({ pvs: ["/dev/nvme1n1", "/dev/nvme0n1"], volumes: [{ ...DATA_LVS[0], size: "768M" }, DATA_LVS[1], { name: "logs", size: "128M", filesystem: "ext4" }, DATA_LVS[2]], allowWipe: true });
      expect((await h.up(current)).op).toBe("create"); // a new engine state: create adopts our own tagged VG
      await expect(h.destroy()).rejects.toThrow(/data is mounted at \/mnt\/data; unmount first/);
      await onHost("umount /mnt/data");
      await h.destroy();
      expect(await onHost("vgs vg0 >/dev/null 2>&1 && echo present || echo gone")).toBe("gone\n");
      expect(await onHost("wipefs -n /dev/nvme0n1 /dev/nvme1n1 | wc -l")).toBe("0\n");
      expect(await onHost(`cat ${TARGET_ROOT}/etc/fstab`)).toBe("proc /proc proc defaults 0 0\n");
    });

    it("leaves the operator's private key in no state, log or error message", async () => {
      await h.stop(); // logs are complete only after stop
      expect(h.secrets).toEqual([login.privateKey.reveal()]);
      assertNoSecrets("recorded state", h.state.text(), h.secrets);
      assertNoSecrets("provider host logs and errors", h.logs, h.secrets);
    });
  });

  describe("kill and re-run converge", () => {
    const killArgs = { pvs: ["/dev/nvme1n1", "/dev/nvme0n1"], volumes: [{ name: "a", size: "1G", filesystem: "ext4" }, { name: "b", size: "256M", filesystem: "swap" }, { name: "c", size: "all", filesystem: "xfs" }] };

    const waitOnHost = async (command: string, timeoutMs = 300_000): Promise<void> => {
      await waitFor(async () => (await onHost(`${command} >/dev/null 2>&1 && echo yes || echo no`).catch(() => "no\n")) === "yes\n", { what: `on the host: ${command}`, timeoutMs, intervalMs: 300 });
    };

    const expectConverged = async (h: ProviderHarness) => {
      const result = await h.up();
      expect(["create", "update"]).toContain(result.op);
      const onDisk = await lvsOnHost();
      expect(onDisk.a).toEqual([1024 * 1024 * 1024, "ext4"]);
      expect(onDisk.b).toEqual([256 * 1024 * 1024, "swap"]);
      expect(onDisk.c[1]).toBe("xfs");
      expect(await onHost("vgs --noheadings -o vg_free_count,pv_count vg0")).toMatch(/^\s*0\s+2\s*$/);
      expect((await h.up()).op).toBe("same");
    };

    beforeEach(async () => {
      await wipeDisks();
    });

    // Starts a create, waits until `reached` holds on the host, interrupts it with `interrupt`, and
    // expects a fresh provider host to converge to the full layout.
    const interruptAndRerun = async (reached: string, interrupt: (first: ProviderHarness) => Promise<void>): Promise<void> => {
      const first = await startHarness(killArgs);
      const creating = first.up().catch((error: Error) => error);
      await waitOnHost(reached);
      await interrupt(first);
      expect(await creating).toBeInstanceOf(Error);
      await first.stop();
      const second = await startHarness(killArgs);
      try {
        await expectConverged(second);
      } finally {
        await second.stop();
      }
    };

    it("the dynamic-provider host killed mid-create (after the first LV exists)", async () => {
      await interruptAndRerun("lvs vg0/a", async (first) => first.killHost());
    });

    it("the SSH connection dropped mid-create (after vgcreate)", async () => {
      // Kill every other root SSH session's sshd: the provider's connection drops wherever it is.
      await interruptAndRerun("vgs vg0", async () => {
        await onHost(
          "anc=' '; p=$$; while [ \"$p\" -gt 1 ]; do anc=\"$anc$p \"; p=$(ps -o ppid= -p \"$p\" | tr -d ' '); done; " +
            "for s in $(pgrep -f 'sshd: root@notty'); do case \"$anc\" in *\" $s \"*) ;; *) kill -9 \"$s\" ;; esac; done; true",
        );
      });
    });

    it("the VM reset mid-create (after the first LV exists); the re-run activates the VG and finishes", async () => {
      // Arms rescue and resets the server under the running create.
      await interruptAndRerun("lvs vg0/a", async () => {
        login = await lab.bootIntoRescue(server);
      });
    });
  });

  // The kernel's contract (test/support/contract.ts), on this file's booted server: blank disks, one small LV.
  describe("resource contract", () => {
    beforeAll(async () => {
      await wipeDisks();
    });
    describeResourceContract("LvmGroup", {
      start: (overrides = {}) => startHarness({ pvs: ["/dev/nvme1n1"], volumes: [{ name: "c1", size: "64M", filesystem: "ext4" }], ...overrides }),
      connectionTo: (port) => ({ connection: [{ environment: "rescue", host: "127.0.0.1", port, user: "root", hostKeyFingerprints: [...login.hostKeyFingerprints] }] }),
      invalid: { pvs: ["sdb"] },
      change: { volumes: [{ name: "c1", size: "128M", filesystem: "ext4" }] },
      hostState: () => onHost("pvs --noheadings -o pv_name,vg_name,pv_uuid; vgs --noheadings -o vg_name,vg_uuid,vg_tags; lvs --noheadings --units b -o lv_name,lv_uuid,lv_size; blkid -p /dev/vg0/* 2>/dev/null; true"),
    });
  });
});
