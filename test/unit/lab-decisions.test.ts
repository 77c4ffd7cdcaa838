import type { BootTarget } from "../../lab/robot/power";
import { consoleTailOf, decideAfterExit, decidePowerAction, detectBootFailure, ExitIntent, nextBootNo, PowerAction, VmExit } from "../../lab/supervisor/decisions";

const disk: BootTarget = { kind: "disk" };
const rescue: BootTarget = { kind: "rescue", rescue: { password: "p", authorizedKeys: [], hostKeys: [] } };

describe("decidePowerAction", () => {
  it.each<[PowerAction, "running" | "off", string]>([
    [{ kind: "reset", target: rescue }, "running", "restart"],
    [{ kind: "reset", target: rescue }, "off", "none"],
    [{ kind: "powerOff" }, "running", "stop"],
    [{ kind: "powerOff" }, "off", "none"],
    [{ kind: "powerOn", target: disk }, "off", "start"],
    [{ kind: "powerOn", target: disk }, "running", "none"],
    [{ kind: "powerButton" }, "running", "acpiPowerdown"],
    [{ kind: "powerButton" }, "off", "none"],
  ])("%p on a server that is %s → %s", (action, state, effect) => {
    expect(decidePowerAction(action, state).kind).toBe(effect);
  });

  it("carries the target into the restart", () => {
    expect(decidePowerAction({ kind: "reset", target: rescue }, "running")).toEqual({ kind: "restart", target: rescue });
  });
});

describe("decideAfterExit", () => {
  const clean = (shutdownReason?: string): VmExit => ({ shutdownReason, exitCode: 0, signal: null });
  it.each<[string, ExitIntent | undefined, VmExit, unknown]>([
    ["our reset", { kind: "restart", target: rescue }, clean("host-qmp-quit"), { kind: "boot", target: rescue }],
    ["our power off", { kind: "stayOff" }, clean("host-qmp-quit"), { kind: "off" }],
    ["our power off that needed SIGKILL", { kind: "stayOff" }, { exitCode: null, signal: "SIGKILL" }, { kind: "off" }],
    ["guest reboot", undefined, clean("guest-reset"), { kind: "bootNext" }],
    ["guest poweroff", undefined, clean("guest-shutdown"), { kind: "off" }],
    ["guest panic", undefined, clean("guest-panic"), { kind: "off", failure: "the guest kernel panicked" }],
    ["QEMU crash", undefined, { exitCode: 1, signal: null }, { kind: "off", failure: expect.stringMatching(/exited with code 1 without the supervisor asking/) }],
    ["QEMU killed from outside", undefined, { exitCode: null, signal: "SIGTERM", shutdownReason: "host-signal" }, { kind: "off", failure: expect.stringMatching(/killed by SIGTERM after shutdown reason "host-signal"/) }],
  ])("%s", (_name, intent, exit, expected) => {
    expect(decideAfterExit(intent, exit)).toEqual(expected);
  });
});

describe("detectBootFailure", () => {
  it.each<[string, string, RegExp | undefined]>([
    ["SeaBIOS on blank disks", "SeaBIOS (version 1.16.2)\r\nBooting from Hard Disk...\r\nBoot failed: not a bootable disk\r\n\r\nNo bootable device.\r\n", /no bootable device/],
    ["panic", "[    2.1] Kernel panic - not syncing: VFS: Unable to mount root fs\n", /kernel panicked/],
    ["grub rescue", "error: unknown filesystem.\nEntering rescue mode...\ngrub rescue> ", /grub rescue/],
    ["OVMF on blank disks", 'BdsDxe: failed to load Boot0001 "UEFI QEMU NVMe Ctrl" from PciRoot(0x0)/Pci(0x2,0x0)/NVMe(0x1,00-00-00-00-00-00-00-00): Not Found\r\nBdsDxe: starting Boot0003 "EFI Internal Shell" from Fv(7CB8)\r\n', /UEFI firmware found no bootable disk/],
    ["a healthy boot", "Booting from Hard Disk...\nLinux version 6.1.0\nDebian GNU/Linux 12 rescue ttyS0\n", undefined],
  ])("%s", (_name, console, expected) => {
    const reason = detectBootFailure(console);
    if (expected) expect(reason).toMatch(expected);
    else expect(reason).toBeUndefined();
  });
});

describe("consoleTailOf", () => {
  it("strips escape sequences and carriage returns and keeps the last lines", () => {
    const raw = "\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\nline2\r\nNo bootable device.\r\n\r\n";
    expect(consoleTailOf(raw, 2)).toBe("line2\nNo bootable device.");
    expect(consoleTailOf(raw, 10)).toBe("SeaBIOS\nline2\nNo bootable device.");
  });
});

describe("nextBootNo", () => {
  it.each<[string[], number]>([
    [[], 1],
    [["disk0.qcow2", "qmp.sock"], 1],
    [["console-1-disk.log", "console-2-rescue.log", "console-10-disk.log", "console-x-disk.log"], 11],
  ])("%p → %i", (files, expected) => {
    expect(nextBootNo(files)).toBe(expected);
  });
});
