// Lab images: the real builds (debootstrap, chroots) into the real cache, then checks of what
// the VMs will see: the rescue kernel/initrd, the OS tarballs' contents and the local mirror
// served over HTTP, resolved against the packages the OS image already has.
import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import { promisify } from "util";
import { DEFAULT_SUITES, ensureLabImages, imageFileName, LabImages } from "../../lab/images";
import { MirrorServer, startMirrorServer } from "../../lab/mirror/server";

const execFileAsync = promisify(execFile);
const BUILD_TIMEOUT_MS = 30 * 60 * 1000;

type Stanza = Record<string, string>;

/** Parses Debian control-file paragraphs (Packages, dpkg status). */
function parseStanzas(text: string): Stanza[] {
  return text
    .split(/\n\s*\n/)
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const stanza: Stanza = {};
      let key = "";
      for (const line of block.split("\n")) {
        if (/^\s/.test(line) && key) stanza[key] += "\n" + line;
        else {
          const colon = line.indexOf(":");
          key = line.slice(0, colon);
          stanza[key] = line.slice(colon + 1).trim();
        }
      }
      return stanza;
    });
}

/** Names of packages (and virtual packages they provide) in a list of stanzas. */
function providedNames(stanzas: Stanza[], onlyInstalled: boolean): Set<string> {
  const names = new Set<string>();
  for (const s of stanzas) {
    if (onlyInstalled && !/install ok installed/.test(s.Status ?? "")) continue;
    names.add(s.Package);
    for (const p of (s.Provides ?? "").split(",")) if (p.trim()) names.add(p.trim().split(/[\s(]/)[0]);
  }
  return names;
}

/** Dependency alternatives of a stanza's Depends and Pre-Depends: [["a"], ["b", "c"]] for "a, b | c". */
function dependencies(stanza: Stanza): string[][] {
  return [stanza.Depends, stanza["Pre-Depends"]]
    .filter((field): field is string => !!field)
    .flatMap((field) => field.split(","))
    .map((group) => group.split("|").map((alt) => alt.trim().split(/[\s(:]/)[0]));
}

function get(url: string, method = "GET"): Promise<{ status: number; body: string; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), length: Number(res.headers["content-length"]) }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

function tarList(tarball: string): string[] {
  return execFileSync("tar", ["-tzf", tarball], { maxBuffer: 64 * 1024 * 1024 }).toString("utf8").split("\n");
}

function tarCat(tarball: string, member: string): string {
  return execFileSync("tar", ["-xzOf", tarball, member], { maxBuffer: 64 * 1024 * 1024 }).toString("utf8");
}

describe("lab images", () => {
  let images: LabImages;
  let secondCallLog: string[];
  let beforeSecondCall: string[];
  let afterSecondCall: string[];
  // A rebuild renames a fresh entry into place, so it shows as new inodes or mtimes on the products.
  const stamps = (): string[] =>
    [images.rescueKernel, images.rescueInitrd, images.imagesDir, images.mirrorDir].map((p) => {
      const st = fs.statSync(p);
      return `${p} ino=${st.ino} mtime=${st.mtimeMs}`;
    });

  beforeAll(async () => {
    images = await ensureLabImages();
    secondCallLog = [];
    beforeSecondCall = stamps();
    const again = await ensureLabImages({ log: (line) => secondCallLog.push(line) });
    afterSecondCall = stamps();
    expect(again).toEqual(images);
  }, BUILD_TIMEOUT_MS);

  it("is a cache hit the second time: nothing rebuilt, nothing rewritten", () => {
    expect(secondCallLog.filter((line) => /building/.test(line))).toEqual([]);
    expect(secondCallLog.filter((line) => /cached at/.test(line))).toHaveLength(3);
    expect(afterSecondCall).toEqual(beforeSecondCall);
  });

  it("has the rescue kernel and initramfs", () => {
    // A bzImage carries "HdrS" at offset 0x202; an lz4 legacy frame starts with 02 21 4c 18.
    const kernel = fs.readFileSync(images.rescueKernel);
    expect(kernel.subarray(0x202, 0x206).toString("latin1")).toBe("HdrS");
    const initrd = fs.readFileSync(images.rescueInitrd).subarray(0, 4);
    expect(initrd.toString("hex")).toBe("02214c18");
    expect(fs.statSync(images.rescueInitrd).size).toBeGreaterThan(20 * 1024 * 1024);
  });

  describe.each(DEFAULT_SUITES)("the %s OS image", (suite) => {
    let tarball: string;
    let members: string[];
    beforeAll(() => {
      tarball = path.join(images.imagesDir, imageFileName(suite));
      members = tarList(tarball);
    });

    it("is named like Hetzner's images and has a kernel and initramfs in /boot", () => {
      expect(path.basename(tarball)).toBe(`Debian-${suite}-latest-amd64-base.tar.gz`);
      expect(members.some((m) => /^\.\/boot\/vmlinuz-\d/.test(m))).toBe(true);
      expect(members.some((m) => /^\.\/boot\/initrd\.img-\d/.test(m))).toBe(true);
    });

    it("points apt at the lab mirror", () => {
      const lines = tarCat(tarball, "./etc/apt/sources.list").split("\n");
      expect(lines).toContain(`deb [trusted=yes] http://10.0.2.2:40081/debian ${suite} main`);
    });

    it("carries no host keys and no machine-id (installimage makes them per server)", () => {
      expect(members.filter((m) => /^\.\/etc\/ssh\/ssh_host_/.test(m))).toEqual([]);
      expect(members.filter((m) => /^\.\/(etc|var\/lib\/dbus)\/machine-id$/.test(m))).toEqual([]);
    });

    it("has a trimmed module tree: no drivers for hardware a VM cannot have", () => {
      const modules = members.filter((m) => /\/lib\/modules\/.*\.ko(\.xz|\.zst)?$/.test(m));
      expect(modules.some((m) => /\/nvme\.ko/.test(m))).toBe(true);
      expect(modules.some((m) => /\/dm-crypt\.ko/.test(m))).toBe(true);
      expect(modules.filter((m) => /\/drivers\/(net\/wireless|media|gpu\/drm\/(amd|nouveau|i915))\//.test(m))).toEqual([]);
    });
  });

  describe.each(DEFAULT_SUITES)("the local mirror's %s suite", (suite) => {
    let server: MirrorServer;
    let packages: Stanza[];
    let installed: Set<string>;
    beforeAll(async () => {
      server = await startMirrorServer({ dir: images.mirrorDir, port: 0 });
      const index = await get(`${server.url}/debian/dists/${suite}/main/binary-amd64/Packages`);
      expect(index.status).toBe(200);
      packages = parseStanzas(index.body);
      const status = tarCat(path.join(images.imagesDir, imageFileName(suite)), "./var/lib/dpkg/status");
      installed = providedNames(parseStanzas(status), true);
    });
    afterAll(() => server?.close());

    it("lists dropbear-initramfs, and every dependency of it resolves in the mirror or the image", () => {
      const byName = new Map(packages.map((p) => [p.Package, p]));
      const available = new Set([...providedNames(packages, false), ...installed]);
      expect(byName.has("dropbear-initramfs")).toBe(true);
      const unresolved: string[] = [];
      const seen = new Set<string>();
      const queue = ["dropbear-initramfs", "cryptsetup-initramfs", "busybox", "cron", "logrotate"];
      while (queue.length > 0) {
        const name = queue.shift() as string;
        if (seen.has(name)) continue;
        seen.add(name);
        const stanza = byName.get(name);
        if (!stanza) continue; // in the image: its dependencies are installed with it
        for (const alternatives of dependencies(stanza)) {
          const hit = alternatives.find((alt) => available.has(alt));
          if (!hit) unresolved.push(`${name} -> ${alternatives.join(" | ")}`);
          else queue.push(hit);
        }
      }
      expect(unresolved).toEqual([]);
    });

    it("serves every pool file the index names, at the indexed size", async () => {
      for (const p of packages) {
        const head = await get(`${server.url}/debian/${p.Filename}`, "HEAD");
        expect({ file: p.Filename, status: head.status, size: head.length }).toEqual({ file: p.Filename, status: 200, size: Number(p.Size) });
      }
    });

    it("is enough for `apt-get install -y dropbear-initramfs` in the image with no other source", async () => {
      const script = path.resolve(__dirname, "../../../lab/mirror/check-offline-install.sh");
      const tarball = path.join(images.imagesDir, imageFileName(suite));
      // Asynchronous: the mirror server answering apt runs in this very process.
      const { stdout } = await execFileAsync("bash", [script, tarball, `${server.url}/debian`, suite, "dropbear-initramfs"], {
        maxBuffer: 64 * 1024 * 1024,
      });
      expect(stdout).toMatch(/^dropbear-initramfs install ok installed$/m);
    }, 10 * 60 * 1000);

    it("has a Release file whose checksums match the index", async () => {
      const release = await get(`${server.url}/debian/dists/${suite}/Release`);
      const packagesFile = fs.readFileSync(path.join(images.mirrorDir, `debian/dists/${suite}/main/binary-amd64/Packages`));
      const sha = execFileSync("sha256sum", ["-"], { input: packagesFile }).toString().split(" ")[0];
      expect(release.body).toContain(` ${sha} ${packagesFile.length} main/binary-amd64/Packages\n`);
    });
  });
});
