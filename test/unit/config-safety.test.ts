// The config rules behind the project's promises, found by probing the validator from outside:
// a disk is listed once however it is named, paths mean what they say, allowWipe needs pinned
// disks, the unlock address is the address dialed, Argon2 fits the host's RAM, and whatever cannot
// be checked is said (a warning), not skipped in silence.
import { readFileSync } from "fs";
import { join } from "path";
import { parse } from "yaml";
import { rawConfigFromStackFile, validateStackConfig, ValidationError, ValidationWarning } from "../../infra/config";
import { labSecretFor } from "../../lab/secrets";
import { Raw, validConfig } from "./config-fixtures";

const web = (c: Raw) => c.hosts[0];
const ca = (c: Raw) => c.hosts[1];

function errorsOf(mutate: (c: Raw) => void): ValidationError[] {
  const config = validConfig();
  mutate(config);
  const result = validateStackConfig(config);
  return result.ok ? [] : result.errors;
}

function warningsOf(mutate: (c: Raw) => void): ValidationWarning[] {
  const config = validConfig();
  mutate(config);
  const result = validateStackConfig(config);
  if (!result.ok) throw new Error(`expected the config to validate: ${JSON.stringify(result.errors)}`);
  return result.warnings;
}

const at = (errors: ValidationError[], path: string) => errors.filter((e) => e.path === path).map((e) => e.message);

describe("a disk named by /dev/disk/by-id is the disk its serial or WWN says", () => {
  const BY_ID = "/dev/disk/by-id/nvme-Samsung_SSD_980_PRO_512GB_S69ENX0T412345";

  it("refuses an unpinned by-id path naming the serial another entry pins", () => {
    const errors = errorsOf((c) => (web(c).drives[1] = { path: BY_ID }));
    expect(at(errors, "hosts[0].drives[1].path")).toEqual([expect.stringMatching(/names the disk with serial S69ENX0T412345, which drives\[0\] already uses; each disk appears once/)]);
  });

  it("also with udev's namespace suffix (_1), and for the mirror disk", () => {
    expect(at(errorsOf((c) => (web(c).drives[1] = { path: `${BY_ID}_1` })), "hosts[0].drives[1].path")).toHaveLength(1);
    const mirror = errorsOf((c) => (ca(c).mirror.drive = { path: "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S455NY0M812345" }));
    expect(at(mirror, "hosts[1].mirror.drive.path")).toEqual([expect.stringMatching(/serial S455NY0M812345, which drives\[0\] already uses; the mirror disk must be a separate disk/)]);
  });

  it("compares the WWN inside wwn-0x… names, case-insensitively", () => {
    const errors = errorsOf((c) => (ca(c).drives[0] = { path: "/dev/disk/by-id/wwn-0x5002538E40A1B2C3", serial: undefined }));
    expect(errors.map((e) => e.path)).toContain("hosts[1].drives[0].path");
  });

  it("reports two by-id paths of the same disk once", () => {
    const errors = errorsOf((c) => {
      web(c).drives[0] = { path: BY_ID };
      web(c).drives[1] = { path: `${BY_ID}_1` };
    });
    expect(errors.filter((e) => /names the disk with serial/.test(e.message)).map((e) => e.path)).toEqual(["hosts[0].drives[1].path"]);
  });

  it("refuses a pin that contradicts the serial in the path", () => {
    const errors = errorsOf((c) => (web(c).drives[1] = { path: "/dev/disk/by-id/nvme-Samsung_SSD_980_PRO_512GB_S69ENX0T412346", serial: "S69ENX0T999999" }));
    expect(at(errors, "hosts[0].drives[1].serial")).toEqual([expect.stringMatching(/expected the serial that path .* names \(S69ENX0T412346\), found "S69ENX0T999999"/)]);
  });

  it("accepts by-id paths of two different disks, and a matching pin", () => {
    expect(
      errorsOf((c) => {
        web(c).drives[0] = { path: BY_ID, serial: "S69ENX0T412345" };
        web(c).drives[1] = { path: "/dev/disk/by-id/nvme-Samsung_SSD_980_PRO_512GB_S69ENX0T412346" };
      }),
    ).toEqual([]);
  });
});

describe("paths are normalised before they are judged", () => {
  it.each([
    ["/dev/..", /found "\/dev\/\.\."; it means "\/", which is not a disk/],
    ["/dev/sda/..", /found "\/dev\/sda\/\.\."; it means "\/dev", which is not a disk/],
    ["/dev/./sda", /without "\.", "\.\." or empty segments, found "\/dev\/\.\/sda"; write "\/dev\/sda"/],
    ["/dev//sda", /write "\/dev\/sda"/],
    ["/dev/disk/by-id/../../sda", /write "\/dev\/sda"/],
  ])("refuses the drive path %s", (path, message) => {
    expect(at(errorsOf((c) => (web(c).drives[1].path = path)), "hosts[0].drives[1].path")).toEqual([expect.stringMatching(message)]);
  });

  it.each([
    ["/mnt/../etc", /it means "\/etc", write that/],
    ["/var/./log", /it means "\/var\/log"/],
    ["/etc", /outside \/proc, .*found "\/etc": \/etc is read from the root filesystem during early boot/],
    ["/proc", /\/proc is a kernel or systemd pseudo-filesystem/],
    ["/sys/kernel", /\/sys is a kernel or systemd pseudo-filesystem/],
    ["/dev/shm", /\/dev is a kernel or systemd pseudo-filesystem/],
    ["/run", /pseudo-filesystem/],
    ["/lib/modules", /early boot/],
  ])("refuses the mount point %s", (mount, message) => {
    const errors = errorsOf((c) => web(c).volumes.splice(1, 0, { vg: "vg0", name: "data", mount, fs: "ext4", size: "10G" }));
    expect(at(errors, "hosts[0].volumes[1].mount")).toEqual([expect.stringMatching(message)]);
  });

  it("refuses them for partitions and the mirror too, and accepts ordinary mount points", () => {
    expect(at(errorsOf((c) => (web(c).partitions[0].mount = "/boot/../etc")), "hosts[0].partitions[0].mount")).toEqual([expect.stringMatching(/it means "\/etc"/)]);
    expect(at(errorsOf((c) => (ca(c).mirror.mountPoint = "/proc/mirror")), "hosts[1].mirror.mountPoint")).toEqual([expect.stringMatching(/pseudo-filesystem/)]);
    expect(errorsOf((c) => web(c).volumes.splice(1, 0, { vg: "vg0", name: "data", mount: "/var/lib/postgresql", fs: "ext4", size: "10G" }))).toEqual([]);
  });
});

describe("allowWipe needs every disk pinned by serial or WWN", () => {
  it("says which disks are not pinned and how to find their serials", () => {
    const errors = errorsOf((c) => {
      web(c).allowWipe = true;
      delete web(c).drives[1].serial;
    });
    expect(at(errors, "hosts[0].drives[1]")).toEqual([
      expect.stringMatching(/expected a serial or wwn pin on drives\[1\] \("\/dev\/nvme1n1"\) because allowWipe is true, found neither.*`lsblk -d -o NAME,SERIAL,WWN`.*or set allowWipe: false/),
    ]);
  });

  it("counts the mirror disk, and a WWN is a pin", () => {
    const errors = errorsOf((c) => {
      ca(c).allowWipe = true;
      ca(c).mirror.drive = { path: "/dev/sdb" };
    });
    expect(errors.map((e) => e.path)).toEqual(["hosts[1].mirror.drive"]);
    expect(errorsOf((c) => (ca(c).allowWipe = true))).toEqual([]);
  });

  it("asks nothing of unpinned disks while allowWipe is false", () => {
    expect(errorsOf((c) => delete web(c).drives[1].serial)).toEqual([]);
  });

  it("the lab stack pins every disk it lets be wiped (the lab's nvmeSerial)", () => {
    const file = parse(readFileSync(join(__dirname, "..", "..", "..", "Pulumi.lab.yaml"), "utf8")) as { config: Record<string, unknown> };
    const result = validateStackConfig(rawConfigFromStackFile(file.config, labSecretFor));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    for (const host of result.config.hosts) {
      const number = host.target.robot!.serverNumber;
      const disks = [...host.drives, ...(host.mirror ? [host.mirror.drive] : [])];
      expect(host.allowWipe).toBe(true);
      expect(disks.map((d) => d.serial)).toEqual(disks.map((_, i) => `LAB${number}N${i}`));
    }
  });
});

describe("a static dropbear IPv4 address is the address the unlock dials", () => {
  it("refuses an address other than target.ssh.address", () => {
    const errors = errorsOf((c) => (ca(c).dropbear.network.ipv4 = { address: "198.51.100.24/27", gateway: "198.51.100.1" }));
    expect(at(errors, "hosts[1].dropbear.network.ipv4.address")).toEqual([
      expect.stringMatching(/expected the address the host is reached at \(target.ssh.address 198.51.100.23\), found 198.51.100.24\/27: the unlock dials 198.51.100.23:2222.*Set address: 198.51.100.23\/27/),
    ]);
  });

  it("cannot judge a host dialed through endpoints or a Robot target, and leaves those alone", () => {
    expect(
      errorsOf((c) => {
        ca(c).dropbear.network.ipv4 = { address: "10.0.2.15/24", gateway: "10.0.2.2" };
        ca(c).endpoints = { address: "127.0.0.1", sshPort: 2201, dropbearPort: 2221 };
      }),
    ).toEqual([]);
    expect(errorsOf((c) => (web(c).dropbear.network = { mode: "static", mac: "90:1b:0e:aa:bb:01", ipv4: { address: "203.0.113.9/26", gateway: "203.0.113.1" } }))).toEqual([]);
  });
});

describe("Argon2 memory against the host's RAM", () => {
  it("refuses a memory cost above half of memoryMiB", () => {
    const errors = errorsOf((c) => (web(c).memoryMiB = 1024));
    expect(at(errors, "hosts[0].luks.pbkdf.memoryKiB")).toEqual([expect.stringMatching(/expected at most 524288 KiB \(half of the host's 1024 MiB.*\), found 1048576: the rescue system and the initramfs unlock run in RAM/)]);
  });

  it("accepts it when it fits", () => {
    expect(errorsOf((c) => (web(c).memoryMiB = 65536))).toEqual([]);
  });

  it("warns when the host's RAM is not known", () => {
    expect(warningsOf(() => undefined)).toEqual(expect.arrayContaining([{ path: "hosts[0].luks.pbkdf.memoryKiB", message: expect.stringMatching(/1048576 KiB is not checked against the host's RAM.*Add memoryMiB/) }]));
    expect(warningsOf((c) => (web(c).memoryMiB = 65536)).map((w) => w.path)).not.toContain("hosts[0].luks.pbkdf.memoryKiB");
  });
});

describe("capacity that cannot be checked is said", () => {
  it("warns when a drive has no sizeBytes: the layout is not checked against the disks", () => {
    const warnings = warningsOf((c) => {
      delete web(c).drives[1].sizeBytes;
      web(c).volumes[1].size = "900G"; // would not fit 2 × 512G, but nothing can tell
    });
    expect(warnings).toEqual(expect.arrayContaining([{ path: "hosts[0].drives", message: expect.stringMatching(/sizes not checked: drives\[1\] has no sizeBytes.*lsblk -b -d -o NAME,SIZE,SERIAL/) }]));
  });

  it("says nothing when every size is known", () => {
    expect(warningsOf((c) => (web(c).memoryMiB = 65536))).toEqual([]);
  });
});
