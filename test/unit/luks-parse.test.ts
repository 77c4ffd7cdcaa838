// Parsing what cryptsetup, blkid, wipefs, dmsetup and the LuksVolume probe print, with output
// captured from the lab rescue (luks-fixtures.ts) and hand-made variants of it.
import {
  addKeyCommand,
  formatCommand,
  killSlotCommand,
  luksUuidOfDmUuid,
  parseBlkidExport,
  parseCryptStatus,
  parseDmsetupInfo,
  parseLuksMetadata,
  parseUnlockedSlot,
  parseWipefsTypes,
  pbkdfWords,
  twoKeys,
} from "../../providers/storage/cryptsetup";
import { disksOf, parseDdProgress, parseProbe, probeScript } from "../../providers/luks-volume";
import { Secret } from "../../providers/plumbing/secret";
import { PROBE_OPEN_LUKS } from "./luks-fixtures";

const UUID = "c6eb6ea1-c661-46b9-a740-e28d8c9a5756";

describe("luksDump --dump-json-metadata", () => {
  it("reads cipher, key size, sector size and keyslots (numbers and KDF only)", () => {
    const meta = parseLuksMetadata(PROBE_OPEN_LUKS.luks);
    expect(meta).toEqual({
      cipher: "aes-xts-plain64",
      keySizeBits: 512,
      sectorSize: 512,
      keyslots: [{ slot: 0, kdf: { type: "argon2id", iterations: 4, memoryKiB: 32768, parallelism: 1 } }],
      flags: [],
    });
    expect(JSON.stringify(meta)).not.toMatch(/salt|digest/);
  });

  it("reads pbkdf2 slots, several slots in order, and persistent flags", () => {
    const base = JSON.parse(JSON.stringify(PROBE_OPEN_LUKS.luks));
    base.keyslots["3"] = { type: "luks2", key_size: 64, kdf: { type: "pbkdf2", hash: "sha256", iterations: 120000, salt: "x" } };
    base.config.flags = ["allow-discards"];
    base.segments["0"].sector_size = 4096;
    const meta = parseLuksMetadata(base);
    expect(meta.keyslots.map((k) => k.slot)).toEqual([0, 3]);
    expect(meta.keyslots[1].kdf).toEqual({ type: "pbkdf2", iterations: 120000, memoryKiB: null, parallelism: null });
    expect(meta.flags).toEqual(["allow-discards"]);
    expect(meta.sectorSize).toBe(4096);
  });

  it.each([
    ["no segments", { keyslots: {} }, /segments: expected an object/],
    ["segment without encryption", { keyslots: {}, segments: { "0": { sector_size: 512 } } }, /segments.0.encryption/],
    ["keyslot without kdf", { keyslots: { "0": { key_size: 64 } }, segments: { "0": { encryption: "aes-xts-plain64", sector_size: 512 } } }, /keyslots.0.kdf/],
  ])("refuses %s, naming the field", (_name, json, message) => {
    expect(() => parseLuksMetadata(json)).toThrow(message);
  });
});

describe("small tool outputs", () => {
  it.each([
    ["No usable token is available.\nKey slot 2 unlocked.\nCommand successful.\n", 2],
    ["Key slot 0 unlocked.", 0],
    ["No key available with this passphrase.\n", null],
  ])("unlocked slot of %j is %p", (text, slot) => expect(parseUnlockedSlot(text)).toBe(slot));

  it("blkid export, wipefs types, dmsetup info and cryptsetup status", () => {
    const blkid = parseBlkidExport(Buffer.from(PROBE_OPEN_LUKS.blkid, "base64").toString());
    expect(blkid).toMatchObject({ UUID, LABEL: "lab-data", SUBSYSTEM: "hetzner-fde", TYPE: "crypto_LUKS" });
    expect(parseWipefsTypes(PROBE_OPEN_LUKS.wipefs)).toEqual(["crypto_LUKS"]);
    expect(parseWipefsTypes({ signatures: [] })).toEqual([]);
    expect(parseDmsetupInfo("No devices found\n")).toEqual([]);
    expect(parseDmsetupInfo("data CRYPT-LUKS2-c6eb6ea1c66146b9a740e28d8c9a5756-data\nhfde-wipe-x CRYPT-PLAIN-hfde-wipe-x\nvg0-root LVM-abc\n")).toEqual([
      { name: "data", cryptType: "LUKS2", luksUuid: UUID },
      { name: "hfde-wipe-x", cryptType: "PLAIN", luksUuid: null },
      { name: "vg0-root", cryptType: null, luksUuid: null },
    ]);
    expect(luksUuidOfDmUuid("CRYPT-LUKS2-c6eb6ea1c66146b9a740e28d8c9a5756-data")).toBe(UUID);
    expect(parseCryptStatus(Buffer.from(PROBE_OPEN_LUKS.status, "base64").toString())).toEqual({ active: true, discards: false, device: "/dev/nvme1n1p1" });
    expect(parseCryptStatus("/dev/mapper/x is active.\n  flags:   discards \n").discards).toBe(true);
    expect(parseCryptStatus("/dev/mapper/x is inactive.\n").active).toBe(false);
  });

  it("lsblk -s: the disks beneath a partition or an md array, once each", () => {
    expect(disksOf(PROBE_OPEN_LUKS.lsblk)).toEqual([{ path: "/dev/nvme1n1", serial: "LAB100001N1", wwn: PROBE_OPEN_LUKS.lsblk.blockdevices[0].wwn }]);
    const md = { blockdevices: [{ path: "/dev/md1", type: "raid1", children: [
      { path: "/dev/nvme0n1p2", type: "part", children: [{ path: "/dev/nvme0n1", type: "disk", serial: "S1 ", wwn: null }] },
      { path: "/dev/nvme1n1p2", type: "part", children: [{ path: "/dev/nvme1n1", type: "disk", serial: "S2", wwn: "eui.0025388b91d2a1b3" }] },
    ] }] };
    expect(disksOf(md)).toEqual([
      { path: "/dev/nvme0n1", serial: "S1", wwn: null },
      { path: "/dev/nvme1n1", serial: "S2", wwn: "eui.0025388b91d2a1b3" },
    ]);
  });

  it.each([
    ["1073741824 bytes (1.1 GB, 1.0 GiB) copied, 7 s, 153 MB/s", 4294967296, "1.1 GB of 4.3 GB (25%), 153 MB/s"],
    ["4294967296 bytes (4.3 GB, 4.0 GiB) copied, 30.2 s, 142 MB/s", 4294967296, "4.3 GB of 4.3 GB (100%), 142 MB/s"],
    ["dd: error writing '/dev/mapper/x': No space left on device", 1, null],
  ])("dd progress %j", (line, total, expected) => expect(parseDdProgress(line, total)).toBe(expected));
});

describe("the probe's JSON", () => {
  it("becomes typed facts, with tested passphrases split into roles", () => {
    const observed = parseProbe(PROBE_OPEN_LUKS, { extras: 1, retired: 0 });
    expect(observed.exists).toBe(true);
    expect(observed.sizeBytes).toBe(4294967296);
    expect(observed.luks).toMatchObject({ uuid: UUID, label: "lab-data", subsystem: "hetzner-fde" });
    expect(observed.keys).toEqual({ passphrase: 0, extras: [null], retired: [] });
    expect(observed.mappings).toEqual([{ name: "data", cryptType: "LUKS2", luksUuid: UUID }]);
    expect(observed.status).toEqual({ active: true, discards: false });
    expect(observed.crypttab).toContain(`data UUID=${UUID} none luks`);
    expect(observed.randomise).toEqual({ running: false, device: null, exitCode: null });
  });

  it("without key tests (refresh) reports keys as unknown, and a missing device as absent", () => {
    expect(parseProbe(PROBE_OPEN_LUKS, null).keys).toBeNull();
    const missing = parseProbe({ exists: false, dm: "", status: "", job: { running: false, device: "", rc: "" } }, null);
    expect(missing).toMatchObject({ exists: false, luks: null, signatures: [], crypttab: null });
  });

  it("refuses output that is not the probe's", () => {
    expect(() => parseProbe({ hello: 1 }, null)).toThrow(/expected \{"exists"/);
  });
});

describe("command builders keep secrets out of the command text", () => {
  it("luksFormat reads the passphrase from stdin and spells out every parameter", () => {
    const text = formatCommand({ device: "/dev/md1", cipher: "aes-xts-plain64", keySizeBits: 512, sectorSize: 4096, pbkdf: { type: "argon2id", memoryKiB: 65536, iterations: 4, parallelism: 2 }, label: "root disk", subsystem: "hetzner-fde" }).text;
    expect(text).toBe(
      "cryptsetup luksFormat -q --type luks2 --cipher aes-xts-plain64 --key-size 512 --sector-size 4096 --pbkdf argon2id --pbkdf-memory 65536 --pbkdf-parallel 2 --pbkdf-force-iterations 4 --label 'root disk' --subsystem hetzner-fde --key-file=- /dev/md1",
    );
    expect(pbkdfWords({ type: "pbkdf2", iterTimeMs: 500 })).toEqual(["--pbkdf", "pbkdf2", "--iter-time", "500"]);
  });

  it("luksAddKey takes both passphrases on stdin, NUL-terminated", () => {
    const text = addKeyCommand("/dev/md1", { type: "argon2id" }).text;
    expect(text).toMatch(/^bash -c '/);
    expect(text).toContain("--key-file=<(printf");
    expect(twoKeys(new Secret("old one"), new Secret("new one")).reveal()).toBe("old one\0new one\0");
    expect(String(twoKeys(new Secret("a"), new Secret("b")))).toBe("[secret]");
    expect(killSlotCommand("/dev/md1", 3).text).toBe("cryptsetup luksKillSlot -q --key-file=- /dev/md1 3");
  });

  it("the probe script quotes every value it is given", () => {
    const text = probeScript({ device: "/dev/md1", mapperName: "x'; reboot; '", crypttab: { root: "/mnt" } }).text;
    expect(text).not.toContain("x'; reboot");
    expect(text).toMatch(/^bash -c '/);
  });
});
