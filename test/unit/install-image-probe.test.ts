// InstallImage's probe: the script runs in a real shell and prints one JSON document; the parser
// turns the lab host's output into facts; drift and the boot check judge those facts; the md RAID
// parsers read what mdadm and sysfs print.
import { execFileSync } from "child_process";
import { driftOf, outputsFrom, parseInstallProbe, probeCommand, probeScriptText } from "../../providers/install-image";
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { bootProblems, isDegraded, normalizeMdUuid, parseArrayLines, parseMdArray, parseMemberStates, parseSync, uuidReferences } from "../../providers/storage/md";
import { MD0_UUID, MD1_UUID, raid1Lvm, rawProbe } from "./install-image-fixtures";

describe("probe script", () => {
  it("runs in a plain shell where nothing is installed and prints JSON the parser accepts", () => {
    const script = probeCommand({ ...raid1Lvm(), drives: [{ path: "/dev/hfde-no-such-disk" }] });
    const stdout = execFileSync("bash", ["-c", script.text], { input: probeScriptText(), encoding: "utf8", env: { ...process.env, LC_ALL: "C", PATH: `${process.env.PATH}` } });
    const observed = parseInstallProbe(JSON.parse(stdout));
    expect(observed.drives).toEqual([expect.objectContaining({ path: "/dev/hfde-no-such-disk", exists: false })]);
    expect(observed.root).toBeNull();
    expect(observed.installer).toEqual({ running: false, exitCode: null, startedFor: null });
    expect(observed.imageFound).toBe(false);
  });

  it("quotes every drive path: a hostile path stays one word, and is looked at as a path", () => {
    const hostile = `/dev/x; touch /tmp/hfde-pwned-${process.pid}`;
    const script = probeCommand({ ...raid1Lvm(), drives: [{ path: hostile }, { path: "/dev/hfde-no-such-disk" }] });
    expect(script.text).toContain(`'${hostile}'`);
    const stdout = execFileSync("bash", ["-c", script.text], { input: probeScriptText(), encoding: "utf8" });
    expect(parseInstallProbe(JSON.parse(stdout)).drives.map((d) => [d.path, d.exists])).toEqual([[hostile, false], ["/dev/hfde-no-such-disk", false]]);
    expect(fs.existsSync(`/tmp/hfde-pwned-${process.pid}`)).toBe(false);
  });

  const file = path.join(__dirname, "..", "..", "providers", "install-image", "probe.sh"); // dist/ copy, as the provider reads it
  it("is the file the build copies (probe.sh), and parses with bash -n", () => {
    expect(fs.readFileSync(file, "utf8")).toBe(probeScriptText());
    expect(spawnSync("bash", ["-n", file], { encoding: "utf8" }).stderr).toBe("");
  });
  const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
  (shellcheck ? it : it.skip)("passes shellcheck", () => {
    expect(spawnSync("shellcheck", ["-s", "bash", file], { encoding: "utf8" }).stdout).toBe("");
  });
});

describe("parseInstallProbe", () => {
  it("reads the lab host after installimage", () => {
    const observed = parseInstallProbe(rawProbe({ marker: JSON.stringify({ installId: "i", configSha256: "c", installedAt: "t" }) }));
    expect(observed.environment).toBe("rescue");
    expect(observed.drives.map((d) => [d.path, d.serial, d.mbrGrub, d.signatures])).toEqual([
      ["/dev/nvme0n1", "LAB100001N0", true, ["dos"]],
      ["/dev/nvme1n1", "LAB100001N1", true, ["dos"]],
    ]);
    expect(observed.arrays.map((a) => [a.device, a.level, a.uuid, a.members.map((m) => m.device)])).toEqual([
      ["/dev/md0", 1, normalizeMdUuid(MD0_UUID), ["/dev/nvme0n1p1", "/dev/nvme1n1p1"]],
      ["/dev/md1", 1, normalizeMdUuid(MD1_UUID), ["/dev/nvme0n1p2", "/dev/nvme1n1p2"]],
    ]);
    expect(observed.root).toMatchObject({ hostname: "lab-1", marker: { installId: "i", configSha256: "c" }, osRelease: { VERSION_ID: "12" } });
    expect(observed.volumes).toEqual([{ vg: "vg0", name: "swap", sizeBytes: 1073741824 }, { vg: "vg0", name: "root", sizeBytes: 4290772992 }]);
  });

  it("a torn marker is no marker", () => {
    expect(parseInstallProbe(rawProbe({ marker: '{"installId":"i","confi' })).root?.marker).toBeNull();
  });

  it("refuses a document of another shape, saying what it expected", () => {
    expect(() => parseInstallProbe({ hello: 1 })).toThrow(/expected \{hostname, drives/);
  });

  it("outputs carry the layout read back, the pinned key's fingerprint and known_hosts line", () => {
    const outs = outputsFrom(raid1Lvm(), parseInstallProbe(rawProbe({ rescue: false, marker: JSON.stringify({ installId: "i-1", configSha256: "c", installedAt: "t" }) })), { environment: "system", host: "127.0.0.1:2201", boots: 1 });
    expect(outs.installId).toBe("i-1");
    expect(outs.hostKeyFingerprints).toEqual([expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/)]);
    expect(outs.knownHosts).toEqual([expect.stringMatching(/^\[127\.0\.0\.1\]:2201 ssh-ed25519 AAAAC3/)]);
    expect(outs.layout.arrays.map((a) => [a.device, a.uuid, a.degraded])).toEqual([["/dev/md0", MD0_UUID, false], ["/dev/md1", MD1_UUID, false]]);
    expect(outs.layout.os).toEqual({ prettyName: "Debian GNU/Linux 12 (bookworm)", versionId: "12" });
    expect(outs.drift).toEqual([]);
    expect(JSON.stringify(outs)).not.toMatch(/cryptPassphrase/);
  });
});

describe("driftOf", () => {
  const desired = raid1Lvm();
  it.each([
    ["a failed member", { md1Members: [["nvme0n1p2", "0"], ["nvme1n1p2", "faulty"]] as [string, string][], md1Degraded: "1" }, "degraded", /\/dev\/md1 is degraded: 1 of 2 members active, failed: \/dev\/nvme1n1p2/],
    ["a removed member", { md1Members: [["nvme0n1p2", "0"]] as [string, string][], md1Degraded: "1" }, "degraded", /\/dev\/md1 is degraded: 1 of 2 members active, a member is missing/],
    ["a stopped array", { md0Stopped: true }, "notAssembled", /\/dev\/md\/0 .* fell apart/],
    ["a changed hostname", { hostname: "renamed" }, "hostname", /host name is "renamed", expected "lab-1"/],
  ])("reports %s", (_name, options, kind, message) => {
    const drift = driftOf(parseInstallProbe(rawProbe({ rescue: false, ...options })), desired, []);
    expect(drift).toEqual([expect.objectContaining({ kind, message: expect.stringMatching(message) })]);
  });

  it("a healthy host has no drift, and a running resync is not drift", () => {
    expect(driftOf(parseInstallProbe(rawProbe({ rescue: false })), desired, [])).toEqual([]);
    expect(driftOf(parseInstallProbe(rawProbe({ rescue: false, syncAction: "resync" })), desired, [])).toEqual([]);
  });

  it("a rebuild onto every member is healing, not drift", () => {
    const observed = parseInstallProbe(rawProbe({ rescue: false, syncAction: "recover", md1Degraded: "1" }));
    expect(driftOf(observed, desired, [])).toEqual([]);
  });

  it("once recorded, only the recorded arrays count: a foreign disk's superblocks are not drift", () => {
    const observed = { ...parseInstallProbe(rawProbe({ rescue: false })), superblocks: parseArrayLines(`ARRAY /dev/md/9 UUID=${"1".repeat(32)}\n`) };
    expect(driftOf(observed, desired, [MD0_UUID, MD1_UUID])).toEqual([]);
    expect(driftOf(observed, desired, []).map((d) => d.kind)).toEqual(["notAssembled"]);
  });

  it("a just-stopped array whose md node lingers (clear, no members) is only fallen apart, not also partly assembled", () => {
    const raw = rawProbe({ rescue: false, md0Stopped: true });
    const lingering = { device: "/dev/md0", export: "", devs: "", arrayState: "clear", degraded: "", syncAction: "", syncCompleted: "", syncSpeed: "", raidDisks: "" };
    const observed = parseInstallProbe({ ...raw, arrays: [lingering, ...raw.arrays] });
    expect(observed.inactiveArrays).toEqual([]);
    expect(driftOf(observed, desired, [MD0_UUID, MD1_UUID]).map((d) => d.kind)).toEqual(["notAssembled"]);
    const partly = { ...lingering, arrayState: "inactive", devs: Buffer.from("nvme0n1p1 spare none\n").toString("base64") };
    expect(parseInstallProbe({ ...raw, arrays: [partly, ...raw.arrays] }).inactiveArrays).toEqual(["/dev/md0"]);
  });

  it("a recorded array that vanished without a superblock trace is still reported", () => {
    const observed = { ...parseInstallProbe(rawProbe({ rescue: false, md0Stopped: true })), superblocks: [] };
    expect(driftOf(observed, desired, [MD0_UUID]).map((d) => d.kind)).toEqual(["notAssembled"]);
  });
});

describe("md-raid parsers", () => {
  const sysfs = { arrayState: "clean", degraded: "0", syncAction: "idle", syncCompleted: "none", syncSpeed: "none", raidDisks: "2" };

  it("parses mdadm --detail --export with active, spare and faulty members", () => {
    const text = `MD_LEVEL=raid1\nMD_DEVICES=2\nMD_UUID=${MD0_UUID}\nMD_DEVICE_dev_sda1_ROLE=0\nMD_DEVICE_dev_sda1_DEV=/dev/sda1\nMD_DEVICE_dev_sdb1_ROLE=faulty\nMD_DEVICE_dev_sdb1_DEV=/dev/sdb1\nMD_DEVICE_dev_sdc1_ROLE=spare\nMD_DEVICE_dev_sdc1_DEV=/dev/sdc1\n`;
    const array = parseMdArray("/dev/md0", text, { ...sysfs, degraded: "1" });
    expect(array.members).toEqual([
      { device: "/dev/sda1", role: "active", slot: 0 },
      { device: "/dev/sdb1", role: "faulty", slot: null },
      { device: "/dev/sdc1", role: "spare", slot: null },
    ]);
    expect(isDegraded(array)).toBe(true);
    expect(isDegraded(parseMdArray("/dev/md0", `MD_LEVEL=raid1\nMD_UUID=${MD0_UUID}\nMD_DEVICE_dev_sda1_ROLE=0\nMD_DEVICE_dev_sdb1_ROLE=1\n`, sysfs))).toBe(false);
  });

  it("prefers md's own member list: a failed member mdadm's export leaves out is still seen as faulty", () => {
    const exported = `MD_LEVEL=raid1\nMD_UUID=${MD0_UUID}\nMD_DEVICE_dev_nvme0n1p1_ROLE=0\nMD_DEVICE_dev_nvme0n1p1_DEV=/dev/nvme0n1p1\n`;
    const array = parseMdArray("/dev/md0", exported, { ...sysfs, degraded: "1", devs: "nvme0n1p1 in_sync 0\nnvme1n1p1 faulty none\n" });
    expect(array.members).toEqual([
      { device: "/dev/nvme0n1p1", role: "active", slot: 0 },
      { device: "/dev/nvme1n1p1", role: "faulty", slot: null },
    ]);
    expect(parseMemberStates("sdc1 spare none\nsdb1 spare 1\n")).toEqual([
      { device: "/dev/sdc1", role: "spare", slot: null },
      { device: "/dev/sdb1", role: "active", slot: 1 },
    ]);
  });

  it.each([
    [{ syncAction: "resync", syncCompleted: "1048576 / 10483712", syncSpeed: "48000" }, { action: "resync", percent: 10, speedKiBs: 48000 }],
    [{ syncAction: "idle", syncCompleted: "none", syncSpeed: "none" }, { action: "idle", percent: null, speedKiBs: null }],
    [{ syncAction: "frozen", syncCompleted: "0 / 10483712", syncSpeed: "none" }, { action: "frozen", percent: null, speedKiBs: null }],
  ])("sync state %j", (raw, expected) => {
    expect(parseSync(raw)).toEqual(expected);
  });

  it("normalises the two UUID spellings of an array to one", () => {
    expect(normalizeMdUuid("3A1B2C3D:4E5F6A7B:8C9D0E1F:12345678")).toBe(normalizeMdUuid("3a1b2c3d-4e5f-6a7b-8c9d-0e1f12345678"));
    expect(parseArrayLines(`# c\nARRAY /dev/md/0 metadata=1.2 UUID=${MD0_UUID} name=x:0\nDEVICE partitions\n`)).toEqual([{ device: "/dev/md/0", uuid: normalizeMdUuid(MD0_UUID) }]);
    expect(uuidReferences("# UUID=dead\nUUID=ABC-1 / ext4 defaults 0 1\nluks-x UUID=def-2 none luks\n").map((r) => r.uuid)).toEqual(["abc-1", "def-2"]);
  });
});

describe("bootProblems", () => {
  const good = {
    firmware: "bios" as const,
    mbrGrub: [{ drive: "/dev/sda", grub: true }, { drive: "/dev/sdb", grub: true }],
    espLoader: null,
    mdadmConf: `ARRAY /dev/md/0 UUID=${MD0_UUID}\n`,
    fstab: "UUID=aaaa-1 / ext4 defaults 0 1\n",
    crypttab: "luks-x UUID=bbbb-2 none luks\n",
    knownUuids: ["aaaa-1", "bbbb-2"],
    arrayUuids: [normalizeMdUuid(MD0_UUID)],
    raid: true,
    crypt: true,
  };

  it("finds nothing wrong with a complete install", () => {
    expect(bootProblems(good)).toEqual([]);
  });

  it.each([
    ["GRUB missing on one drive", { mbrGrub: [{ drive: "/dev/sda", grub: true }, { drive: "/dev/sdb", grub: false }] }, /first sector of \/dev\/sdb/],
    ["UEFI without the removable loader", { firmware: "uefi" as const, espLoader: false }, /EFI\/BOOT\/BOOTX64\.EFI/],
    ["no mdadm.conf", { mdadmConf: null }, /no \/etc\/mdadm\/mdadm\.conf/],
    ["a stale ARRAY line", { mdadmConf: `ARRAY /dev/md/0 UUID=${MD0_UUID}\nARRAY /dev/md/9 UUID=${MD1_UUID}\n` }, /names arrays that do not exist \(aaaabbbb:ccccdddd:eeeeffff:00001111\)/],
    ["an fstab UUID nobody carries", { fstab: "UUID=dead-beef / ext4 defaults 0 1\n" }, /\/etc\/fstab refers to UUID=dead-beef, which no device carries/],
    ["a crypttab UUID nobody carries", { crypttab: "luks-x UUID=dead-beef none luks\n" }, /\/etc\/crypttab refers to UUID=dead-beef/],
    ["crypt without crypttab", { crypttab: null }, /crypttab names no container/],
  ])("names the missing piece: %s", (_name, change, reason) => {
    const problems = bootProblems({ ...good, ...change });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(reason);
  });
});
