import * as fs from "fs";
import { parseLabConfig } from "../../lab/config";
import { formatStatus, parseArgs, runningBootNote } from "../../lab/cli";
import type { DaemonStatus } from "../../lab/daemon";
import { consoleFileName } from "../../lab/supervisor/decisions";
import type { BootMode, ServerStatus } from "../../lab/supervisor/supervisor";
import { findMissingTools, IMAGE_TOOLS, LAB_TOOLS, missingToolsMessage } from "../../lab/prereqs";

const config = parseLabConfig({
  robot: { port: 40080, user: "robot", password: "lab-robot-secret" },
  mirror: { port: 40081 },
  servers: [
    { number: 100001, name: "lab-1", sshPort: 2201, dropbearPort: 2221 },
    { number: 100002, name: "lab-2", sshPort: 2202, dropbearPort: 2222 },
  ],
});

/** The daemon status of a lab that is up with these servers. */
function upStatus(servers: ServerStatus[]): DaemonStatus {
  return { pid: 42, ready: true, startedAt: "", updatedAt: "", robotUrl: "http://127.0.0.1:40080", servers };
}

/** `config`'s server `index`, running boot `bootNo` with `pulledDrives` out. */
function running(index: number, bootNo: number, mode: BootMode, pulledDrives: number[] = []): ServerStatus {
  const { number, name, sshPort, dropbearPort } = config.servers[index];
  const consoleLog = `/state/servers/${number}/${consoleFileName(bootNo, mode)}`;
  return { number, name, power: "running", sshPort, dropbearPort, boot: { bootNo, mode, pulledDrives, consoleLog, startedAt: "" } };
}

describe("lab CLI", () => {
  it.each<[string[], unknown]>([
    [["up"], { command: "up", rest: [], configPath: undefined, follow: false }],
    [["console", "lab-1", "-f"], { command: "console", rest: ["lab-1"], configPath: undefined, follow: true }],
    [["--config", "x.json", "status"], { command: "status", rest: [], configPath: "x.json", follow: false }],
    [[], { command: "", rest: [], configPath: undefined, follow: false }],
    [["drive", "pull", "lab-1", "0"], { command: "drive", rest: ["pull", "lab-1", "0"], configPath: undefined, follow: false }],
    [["drive", "list"], { command: "drive", rest: ["list"], configPath: undefined, follow: false }],
  ])("parseArgs(%p)", (argv, expected) => {
    expect(parseArgs(argv)).toEqual(expected);
  });

  it("status of a running lab shows Robot URL, credentials, power, boot mode and ports", () => {
    const text = formatStatus(config, "/state", upStatus([running(0, 3, "rescue"), { number: 100002, name: "lab-2", power: "off", sshPort: 2202, dropbearPort: 2222 }]), true);
    expect(text).toMatch(/^Lab is up \(daemon pid 42, state \/state\)/);
    expect(text).toMatch(/Robot: +http:\/\/127\.0\.0\.1:40080 +user robot +password lab-robot-secret/);
    expect(text).toMatch(/100001 lab-1 +running +boot 3 rescue +ssh 127\.0\.0\.1:2201 +dropbear 127\.0\.0\.1:2221/);
    expect(text).toMatch(/100002 lab-2 +off +- +ssh 127\.0\.0\.1:2202/);
  });

  it("status shows pulled drives with serials, and a running boot that still has another set", () => {
    const text = formatStatus(config, "/state", upStatus([running(0, 3, "rescue"), running(1, 2, "disk", [1])]), true, { 100001: [0], 100002: [1] });
    expect(text).toMatch(/100001 lab-1 .*\n {4}pulled: disk 0 \(LAB100001N0\)\n {4}the running boot has every disk in; the pulled set above takes effect at the server's next power-on or reset: a Robot reset \(POST \/reset\/100001 type=hw/);
    expect(text).toMatch(/100002 lab-2 .*\n {4}pulled: disk 1 \(LAB100002N1\)\n(?! {4}the running boot)/);
  });

  it.each<[number[], number[] | undefined, RegExp | undefined]>([
    [[0], [0], undefined],
    [[0], undefined, undefined],
    [[], [0], /^the running boot has disk 0 pulled; the pulled set above takes effect at the server's next power-on or reset: a Robot reset \(POST \/reset\/100001 /],
    [[1], [], /^the running boot has every disk in;/],
  ])("runningBootNote(%p, %p)", (pulled, running, expected) => {
    const note = runningBootNote(pulled, running, 100001);
    if (expected) expect(note).toMatch(expected);
    else expect(note).toBeUndefined();
  });

  it("status of a stopped lab says how to start it and shows every server off", () => {
    const text = formatStatus(config, "/state", undefined, false);
    expect(text).toMatch(/Lab is down .*npm run lab -- up/);
    expect(text.match(/ off /g)).toHaveLength(2);
  });
});

describe("lab prerequisites", () => {
  it("finds tools on PATH and in sbin, and reports the ones missing", () => {
    expect(findMissingTools(LAB_TOOLS, "/nonexistent").map((t) => t.file)).toEqual(
      LAB_TOOLS.filter((t) => !["/usr/sbin", "/sbin"].some((d) => fs.existsSync(`${d}/${t.file}`))).map((t) => t.file),
    );
    expect(findMissingTools([{ file: "sh", debianPackage: "dash", group: "tests", why: "" }], "/bin:/usr/bin")).toEqual([]);
  });

  it("prints the exact apt-get line, naming each missing tool", () => {
    expect(missingToolsMessage([])).toBeUndefined();
    const message = missingToolsMessage([LAB_TOOLS[0], IMAGE_TOOLS[0]]);
    expect(message).toMatch(/qemu-system-x86_64 \(Debian package qemu-system-x86\): runs the lab servers/);
    expect(message).toMatch(/debootstrap \(Debian package debootstrap\)/);
    expect(message).toMatch(/\n {2}sudo apt-get install -y qemu-system-x86 qemu-utils coreutils ovmf debootstrap cpio kmod dpkg dpkg-dev util-linux mount gzip lz4 zstd xz-utils$/);
  });
});
