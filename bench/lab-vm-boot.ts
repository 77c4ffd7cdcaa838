// Lab VM boot timings: Robot `reset hw` → rescue SSH banner, and disk boot of blank disks.
//   npm run build && node dist/bench/lab-vm-boot.js [rounds]      (HFDE_LAB_ACCEL=tcg|tcg-multi to compare)
// Prints one line per measurement and a summary; figures go into bench/lab-vm.md by hand.
import { startLabFixture } from "../test/support/lab";

async function main(rounds: number): Promise<void> {
  const lab = await startLabFixture({ bootServers: false });
  const server = lab.server().number;
  try {
    let started = Date.now();
    await lab.robot.reset(server, "power");
    await lab.supervisor.waitForConsole(server, /No bootable device/, 60_000);
    console.log(`blank-disk boot to "No bootable device": ${Date.now() - started} ms`);
    const rescue: number[] = [];
    for (let i = 0; i < rounds; i++) {
      started = Date.now();
      const login = await lab.bootIntoRescue(server);
      rescue.push(login.bootToSshMs);
      console.log(`rescue round ${i + 1}: reset hw → SSH banner ${login.bootToSshMs} ms (arm+reset+wait ${Date.now() - started} ms)`);
    }
    const sorted = [...rescue].sort((a, b) => a - b);
    console.log(`rescue boot to SSH: median ${sorted[Math.floor(sorted.length / 2)]} ms, min ${sorted[0]} ms, max ${sorted[sorted.length - 1]} ms over ${rounds} (accel ${process.env.HFDE_LAB_ACCEL ?? "tcg"})`);
  } finally {
    await lab.close();
  }
}

main(Number(process.argv[2] ?? 3)).catch((err) => {
  console.error(err);
  process.exit(1);
});
