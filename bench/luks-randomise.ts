// Disk randomisation throughput on a lab server in rescue, on one partition of the first NVMe disk:
//   1. raw sequential write: dd zeros straight to the partition (the ceiling);
//   2. LuksVolume's random-fast: the provider's own job command (zeros through a plain dm-crypt
//      mapping keyed from /dev/urandom), followed to the end as the randomise step does;
//   3. the source document's method: dd from /dev/urandom;
//   4. raw again, to see whether the disk's speed drifted during the run;
//   5. random-fast with Adiantum instead of AES-XTS (faster where AES is emulated, as under TCG).
// All with bs=4M oflag=direct, each to the end of the partition.
//   npm run build && node dist/bench/luks-randomise.js [GiB=2]
// Prints one line per method and the ratios; figures go into bench/luks-volume.md by hand.
import { randomiseStartCommand } from "../providers/luks-volume";
import { sh } from "../providers/plumbing/shell";
import { SshSession } from "../providers/plumbing/ssh";
import { inLabRescue } from "./lab-rescue";

const DEVICE = "/dev/nvme0n1p1";
const JOB = "/run/hetzner-fde/randomise-bench";

interface Run {
  readonly method: string;
  readonly bytes: number;
  readonly seconds: number;
}

async function ddRun(session: SshSession, method: string, source: string): Promise<Run> {
  const started = Date.now();
  const result = await session.exec(sh`dd if=${source} of=${DEVICE} bs=4M oflag=direct 2>&1; sync`, { okExitCodes: [0, 1], timeoutMs: 3_600_000 });
  return { method, bytes: bytesWritten(result.stdout), seconds: (Date.now() - started) / 1000 };
}

async function randomFastRun(session: SshSession, sizeBytes: number, cipher = "aes-xts-plain64", keyBytes = 64): Promise<Run> {
  const started = Date.now();
  await session.exec(randomiseStartCommand({ device: DEVICE, disks: [], method: "random-fast", mayHoldData: true }, JOB, { cipher, keyBytes }));
  for (;;) {
    const rc = (await session.exec(sh`cat ${JOB}/rc 2>/dev/null || true`)).stdout.trim();
    if (rc !== "") {
      if (rc !== "0") throw new Error(`random-fast job failed with exit ${rc}`);
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const progress = (await session.exec(sh`tr '\\r' '\\n' < ${JOB}/progress | grep copied | tail -n1`)).stdout;
  return { method: `random-fast (plain dm-crypt ${cipher}, zeros)`, bytes: bytesWritten(progress) || sizeBytes, seconds: (Date.now() - started) / 1000 };
}

function bytesWritten(ddOutput: string): number {
  const matches = [...ddOutput.matchAll(/^(\d+) bytes/gm)];
  return matches.length > 0 ? Number(matches[matches.length - 1][1]) : 0;
}

const mbps = (run: Run): number => run.bytes / run.seconds / 1e6;

async function main(gib: number): Promise<void> {
  await inLabRescue({ images: "rescue" }, async (session) => {
    await session.exec(sh`printf 'label: gpt\nsize=${gib}GiB\n' | sfdisk -q /dev/nvme0n1 && udevadm settle`);
    const size = Number((await session.exec(sh`blockdev --getsize64 ${DEVICE}`)).stdout.trim());
    const cpu = (await session.exec(sh`grep -m1 -o -w aes /proc/cpuinfo || echo no-aes; nproc`)).stdout.trim().replace(/\n/g, ", cpus ");
    console.log(`partition ${DEVICE}: ${size} bytes; guest CPU flags: ${cpu}; accel ${process.env.HFDE_LAB_ACCEL ?? "tcg"}`);
    const runs: Run[] = [];
    runs.push(await ddRun(session, "raw zeros (dd, the ceiling)", "/dev/zero"));
    runs.push(await randomFastRun(session, size));
    runs.push(await ddRun(session, "dd if=/dev/urandom (the source's method)", "/dev/urandom"));
    runs.push(await ddRun(session, "raw zeros again (drift check)", "/dev/zero"));
    runs.push(await randomFastRun(session, size, "xchacha12,aes-adiantum-plain64", 32));
    for (const run of runs) console.log(`${run.method}: ${run.bytes} bytes in ${run.seconds.toFixed(1)} s = ${mbps(run).toFixed(1)} MB/s`);
    const raw = (mbps(runs[0]) + mbps(runs[3])) / 2;
    console.log(`random-fast / raw = ${((mbps(runs[1]) / raw) * 100).toFixed(0)}% (adiantum: ${((mbps(runs[4]) / raw) * 100).toFixed(0)}%); urandom / raw = ${((mbps(runs[2]) / raw) * 100).toFixed(0)}%; random-fast / urandom = ${(mbps(runs[1]) / mbps(runs[2])).toFixed(1)}x`);
  });
}

main(Number(process.argv[2] ?? 2)).catch((err) => {
  console.error(err);
  process.exit(1);
});
