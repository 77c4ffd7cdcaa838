// gate-facts.sh's cache of an image's records, on a real installed root without a VM: the lab's
// bookworm image unpacked here, its initrd opened by its own unmkinitramfs in a chroot, as in
// rescue. A hit must give the same records without unpacking; a rebuilt or rewritten initrd, a
// renew (the gate) and a failed unpack must not be served from the cache.
import { spawnSync } from "child_process";
import * as fs from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { ensureLabImages, imageFileName } from "../../lab/images";
import { GATE_FACTS_SH } from "../../providers/dropbear-initramfs/scripts";

jest.setTimeout(10 * 60_000);

const MAC = "52:54:00:12:34:56";

describe("gate-facts.sh: an image's records, cached under the initrd's identity", () => {
  let work: string;
  let root: string;
  let cacheDir: string;
  let initrd: string;

  beforeAll(async () => {
    const images = await ensureLabImages();
    work = fs.mkdtempSync(path.join(tmpdir(), "hfde-gate-facts-"));
    root = path.join(work, "root");
    cacheDir = path.join(work, "cache");
    fs.mkdirSync(root);
    const untar = spawnSync("tar", ["-xzf", path.join(images.imagesDir, imageFileName("bookworm")), "-C", root], { encoding: "utf8" });
    if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`);
    const kernels = fs.readdirSync(path.join(root, "boot")).filter((f) => f.startsWith("initrd.img-"));
    expect(kernels).toHaveLength(1);
    initrd = path.join(root, "boot", kernels[0]);
  });

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  function gateFacts(cache?: "renew"): { use: string; records: string } {
    const run = spawnSync("bash", ["-c", GATE_FACTS_SH, "gate-facts", root, MAC, "", ...(cache ? [cache] : [])], {
      env: { ...process.env, HFDE_INITRD_FACTS_DIR: cacheDir },
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(run.status).toBe(0);
    const lines = run.stdout.split("\n");
    const use = lines.filter((l) => l.startsWith("initrdcache ")).join("\n");
    // Only the image's records: the host's (arrays, NIC) are this machine's and are read every time.
    const records = lines.filter((l) => /^(path|file|keysha) /.test(l)).join("\n");
    return { use, records };
  }

  const entries = () => (fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : []);
  const leftovers = () => fs.readdirSync(path.join(root, "tmp")).filter((f) => f.startsWith("hfde-initrd."));

  it("unpacks once; the next read is a hit with the same records, and nothing is left in the root's /tmp", () => {
    const first = gateFacts();
    expect(first.use).toBe("initrdcache miss");
    expect(first.records).toMatch(/^path usr\/bin\/kmod$/m);
    expect(first.records).toMatch(/^file etc\/mdadm\/mdadm.conf /m);
    const second = gateFacts();
    expect(second.use).toBe("initrdcache hit");
    expect(second.records).toBe(first.records);
    expect(entries()).toHaveLength(1);
    expect((fs.statSync(cacheDir).mode & 0o777).toString(8)).toBe("700");
    expect(leftovers()).toEqual([]);
  });

  it("a hit does not unpack: with unmkinitramfs broken the cache still answers, and a renew (the gate) does not", () => {
    const unmk = path.join(root, "usr/bin/unmkinitramfs");
    const mode = fs.statSync(unmk).mode;
    fs.chmodSync(unmk, 0);
    try {
      const hit = gateFacts();
      expect(hit.use).toBe("initrdcache hit");
      expect(hit.records).toMatch(/^path usr\/bin\/kmod$/m);
      // A failed unpack is reported as what it found (nothing) and is not stored.
      const renewed = gateFacts("renew");
      expect(renewed.use).toBe("initrdcache miss");
      expect(renewed.records).not.toMatch(/^path /m);
    } finally {
      fs.chmodSync(unmk, mode);
    }
    expect(gateFacts().use).toBe("initrdcache hit");
    expect(entries()).toHaveLength(1);
  });

  it("an initrd rebuilt as update-initramfs does (a new file renamed over the old one) is a miss, and replaces the entry", () => {
    fs.copyFileSync(initrd, `${initrd}.new`);
    fs.renameSync(`${initrd}.new`, initrd);
    expect(gateFacts().use).toBe("initrdcache miss");
    expect(gateFacts().use).toBe("initrdcache hit");
    expect(entries()).toHaveLength(1);
  });

  it("an initrd rewritten in place with its old size and modification time is a miss (its change time moved)", () => {
    const before = fs.statSync(initrd, { bigint: true });
    const reference = path.join(work, "mtime-reference");
    spawnSync("touch", ["-r", initrd, reference]);
    fs.writeFileSync(initrd, fs.readFileSync(initrd));
    spawnSync("touch", ["-r", reference, initrd]);
    const after = fs.statSync(initrd, { bigint: true });
    expect([after.ino, after.size, after.mtimeNs]).toEqual([before.ino, before.size, before.mtimeNs]);
    expect(after.ctimeNs).not.toBe(before.ctimeNs);
    expect(gateFacts().use).toBe("initrdcache miss");
  });

  it("a failed unpack is not cached: the read after it unpacks again", () => {
    fs.copyFileSync(initrd, `${initrd}.new`);
    fs.renameSync(`${initrd}.new`, initrd);
    const unmk = path.join(root, "usr/bin/unmkinitramfs");
    const mode = fs.statSync(unmk).mode;
    fs.chmodSync(unmk, 0);
    try {
      expect(gateFacts().use).toBe("initrdcache miss");
    } finally {
      fs.chmodSync(unmk, mode);
    }
    const again = gateFacts();
    expect(again.use).toBe("initrdcache miss");
    expect(again.records).toMatch(/^path usr\/bin\/kmod$/m);
    expect(entries()).toHaveLength(1);
  });
});
