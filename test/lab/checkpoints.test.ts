// Lab checkpoints through preparedHost, on a cheap recipe (a rescue boot that writes a marker to
// the disks), in a cache of this file's own: a restored server is the saved one (same rescue host
// key and password, same disks, same Robot answers); a recipe whose inputs changed never gets the
// old checkpoint; a corrupt checkpoint is rebuilt, not used.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { listCheckpoints } from "../../lab/checkpoints/store";
import { Secret } from "../../providers/plumbing/secret";
import { sh } from "../../providers/plumbing/shell";
import { connect } from "../../providers/plumbing/ssh";
import { LabFixture, phaseTimer } from "../support/lab";
import { describeOptIn } from "../support/opt-in";
import { checkpointName, PreparedHost, PreparedRecipe, preparedHost, preparedKey, robotView } from "../support/prepared-host";

jest.setTimeout(40 * 60_000);

interface MarkerFacts {
  readonly marker: string;
  readonly privateKey: string;
  readonly hostKeyFingerprints: string[];
  readonly password: string;
}

const phases = phaseTimer("Checkpoint lab phases");
let builds = 0;

/** Boots rescue through the Robot and writes `marker` at the start of both disks. */
const markerRecipe = (marker: string): PreparedRecipe<MarkerFacts> => ({
  name: "test-marker",
  inputs: { marker },
  fixture: { images: "rescue", server: { disks: { count: 2, sizeGiB: 1, type: "nvme" } } },
  build: async (lab, serverNumber) => {
    builds++;
    return lab.withRescue(serverNumber, async (session, login) => {
      await session.exec(sh`for d in /dev/nvme0n1 /dev/nvme1n1; do printf '%s' ${marker} | dd of=$d bs=512 conv=sync,fsync status=none; done; sync`);
      return { marker, privateKey: login.privateKey.reveal(), hostKeyFingerprints: [...login.hostKeyFingerprints], password: login.password.reveal() };
    });
  },
});

// No lab file CI runs starts from a checkpoint any more; the opt-in files that do use this store.
const describeCheckpoints = describeOptIn("HFDE_LAB_CHECKPOINTS", "test/lab/checkpoints.test.ts, the lab's checkpoint store (about 4 min on a slow machine)");

describeCheckpoints("lab: checkpoints through preparedHost", () => {
  let cacheDir: string;
  let host: PreparedHost<MarkerFacts> | undefined;

  beforeAll(() => {
    cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-checkpoints-test-"));
  });
  afterEach(async () => {
    await host?.lab.close();
    host = undefined;
  });
  afterAll(() => {
    phases.print();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  });

  const markersOn = async (lab: LabFixture, facts: MarkerFacts): Promise<string> => {
    const session = await connect(
      { host: "127.0.0.1", port: lab.server().sshPort, user: "root", privateKey: new Secret(facts.privateKey), hostKey: { expect: facts.hostKeyFingerprints }, label: "restored rescue" },
      { budgetMs: 60_000 },
    );
    try {
      return (await session.exec(sh`for d in /dev/nvme0n1 /dev/nvme1n1; do head -c ${String(facts.marker.length)} $d; echo; done`)).stdout;
    } finally {
      await session.close();
    }
  };

  it("the first call builds and saves; the server it hands out is the restored one: same rescue host key, same disks, same Robot answers", async () => {
    host = await phases.timed("build + save + restore (marker v1)", () => preparedHost(markerRecipe("marker-v1"), { cacheDir }));
    expect(host.builtBecause).toBe("no checkpoint for this recipe key");
    expect(builds).toBe(1);
    const server = host.serverNumber;
    expect(host.lab.supervisor.currentBoot(server)?.mode).toBe("rescue");
    expect(host.lab.supervisor.bootHistory(server)).toHaveLength(1); // booted straight into the saved rescue
    expect(await markersOn(host.lab, host.facts)).toBe("marker-v1\nmarker-v1\n");
    // Another pinned key is refused: the key that answers is the saved one, not any.
    await expect(
      connect({ host: "127.0.0.1", port: host.lab.server().sshPort, user: "root", privateKey: new Secret(host.facts.privateKey), hostKey: { expect: ["SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] }, label: "wrong pin" }, { budgetMs: 20_000 }),
    ).rejects.toThrow(/host key/i);
    const now = await robotView(host.lab, server);
    expect(now).toEqual(host.robotAtSave);
    // Robot's last rescue names the password of the rescue the server runs: the one the build's rescue had.
    expect((now.lastRescue as { password: { secret: string } | null }).password?.secret).toBe(host.facts.password);
    process.stdout.write(`marker v1: build ${host.timings.buildMs} ms, save ${host.timings.saveMs} ms, restore ${host.timings.restoreMs} ms, boot to SSH ${host.timings.bootMs} ms\n`);
  });

  it("a second call restores without building", async () => {
    host = await phases.timed("restore (marker v1, cache hit)", () => preparedHost(markerRecipe("marker-v1"), { cacheDir }));
    expect(host.builtBecause).toBeUndefined();
    expect(builds).toBe(1);
    expect(await markersOn(host.lab, host.facts)).toBe("marker-v1\nmarker-v1\n");
    expect(await robotView(host.lab, host.serverNumber)).toEqual(host.robotAtSave);
    process.stdout.write(`marker v1 hit: restore ${host.timings.restoreMs} ms, boot to SSH ${host.timings.bootMs} ms\n`);
  });

  it("a recipe whose inputs changed never gets the old checkpoint: it is built anew", async () => {
    const v1 = checkpointName(markerRecipe("marker-v1"), await preparedKey(markerRecipe("marker-v1")));
    host = await phases.timed("build + save + restore (marker v2)", () => preparedHost(markerRecipe("marker-v2"), { cacheDir }));
    expect(host.checkpoint).not.toBe(v1);
    expect(host.builtBecause).toBe("no checkpoint for this recipe key");
    expect(builds).toBe(2);
    expect(await markersOn(host.lab, host.facts)).toBe("marker-v2\nmarker-v2\n");
    expect(listCheckpoints(cacheDir).map((e) => e.name).sort()).toEqual([v1, host.checkpoint].sort());
  });

  it("a corrupt checkpoint is rebuilt, not used", async () => {
    const recipe = markerRecipe("marker-v2");
    const name = checkpointName(recipe, await preparedKey(recipe));
    const disk = path.join(cacheDir, name, "disk1.qcow2");
    fs.chmodSync(disk, 0o644);
    const fd = fs.openSync(disk, "r+");
    fs.writeSync(fd, Buffer.alloc(512, 0x5a), 0, 512, 0);
    fs.closeSync(fd);
    host = await phases.timed("corrupt → rebuild + save + restore (marker v2)", () => preparedHost(recipe, { cacheDir }));
    expect(host.builtBecause).toMatch(/checkpoint .* is unusable: qemu-img check disk1\.qcow2 failed/);
    expect(builds).toBe(3);
    expect(await markersOn(host.lab, host.facts)).toBe("marker-v2\nmarker-v2\n");
  });
});
