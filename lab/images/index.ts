// Builds (or finds in the cache) everything the lab's VMs boot and install: the rescue system's
// kernel + initramfs, the OS image tarballs installimage extracts, and the local Debian mirror
// the installed systems' apt talks to. The chroot work is plain bash under lab/images/; this
// module decides what is stale, runs the scripts and moves finished builds into the cache.
//
// Cache layout (outside the repo, `${HFDE_CACHE_DIR:-~/.cache/hetzner-fde}`):
//   debs/<suite>/            downloaded .debs, shared by all builds (immutable by file name)
//   rescue-<hash>/           vmlinuz, initrd.img, kernel-version
//   images-<hash>/           Debian-<suite>-latest-amd64-base.tar.gz
//   mirror-<hash>/debian/    dists/<suite>/..., pool/<suite>/... (serve mirror-<hash>/ at "/")
// <hash> covers the recipe: script text, package and module lists, rescue files, parameters.
// A build writes into `.tmp-*` and is renamed into place only when complete, so a killed build
// never leaves an entry that looks finished.

import { spawn } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { debianPackageOf, isAvailable } from "../prereqs";

export interface LabImages {
  /** Rescue kernel (bzImage), booted with `-kernel`. */
  rescueKernel: string;
  /** Rescue initramfs: the whole rescue root filesystem, unpacked into RAM. */
  rescueInitrd: string;
  /** Holds `Debian-bookworm-latest-amd64-base.tar.gz` (+ trixie when built); exported as hfde_images. */
  imagesDir: string;
  /** Directory to serve at the mirror server's root: the apt repository is its `debian/`. */
  mirrorDir: string;
  /** Recipe hash per cache entry: rescue, images, mirror. */
  recipeHashes: Record<string, string>;
}

export type DebianSuite = "bookworm" | "trixie";
export type InitrdCompressor = "lz4" | "zstd" | "gzip" | "xz";

export const DEFAULT_SUITES: readonly DebianSuite[] = ["bookworm", "trixie"];

export interface EnsureLabImagesOptions {
  /** Cache root; default `$HFDE_CACHE_DIR` or `~/.cache/hetzner-fde`. */
  cacheDir?: string;
  /** OS image suites to build; default bookworm and trixie. */
  suites?: readonly DebianSuite[];
  /** Initramfs compressor of the rescue; lz4 boots fastest under emulation (bench/lab-images.md). */
  compressor?: InitrdCompressor;
  /** Progress lines; default stderr. */
  log?: (line: string) => void;
}

const IMAGES_SRC = __dirname.includes(`${path.sep}dist${path.sep}`)
  ? path.resolve(__dirname, "../../../lab/images")
  : __dirname;
const RESCUE_SRC = path.resolve(IMAGES_SRC, "../rescue");


export function defaultCacheDir(): string {
  return process.env.HFDE_CACHE_DIR || path.join(os.homedir(), ".cache", "hetzner-fde");
}

export function imageFileName(suite: DebianSuite): string {
  return `Debian-${suite}-latest-amd64-base.tar.gz`;
}

/** Hash of the named recipe files plus parameters; 16 hex digits are plenty for a cache key. */
export function recipeHash(files: readonly string[], params: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const file of [...files].sort()) {
    hash.update(`file ${path.basename(path.dirname(file))}/${path.basename(file)}\n`);
    hash.update(fs.readFileSync(file));
  }
  for (const key of Object.keys(params).sort()) hash.update(`param ${key}=${params[key]}\n`);
  return hash.digest("hex").slice(0, 16);
}

/** Which host tools are missing, as the `apt-get install` line that fixes it (or null). */
export function missingToolsHint(tools: readonly string[], isAvailable: (tool: string) => boolean): string | null {
  const missing = tools.filter((tool) => !isAvailable(tool));
  if (missing.length === 0) return null;
  // The packages come from lab/host-tools.txt, the list scripts/setup.sh installs.
  const packages = [...new Set(missing.map((tool) => debianPackageOf(tool) ?? tool))].sort();
  return `lab images: missing host tools ${missing.join(", ")}. Install them with: apt-get install -y ${packages.join(" ")}`;
}

function recipeFiles(dir: string, names: readonly string[]): string[] {
  return names.map((name) => path.join(dir, name));
}

function rescueRecipe(compressor: InitrdCompressor): { files: string[]; params: Record<string, string> } {
  const rescueFiles = fs.readdirSync(RESCUE_SRC).map((name) => path.join(RESCUE_SRC, name));
  return {
    files: [...recipeFiles(IMAGES_SRC, ["lib.sh", "build-rescue.sh", "rescue-packages.txt", "modules-rescue.txt"]), ...rescueFiles],
    params: { compressor },
  };
}

function imagesRecipe(suites: readonly DebianSuite[]): { files: string[]; params: Record<string, string> } {
  return {
    files: recipeFiles(IMAGES_SRC, ["lib.sh", "build-os-image.sh", "os-packages.txt", "modules-os.txt"]),
    params: { suites: suites.join(",") },
  };
}

function mirrorRecipe(imagesHash: string): { files: string[]; params: Record<string, string> } {
  const mirrorSrc = path.resolve(IMAGES_SRC, "../mirror");
  return {
    files: [...recipeFiles(IMAGES_SRC, ["lib.sh"]), ...recipeFiles(mirrorSrc, ["build-mirror.sh", "mirror-packages.txt"])],
    params: { images: imagesHash },
  };
}

/** Unmount whatever a killed build left mounted below `dir`, then delete it without crossing filesystems. */
async function removeBuildDir(dir: string): Promise<void> {
  if (!fs.existsSync(dir)) return;
  const mounts = fs
    .readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[1]?.replace(/\\040/g, " "))
    .filter((mnt): mnt is string => !!mnt && (mnt === dir || mnt.startsWith(dir + "/")))
    .sort()
    .reverse();
  for (const mnt of mounts) await run("umount", ["-l", mnt], () => undefined);
  // --one-file-system: never descend into a bind mount (a chroot's /dev) that survived.
  await run("rm", ["-rf", "--one-file-system", dir], () => undefined);
}

/** Runs a command, forwarding its stderr/stdout lines to `log`; rejects with the output's tail. */
function run(cmd: string, args: readonly string[], log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    const onData = (chunk: Buffer): void => {
      for (const line of chunk.toString("utf8").split("\n")) {
        if (line.trim() === "") continue;
        log(line);
        tail.push(line);
        if (tail.length > 30) tail.shift();
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve();
      else reject(new Error(`${cmd} ${args.join(" ")} exited with ${code}; last output:\n${tail.join("\n")}`));
    });
  });
}

export interface CacheEntry {
  readonly name: string;
  readonly hash: string;
  readonly dir: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `<entry>.lock` (holding our pid), waiting while a live process holds it: two processes
 * asking for the same missing entry (a test run and `lab up`) build it once, not twice. A lock
 * left by a dead process is taken over.
 */
async function acquireEntryLock(lockPath: string, log: (line: string) => void): Promise<() => void> {
  let announced = false;
  for (;;) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: "wx" });
      return () => fs.rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let content: string;
    try {
      content = fs.readFileSync(lockPath, "utf8").trim();
    } catch {
      continue; // released between our attempt and the read
    }
    const holder = Number(content);
    // An empty lock is one being written right now; only a dead holder's lock is taken over.
    if (content !== "" && (!Number.isInteger(holder) || holder <= 0 || !processAlive(holder))) {
      fs.rmSync(lockPath, { force: true });
      continue;
    }
    if (!announced) log(`waiting for process ${holder}, which is building ${path.basename(lockPath, ".lock")}`);
    announced = true;
    await sleep(2000);
  }
}

/**
 * Returns the cache entry `<name>-<hash>`, building it first when absent. `build` fills a
 * temporary directory that is renamed into place only when it succeeds.
 */
export async function ensureCacheEntry(
  cache: string,
  name: string,
  hash: string,
  log: (line: string) => void,
  build: (tmpDir: string) => Promise<void>,
): Promise<CacheEntry> {
  const dir = path.join(cache, `${name}-${hash}`);
  if (fs.existsSync(dir)) {
    log(`${name}: cached at ${dir}`);
    return { name, hash, dir };
  }
  const release = await acquireEntryLock(`${dir}.lock`, log);
  try {
    if (fs.existsSync(dir)) {
      log(`${name}: built by another process, cached at ${dir}`);
      return { name, hash, dir };
    }
    // Holding the lock, any other temp dir of this entry was left by a killed build.
    for (const stale of fs.readdirSync(cache).filter((f) => f.startsWith(`.tmp-${name}-${hash}-`))) {
      await removeBuildDir(path.join(cache, stale));
    }
    const tmp = path.join(cache, `.tmp-${name}-${hash}-${process.pid}`);
    fs.mkdirSync(tmp, { recursive: true });
    const started = Date.now();
    log(`${name}: building (recipe ${hash})`);
    try {
      await build(tmp);
      fs.renameSync(tmp, dir);
    } finally {
      await removeBuildDir(tmp);
    }
    log(`${name}: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    return { name, hash, dir };
  } finally {
    release();
  }
}

function assertCanBuild(compressor: InitrdCompressor): void {
  if (typeof process.getuid === "function" && process.getuid() !== 0) {
    throw new Error("lab images: building needs root (debootstrap, chroot, mount). Run as root, or point HFDE_CACHE_DIR at a cache that is already built.");
  }
  const tools = ["debootstrap", "flock", "cpio", "dpkg-deb", "dpkg-scanpackages", "depmod", "gzip", "chroot", "mount", compressor];
  const hint = missingToolsHint(tools, (tool) => isAvailable(tool));
  if (hint) throw new Error(hint);
}

interface BuildContext {
  readonly cache: string;
  readonly log: (line: string) => void;
}

function buildContext(opts: EnsureLabImagesOptions): BuildContext {
  const started = Date.now();
  const sink = opts.log ?? ((line: string) => process.stderr.write(line + "\n"));
  return {
    cache: opts.cacheDir ?? defaultCacheDir(),
    log: (line) => sink(`[lab-images +${((Date.now() - started) / 1000).toFixed(0)}s] ${line}`),
  };
}

function prepareToBuild(ctx: BuildContext, entries: Record<string, string>, compressor: InitrdCompressor): void {
  const missing = Object.entries(entries).filter(([name, hash]) => !fs.existsSync(path.join(ctx.cache, `${name}-${hash}`)));
  if (missing.length === 0) return;
  assertCanBuild(compressor);
  fs.mkdirSync(ctx.cache, { recursive: true });
}

const debsDir = (ctx: BuildContext, suite: DebianSuite): string => path.join(ctx.cache, "debs", suite);
const script = (name: string): string => path.join(IMAGES_SRC, name);

/**
 * Runs a build script holding the cache's build lock: concurrent builds (two test runs, a test
 * and `lab up`) share the .deb cache, and apt fails at once on its lock instead of waiting.
 */
function runBuildScript(ctx: BuildContext, scriptPath: string, args: readonly string[]): Promise<void> {
  return run("flock", [path.join(ctx.cache, ".build.lock"), "bash", scriptPath, ...args], ctx.log);
}

/** The rescue kernel and initramfs alone (what a rescue boot needs), built when missing. */
export async function ensureRescue(opts: EnsureLabImagesOptions = {}): Promise<RescueFiles> {
  return ensureRescueIn(buildContext(opts), opts.compressor ?? "lz4");
}

export interface RescueFiles {
  kernel: string;
  initrd: string;
  hash: string;
}

async function ensureRescueIn(ctx: BuildContext, compressor: InitrdCompressor): Promise<RescueFiles> {
  const recipe = rescueRecipe(compressor);
  const hash = recipeHash(recipe.files, recipe.params);
  prepareToBuild(ctx, { rescue: hash }, compressor);
  const entry = await ensureCacheEntry(ctx.cache, "rescue", hash, ctx.log, (tmp) =>
    runBuildScript(ctx, script("build-rescue.sh"), [tmp, debsDir(ctx, "bookworm"), compressor]),
  );
  return { kernel: path.join(entry.dir, "vmlinuz"), initrd: path.join(entry.dir, "initrd.img"), hash };
}

/** Builds whatever of the rescue, OS images and mirror is missing from the cache; a no-op when all are cached. */
export async function ensureLabImages(opts: EnsureLabImagesOptions = {}): Promise<LabImages> {
  const ctx = buildContext(opts);
  const suites = opts.suites ?? DEFAULT_SUITES;
  const compressor = opts.compressor ?? "lz4";
  const imagesRec = imagesRecipe(suites);
  const imagesHash = recipeHash(imagesRec.files, imagesRec.params);
  const mirrorRec = mirrorRecipe(imagesHash);
  const mirrorHash = recipeHash(mirrorRec.files, mirrorRec.params);
  const rescueRec = rescueRecipe(compressor);
  prepareToBuild(ctx, { rescue: recipeHash(rescueRec.files, rescueRec.params), images: imagesHash, mirror: mirrorHash }, compressor);

  const rescue = await ensureRescueIn(ctx, compressor);
  const images = await ensureCacheEntry(ctx.cache, "images", imagesHash, ctx.log, async (tmp) => {
    for (const suite of suites) {
      await runBuildScript(ctx, script("build-os-image.sh"), [suite, path.join(tmp, imageFileName(suite)), debsDir(ctx, suite)]);
    }
  });
  const mirror = await ensureCacheEntry(ctx.cache, "mirror", mirrorHash, ctx.log, async (tmp) => {
    const builder = path.resolve(IMAGES_SRC, "../mirror/build-mirror.sh");
    for (const suite of suites) {
      const tarball = path.join(images.dir, imageFileName(suite));
      await runBuildScript(ctx, builder, [path.join(tmp, "debian"), suite, tarball, debsDir(ctx, suite)]);
    }
  });

  ctx.log("ready");
  return {
    rescueKernel: rescue.kernel,
    rescueInitrd: rescue.initrd,
    imagesDir: images.dir,
    mirrorDir: mirror.dir,
    recipeHashes: { rescue: rescue.hash, images: imagesHash, mirror: mirrorHash },
  };
}
