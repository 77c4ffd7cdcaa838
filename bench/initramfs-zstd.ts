// What the initramfs's zstd level costs under emulation, measured where the builds run: in the lab
// rescue, on the cpio of the bookworm OS image's own initrd. The lab OS images build with
// COMPRESSLEVEL=1 (lab/images/build-os-image.sh); initramfs-tools' default is 9. Levels 9 and 1
// alternate, so a drift of the machine's speed hits both alike.
//   npm run build && node dist/bench/initramfs-zstd.js [rounds=3]
// Prints one line per run, then medians and their ratio; figures go into bench/RESULTS.md by hand.
import { IMAGES_DIR } from "../providers/install-image/types";
import { sh } from "../providers/plumbing/shell";
import { inLabRescue } from "./lab-rescue";

const IMAGE = `${IMAGES_DIR}/Debian-bookworm-latest-amd64-base.tar.gz`;
const WORK = "/root/initramfs-zstd";
const LEVELS = [9, 1] as const;

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(rounds: number): Promise<void> {
  // With the OS images, which rescue sees under IMAGES_DIR.
  await inLabRescue({}, async (session) => {
    const prepared = await session.exec(sh`set -e; mkdir -p ${WORK}; cd ${WORK}
tar -xzf ${IMAGE} --wildcards './boot/initrd.img-*'
zstd -q -d -c boot/initrd.img-* > initrd.cpio
echo "$(basename boot/initrd.img-*) $(stat -c %s initrd.cpio) $(nproc)"`, { timeoutMs: 1_200_000 });
    const [initrd, cpioBytes, cpus] = prepared.stdout.trim().split(" ");
    console.log(`${initrd}: cpio ${(Number(cpioBytes) / 1e6).toFixed(1)} MB; guest cpus ${cpus}; accel ${process.env.HFDE_LAB_ACCEL ?? "tcg"}`);
    const seconds = new Map<number, number[]>(LEVELS.map((level) => [level, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const level of LEVELS) {
        // The same command line mkinitramfs runs for COMPRESSLEVEL=<level>.
        const started = Date.now();
        const out = await session.exec(sh`zstd -q -${String(level)} -T0 -c ${WORK}/initrd.cpio | wc -c`, { timeoutMs: 1_200_000 });
        const took = (Date.now() - started) / 1000;
        seconds.get(level)!.push(took);
        console.log(`round ${round}: zstd -${level}: ${took.toFixed(1)} s, ${(Number(out.stdout.trim()) / 1e6).toFixed(1)} MB`);
      }
    }
    const [nine, one] = LEVELS.map((level) => median(seconds.get(level)!));
    console.log(`median zstd -9 ${nine.toFixed(1)} s, zstd -1 ${one.toFixed(1)} s: ${(nine - one).toFixed(1)} s saved per build, ${(nine / one).toFixed(1)}x`);
    await session.exec(sh`rm -rf ${WORK}`);
  });
}

main(Number(process.argv[2] ?? 3)).catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
