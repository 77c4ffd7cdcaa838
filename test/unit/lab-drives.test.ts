import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { LabServerConfig } from "../../lab/config";
import { applyDriveChange, changePulledDrives, describeDrives, DriveChange, parseDiskIndex, PULLED_DRIVES_FILE, readPulledDrives } from "../../lab/supervisor/drives";
import { LAB_SERVER } from "./lab-fixtures";

const server = LAB_SERVER;
const three = { ...server, disks: { ...server.disks, count: 3 } };
const single = { ...server, disks: { ...server.disks, count: 1 } };
const pull = (index: number): DriveChange => ({ kind: "pull", index });
const insert = (index: number): DriveChange => ({ kind: "insert", index });

describe("applyDriveChange", () => {
  it.each<[string, LabServerConfig, number[], DriveChange, number[]]>([
    ["pull into an empty set", server, [], pull(0), [0]],
    ["pull again changes nothing", server, [0], pull(0), [0]],
    ["insert", server, [1], insert(1), []],
    ["insert a drive that is in changes nothing", server, [], insert(0), []],
    ["sorted", three, [2], pull(0), [0, 2]],
    ["insert with the last one out", three, [0, 1], insert(0), [1]],
  ])("%s", (_what, srv, pulled, change, expected) => {
    expect(applyDriveChange(srv, pulled, change)).toEqual(expected);
  });

  it.each<[string, LabServerConfig, number[], DriveChange, RegExp]>([
    ["index past the last disk", server, [], pull(2), /server 100001 \(lab-1\) has disks 0 to 1; disk 2 does not exist: pass an index from 0 to 1/],
    ["negative index", server, [], insert(-1), /disk -1 does not exist/],
    ["fractional index", server, [], pull(0.5), /disk 0.5 does not exist/],
    ["the last drive in", server, [1], pull(0), /cannot pull disk 0 of server 100001 \(lab-1\): it is the last drive in \(disk 1 is already pulled\); insert one first: npm run lab -- drive insert 100001 1/],
    ["the last drive of three", three, [0, 2], pull(1), /disks 0, 2 are already pulled\); insert one first: npm run lab -- drive insert 100001 0/],
    ["the only disk", single, [], pull(0), /it is the server's only disk; give it disks.count 2 or more/],
  ])("refuses %s", (_what, srv, pulled, change, message) => {
    expect(() => applyDriveChange(srv, pulled, change)).toThrow(message);
  });
});

describe("parseDiskIndex", () => {
  it.each([["0", 0], ["1", 1]])("%p", (text, index) => expect(parseDiskIndex(server, text)).toBe(index));
  it.each([
    ["x", /a disk index is a whole number from 0 to 1 \(server 100001 lab-1\), got "x"/],
    ["-1", /got "-1"/],
    ["1.0", /got "1.0"/],
    ["2", /disk 2 does not exist/],
  ])("refuses %p", (text, message) => expect(() => parseDiskIndex(server, text)).toThrow(message));
});

describe("the pulled-drives file", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-drives-"));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("is absent until a drive is pulled: every drive in", () => {
    expect(readPulledDrives(path.join(dir, "servers", "100001"), server)).toEqual([]);
  });

  it("round-trips pull and insert through the file, creating the server dir, with no temp file left", () => {
    const serverDir = path.join(dir, "servers", "100001");
    expect(changePulledDrives(serverDir, three, pull(2))).toEqual([2]);
    expect(changePulledDrives(serverDir, three, pull(0))).toEqual([0, 2]);
    expect(readPulledDrives(serverDir, three)).toEqual([0, 2]);
    expect(JSON.parse(fs.readFileSync(path.join(serverDir, PULLED_DRIVES_FILE), "utf8"))).toEqual({ pulled: [0, 2] });
    expect(changePulledDrives(serverDir, three, insert(2))).toEqual([0]);
    expect(fs.readdirSync(serverDir)).toEqual([PULLED_DRIVES_FILE]);
  });

  it("writes nothing for a change that changes nothing", () => {
    expect(changePulledDrives(path.join(dir, "servers", "100001"), server, insert(1))).toEqual([]);
    expect(fs.existsSync(path.join(dir, "servers"))).toBe(false);
  });

  it("keeps the file unchanged when a change is refused", () => {
    changePulledDrives(dir, server, pull(0));
    expect(() => changePulledDrives(dir, server, pull(1))).toThrow(/last drive in/);
    expect(readPulledDrives(dir, server)).toEqual([0]);
  });

  it.each([
    ["not JSON", "pulled: 0"],
    ["no list", `{"pulled": 0}`],
    ["not numbers", `{"pulled": ["0"]}`],
  ])("names the file and the fix when it is %s", (_what, text) => {
    fs.writeFileSync(path.join(dir, PULLED_DRIVES_FILE), text);
    expect(() => readPulledDrives(dir, server)).toThrow(new RegExp(`${PULLED_DRIVES_FILE} must be \\{"pulled": \\[<disk index>, …\\]\\}, found .*: fix it or delete it to put every drive of server 100001 back in`));
  });

  it("checks the file against the current config (disks.count may have shrunk)", () => {
    fs.writeFileSync(path.join(dir, PULLED_DRIVES_FILE), `{"pulled": [2]}`);
    expect(() => readPulledDrives(dir, server)).toThrow(/disk 2 does not exist/);
  });
});

describe("describeDrives", () => {
  it("lists every disk with its serial and whether it is in", () => {
    expect(describeDrives(server, [0])).toEqual(["disk 0  LAB100001N0    pulled", "disk 1  LAB100001N1    in"]);
    expect(describeDrives({ ...server, disks: { ...server.disks, type: "sata" } }, [])).toEqual(["disk 0  LAB100001S0    in", "disk 1  LAB100001S1    in"]);
  });
});
