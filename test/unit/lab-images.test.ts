// Pure parts of the lab image builder and the mirror server: the cache key, the
// missing-tools hint and request-path confinement, plus the server against a temp directory.
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { ensureCacheEntry, missingToolsHint, recipeHash } from "../../lab/images";
import { resolveRequestPath, startMirrorServer } from "../../lab/mirror/server";

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "hfde-images-"));
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString("utf8")));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

describe("recipeHash", () => {
  const dir = tempDir();
  const script = path.join(dir, "build.sh");
  fs.writeFileSync(script, "echo one\n");
  const base = recipeHash([script], { compressor: "lz4" });

  it("is stable for the same recipe", () => {
    expect(recipeHash([script], { compressor: "lz4" })).toBe(base);
  });

  it("changes with a parameter", () => {
    expect(recipeHash([script], { compressor: "zstd" })).not.toBe(base);
  });

  it("changes with the script text", () => {
    const other = path.join(tempDir(), "build.sh");
    fs.writeFileSync(other, "echo two\n");
    expect(recipeHash([other], { compressor: "lz4" })).not.toBe(base);
  });
});

describe("missingToolsHint", () => {
  it("is null when every tool is there", () => {
    expect(missingToolsHint(["debootstrap", "cpio"], () => true)).toBeNull();
  });

  it("names the missing tools and the apt-get line that installs their packages", () => {
    const hint = missingToolsHint(["debootstrap", "cpio", "dpkg-scanpackages", "xz"], (tool) => tool === "cpio");
    expect(hint).toContain("missing host tools debootstrap, dpkg-scanpackages, xz");
    expect(hint).toMatch(/apt-get install -y debootstrap dpkg-dev xz-utils$/);
  });
});

describe("resolveRequestPath", () => {
  const root = "/srv/mirror";
  it.each([
    ["/debian/dists/bookworm/Release", "/srv/mirror/debian/dists/bookworm/Release"],
    ["/debian/pool/bookworm/a%2Bb_1.deb", "/srv/mirror/debian/pool/bookworm/a+b_1.deb"],
    ["/debian/../debian/x?query=1", "/srv/mirror/debian/x"],
    ["/../../etc/passwd", "/srv/mirror/etc/passwd"],
    ["/%2e%2e/%2e%2e/etc/passwd", "/srv/mirror/etc/passwd"],
  ])("maps %s inside the root", (url, expected) => {
    expect(resolveRequestPath(root, url)).toBe(expected);
  });

  it.each([["/bad%zz"], ["/a%00b"]])("refuses %s", (url) => {
    expect(resolveRequestPath(root, url)).toBeNull();
  });
});

describe("startMirrorServer", () => {
  it("serves files below dir and 404s the rest", async () => {
    const dir = tempDir();
    fs.mkdirSync(path.join(dir, "debian/dists/bookworm"), { recursive: true });
    fs.writeFileSync(path.join(dir, "debian/dists/bookworm/Release"), "Suite: bookworm\n");
    const server = await startMirrorServer({ dir, port: 0 });
    try {
      expect(await get(`${server.url}/debian/dists/bookworm/Release`)).toEqual({ status: 200, body: "Suite: bookworm\n" });
      expect((await get(`${server.url}/debian/dists/trixie/Release`)).status).toBe(404);
      expect((await get(`${server.url}/debian/dists`)).status).toBe(404);
    } finally {
      await server.close();
    }
  });

  it("refuses a directory that holds no repository, naming what it expected", async () => {
    await expect(startMirrorServer({ dir: tempDir(), port: 0 })).rejects.toThrow(/holds no apt repository \(expected .*debian\/dists\)/);
  });
});

describe("ensureCacheEntry", () => {
  it("builds a missing entry once, even when asked twice at the same time, and renames it into place", async () => {
    const cache = tempDir();
    let builds = 0;
    const build = async (tmp: string): Promise<void> => {
      builds++;
      fs.writeFileSync(path.join(tmp, "product"), "built");
      await new Promise((resolve) => setTimeout(resolve, 50));
    };
    const [a, b] = await Promise.all([
      ensureCacheEntry(cache, "thing", "abc", () => undefined, build),
      ensureCacheEntry(cache, "thing", "abc", () => undefined, build),
    ]);
    expect(builds).toBe(1);
    expect(a.dir).toBe(path.join(cache, "thing-abc"));
    expect(b.dir).toBe(a.dir);
    expect(fs.readFileSync(path.join(a.dir, "product"), "utf8")).toBe("built");
    expect(fs.readdirSync(cache).sort()).toEqual(["thing-abc"]);
  }, 15_000);

  it("leaves no entry behind when the build fails, and cleans up after a killed build", async () => {
    const cache = tempDir();
    fs.mkdirSync(path.join(cache, ".tmp-thing-abc-999999"));
    fs.writeFileSync(path.join(cache, "thing-abc.lock"), "999999");
    const failing = ensureCacheEntry(cache, "thing", "abc", () => undefined, async () => {
      throw new Error("debootstrap failed");
    });
    await expect(failing).rejects.toThrow("debootstrap failed");
    expect(fs.readdirSync(cache)).toEqual([]);
  });
});
