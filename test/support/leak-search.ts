// Where a lab test looks for secrets beyond logs and state: the argv of every process on a lab
// host while a step runs, and the bytes of the lab server's disks. Shared by the DropbearInitramfs
// lab file and the whole-host e2e; the strings searched for reach grep on stdin, never argv.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { backingFile } from "../../lab/checkpoints/store";
import { sh, ShellCommand } from "../../providers/plumbing/shell";
import { waitFor } from "./wait";

export interface ArgvSampler {
  /** Every sample so far, NUL separators turned into spaces, one sample per line. */
  text(): string;
  close(): void;
}

/**
 * Every process's argv on a lab host, twice a second until the host reboots or the sampler is
 * closed, streamed to this process over the lab's user network (10.0.2.2 is the host): nothing is
 * written to the guest's disk, and the samples outlive the reboot that ends them.
 * `run` executes a command on the host (the caller's SSH session with its pinned key).
 */
export async function sampleArgv(run: (command: ShellCommand) => Promise<unknown>): Promise<ArgvSampler> {
  const chunks: Buffer[] = [];
  const server = net.createServer((socket) => socket.on("data", (chunk: Buffer) => chunks.push(chunk)));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  const loop = `exec 3<>/dev/tcp/10.0.2.2/${port} || exit 1; while :; do cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\000' ' '; echo; sleep 0.5; done >&3`;
  await run(sh`setsid bash -c ${loop} </dev/null >/dev/null 2>&1 & echo started`);
  await waitFor(() => chunks.length > 0, { what: "the first argv sample", timeoutMs: 60_000, intervalMs: 500 });
  return { text: () => Buffer.concat(chunks).toString("latin1"), close: () => void (server.listening && server.close()) };
}

/** The server's disk images and every backing file beneath them (the checkpoint store's header reader). */
export function diskImageChain(serverDir: string): string[] {
  return fs.readdirSync(serverDir).filter((f) => /^disk\d+\.qcow2$/.test(f)).flatMap((f) => {
    const chain: string[] = [];
    for (let image: string | undefined = path.join(serverDir, f); image; image = backingFile(image)) chain.push(image);
    return chain;
  });
}

/**
 * The images of `serverDir` (each disk as the guest sees it, converted to a sparse raw file in the
 * temp directory, plus every qcow2 file of its chain: an overlay and a checkpoint's base keep
 * clusters the guest overwrote) that hold any of `secrets`. The raw copies are removed afterwards.
 */
export function diskImagesHolding(serverDir: string, secrets: readonly string[]): { holding: string[]; searched: string[] } {
  const chain = diskImageChain(serverDir);
  const raw = rawCopies(serverDir);
  try {
    return { holding: imagesHolding([...raw, ...chain], secrets), searched: [...raw, ...chain] };
  } finally {
    for (const f of raw) fs.rmSync(path.dirname(f), { recursive: true, force: true });
  }
}

/** Each disk as the guest sees it, as a sparse raw file in the temp directory (the caller removes them). */
function rawCopies(serverDir: string): string[] {
  const copies: string[] = [];
  try {
    for (const f of fs.readdirSync(serverDir).filter((name) => /^disk\d+\.qcow2$/.test(name))) {
      const raw = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "hfde-raw-")), f.replace(/qcow2$/, "raw"));
      copies.push(raw);
      const r = spawnSync("qemu-img", ["convert", "-U", "-O", "raw", path.join(serverDir, f), raw], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`qemu-img convert ${f} into ${os.tmpdir()}: ${r.stderr}(each disk needs up to its full size there)`);
    }
    return copies;
  } catch (error) {
    for (const f of copies) fs.rmSync(path.dirname(f), { recursive: true, force: true });
    throw error;
  }
}

/** Files whose raw bytes contain any of the strings. */
function imagesHolding(images: string[], secrets: readonly string[]): string[] {
  const r = spawnSync("grep", ["-l", "-a", "-F", "-f", "-", ...images], { input: secrets.join("\n") + "\n", encoding: "utf8", maxBuffer: 1 << 20 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`grep over the disk images: ${r.stderr}`);
  return r.stdout.split("\n").filter(Boolean);
}

/**
 * Base64 lines of an OpenSSH private key that carry private bytes: the first three hold the format
 * header and the public key (the same in every key, or public), so they would prove nothing.
 */
export function privateKeyLines(privateKey: string): string[] {
  const body = privateKey.split("\n").filter((l) => l.length > 0 && !l.startsWith("-----"));
  return body.slice(3).filter((l) => l.length >= 40);
}

/**
 * A shell command that searches the running kernel's initrd and root's shell history for the
 * secrets on its stdin (one per line) and prints "checked" and nothing else when none is there.
 */
export const SEARCH_INITRD_AND_HISTORY: ShellCommand = sh`d=$(mktemp -d) && unmkinitramfs /boot/initrd.img-$(uname -r) $d && (grep -r -l -a -F -f - $d /root/.bash_history 2>/dev/null || true); rm -rf $d; echo checked`;
