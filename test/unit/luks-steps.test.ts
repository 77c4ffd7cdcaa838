// LuksVolume's and LvmGroup's destructive shell, run by a real bash against stub tools (lsblk,
// wipefs, cryptsetup, blkid, ls: no disks here): the disk pins are re-checked in the same shell as
// luksFormat, the randomisation, wipefs and luksErase (#10 §2), and no value is ever interpolated
// inside "…", where the shell would still expand `$(…)` (#10 §3).
import { spawnSync } from "child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { eraseShell, formatShell, randomiseStartCommand, refuseIfHeld, refuseIfNotBlank, wipeShell } from "../../providers/luks-volume";
import { mkfsShell } from "../../providers/lvm-group";
import type { ShellCommand } from "../../providers/plumbing/shell";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "hfde-luks-steps-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `command` in bash with the given stub tools first on PATH; each stub is a script body. */
function run(command: ShellCommand, stubs: Record<string, string>): { status: number | null; stderr: string } {
  const bin = join(dir, "bin");
  spawnSync("mkdir", ["-p", bin]);
  for (const [name, body] of Object.entries(stubs)) {
    writeFileSync(join(bin, name), `#!/bin/bash\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  }
  const result = spawnSync("bash", ["--norc", "--noprofile", "-c", command.text], { env: { PATH: `${bin}:/usr/bin:/bin`, MARK: dir }, input: "", encoding: "utf8" });
  return { status: result.status, stderr: result.stderr };
}

const PIN = [{ serial: "PINNED-1" }];
const lsblkOn = (serial: string, wwn = "0x5000c500a1b2c3d4") =>
  `printf '%s\\n' 'TYPE="part" SERIAL="" WWN=""' 'TYPE="disk" SERIAL="${serial}" WWN="${wwn}"'`;
const NOTHING = "exit 0";
const cryptsetupMarks = `touch "$MARK/cryptsetup-$1"; [ "$1" = luksUUID ] && echo c6eb6ea1-c661-46b9-a740-e28d8c9a5756; exit 0`;

describe("disk pins, re-checked in the same round trip as the destructive command", () => {
  const format = { kind: "format" as const, device: "/dev/md1", disks: PIN, cipher: "aes-xts-plain64", keySize: 512, sectorSize: 512, pbkdf: { type: "pbkdf2" as const, iterations: 1000 }, label: null };
  const wipe = { device: "/dev/md1", disks: PIN };
  const erase = { kind: "erase" as const, device: "/dev/md1", disks: PIN, uuid: "c6eb6ea1-c661-46b9-a740-e28d8c9a5756" };
  const randomise = { device: "/dev/md1", disks: PIN, method: "urandom" as const, mayHoldData: true };

  it.each<[string, () => ShellCommand, string]>([
    ["luksFormat", () => formatShell(format), "cryptsetup-luksFormat"],
    ["wipefs", () => wipeShell(wipe), "wipefs-a"],
    ["luksErase", () => eraseShell(erase), "cryptsetup-luksErase"],
    ["randomise", () => randomiseStartCommand(randomise, join(dir, "job")), "job/device"],
  ])("%s does not run when the disk beneath is another one, and runs when it is the pinned one", (_name, command, mark) => {
    const stubs = {
      wipefs: `[ "$1" = -a ] && touch "$MARK/wipefs-a"; exit 0`,
      cryptsetup: cryptsetupMarks,
      setsid: "exit 0",
    };
    const swapped = run(command(), { ...stubs, lsblk: lsblkOn("SWAPPED-9") });
    expect(swapped.status).toBe(3);
    expect(swapped.stderr).toContain('disk {"serial":"PINNED-1"} is no longer beneath /dev/md1; nothing was written');
    expect(existsSync(join(dir, mark))).toBe(false);

    const pinned = run(command(), { ...stubs, lsblk: lsblkOn("PINNED-1") });
    expect(pinned.stderr).not.toContain("no longer beneath");
    expect(existsSync(join(dir, mark))).toBe(true);
  });

  it("matches a WWN pin case-insensitively, and a pin with serial and WWN only on the same disk", () => {
    const wwnPin = { ...format, disks: [{ wwn: "0x5000C500A1B2C3D4" }] };
    expect(run(formatShell(wwnPin), { lsblk: lsblkOn("ANY"), wipefs: NOTHING, cryptsetup: cryptsetupMarks }).status).toBe(0);
    const both = { ...format, disks: [{ serial: "PINNED-1", wwn: "0x1111111111111111" }] };
    expect(run(formatShell(both), { lsblk: lsblkOn("PINNED-1"), wipefs: NOTHING, cryptsetup: cryptsetupMarks }).status).toBe(3);
  });
});

describe("values are never interpolated inside double quotes", () => {
  // Device paths are validated elsewhere; the shell text must be safe without relying on that.
  const evil = "/dev/x$(echo INJECTED)`echo TOO`";

  it.each<[string, () => ShellCommand, Record<string, string>, string]>([
    ["refuseIfNotBlank", () => refuseIfNotBlank(evil), { wipefs: "echo ext4" }, `${evil} now holds ext4`],
    ["refuseIfHeld", () => refuseIfHeld(evil), { ls: "echo dm-0" }, `${evil} is in use by dm-0`],
    ["luksErase's header check", () => eraseShell({ kind: "erase", device: evil, disks: [], uuid: "c6eb6ea1-c661-46b9-a740-e28d8c9a5756" }), { cryptsetup: "echo 11111111-2222-3333-4444-555555555555" }, `${evil} no longer holds LUKS`],
    ["LvmGroup's mkfs guard", () => mkfsShell({ kind: "mkfs", vgName: "vg0", lv: "data", filesystem: "ext4$(echo INJECTED)" as never, wipe: false }), { blkid: "echo xfs" }, "carries xfs, not ext4$(echo INJECTED); not formatting"],
  ])("%s prints the value literally", (_name, command, stubs, literal) => {
    const { stderr } = run(command(), stubs);
    expect(stderr).toContain(literal);
    expect(stderr).not.toMatch(/xINJECTED|4INJECTED|\)TOO/);
  });
});
