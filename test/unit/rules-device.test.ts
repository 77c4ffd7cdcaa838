import { checkDiskPath, checkSerial, checkWwn } from "../../providers/rules";

describe("checkDiskPath", () => {
  it.each(["/dev/sda", "/dev/nvme0n1", "/dev/vdb", "/dev/disk/by-id/nvme-SAMSUNG_MZVL2512HCJQ-00B00_S69ENX0T412345", "/dev/md127"])("accepts %s", (path) => {
    expect(checkDiskPath(path)).toBeUndefined();
  });

  it.each([
    ["sda", /absolute device path.*write "\/dev\/sda"/],
    ["dev/sda", /write "\/dev\/sda"/],
    ["/mnt/sda", /under \/dev/],
    ["/dev/sda1", /found the partition "\/dev\/sda1".*\/dev\/sda\)/],
    ["/dev/nvme0n1p2", /partition.*\/dev\/nvme0n1\)/],
    ["/dev/disk/by-id/ata-X-part3", /partition.*\/dev\/disk\/by-id\/ata-X\)/],
    ["/dev/sd a", /letters, digits/],
    ["/dev/sda;reboot", /letters, digits/],
  ])("refuses %s", (path, reason) => {
    expect(checkDiskPath(path)).toMatch(reason);
  });
});

describe("serial and WWN", () => {
  it.each(["S69ENX0T412345", "WD-WCC4N1234567", "LAB100001N0", "ZA1234AB"])("serial %s is accepted", (serial) => {
    expect(checkSerial(serial)).toBeUndefined();
  });

  it.each(["", "S69E NX0T", "-lead", "x".repeat(65), "S1$(id)"])("serial %j is refused", (serial) => {
    expect(checkSerial(serial)).toMatch(/expected a disk serial/);
  });

  it.each(["0x5000c500a1b2c3d4", "0x5000C500A1B2C3D40000000000000001", "eui.0025388b91d2a1b3", "naa.5000c500a1b2c3d4",
    "uuid.3f1c2a4e-9b7d-4e21-8c55-0a1b2c3d4e5f", "nvme.1b36-4c4142313030303031-51454d55204e564d65204374726c-00000001"])("WWN %s is accepted", (wwn) => {
    expect(checkWwn(wwn)).toBeUndefined();
  });

  it.each(["5000c500a1b2c3d4", "0x5000c500", "eui.xyz", "wwn-0x5000c500a1b2c3d4", "uuid.not-a-uuid", "nvme.1b36-zz-51-00000001", "nvme.1b36-4c41"])("WWN %s is refused", (wwn) => {
    expect(checkWwn(wwn)).toMatch(/expected a WWN as lsblk -o WWN prints it/);
  });
});
