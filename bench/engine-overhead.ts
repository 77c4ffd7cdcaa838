// What the local engine adds per resource operation, against the plain single-resource harness.
//   node dist/bench/engine-overhead.js [runs=3] [n=20]
// Engine: `npm run stack -- up` of the chain fixture with n extra resources, each waiting for the
// one before (so they run one at a time), minus the same run with none: the slope is the cost of one
// registration → Check → Create → state write (first up) or Check → Diff → same → state write
// (second up). Harness: ProviderHarness.up (Check → Create) of n resources one after another.
// Medians of `runs`. A timing here is never a test's pass/fail.
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { ProviderHarness } from "../test/harness/harness";
import { chainFixture, TOKEN } from "../test/engine/support";

const runs = Number(process.argv[2] ?? 3);
const n = Number(process.argv[3] ?? 20);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeUp(extra: number): { first: number; second: number } {
  const f = chainFixture({ extra });
  const time = (): number => {
    const t = process.hrtime.bigint();
    const r = f.run("up");
    if (r.status !== 0) throw new Error(r.out);
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  return { first: time(), second: time() };
}

async function harnessPerOp(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "hfde-bench-"));
  const journal = join(dir, "journal");
  writeFileSync(journal, "");
  const h = await ProviderHarness.start({
    module: "test/engine/fixtures/journaled",
    exportName: "Journaled",
    args: { journal, value: "v", token: TOKEN },
    secretPaths: ["token"],
  });
  try {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await h.up(h.inputs({ value: `v${i}` }), `${h.urn}-${i}`);
    return Number(process.hrtime.bigint() - t) / 1e6 / n;
  } finally {
    await h.stop();
  }
}

async function main(): Promise<void> {
  const engineFirst: number[] = [];
  const engineSecond: number[] = [];
  const harness: number[] = [];
  for (let i = 0; i < runs; i++) {
    const base = timeUp(0);
    const big = timeUp(n);
    engineFirst.push((big.first - base.first) / n);
    engineSecond.push((big.second - base.second) / n);
    harness.push(await harnessPerOp());
    console.log(`run ${i + 1}: engine create ${engineFirst[i].toFixed(1)} ms/resource, engine no-op ${engineSecond[i].toFixed(1)} ms/resource, harness up ${harness[i].toFixed(1)} ms/resource`);
  }
  console.log(`median of ${runs}, n=${n}: engine create ${median(engineFirst).toFixed(1)} ms, engine no-op up ${median(engineSecond).toFixed(1)} ms, harness up (check + create) ${median(harness).toFixed(1)} ms per resource`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
