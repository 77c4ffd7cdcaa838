// Lab checkpoints without a VM: the pure decisions (prune order, boot of a restored server, cache
// keys) and the store on real qcow2 files made with qemu-img (tiny and sparse, so this stays fast).
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseLabConfig } from "../../lab/config";
import { cacheMaxBytes, canonicalJson, chooseToPrune, recipeKey, restoredBootTarget, shapeMismatch } from "../../lab/checkpoints/plan";
import { sourceHash } from "../../lab/checkpoints/source";
import { backingFile, completeRestores, CorruptCheckpoint, listCheckpoints, pruneCheckpoints, restoreCheckpoint, saveCheckpoint, takeRestoredBoot, verifyCheckpoint } from "../../lab/checkpoints/store";
import type { ServerState } from "../../lab/robot/model";
import { relocatePorts } from "../support/prepared-host";

const HOST_KEY = { type: "ssh-ed25519", privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nlab\n-----END OPENSSH PRIVATE KEY-----", publicKey: "ssh-ed25519 AAAAlab root@rescue" };
const STORED_KEY = { name: "op", fingerprint: "aa:bb", type: "ED25519", size: 256, data: "ssh-ed25519 AAAAop op", createdAt: "2026-01-01 00:00:00" };
const RESCUE = { os: "linux", arch: 64, keyboard: "us", password: "lab-rescue-pw", keys: [STORED_KEY], hostKeys: [HOST_KEY], armedAt: 1000 };
const RECORD: ServerState = { name: "lab-1", power: "running", manualResetPending: false, failNextReset: false, rescue: null, lastRescue: { ...RESCUE, bootedAt: 2000 }, activeOtherBoot: null };

describe("checkpoint decisions", () => {
  it("prunes least recently used first, never one in use or kept, and stops once the cache fits", () => {
    const entries = [
      { name: "newest", bytes: 3, lastUsedMs: 400, inUse: false },
      { name: "oldest-in-use", bytes: 5, lastUsedMs: 100, inUse: true },
      { name: "old", bytes: 2, lastUsedMs: 200, inUse: false },
      { name: "middle", bytes: 4, lastUsedMs: 300, inUse: false },
      { name: "just-saved", bytes: 6, lastUsedMs: 50, inUse: false },
    ];
    expect(chooseToPrune(entries, 100)).toEqual([]);
    expect(chooseToPrune(entries, 14, ["just-saved"])).toEqual(["old", "middle"]);
    expect(chooseToPrune(entries, 0, ["just-saved"])).toEqual(["old", "middle", "newest"]);
    expect(chooseToPrune(entries, 19)).toEqual(["just-saved"]);
  });

  it("a restored server boots the rescue it ran (same password, host key, authorized keys) or its disks", () => {
    expect(restoredBootTarget({ boot: "rescue", serverNumber: 1, robot: { server: RECORD, keys: [] } })).toEqual({
      kind: "rescue",
      rescue: { password: "lab-rescue-pw", authorizedKeys: ["ssh-ed25519 AAAAop op"], hostKeys: [HOST_KEY] },
    });
    expect(restoredBootTarget({ boot: "disk", serverNumber: 1, robot: { server: RECORD, keys: [] } })).toEqual({ kind: "disk" });
    expect(() => restoredBootTarget({ boot: "rescue", serverNumber: 7, robot: { server: { ...RECORD, lastRescue: null }, keys: [] } })).toThrow(/server 7 .*no last rescue/);
  });

  it("a checkpoint fits only a server of its shape", () => {
    const shape = { disks: { count: 2, sizeGiB: 6, type: "nvme" as const }, firmware: "bios" as const };
    expect(shapeMismatch(shape, shape)).toBeUndefined();
    expect(shapeMismatch(shape, { ...shape, disks: { ...shape.disks, sizeGiB: 20 }, firmware: "uefi" })).toBe("disks of 6 GiB saved, the server's are 20 GiB; firmware bios saved, the server uses uefi");
  });

  it("the recipe key changes with the inputs, the image recipes and the source, and not with key order", () => {
    const base = { recipe: "r", inputs: { a: 1, b: [1, 2] }, images: { rescue: "1", images: "2" }, source: "s" };
    const key = recipeKey(base);
    expect(recipeKey({ ...base, inputs: { b: [1, 2], a: 1 } })).toBe(key);
    expect(canonicalJson({ b: 1, a: { d: 1, c: undefined } })).toBe('{"a":{"d":1},"b":1}');
    for (const changed of [{ inputs: { a: 2, b: [1, 2] } }, { images: { rescue: "1", images: "3" } }, { source: "t" }, { recipe: "q" }]) {
      expect(recipeKey({ ...base, ...changed })).not.toBe(key);
    }
  });

  it("the source hash sees an edited, added, removed or renamed file", () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-src-"));
    try {
      fs.mkdirSync(path.join(root, "providers", "x"), { recursive: true });
      fs.writeFileSync(path.join(root, "providers", "x", "a.ts"), "one");
      const hash = () => sourceHash(root, ["providers", "lab"]);
      const first = hash();
      expect(hash()).toBe(first);
      fs.writeFileSync(path.join(root, "providers", "x", "a.ts"), "two");
      const edited = hash();
      expect(edited).not.toBe(first);
      fs.writeFileSync(path.join(root, "providers", "b.ts"), "");
      const added = hash();
      expect(added).not.toBe(edited);
      fs.renameSync(path.join(root, "providers", "b.ts"), path.join(root, "providers", "c.ts"));
      expect(hash()).not.toBe(added);
      fs.rmSync(path.join(root, "providers", "c.ts"));
      expect(hash()).toBe(edited);
      fs.mkdirSync(path.join(root, "lab"));
      expect(hash()).not.toBe(edited); // "lab" was listed as missing; now it is there (empty)
      // An excluded tree does not count; the rest still does.
      const withoutX = () => sourceHash(root, ["providers", "lab"], ["providers/x"]);
      const before = withoutX();
      fs.writeFileSync(path.join(root, "providers", "x", "a.ts"), "three");
      expect(withoutX()).toBe(before);
      expect(hash()).not.toBe(before);
      fs.writeFileSync(path.join(root, "providers", "d.ts"), "");
      expect(withoutX()).not.toBe(before);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("the cache bound comes from HFDE_CHECKPOINT_MAX_GIB, 16 GiB by default, and a bad value is named", () => {
    expect(cacheMaxBytes({})).toBe(16 * 2 ** 30);
    expect(cacheMaxBytes({ HFDE_CHECKPOINT_MAX_GIB: "0.5" })).toBe(2 ** 29);
    expect(() => cacheMaxBytes({ HFDE_CHECKPOINT_MAX_GIB: "lots" })).toThrow('HFDE_CHECKPOINT_MAX_GIB must be a positive number of GiB (e.g. 16), got "lots"');
  });

  it("facts move from the build fixture's ports to the restored fixture's", () => {
    const facts = { profile: { host: "127.0.0.1", port: 4001, user: "root" }, other: { host: "10.0.0.1", port: 4001 }, knownHosts: ["[127.0.0.1]:4001 ssh-ed25519 AAAA"], hostPort: "127.0.0.1:4001", n: 4001 };
    expect(relocatePorts(facts, [[4001, 5001]])).toEqual({ profile: { host: "127.0.0.1", port: 5001, user: "root" }, other: { host: "10.0.0.1", port: 4001 }, knownHosts: ["[127.0.0.1]:5001 ssh-ed25519 AAAA"], hostPort: "127.0.0.1:5001", n: 4001 });
  });
});

describe("checkpoint store (real qcow2 files, no VM)", () => {
  const config = parseLabConfig({
    robot: { port: 40080, user: "robot", password: "x" },
    mirror: { port: 40081 },
    servers: [{ number: 100001, name: "lab-1", sshPort: 40082, dropbearPort: 40083, disks: { count: 2, sizeGiB: 1, type: "nvme" } }],
  });
  const server = config.servers[0];
  let root: string;
  let cacheDir: string;

  const makeState = (name: string): string => {
    const stateDir = path.join(root, name);
    const dir = path.join(stateDir, "servers", "100001");
    fs.mkdirSync(dir, { recursive: true });
    for (const disk of ["disk0.qcow2", "disk1.qcow2"]) execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", path.join(dir, disk), "1G"]);
    fs.writeFileSync(path.join(dir, "console-1-rescue.log"), "");
    fs.writeFileSync(path.join(stateDir, "robot-state.json"), JSON.stringify({ version: 1, servers: { "100001": RECORD }, keys: [STORED_KEY] }));
    return stateDir;
  };
  const disk = (stateDir: string, i: number) => path.join(stateDir, "servers", "100001", `disk${i}.qcow2`);
  const qemuIo = (file: string, command: string) => execFileSync("qemu-io", ["-f", "qcow2", "-c", command, file], { encoding: "utf8" });

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-ckpt-"));
    cacheDir = path.join(root, "cache");
  });
  afterEach(() => {
    // Bases are read-only; the tree is ours to remove.
    fs.rmSync(root, { recursive: true, force: true });
  });

  it("save then restore: the disks read the same through overlays on read-only bases, the Robot record and next boot come back", async () => {
    const saved = makeState("saved");
    qemuIo(disk(saved, 0), "write -P 0xab 0 64k");
    qemuIo(disk(saved, 1), "write -P 0xcd 1M 64k");
    const manifest = await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "installed", extra: { note: "facts" } });
    expect(manifest).toMatchObject({ name: "installed", boot: "rescue", serverNumber: 100001, extra: { note: "facts" } });
    expect(fs.statSync(path.join(cacheDir, "installed", "disk0.qcow2")).mode & 0o777).toBe(0o444);
    expect(fs.statSync(path.join(cacheDir, "installed", "manifest.json")).mode & 0o777).toBe(0o600);

    const target = makeState("target");
    qemuIo(disk(target, 0), "write -P 0x11 0 64k"); // what the restore replaces
    await restoreCheckpoint({ cacheDir, stateDir: target, server, name: "installed" });
    expect(backingFile(disk(target, 0))).toBe(path.join(cacheDir, "installed", "disk0.qcow2"));
    expect(qemuIo(disk(target, 0), "read -P 0xab 0 64k")).not.toMatch(/mismatch/i);
    expect(qemuIo(disk(target, 1), "read -P 0xcd 1M 64k")).not.toMatch(/mismatch/i);
    const robot = JSON.parse(fs.readFileSync(path.join(target, "robot-state.json"), "utf8"));
    expect(robot.servers["100001"]).toEqual(RECORD);
    expect(robot.keys).toEqual([STORED_KEY]);
    expect(takeRestoredBoot(target, 100001, RECORD)).toEqual({ kind: "rescue", rescue: { password: "lab-rescue-pw", authorizedKeys: [STORED_KEY.data], hostKeys: [HOST_KEY] } });
    expect(takeRestoredBoot(target, 100001, RECORD)).toBeUndefined(); // once

    // Writes to the restored server land in its overlay; the checkpoint is untouched.
    qemuIo(disk(target, 0), "write -P 0x22 0 64k");
    await verifyCheckpoint(cacheDir, "installed");
    const again = makeState("again");
    await restoreCheckpoint({ cacheDir, stateDir: again, server, name: "installed" });
    expect(qemuIo(disk(again, 0), "read -P 0xab 0 64k")).not.toMatch(/mismatch/i);
  });

  it("a corrupt checkpoint is refused before anything is touched: a damaged header, a truncated disk, a lost manifest", async () => {
    const saved = makeState("saved");
    qemuIo(disk(saved, 0), "write -P 0xab 0 1M");
    await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "c1" });
    await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "c2" });
    await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "c3" });
    const file = (name: string) => path.join(cacheDir, name, "disk0.qcow2");
    for (const name of ["c1", "c2"]) fs.chmodSync(file(name), 0o644);
    // c1: garbage over its header; c2: cut short; c3: its manifest lost.
    const fd = fs.openSync(file("c1"), "r+");
    fs.writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 0);
    fs.closeSync(fd);
    fs.truncateSync(file("c2"), Math.floor(fs.statSync(file("c2")).size / 2));
    fs.rmSync(path.join(cacheDir, "c3", "manifest.json"));

    const target = makeState("target");
    qemuIo(disk(target, 0), "write -P 0x11 0 64k");
    await expect(restoreCheckpoint({ cacheDir, stateDir: target, server, name: "c1" })).rejects.toThrow(/checkpoint c1 is unusable: qemu-img check disk0.qcow2 failed/);
    await expect(restoreCheckpoint({ cacheDir, stateDir: target, server, name: "c2" })).rejects.toThrow(/checkpoint c2 is unusable: disk0.qcow2 has \d+ bytes, \d+ were saved/);
    await expect(restoreCheckpoint({ cacheDir, stateDir: target, server, name: "c3" })).rejects.toBeInstanceOf(CorruptCheckpoint);
    expect(backingFile(disk(target, 0))).toBeUndefined();
    expect(qemuIo(disk(target, 0), "read -P 0x11 0 64k")).not.toMatch(/mismatch/i);
  });

  it("a restore cut short after its journal is completed on the next start; one cut short before it leaves the server as it was", async () => {
    const saved = makeState("saved");
    await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "cp" });
    const target = makeState("target");
    const dir = path.join(target, "servers", "100001");
    // Before the commit point: staged files only.
    fs.writeFileSync(path.join(dir, "disk0.qcow2.restoring"), "staged");
    fs.writeFileSync(path.join(target, "robot-state.json.restoring"), "staged");
    await completeRestores(target);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith(".restoring"))).toEqual([]);
    expect(backingFile(disk(target, 0))).toBeUndefined();
    // After it: the journal's renames are carried out.
    const overlay = path.join(dir, "disk0.qcow2.restoring");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", path.join(cacheDir, "cp", "disk0.qcow2"), overlay]);
    fs.writeFileSync(path.join(dir, "restore.journal.json"), JSON.stringify([[overlay, disk(target, 0)]]));
    await completeRestores(target);
    expect(backingFile(disk(target, 0))).toBe(path.join(cacheDir, "cp", "disk0.qcow2"));
    expect(fs.existsSync(path.join(dir, "restore.journal.json"))).toBe(false);
  });

  it("prune sweeps killed saves and spares a checkpoint whose overlays a lab state still uses", async () => {
    const saved = makeState("saved");
    await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "used" });
    await saveCheckpoint({ cacheDir, stateDir: saved, server, name: "free" });
    fs.mkdirSync(path.join(cacheDir, ".tmp-killed-999999999-0123abcd"));
    const target = makeState("target");
    await restoreCheckpoint({ cacheDir, stateDir: target, server, name: "used" });
    expect(listCheckpoints(cacheDir).map((e) => [e.name, e.inUse]).sort()).toEqual([["free", false], ["used", true]]);
    expect(await pruneCheckpoints(cacheDir, 0)).toEqual(["free"]);
    expect(fs.readdirSync(cacheDir)).toEqual(["used"]);
    fs.rmSync(target, { recursive: true, force: true });
    expect(await pruneCheckpoints(cacheDir, 0)).toEqual(["used"]);
  });

  it("refuses to save a server whose rescue is armed again, or a shape that does not fit on restore", async () => {
    const saved = makeState("saved");
    fs.writeFileSync(path.join(saved, "robot-state.json"), JSON.stringify({ version: 1, servers: { "100001": { ...RECORD, rescue: RESCUE } }, keys: [] }));
    await expect(saveCheckpoint({ cacheDir, stateDir: saved, server, name: "x" })).rejects.toThrow(/has rescue armed again for its next boot/);
    await expect(saveCheckpoint({ cacheDir, stateDir: saved, server, name: "x", boot: "disk" })).resolves.toMatchObject({ boot: "disk" });
    const bigger = { ...server, disks: { ...server.disks, sizeGiB: 2 } };
    await expect(restoreCheckpoint({ cacheDir, stateDir: makeState("t"), server: bigger, name: "x" })).rejects.toThrow("checkpoint x does not fit server 100001: disks of 1 GiB saved, the server's are 2 GiB");
    await expect(saveCheckpoint({ cacheDir, stateDir: saved, server, name: "../escape" })).rejects.toThrow(/checkpoint name must be/);
  });
});
