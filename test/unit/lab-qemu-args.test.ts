import type { LabServerConfig } from "../../lab/config";
import { accelArgs, diskArgs, optValue, qemuArgv, RESCUE_FW_CFG_NAME, VmLaunch } from "../../lab/supervisor/qemu-args";
import { LAB_SERVER } from "./lab-fixtures";

const server = LAB_SERVER;
const paths = { disks: ["/s/d0.qcow2", "/s/d1.qcow2"], consoleLog: "/s/console-1-disk.log", qmpSocket: "/s/qmp.sock", pidFile: "/s/qemu.pid" };
const rescue = { kind: "rescue" as const, kernel: "/c/vmlinuz", initrd: "/c/initrd", cmdline: "console=ttyS0", rescueJson: "/s/rescue.json.fifo", imagesDir: "/c/images", installDir: "/repo/lab/installimage" };

/** Value following `flag` each time it occurs. */
function values(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => (a === flag ? [argv[i + 1]] : []));
}

describe("qemuArgv", () => {
  const disk: VmLaunch = { server, paths, boot: { kind: "disk" }, accel: "tcg" };

  it.each([
    ["-m", disk, ["2048"]],
    ["-smp", disk, ["1"]],
    ["-machine", disk, ["q35,graphics=off"]],
    ["-netdev", disk, ["user,id=n0,hostfwd=tcp:127.0.0.1:2201-:22,hostfwd=tcp:127.0.0.1:2221-:2222"]],
    ["-chardev", disk, ["file,id=console,path=/s/console-1-disk.log"]],
    ["-qmp", disk, ["unix:/s/qmp.sock,server=on,wait=off"]],
    ["-kernel", disk, []],
    ["-fw_cfg", disk, []],
    ["-virtfs", disk, []],
    ["-kernel", { ...disk, boot: rescue }, ["/c/vmlinuz"]],
    ["-initrd", { ...disk, boot: rescue }, ["/c/initrd"]],
    ["-append", { ...disk, boot: rescue }, ["console=ttyS0"]],
    ["-fw_cfg", { ...disk, boot: rescue }, [`name=${RESCUE_FW_CFG_NAME},file=/s/rescue.json.fifo`]],
    [
      "-virtfs",
      { ...disk, boot: rescue },
      [
        "local,path=/c/images,mount_tag=hfde_images,security_model=none,readonly=on,id=fs_images",
        "local,path=/repo/lab/installimage,mount_tag=hfde_install,security_model=none,readonly=on,id=fs_install",
      ],
    ],
    ["-m", { ...disk, server: { ...server, memoryMiB: 4096 } }, ["4096"]],
  ] as Array<[string, VmLaunch, string[]]>)("%s for a %p boot", (flag, launch, expected) => {
    expect(values(qemuArgv(launch), flag)).toEqual(expected);
  });

  it("always has -no-reboot so a guest reboot comes back through the supervisor", () => {
    expect(qemuArgv(disk)).toContain("-no-reboot");
    expect(qemuArgv({ ...disk, boot: rescue })).toContain("-no-reboot");
  });

  it("adds OVMF pflash drives for uefi servers and refuses without their paths", () => {
    const uefi = { ...disk, server: { ...server, firmware: "uefi" as const } };
    expect(() => qemuArgv(uefi)).toThrow(/firmware "uefi" but no OVMF/);
    const argv = qemuArgv({ ...uefi, paths: { ...paths, ovmfCode: "/u/CODE.fd", ovmfVars: "/s/VARS.fd" } });
    expect(values(argv, "-drive").filter((d) => d.startsWith("if=pflash"))).toEqual([
      "if=pflash,format=raw,unit=0,readonly=on,file=/u/CODE.fd",
      "if=pflash,format=raw,unit=1,file=/s/VARS.fd",
    ]);
    expect(values(qemuArgv(disk), "-drive").some((d) => d.includes("pflash"))).toBe(false);
  });

  it("escapes commas in paths the way QEMU's option parser expects", () => {
    expect(optValue("/a,b/c")).toBe("/a,,b/c");
    expect(values(qemuArgv({ ...disk, paths: { ...paths, consoleLog: "/x,y/c.log" } }), "-chardev")).toEqual(["file,id=console,path=/x,,y/c.log"]);
  });
});

describe("diskArgs", () => {
  it.each([
    [
      "nvme",
      ["-drive", "file=/d0,if=none,id=nvme0,format=qcow2,discard=unmap,cache=unsafe", "-device", "nvme,drive=nvme0,serial=LAB100001N0,bootindex=0",
       "-drive", "file=/d1,if=none,id=nvme1,format=qcow2,discard=unmap,cache=unsafe", "-device", "nvme,drive=nvme1,serial=LAB100001N1,bootindex=1"],
    ],
    [
      "sata",
      ["-drive", "file=/d0,if=none,id=sata0,format=qcow2,discard=unmap,cache=unsafe", "-device", "ide-hd,drive=sata0,bus=ide.0,serial=LAB100001S0,bootindex=0",
       "-drive", "file=/d1,if=none,id=sata1,format=qcow2,discard=unmap,cache=unsafe", "-device", "ide-hd,drive=sata1,bus=ide.1,serial=LAB100001S1,bootindex=1"],
    ],
  ] as const)("%s disks", (type, expected) => {
    expect(diskArgs({ ...server, disks: { count: 2, sizeGiB: 20, type } }, ["/d0", "/d1"])).toEqual(expected);
  });

  it("numbers the disks after -kernel's bootindex 0 on a rescue boot", () => {
    const argv = qemuArgv({ server, paths, boot: rescue, accel: "tcg" });
    expect(values(argv, "-device").filter((d) => d.startsWith("nvme"))).toEqual([
      "nvme,drive=nvme0,serial=LAB100001N0,bootindex=1",
      "nvme,drive=nvme1,serial=LAB100001N1,bootindex=2",
    ]);
  });

  it("refuses a disk list that does not match disks.count", () => {
    expect(() => diskArgs(server, ["/d0"])).toThrow(/disks.count 2 but 1 disk files/);
  });

  const three = { ...server, disks: { count: 3, sizeGiB: 20, type: "nvme" as const } };
  it.each([
    ["nothing pulled", three, [], 0, ["nvme,drive=nvme0,serial=LAB100001N0,bootindex=0", "nvme,drive=nvme1,serial=LAB100001N1,bootindex=1", "nvme,drive=nvme2,serial=LAB100001N2,bootindex=2"]],
    ["disk 0 pulled", three, [0], 0, ["nvme,drive=nvme1,serial=LAB100001N1,bootindex=0", "nvme,drive=nvme2,serial=LAB100001N2,bootindex=1"]],
    ["disk 1 pulled", three, [1], 0, ["nvme,drive=nvme0,serial=LAB100001N0,bootindex=0", "nvme,drive=nvme2,serial=LAB100001N2,bootindex=1"]],
    ["disks 0 and 2 pulled", three, [2, 0], 0, ["nvme,drive=nvme1,serial=LAB100001N1,bootindex=0"]],
    ["disk 0 pulled, rescue boot", three, [0], 1, ["nvme,drive=nvme1,serial=LAB100001N1,bootindex=1", "nvme,drive=nvme2,serial=LAB100001N2,bootindex=2"]],
    ["sata disk 0 pulled: disk 1 stays on its port", { ...server, disks: { count: 2, sizeGiB: 20, type: "sata" as const } }, [0], 0, ["ide-hd,drive=sata1,bus=ide.1,serial=LAB100001S1,bootindex=0"]],
  ] as Array<[string, LabServerConfig, number[], number, string[]]>)("%s: the others keep their serial and order", (_what, srv, pulled, first, devices) => {
    const argv = diskArgs(srv, Array.from({ length: srv.disks.count }, (_, i) => `/d${i}`), first, pulled);
    expect(values(argv, "-device")).toEqual(devices);
    // The drive options of a pulled disk go too: its file is not opened at all.
    expect(values(argv, "-drive").map((d) => d.split(",")[0])).toEqual(devices.map((d) => `file=/d${/drive=\w+?(\d+)/.exec(d)?.[1]}`));
  });

  it.each([
    [[0, 1], /every disk pulled; insert one \(npm run lab -- drive insert 100001 0\)/],
    [[2], /disks 0 to 1, but disk 2 is marked pulled/],
    [[-1], /disk -1 is marked pulled/],
  ])("refuses pulled %p", (pulled, message) => {
    expect(() => diskArgs(server, ["/d0", "/d1"], 0, pulled)).toThrow(message);
  });

  it("qemuArgv passes the launch's pulled drives to the disks", () => {
    const argv = qemuArgv({ server, paths, boot: rescue, accel: "tcg", pulledDrives: [0] });
    expect(values(argv, "-device").filter((d) => d.startsWith("nvme"))).toEqual(["nvme,drive=nvme1,serial=LAB100001N1,bootindex=1"]);
  });
});

describe("accelArgs", () => {
  it.each([
    ["tcg", ["-accel", "tcg,tb-size=64", "-cpu", "max"]],
    ["tcg-multi", ["-accel", "tcg,thread=multi,tb-size=64", "-cpu", "max"]],
    ["kvm", ["-accel", "kvm", "-cpu", "host"]],
  ] as const)("%s", (accel, expected) => {
    expect(accelArgs(accel)).toEqual(expected);
  });
});
