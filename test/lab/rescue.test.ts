// Robot-to-rescue, end to end: Robot API over HTTP (the project's client) → emulator → QEMU
// supervisor → rescue system → SSH with the host key pinned to what Robot reported. Then the
// rescue's one-shot nature: a guest reboot boots the (blank) disks. Then the degraded-boot drill's
// lab side (issue 14 §7): a drive pulled out of the chassis is gone from the next boot, and the
// one left keeps its serial while its device name renumbers.
// One booted lab is shared by the steps of this file: each step depends on the previous boot,
// which is what a real operator sees too.
import { nvmeSerial } from "../../lab/supervisor/qemu-args";
import { sh } from "../../providers/plumbing/shell";
import { RescueLogin, LabFixture, startLabFixture } from "../support/lab";
import { waitFor } from "../support/wait";

jest.setTimeout(600_000);

describe("lab: Robot to rescue", () => {
  let lab: LabFixture;
  let server: number;
  let login: RescueLogin;

  beforeAll(async () => {
    lab = await startLabFixture();
    server = lab.server().number;
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("arms rescue with a stored key, resets hw, and the rescue's sshd answers", async () => {
    login = await lab.bootIntoRescue(server);
    expect(login.hostKeyFingerprints).toHaveLength(1);
    expect(login.hostKeyFingerprints[0]).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    const history = lab.supervisor.bootHistory(server);
    expect(history.map((b) => b.mode)).toEqual(["disk", "rescue"]);
    // The arm was consumed by this boot: Robot shows rescue inactive again.
    expect((await lab.robot.getRescue(server)).active).toBe(false);
    process.stdout.write(`rescue boot to SSH banner: ${login.bootToSshMs} ms\n`);
  });

  it("logs in with the armed key, the host key verified against Robot's host_key", async () => {
    await lab.withRescue(
      server,
      async (session) => {
        expect(session.observedHostKey.fingerprint).toBe(login.hostKeyFingerprints[0]);
        const hostname = await session.exec(sh`hostname`);
        expect(hostname.stdout.trim()).toBe("rescue");
        const installimage = await session.exec(sh`test -x /root/.oldroot/nfs/install/installimage && echo present`);
        expect(installimage.stdout.trim()).toBe("present");
        const disks = await session.exec(sh`ls /dev/nvme0n1 /dev/nvme1n1`);
        expect(disks.stdout.trim().split("\n")).toEqual(["/dev/nvme0n1", "/dev/nvme1n1"]);
        // One command in flight per queue (lab/supervisor/qemu-args.ts LAB_NVME_KERNEL_ARGS), taken by the driver.
        const nvme = await session.exec(sh`cat /sys/module/nvme/parameters/io_queue_depth`);
        expect(nvme.stdout.trim()).toBe("2");
        const images = await session.exec(sh`ls /root/.oldroot/nfs/images/`);
        expect(images.stdout).toMatch(/Debian-bookworm-latest-amd64-base\.tar\.gz/);
      },
      login,
    );
  });

  it("refuses a rescue whose host key is not the one Robot reported", async () => {
    const wrong = { ...login, hostKeyFingerprints: ["SHA256:" + "A".repeat(43)] };
    await expect(lab.withRescue(server, async () => undefined, wrong)).rejects.toThrow(/host key mismatch/);
  });

  it("is one-shot: a reboot in the guest boots the disks, which on blank disks find nothing", async () => {
    await lab.withRescue(server, (session) => session.exec(sh`reboot`), login);
    await lab.supervisor.waitForConsole(server, /No bootable device/, 120_000);
    const history = lab.supervisor.bootHistory(server);
    expect(history.map((b) => b.mode)).toEqual(["disk", "rescue", "disk"]);
    // The rescue boot ended because the guest reset itself, not because of us.
    expect(history[1].exit?.shutdownReason).toBe("guest-reset");
    expect(history[2].failure?.reason).toMatch(/no bootable device/);
    expect(lab.supervisor.consoleTail(server, 5)).toMatch(/No bootable device/);
    expect(await lab.supervisor.state(server)).toBe("running");
  });

  it("boots without a pulled drive, the other keeping its serial, and with it again once it is inserted and the server reset", async () => {
    const started = Date.now();
    const nvmeSerials = (current: RescueLogin) =>
      lab.withRescue(
        server,
        async (session) => (await session.exec(sh`lsblk -dno NAME,SERIAL`)).stdout.split("\n").map((line) => line.trim().split(/\s+/)).filter(([name]) => name?.startsWith("nvme")),
        current,
      );
    expect(lab.pullDrive(server, 0)).toEqual([0]);
    // Pulled in a running server: the running boot still has it, as a chassis would until power-off.
    expect(lab.supervisor.currentBoot(server)?.pulledDrives).toEqual([]);
    const degraded = await lab.bootIntoRescue(server);
    expect(lab.supervisor.currentBoot(server)?.pulledDrives).toEqual([0]);
    // The guest names the one drive left nvme0n1: names renumber, the serial says which drive it is.
    expect(await nvmeSerials(degraded)).toEqual([["nvme0n1", nvmeSerial(server, 1)]]);

    expect(lab.insertDrive(server, 0)).toEqual([]);
    const whole = await lab.bootIntoRescue(server);
    expect(lab.supervisor.currentBoot(server)?.pulledDrives).toEqual([]);
    // Which controller probes first is the guest kernel's business; the drill only needs both back.
    expect((await nvmeSerials(whole)).map(([, serial]) => serial).sort()).toEqual([nvmeSerial(server, 0), nvmeSerial(server, 1)]);
    process.stdout.write(`pulled-drive drill (two rescue boots): ${Date.now() - started} ms (boot to SSH ${degraded.bootToSshMs} + ${whole.bootToSshMs} ms)\n`);
  });

  it("power on a running server presses the power button: the rescue shuts down and the server stays off", async () => {
    await lab.bootIntoRescue(server);
    await lab.robot.reset(server, "power");
    await waitFor(async () => (await lab.supervisor.state(server)) === "off", { what: `server ${server} to power off`, timeoutMs: 120_000, intervalMs: 500 });
    const history = lab.supervisor.bootHistory(server);
    expect(history[history.length - 1].mode).toBe("rescue");
    expect(history[history.length - 1].exit?.shutdownReason).toBe("guest-shutdown");
  });
});
