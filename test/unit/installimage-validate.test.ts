// The lab installimage's validation and layout plan, run for real (bash) in its validate-only mode
// with fake drives: every rule must fail with exit 1 and its reason in the debug file, and good
// configs must pass with the plan the install steps would carry out.

import { spawnSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { raid1LvmAutosetup } from "../support/autosetup-fixtures";

// Tests run from dist/test/unit; the script lives in the source tree.
const INSTALLIMAGE = resolve(__dirname, "../../../lab/installimage/installimage");
const TWO_DRIVES = "/dev/nvme0n1:20G,/dev/nvme1n1:20G";
const IMAGE_NAME = "Debian-bookworm-latest-amd64-base.tar.gz";

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  debug: string;
  autosetup: string;
}

let dir: string;
let image: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "installimage-validate-"));
  image = join(dir, IMAGE_NAME);
  writeFileSync(image, "");
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function raid1Lvm(): string {
  return raid1LvmAutosetup(image).trimEnd();
}

function edit(config: string, replacements: Array<[RegExp, string]>): string {
  return replacements.reduce((text, [pattern, replacement]) => text.replace(pattern, replacement), config);
}

let runNumber = 0;
function validate(config: string, opts: { args?: string[]; drives?: string; firmware?: string } = {}): Run {
  runNumber += 1;
  const configFile = join(dir, `config-${runNumber}`);
  const debugFile = join(dir, `debug-${runNumber}.txt`);
  const autosetup = join(dir, `autosetup-${runNumber}`);
  writeFileSync(configFile, config + "\n");
  const result = spawnSync(INSTALLIMAGE, ["-a", "-c", configFile, ...(opts.args ?? [])], {
    encoding: "utf8",
    env: {
      PATH: process.env.PATH,
      INSTALLIMAGE_VALIDATE_ONLY: "1",
      INSTALLIMAGE_FAKE_DRIVES: opts.drives ?? TWO_DRIVES,
      INSTALLIMAGE_FAKE_FIRMWARE: opts.firmware ?? "bios",
      INSTALLIMAGE_DEBUG_FILE: debugFile,
      INSTALLIMAGE_AUTOSETUP: autosetup,
    },
  });
  const read = (file: string) => {
    try {
      return readFileSync(file, "utf8");
    } catch {
      return "";
    }
  };
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, debug: read(debugFile), autosetup: read(autosetup) };
}

describe("installimage validation rejects bad configs with exit 1 and the reason in the debug file", () => {
  // Rows always have 4 entries: jest passes `done` to a callback with more parameters than the row.
  const cases: Array<[string, () => string, RegExp, { drives?: string; firmware?: string }]> = [
    ["RAID10 with two drives", () => edit(raid1Lvm(), [[/SWRAIDLEVEL 1/, "SWRAIDLEVEL 10"]]), /ERROR: SWRAIDLEVEL: RAID 10 needs at least 4 drives, found 2/, {}],
    ["RAID5 with two drives", () => edit(raid1Lvm(), [[/SWRAIDLEVEL 1/, "SWRAIDLEVEL 5"]]), /ERROR: SWRAIDLEVEL: RAID 5 needs at least 3 drives, found 2/, {}],
    [
      "RAID0 without a separate /boot",
      () => edit(raid1Lvm(), [[/SWRAIDLEVEL 1/, "SWRAIDLEVEL 0"], [/PART \/boot ext4 1G\n/, "PART / ext4 10G\n"], [/LV vg0 root \/ ext4 all/, "LV vg0 data /srv ext4 all"]]),
      /ERROR: SWRAIDLEVEL: RAID 0 needs a separate 'PART \/boot …'/,
      {},
    ],
    ["/boot on LVM", () => edit(raid1Lvm(), [[/PART \/boot ext4 1G\n/, ""], [/LV vg0 swap/, "LV vg0 boot /boot ext4 1G\nLV vg0 swap"]]), /ERROR: LV vg0\/boot \(line \d+\): expected \/boot on a plain PART/, {}],
    ["/boot as xfs", () => edit(raid1Lvm(), [[/PART \/boot ext4 1G/, "PART /boot xfs 1G"]]), /ERROR: PART \/boot \(line 7\): expected ext2\/ext3\/ext4 for \/boot, found xfs/, {}],
    ["/boot too small", () => edit(raid1Lvm(), [[/PART \/boot ext4 1G/, "PART /boot ext4 100M"]]), /ERROR: PART \/boot \(line 7\): expected at least 200M for \/boot, found 100M/, {}],
    ["/ too small", () => edit(raid1Lvm(), [[/LV vg0 root \/ ext4 all/, "LV vg0 root / ext4 1000M"]]), /ERROR: LV vg0\/root \(line 10\): expected at least 1500M for \/, found 1000M/, {}],
    ["missing IMAGE", () => edit(raid1Lvm(), [[/IMAGE .*/, ""]]), /ERROR: IMAGE: expected the image to install, .*found no IMAGE line/, {}],
    ["IMAGE that does not exist", () => edit(raid1Lvm(), [[/IMAGE .*/, `IMAGE ${dir}/Debian-trixie-latest-amd64-base.tar.gz`]]), /ERROR: IMAGE: expected an existing image file.*found nothing at/, {}],
    ["IMAGE without -amd64- in its name", () => edit(raid1Lvm(), [[/IMAGE .*/, `IMAGE ${dir}/debian.tar.gz`]]), /ERROR: IMAGE: expected the architecture in the image name/, {}],
    ["'all' not on the last PART", () => edit(raid1Lvm(), [[/PART lvm vg0 all/, "PART lvm vg0 all\nPART /srv ext4 1G"]]), /ERROR: PART lvm \(line 8\): expected 'all' only on the last PART, found it before PART \/srv/, {}],
    ["esp smaller than 256M", () => edit(raid1Lvm(), [[/PART \/boot ext4 1G/, "PART /boot/efi esp 128M\nPART /boot ext4 1G"]]), /ERROR: PART \/boot\/efi \(line 7\): expected at least 256M for the EFI system partition, found 128M/, {}],
    ["esp with 'all'", () => edit(raid1Lvm(), [[/PART lvm vg0 all/, "PART lvm vg0 10G"], [/LV vg0 root \/ ext4 all/, "LV vg0 root / ext4 5G\nPART /boot/efi esp all"]]), /expected a fixed esp size of at least 256M, found 'all'/, {}],
    ["crypt without CRYPTPASSWORD", () => edit(raid1Lvm(), [[/PART lvm vg0 all/, "PART lvm vg0 all crypt"]]), /ERROR: CRYPTPASSWORD: expected 'CRYPTPASSWORD <password>' because PART lvm \(line 8\) has 'crypt', found none/, {}],
    ["crypted /boot", () => edit(raid1Lvm(), [[/PART \/boot ext4 1G/, "PART /boot ext4 1G crypt"], [/HOSTNAME/, "CRYPTPASSWORD x\nHOSTNAME"]]), /expected \/boot unencrypted/, {}],
    ["unknown keyword", () => raid1Lvm() + "\nFORMATDRIVE2 1", /ERROR: FORMATDRIVE2: unknown keyword on line 12/, {}],
    ["duplicate drive", () => edit(raid1Lvm(), [[/DRIVE2 \/dev\/nvme1n1/, "DRIVE2 /dev/nvme0n1"]]), /ERROR: DRIVE2: expected a drive not listed before, found \/dev\/nvme0n1 again \(already DRIVE1\)/, {}],
    ["drives not ascending", () => edit(raid1Lvm(), [[/DRIVE2/, "DRIVE3"]]), /ERROR: DRIVE3: expected DRIVE2 next/, {}],
    ["drive that does not exist", () => raid1Lvm(), /ERROR: DRIVE2: expected an existing block device, found no block device at \/dev\/nvme1n1/, { drives: "/dev/nvme0n1:20G" }],
    ["hostname missing", () => edit(raid1Lvm(), [[/HOSTNAME .*\n/, ""]]), /ERROR: HOSTNAME: expected 'HOSTNAME <name>' in the config or -n <name>, found neither/, {}],
    ["LV without its PART lvm", () => raid1Lvm() + "\nLV vg1 data /srv ext4 1G", /ERROR: LV vg1\/data \(line 12\): expected a 'PART lvm vg1 <size\|all>' line for its volume group, found none/, {}],
    ["BOOTLOADER lilo", () => edit(raid1Lvm(), [[/BOOTLOADER grub/, "BOOTLOADER lilo"]]), /ERROR: BOOTLOADER: expected 'grub'.*found 'lilo'/, {}],
    ["LVs larger than their VG", () => edit(raid1Lvm(), [[/LV vg0 swap swap swap 1G/, "LV vg0 swap swap swap 30G"]]), /ERROR: LV vg0: expected the LVs of vg0 to fit in about \d+ MiB, found 30720 MiB/, {}],
    ["partitions larger than the drive", () => edit(raid1Lvm(), [[/PART lvm vg0 all/, "PART lvm vg0 25G"]]), /ERROR: PART: expected the partitions to fit on the smallest drive \(\/dev\/nvme0n1, 20480 MiB\)/, {}],
    ["UEFI machine without an esp", () => raid1Lvm(), /this machine boots with UEFI: expected 'PART \/boot\/efi esp 256M'/, { firmware: "uefi" }],
    ["malformed PART", () => edit(raid1Lvm(), [[/PART \/boot ext4 1G/, "PART /boot ext4"]]), /ERROR: PART: expected 'PART <mount\|lvm\|swap> <fs\|vg> <size\|all> \[crypt\]', found 'PART \/boot ext4' on line 7/, {}],
  ];

  it.each(cases)("%s", (_name, config, reason, opts) => {
    const run = validate(config(), opts);
    expect(run.status).toBe(1);
    expect(run.debug).toMatch(reason);
    expect(run.debug).toMatch(/nothing was changed on the drives/);
    expect(run.stdout).not.toMatch(/^plan:/m);
  });

  it("reports every failure of a config in one run, not just the first", () => {
    const run = validate(edit(raid1Lvm(), [[/SWRAIDLEVEL 1/, "SWRAIDLEVEL 10"], [/HOSTNAME .*\n/, ""], [/IMAGE .*/, ""]]));
    expect(run.status).toBe(1);
    expect(run.debug).toMatch(/ERROR: SWRAIDLEVEL/);
    expect(run.debug).toMatch(/ERROR: HOSTNAME/);
    expect(run.debug).toMatch(/ERROR: IMAGE/);
  });

  it("refuses flags it does not emulate by name", () => {
    const run = validate(raid1Lvm(), { args: ["-r", "yes"] });
    expect(run.status).toBe(1);
    expect(run.debug).toMatch(/ERROR: option -r: Hetzner's installimage has it, the lab's does not emulate it/);
  });
});

describe("installimage validation accepts good configs and prints the plan", () => {
  it("RAID1 + LVM: /boot on md0, vg0 on md1, MBR with 1 GiB members", () => {
    const run = validate(raid1Lvm());
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^plan: label=dos drives=\/dev\/nvme0n1 \/dev\/nvme1n1 bios_boot_partition=- firmware=bios$/m);
    expect(run.stdout).toMatch(/^part 1: start=1MiB size=1024MiB type=R members=\/dev\/nvme0n1p1,\/dev\/nvme1n1p1 md=\/dev\/md0 metadata=1\.2 crypt=- device=\/dev\/md0 mount=\/boot fs=ext4$/m);
    expect(run.stdout).toMatch(/^part 2: start=1025MiB size=restMiB type=R members=\/dev\/nvme0n1p2,\/dev\/nvme1n1p2 md=\/dev\/md1 .* mount=lvm fs=vg0$/m);
    expect(run.stdout).toMatch(/^fstab: UUID=[0-9a-f-]{36} \/ ext4 defaults 0 1$/m);
    expect(run.stdout).toMatch(/^fstab: UUID=[0-9a-f-]{36} none swap sw 0 0$/m);
    expect(run.autosetup).toBe(raid1Lvm() + "\n");
  });

  it("crypt: LVM inside LUKS on md1, crypttab in Hetzner's format, and the password kept out of the log", () => {
    const password = "correct horse #battery staple";
    const config = edit(raid1Lvm(), [[/PART lvm vg0 all/, "PART lvm vg0 all crypt"], [/HOSTNAME/, `CRYPTPASSWORD ${password}\nHOSTNAME`]]);
    const run = validate(config);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    const crypttab = run.stdout.match(/^crypttab: luks-([0-9a-f-]{36}) UUID=([0-9a-f-]{36}) none luks$/m);
    expect(crypttab).not.toBeNull();
    expect(crypttab?.[1]).toBe(crypttab?.[2]);
    expect(run.stdout).toMatch(new RegExp(`^part 2: .* crypt=luks-${crypttab?.[1]} device=/dev/mapper/luks-${crypttab?.[1]} mount=lvm fs=vg0$`, "m"));
    expect(run.debug).toMatch(/^CRYPTPASSWORD \[redacted\]$/m);
    expect(run.debug).not.toContain("horse");
    expect(run.stdout).not.toContain("horse");
    // Hetzner leaves the password in /autosetup; so do we (the product scrubs it).
    expect(run.autosetup).toContain(`CRYPTPASSWORD ${password}`);
  });

  it("esp: GPT with a BIOS boot partition after the PARTs and the esp mirrored with metadata 1.0", () => {
    const run = validate(edit(raid1Lvm(), [[/PART \/boot ext4 1G/, "PART /boot/efi esp 256M\nPART /boot ext4 1G"]]), { firmware: "uefi" });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^plan: label=gpt .* bios_boot_partition=4 firmware=uefi$/m);
    expect(run.stdout).toMatch(/^part 1: start=2MiB size=256MiB type=R .* md=\/dev\/md0 metadata=1\.0 .* mount=\/boot\/efi fs=esp$/m);
    expect(run.stdout).toMatch(/^fstab: UUID=[0-9A-F]{4}-[0-9A-F]{4} \/boot\/efi vfat umask=0077 0 1$/m);
  });

  it("SWRAID 0 uses DRIVE1 only, with partition types instead of RAID", () => {
    const run = validate(edit(raid1Lvm(), [[/SWRAID 1/, "SWRAID 0"]]));
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^plan: label=dos drives=\/dev\/nvme0n1 /m);
    expect(run.stdout).toMatch(/^part 1: start=1MiB size=1024MiB type=L members=\/dev\/nvme0n1p1 md=- .* device=\/dev\/nvme0n1p1 /m);
    expect(run.stdout).toMatch(/^part 2: .* type=V members=\/dev\/nvme0n1p2 /m);
  });

  it("RAID5 on three drives sizes each member at half the array", () => {
    const config = edit(raid1Lvm(), [[/SWRAIDLEVEL 1/, "SWRAIDLEVEL 5"], [/DRIVE2 .*/, "DRIVE2 /dev/nvme1n1\nDRIVE3 /dev/nvme2n1"], [/PART lvm vg0 all/, "PART lvm vg0 20G"], [/LV vg0 root \/ ext4 all/, "LV vg0 root / ext4 10G"]]);
    const run = validate(config, { drives: `${TWO_DRIVES},/dev/nvme2n1:20G` });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^part 1: start=1MiB size=512MiB /m);
    expect(run.stdout).toMatch(/^part 2: start=513MiB size=10240MiB /m);
  });

  it("-n overrides HOSTNAME and rewrites it in /autosetup", () => {
    const run = validate(edit(raid1Lvm(), [[/HOSTNAME .*\n/, ""]]), { args: ["-n", "other.example.com"] });
    expect(run.status).toBe(0);
    expect(run.autosetup).toMatch(/^HOSTNAME other\.example\.com$/m);
  });
});

// The rescue runs it by path from a read-only share: the mode bit in git is all it gets.
it("installimage is executable", () => {
  expect(statSync(INSTALLIMAGE).mode & 0o111).toBe(0o111);
});

// Automation sees only the ERROR: line, so a failed command's last output must be on it.
it("a failed command's error line names the step, the command, its exit code and its last output", () => {
  const debugFile = join(dir, "debug-run.txt");
  const log = resolve(__dirname, "../../../lab/installimage/lib/log.sh");
  const script = `source "$1"; debug_reset; RUN_STEP="6/16 create_lvm"; debug "earlier line"; run sh -c 'echo one; echo two; echo "  Can not open /dev/md1 exclusively." >&2; exit 5'`;
  const result = spawnSync("bash", ["-c", script, "bash", log], { encoding: "utf8", env: { ...process.env, INSTALLIMAGE_DEBUG_FILE: debugFile } });
  expect(result.status).toBe(1);
  expect(result.stderr).toBe(`ERROR: step 6/16 create_lvm: 'sh -c echo\\ one\\;\\ echo\\ two\\;\\ echo\\ \\"\\ \\ Can\\ not\\ open\\ /dev/md1\\ exclusively.\\"\\ \\>\\&2\\;\\ exit\\ 5' exited with 5: one two   Can not open /dev/md1 exclusively. (all output in ${debugFile})\n`);
  expect(readFileSync(debugFile, "utf8")).toMatch(/earlier line[\s\S]*\nERROR: step 6\/16 create_lvm/);
});
