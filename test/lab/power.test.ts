// Robot power resets acting on a real QEMU server. No rescue image needed: the server's blank
// disks make each boot visible on the console ("No bootable device.").
import { LabFixture, startLabFixture } from "../support/lab";
import { waitFor } from "../support/wait";

jest.setTimeout(120_000);

describe("lab power (Robot reset types on a QEMU server)", () => {
  let lab: LabFixture;
  let server: number;

  beforeAll(async () => {
    lab = await startLabFixture({ images: false, server: { memoryMiB: 512 } });
    server = lab.server().number;
  });
  afterAll(async () => {
    await lab?.close();
  });

  it("delivers the server running from its blank disks, which have no bootloader", async () => {
    expect(await lab.supervisor.state(server)).toBe("running");
    await lab.supervisor.waitForConsole(server, /No bootable device/, 60_000);
    expect(lab.supervisor.bootHistory(server).map((b) => b.mode)).toEqual(["disk"]);
  });

  it("power_long forces the server off and it stays off", async () => {
    const boots = lab.supervisor.bootHistory(server).length;
    await lab.robot.reset(server, "power_long");
    expect(await lab.supervisor.state(server)).toBe("off");
    // Staying off is the supervisor's decision on the exit: a Robot-requested stop ends the boot
    // and queues nothing (a restart would be a new boot record, and the state would read running).
    await waitFor(() => lab.supervisor.bootHistory(server)[boots - 1].endedAt, { what: `boot ${boots} of server ${server} recorded as ended`, timeoutMs: 60_000 });
    expect(await lab.supervisor.state(server)).toBe("off");
    expect(lab.supervisor.bootHistory(server)).toHaveLength(boots);
    expect(lab.supervisor.bootHistory(server)[boots - 1].exit?.shutdownReason).toBe("host-qmp-quit");
  });

  it("hw reset on a server that is off leaves it off", async () => {
    const boots = lab.supervisor.bootHistory(server).length;
    await lab.robot.reset(server, "hw");
    expect(await lab.supervisor.state(server)).toBe("off");
    expect(lab.supervisor.bootHistory(server)).toHaveLength(boots);
  });

  it("power turns it on again, booting from disk", async () => {
    const boots = lab.supervisor.bootHistory(server).length;
    await lab.robot.reset(server, "power");
    expect(await lab.supervisor.state(server)).toBe("running");
    await lab.supervisor.waitForConsole(server, /No bootable device/, 60_000);
    const history = lab.supervisor.bootHistory(server);
    expect(history).toHaveLength(boots + 1);
    expect(history[boots].mode).toBe("disk");
    expect(history[boots].failure?.reason).toMatch(/no bootable device/);
  });

  it("hw reset on a running server restarts it into a new boot with its own console file", async () => {
    const before = lab.supervisor.bootHistory(server);
    await lab.robot.reset(server, "hw");
    const after = lab.supervisor.bootHistory(server);
    expect(after).toHaveLength(before.length + 1);
    expect(after[after.length - 1].consoleLog).toMatch(new RegExp(`console-${after[after.length - 1].bootNo}-disk\\.log$`));
    expect(after[after.length - 1].consoleLog).not.toBe(before[before.length - 1].consoleLog);
    await lab.supervisor.waitForConsole(server, /No bootable device/, 60_000);
  });
});
