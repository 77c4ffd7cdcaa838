// The /autosetup InstallImage renders is accepted by the lab installimage (run for real in its
// validate-only mode with fake drives), and the plan it prints is the layout the resource's device
// names assume: one md array per PART (md0, md1, …), LUKS on the crypt PART, the root where
// rootLocation says. Bad layouts that slip past check would show here as installimage errors.
import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { IMAGES_DIR, InstallImageInputs, renderAutosetup, rootLocation, validate } from "../../providers/install-image";
import { crypted, raid1Lvm } from "./install-image-fixtures";

const INSTALLIMAGE = resolve(__dirname, "../../../lab/installimage/installimage");

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "install-image-autosetup-"));
  for (const name of ["Debian-bookworm-latest-amd64-base", "Debian-trixie-latest-amd64-base"]) writeFileSync(join(dir, `${name}.tar.gz`), "");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function labValidate(inputs: InstallImageInputs, drives: string, firmware = "bios") {
  // The image lives in the rescue's images directory; here, in a temp dir with the same file name.
  let config = renderAutosetup(inputs).replace(`IMAGE ${IMAGES_DIR}/`, `IMAGE ${dir}/`);
  if (inputs.partitions.some((p) => p.crypt)) config += "CRYPTPASSWORD one-time-test-value\n";
  const file = join(dir, "autosetup.conf");
  writeFileSync(file, config);
  const result = spawnSync(INSTALLIMAGE, ["-a", "-c", file], {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      INSTALLIMAGE_VALIDATE_ONLY: "1",
      INSTALLIMAGE_FAKE_DRIVES: drives,
      INSTALLIMAGE_FAKE_FIRMWARE: firmware,
      INSTALLIMAGE_DEBUG_FILE: join(dir, "debug.txt"),
      INSTALLIMAGE_AUTOSETUP: join(dir, "autosetup"),
    },
  });
  return { status: result.status, out: result.stdout + result.stderr, debug: readFileSync(join(dir, "debug.txt"), "utf8") };
}

const TWO = "/dev/nvme0n1:6G,/dev/nvme1n1:6G";

const LAYOUTS: [string, InstallImageInputs, string, string][] = [
  ["RAID1 + LVM", raid1Lvm(), TWO, "bios"],
  ["RAID1 + LVM in LUKS", crypted(), TWO, "bios"],
  ["RAID1, plain / without /boot", { ...raid1Lvm(), partitions: [{ mount: "swap", fs: "swap", size: "512M" }, { mount: "/", fs: "ext4", size: "all" }], volumes: [] }, TWO, "bios"],
  ["one drive, no RAID", { ...raid1Lvm(), drives: [{ path: "/dev/sda" }], raid: false }, "/dev/sda:10G", "bios"],
  ["UEFI with a mirrored esp", { ...raid1Lvm(), partitions: [{ mount: "/boot/efi", fs: "esp", size: "256M" }, ...raid1Lvm().partitions] }, TWO, "uefi"],
  ["RAID5 on three drives, trixie", { ...raid1Lvm(), image: "Debian-trixie-latest-amd64-base.tar.gz", drives: [{ path: "/dev/sda" }, { path: "/dev/sdb" }, { path: "/dev/sdc" }], raid: { level: 5 } }, "/dev/sda:6G,/dev/sdb:6G,/dev/sdc:6G", "bios"],
];

it.each(LAYOUTS)("%s: check accepts it and the lab installimage validates it", (_name, inputs, drives, firmware) => {
  expect(validate(inputs)).toEqual([]);
  const run = labValidate(inputs, drives, firmware);
  expect({ status: run.status, errors: run.debug.split("\n").filter((l) => l.startsWith("ERROR:")) }).toEqual({ status: 0, errors: [] });
});

it("installimage's plan puts the arrays and the root where the resource looks for them", () => {
  const run = labValidate(crypted(), TWO);
  expect(run.status).toBe(0);
  expect(run.out).toMatch(/\/dev\/md0/);
  expect(run.out).toMatch(/\/dev\/md1/);
  expect(rootLocation(crypted())).toEqual({ kind: "lv", device: "/dev/vg0/root" });
  expect(run.out).toMatch(/crypttab: luks-[0-9a-f-]{36} UUID=[0-9a-f-]{36} none luks/);
});

it("a layout check lets through is still caught by installimage when it does not fit the drives", () => {
  const big = { ...raid1Lvm(), volumes: [{ vg: "vg0", name: "swap", mount: "swap", fs: "swap" as const, size: "64G" }, { vg: "vg0", name: "root", mount: "/", fs: "ext4" as const, size: "all" }] };
  expect(validate(big)).toEqual([]); // drive sizes are unknown at check time
  const run = labValidate(big, TWO);
  expect(run.status).toBe(1);
  expect(run.debug).toMatch(/ERROR:/);
});
