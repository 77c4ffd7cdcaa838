// InstallImage's pure parts: check (every bad input named by its field, before any connection),
// the /autosetup renderer, diff (the kernel's: the plan against the recorded facts), and the plan
// from observed facts.
import {
  InstallImageInputs,
  InstallImageOutputs,
  carryOver,
  compareOutputs,
  definition,
  driftOf,
  explainPlan,
  migrateOutputs,
  outputsOf,
  recordedFacts,
  configSha256,
  parseInstallProbe,
  partitionDevice,
  plan,
  planDelete,
  planWipeAccess,
  renderAutosetup,
  rescueGoneOnCreate,
  unrepairedDriftMessage,
  validate,
  validateReplacement,
  wipeProfiles,
} from "../../providers/install-image";
import type { EndpointObservation } from "../../providers/plumbing/ssh";
import { UNKNOWN } from "../../providers/kernel/resource";
import { classifyHost } from "../../providers/kernel";
import { FP, PASSPHRASE, ROOT_FP, ROOT_HOST_KEY, crypted, raid1Lvm, rawProbe, startedForRecord } from "./install-image-fixtures";
import { parsePublicKey, sha256Fingerprint } from "../../providers/plumbing/keys";

type Mutate = (i: Record<string, unknown>) => void;
const part = (i: Record<string, unknown>) => i.partitions as Record<string, unknown>[];
const lvs = (i: Record<string, unknown>) => i.volumes as Record<string, unknown>[];

describe("validate", () => {
  it("accepts the RAID1 + LVM layout, plain and crypted", () => {
    expect(validate(raid1Lvm())).toEqual([]);
    expect(validate(crypted())).toEqual([]);
  });

  const CASES: [string, Mutate, string, RegExp][] = [
    ["RAID5 with two drives", (i) => (i.raid = { level: 5 }), "raid.level", /RAID 5 needs at least 3 drives, found 2/],
    ["RAID10 with two drives", (i) => (i.raid = { level: 10 }), "raid.level", /RAID 10 needs at least 4 drives/],
    ["unknown RAID level", (i) => (i.raid = { level: 4 }), "raid.level", /one of 0, 1, 5, 6, 10/],
    ["no RAID with two drives", (i) => (i.raid = false), "raid", /list only the drive to install on/],
    ["/boot inside LVM", (i) => { i.partitions = [part(i)[1]]; i.volumes = [{ vg: "vg0", name: "boot", mount: "/boot", fs: "ext4", size: "1G" }, ...lvs(i)]; }, "volumes[0].mount", /\/boot cannot be on LVM/],
    ["all not last (partition)", (i) => (i.partitions = [{ mount: "lvm", vg: "vg0", size: "all" }, { mount: "/boot", fs: "ext4", size: "1G" }]), "partitions[0].size", /"all" is allowed only on the last partition/],
    ["all not last (LV)", (i) => (i.volumes = [...lvs(i)].reverse()), "volumes[0].size", /only on the last volume of vg0/],
    ["unknown image", (i) => (i.image = "Windows-2022-amd64-base"), "image", /expected one of Debian-bullseye/],
    ["image with another archive type", (i) => (i.image = "Debian-bookworm-latest-amd64-base.tar.xz"), "image", /drop the archive suffix/],
    ["a drive listed twice", (i) => (i.drives = [{ path: "/dev/nvme0n1" }, { path: "/dev/nvme0n1" }]), "drives[1].path", /listed twice \(also drives\[0\]\)/],
    ["a serial listed twice", (i) => (i.drives = [{ path: "/dev/nvme0n1", serial: "X1" }, { path: "/dev/nvme1n1", serial: "X1" }]), "drives[1].serial", /also drives\[0\]'s/],
    ["esp too small", (i) => (i.partitions = [{ mount: "/boot/efi", fs: "esp", size: "128M" }, ...part(i)]), "partitions[0].size", /at least 256M/],
    ["esp sized all", (i) => (i.partitions = [...part(i).slice(0, 1), { mount: "/boot/efi", fs: "esp", size: "all" }]), "partitions[1].size", /cannot take "all"/],
    ["a partition as a drive", (i) => (i.drives = [{ path: "/dev/nvme0n1p1" }, { path: "/dev/nvme1n1" }]), "drives[0].path", /expected a whole disk/],
    ["relative drive path", (i) => (i.drives = [{ path: "sda" }, { path: "/dev/sdb" }]), "drives[0].path", /absolute device path/],
    ["bad serial", (i) => (i.drives = [{ path: "/dev/sda", serial: "has space" }, { path: "/dev/sdb" }]), "drives[0].serial", /lsblk -o SERIAL/],
    ["bad WWN", (i) => (i.drives = [{ path: "/dev/sda", wwn: "1234" }, { path: "/dev/sdb" }]), "drives[0].wwn", /0x \+ 16 or 32 hex/],
    ["no drives", (i) => (i.drives = []), "drives", /at least one drive/],
    ["no partitions", (i) => (i.partitions = []), "partitions", /installimage PARTs/],
    ["crypt without passphrase", (i) => { part(i)[1].crypt = true; }, "cryptPassphrase", /a partition has crypt: true/],
    ["passphrase without crypt", (i) => (i.cryptPassphrase = PASSPHRASE), "cryptPassphrase", /would be unused/],
    ["weak passphrase", (i) => { part(i)[1].crypt = true; i.cryptPassphrase = "short"; }, "cryptPassphrase", /characters long/],
    ["bad pbkdf", (i) => { part(i)[1].crypt = true; i.cryptPassphrase = PASSPHRASE; i.cryptPbkdf = { type: "argon2id", iterations: 1 }; }, "cryptPbkdf.iterations", /at least 4/],
    ["bad hostname", (i) => (i.hostname = "under_score"), "hostname", /expected a host name/],
    ["rescue profile of another environment", (i) => (i.rescue = { environment: "system", host: "127.0.0.1", port: 22, user: "root", hostKeyFingerprints: [FP] }), "rescue.environment", /expected "rescue"/],
    ["rescue profile without fingerprints", (i) => (i.rescue = { environment: "rescue", host: "127.0.0.1", port: 22, user: "root", hostKeyFingerprints: [] }), "rescue.hostKeyFingerprints", /always verified/],
    ["system port out of range", (i) => (i.system = { port: 70000 }), "system.port", /expected a TCP port 1\.\.65535, found 70000/],
    ["reassemble mode", (i) => (i.reassemble = "always"), "reassemble", /never, scan, force/],
    ["resync limit", (i) => (i.resync = { speedLimitMax: 5 }), "resync.speedLimitMax", /at least 1000/],
    ["allowWipe not boolean", (i) => (i.allowWipe = "yes"), "allowWipe", /true or false/],
    ["/ too small", (i) => (lvs(i)[1].size = "1G"), "volumes[1].size", /at least 1500M/],
  ];

  it.each(CASES)("refuses %s, naming %s", (_name, mutate, property, reason) => {
    const inputs = structuredClone(raid1Lvm()) as unknown as Record<string, unknown>;
    mutate(inputs);
    const failures = validate(inputs as unknown as InstallImageInputs);
    const hit = failures.find((f) => f.property === property);
    expect({ property, found: failures.map((f) => f.property) }).toEqual({ property, found: expect.arrayContaining([property]) });
    expect(hit?.reason).toMatch(reason);
  });

  it("never quotes the passphrase in a failure", () => {
    const inputs = { ...crypted(), cryptPassphrase: "aaaaaaaaaaaaaaaa" };
    const text = JSON.stringify(validate(inputs));
    expect(text).toMatch(/cryptPassphrase/);
    expect(text).not.toContain("aaaaaaaaaaaaaaaa");
  });

  it("skips values still unknown in preview", () => {
    const inputs = { ...raid1Lvm(), drives: UNKNOWN, partitions: UNKNOWN, image: UNKNOWN, rescue: UNKNOWN } as unknown as InstallImageInputs;
    expect(validate(inputs)).toEqual([]);
  });

  it("a plain install (no crypt) needs no /boot for RAID1 with / on a partition", () => {
    const inputs: InstallImageInputs = { ...raid1Lvm(), partitions: [{ mount: "swap", fs: "swap", size: "1G" }, { mount: "/", fs: "ext4", size: "all" }], volumes: [] };
    expect(validate(inputs)).toEqual([]);
  });
});

describe("renderAutosetup", () => {
  it("renders installimage's keywords in order, without any passphrase", () => {
    expect(renderAutosetup(crypted())).toBe(
      [
        "# written by hetzner-fde InstallImage; do not edit: the stack renders it",
        "DRIVE1 /dev/nvme0n1",
        "DRIVE2 /dev/nvme1n1",
        "SWRAID 1",
        "SWRAIDLEVEL 1",
        "BOOTLOADER grub",
        "HOSTNAME lab-1.example.com",
        "PART /boot ext4 1G",
        "PART lvm vg0 all crypt",
        "LV vg0 swap swap swap 512M",
        "LV vg0 root / ext4 all",
        "IMAGE /root/.oldroot/nfs/images/Debian-bookworm-latest-amd64-base.tar.gz",
        "",
      ].join("\n"),
    );
    expect(renderAutosetup(crypted())).not.toContain(PASSPHRASE);
  });

  it("renders a single drive without RAID and accepts the .tar.gz spelling of the image", () => {
    const text = renderAutosetup({ ...raid1Lvm(), drives: [{ path: "/dev/sda" }], raid: false, image: "Debian-bookworm-latest-amd64-base.tar.gz" });
    expect(text).toMatch(/^DRIVE1 \/dev\/sda\nSWRAID 0\nBOOTLOADER grub$/m);
    expect(text).not.toMatch(/SWRAIDLEVEL|DRIVE2/);
    expect(text).toMatch(/IMAGE \/root\/\.oldroot\/nfs\/images\/Debian-bookworm-latest-amd64-base\.tar\.gz\n$/);
  });

  it("the config hash ignores the hostname (changed in place) but not the layout", () => {
    const base = raid1Lvm();
    expect(configSha256({ ...base, hostname: "other" })).toBe(configSha256(base));
    expect(configSha256({ ...base, image: "Debian-trixie-latest-amd64-base" })).not.toBe(configSha256(base));
    expect(configSha256(crypted())).not.toBe(configSha256(base));
  });

  it.each([
    ["/dev/nvme0n1", 2, "/dev/nvme0n1p2"],
    ["/dev/sda", 1, "/dev/sda1"],
    ["/dev/disk/by-id/ata-X", 3, "/dev/disk/by-id/ata-X-part3"],
  ])("partition %s #%d is %s", (drive, n, expected) => {
    expect(partitionDevice(drive, n)).toBe(expected);
  });
});

function outputs(inputs: InstallImageInputs, extra: Partial<InstallImageOutputs> = {}): InstallImageOutputs {
  const { cryptPassphrase: _omit, ...rest } = inputs;
  return {
    ...rest,
    installId: "id-1",
    installedAt: "2026-11-22T08:00:00.000Z",
    environment: "system",
    host: "127.0.0.1:2201",
    hostKeyFingerprints: [FP],
    knownHosts: [],
    observedHostname: "lab-1",
    layout: { arrays: [], partitions: [], volumeGroups: [], volumes: [], os: null },
    arrayUuids: [],
    drift: [],
    boots: 1,
    ...extra,
  };
}

describe("diff (compareOutputs: the plan against the recorded facts) and check (validateReplacement)", () => {
  const REPLACING: [string, (i: InstallImageInputs) => InstallImageInputs, string][] = [
    ["drives", (i) => ({ ...i, drives: [i.drives[0], { path: "/dev/nvme2n1" }] }), "drives"],
    ["a drive's serial pin", (i) => ({ ...i, drives: [i.drives[0], { path: "/dev/nvme1n1", serial: "OTHER" }] }), "drives"],
    ["raid level", (i) => ({ ...i, raid: { level: 0 } }), "raid"],
    ["a partition size", (i) => ({ ...i, partitions: [{ ...i.partitions[0], size: "2G" }, i.partitions[1]] }), "partitions"],
    ["crypt", () => crypted(), "partitions"],
    ["an LV", (i) => ({ ...i, volumes: [{ ...i.volumes![0], size: "2G" }, i.volumes![1]] }), "volumes"],
    ["image", (i) => ({ ...i, image: "Debian-trixie-latest-amd64-base" }), "image"],
  ];

  it.each(REPLACING)("a change of %s replaces, deleting the old install first", (_name, change, key) => {
    const before = raid1Lvm();
    const result = compareOutputs(outputs(before), change(before));
    expect(result).toEqual({ changes: true, replaces: expect.arrayContaining([key]), deleteBeforeReplace: true });
  });

  it.each(REPLACING)("check refuses a change of %s without allowWipe, listing what is lost", (_name, change, key) => {
    const before = raid1Lvm();
    const failures = validateReplacement(before, change(before));
    expect(failures).toHaveLength(1);
    expect(failures[0].property).toBe(key);
    expect(failures[0].reason).toMatch(/drives \/dev\/nvme0n1 \(serial LAB100001N0\), \/dev\/nvme1n1 \(serial LAB100001N1\)/);
    expect(failures[0].reason).toMatch(/arrays \/dev\/md0 \(\/boot\), \/dev\/md1 \(VG vg0\)/);
    expect(failures[0].reason).toMatch(/VG vg0 with LVs swap \(swap\), root \(\/\)/);
    expect(failures[0].reason).toMatch(/set allowWipe: true/i);
    expect(validateReplacement(before, { ...change(before), allowWipe: true })).toEqual([]);
  });

  it("the .tar.gz spelling of the same image is no change", () => {
    const before = raid1Lvm();
    expect(compareOutputs(outputs(before), { ...before, image: `${before.image}.tar.gz` })).toEqual({ changes: false });
  });

  it("no change proposes nothing; hostname, settings and a new rescue profile are updates", () => {
    const before = raid1Lvm();
    expect(compareOutputs(outputs(before), before)).toEqual({ changes: false });
    expect(compareOutputs(outputs(before), { ...before, hostname: "lab-2" })).toEqual({ changes: true });
    expect(compareOutputs(outputs(before), { ...before, reassemble: "scan" })).toEqual({ changes: true });
    expect(compareOutputs(outputs(before), { ...before, rescue: { ...before.rescue, hostKeyFingerprints: ["SHA256:" + "B".repeat(43)] } })).toEqual({ changes: true });
    expect(compareOutputs(outputs(before), { ...before, providerVersion: "2" })).toEqual({ changes: true });
  });

  // Decision (#9): drift no step repairs is no change; diff warns, naming it, and read keeps recording it.
  it("recorded drift is a change exactly when a step repairs it (reassemble scan), and is warned about when none does (never)", () => {
    const before = raid1Lvm();
    const md1 = { device: "/dev/md1", level: 1, members: ["/dev/nvme0n1p2"], uuid: "aaaabbbb:ccccdddd:eeeeffff:00001111", state: "clean", degraded: true, faultyMembers: [], sync: { action: "idle", percent: null } };
    const drift = [{ kind: "degraded" as const, array: "/dev/md1", message: "array /dev/md1 is degraded: 1 of 2 members active, a member is missing" }];
    const degraded = outputs(before, { layout: { arrays: [md1], partitions: [], volumeGroups: [], volumes: [], os: null }, arrayUuids: [md1.uuid], drift });
    expect(compareOutputs(degraded, before)).toEqual({ changes: false });
    expect(definition.diffWarnings?.(degraded, before)).toEqual([expect.stringMatching(/reassemble: "never" leaves as it is .*\/dev\/md1 is degraded: 1 of 2 members active, a member is missing.*Set reassemble: "scan"/)]);
    const scan = { ...before, reassemble: "scan" as const };
    expect(compareOutputs({ ...degraded, reassemble: "scan" }, scan)).toEqual({ changes: true });
    expect(definition.diffWarnings?.({ ...degraded, reassemble: "scan" }, scan)).toEqual([]);
    // A stopped array (recorded UUID, not running) the same way: no change with never, reassembled with scan.
    const stopped = outputs(before, { arrayUuids: [md1.uuid], drift: [{ kind: "notAssembled", array: "/dev/md/1", message: "array /dev/md/1 fell apart" }] });
    expect(compareOutputs(stopped, before)).toEqual({ changes: false });
    expect(compareOutputs({ ...stopped, reassemble: "scan" }, scan)).toEqual({ changes: true });
    expect(definition.diffWarnings?.(outputs(before), before)).toEqual([]);
  });

  it("the recorded facts plan nothing for the recorded request, and a hostname change for a renamed host", () => {
    const before = raid1Lvm();
    const recorded = outputs(before);
    expect(plan(recordedFacts(recorded), before, recorded)).toEqual([]);
    expect(plan(recordedFacts(recorded), { ...before, hostname: "lab-2" }, recorded)).toEqual([{ kind: "setHostname", hostname: "lab-2", root: null }]);
    expect(plan(recordedFacts(recorded), { ...before, image: "Debian-trixie-latest-amd64-base" }, recorded)).toEqual([{ kind: "replace", fields: ["image"] }]);
  });

  it("a passphrase change alone proposes nothing (it is LuksVolume's to rotate)", () => {
    const before = crypted();
    expect(compareOutputs(outputs(before), { ...before, cryptPassphrase: "Another-Horse-Battery-7-staple" })).toEqual({ changes: false });
  });

  it("outputs stored as logicalVolumes (the old name) migrate to volumes: an update that replaces nothing, and check passes", () => {
    const before = raid1Lvm();
    const { volumes, ...rest } = outputs(before, { layout: { arrays: [], partitions: [], volumeGroups: [], volumes: [{ vg: "vg0", name: "root", sizeBytes: 1 }], os: null } });
    const { volumes: lvs, ...layout } = rest.layout;
    const old = { ...rest, logicalVolumes: volumes, layout: { ...layout, logicalVolumes: lvs } } as unknown as InstallImageOutputs;
    expect(migrateOutputs(old)).toEqual(outputs(before, { layout: { arrays: [], partitions: [], volumeGroups: [], volumes: [{ vg: "vg0", name: "root", sizeBytes: 1 }], os: null } }));
    expect(compareOutputs(old, before)).toEqual({ changes: true });
    expect(compareOutputs(migrateOutputs(old), before)).toEqual({ changes: false });
    const { volumes: v, ...oldInputs } = before;
    expect(validateReplacement({ ...oldInputs, logicalVolumes: v } as unknown as InstallImageInputs, before)).toEqual([]);
    expect(validateReplacement(oldInputs as InstallImageInputs, before)).toHaveLength(1); // the check above is not vacuous
    expect(migrateOutputs(before)).toBe(before);
  });

  it("an unknown layout in preview is assumed to replace", () => {
    const before = raid1Lvm();
    expect(compareOutputs(outputs(before), { ...before, partitions: UNKNOWN } as unknown as InstallImageInputs).replaces).toEqual(["partitions"]);
    expect(validateReplacement(before, { ...before, partitions: UNKNOWN } as unknown as InstallImageInputs)).toEqual([]);
  });
});

describe("plan", () => {
  const desired = raid1Lvm();
  const sha = configSha256(desired);
  const marker = (configSha = sha) => JSON.stringify({ installId: "id-1", configSha256: configSha, installedAt: "2026-11-22T08:00:00Z" });
  const kinds = (steps: { kind: string }[]) => steps.map((s) => s.kind);

  it("blank drives in rescue: write the config, run installimage, install the host key, mark", () => {
    expect(kinds(plan(parseInstallProbe(rawProbe({ blank: true })), desired))).toEqual(["writeAutosetup", "runInstallimage", "installHostKey", "writeMarker"]);
  });

  it("with crypt: the passphrase is replaced and CRYPTPASSWORD scrubbed before the marker", () => {
    expect(kinds(plan(parseInstallProbe(rawProbe({ blank: true })), crypted()))).toEqual(["writeAutosetup", "runInstallimage", "installHostKey", "replacePassphrase", "scrubSecrets", "writeMarker"]);
  });

  it("refuses drives that carry data without allowWipe, naming them; allows with allowWipe", () => {
    const observed = parseInstallProbe(rawProbe({ marker: null }));
    expect(() => plan(observed, desired)).toThrow(/refusing to install over data: \/dev\/nvme0n1: a dos signature, 2 partition\(s\) \(\/dev\/nvme0n1p1 linux_raid_member.*set allowWipe: true/);
    expect(kinds(plan(observed, { ...desired, allowWipe: true }))[1]).toBe("runInstallimage");
  });

  it("data from an install this rescue boot started is ours to redo; a running installer is stopped first", () => {
    const observed = parseInstallProbe(rawProbe({ marker: null, installerRunning: true, startedFor: startedForRecord(sha) }));
    const steps = plan(observed, desired);
    expect(kinds(steps)).toEqual(["stopInstaller", "writeAutosetup", "runInstallimage", "installHostKey", "writeMarker"]);
    expect(steps[2]).toMatchObject({ kind: "runInstallimage", allowWipe: true });
  });

  it("refuses a drive whose serial does not match its pin, before anything is written", () => {
    const observed = parseInstallProbe(rawProbe({ blank: true }));
    const wrong = { ...desired, drives: [desired.drives[0], { path: "/dev/nvme1n1", serial: "S4EWNX0R999" }] };
    expect(() => plan(observed, wrong)).toThrow(/\/dev\/nvme1n1 has serial "LAB100001N1", expected "S4EWNX0R999". Nothing was written/);
  });

  it("a finished install in rescue: boot check passes, then reboot (or not, with reboot: false)", () => {
    const observed = parseInstallProbe(rawProbe({ marker: marker() }));
    expect(kinds(plan(observed, desired))).toEqual(["reboot"]);
    expect(plan(observed, { ...desired, reboot: false })).toEqual([]);
    expect(kinds(plan(parseInstallProbe(rawProbe({ marker: marker(), syncAction: "resync" })), { ...desired, resync: { waitBeforeReboot: true } }))).toEqual(["waitForResync", "reboot"]);
  });

  it("the reboot goes to the installed system pinned to the key in its root, or, with crypt, to an initramfs without SSH", () => {
    const [reboot] = plan(parseInstallProbe(rawProbe({ marker: marker() })), desired);
    expect(reboot).toEqual({ kind: "reboot", rescue: desired.rescue, system: { environment: "system", host: "127.0.0.1", port: 2201, user: "root", hostKeyFingerprints: [ROOT_FP] } });
    expect(sha256Fingerprint(parsePublicKey(ROOT_HOST_KEY))).toBe(ROOT_FP);
    const crypt = crypted();
    const found = parseInstallProbe(rawProbe({ marker: marker(configSha256(crypt)) }));
    const luksUuid = "99999999-8888-7777-6666-555555555555";
    const withCrypttab = { ...found, root: { ...found.root!, crypttab: `luks-${luksUuid} UUID=${luksUuid} none luks\n` }, knownUuids: [...found.knownUuids, luksUuid] };
    const cryptReboot = plan(withCrypttab, crypt).find((step) => step.kind === "reboot");
    expect(cryptReboot).toEqual({ kind: "reboot", rescue: crypt.rescue, system: null });
  });

  // Decision (#9): with reboot: false the next resource reboots (DropbearInitramfs), so the initial sync is waited for here.
  it("with reboot: false, the initial resync is waited for (at the raised limit) before create reports done", () => {
    const syncing = parseInstallProbe(rawProbe({ marker: marker(), syncAction: "resync" }));
    expect(plan(syncing, { ...desired, reboot: false })).toEqual([{ kind: "waitForResync", speedLimitMax: 2_000_000 }]);
    expect(plan(syncing, { ...desired, reboot: false, resync: { speedLimitMax: 500_000 } })).toEqual([{ kind: "waitForResync", speedLimitMax: 500_000 }]);
  });

  it("leftover CRYPTPASSWORD lines are scrubbed before the reboot", () => {
    expect(kinds(plan(parseInstallProbe(rawProbe({ marker: marker(), rescueCryptLines: 1 })), desired))).toEqual(["scrubSecrets", "reboot"]);
  });

  it.each([
    ["GRUB missing on the second drive", { grub: [1, 0] as [number, number] }, /no GRUB boot code in the first sector of \/dev\/nvme1n1/],
    ["mdadm.conf without md1", { mdadmConf: `ARRAY /dev/md/0 metadata=1.2 UUID=3a1b2c3d:4e5f6a7b:8c9d0e1f:12345678\n` }, /mdadm.conf lacks ARRAY lines for the assembled arrays aaaabbbb:ccccdddd:eeeeffff:00001111/],
  ])("the boot check stops the reboot: %s", (_name, options, reason) => {
    const observed = parseInstallProbe(rawProbe({ marker: marker(), ...options }));
    expect(() => plan(observed, desired)).toThrow(reason);
    expect(() => plan(observed, desired)).toThrow(/would not boot, so it was not rebooted/);
  });

  it("on the installed system: raises the resync limit while the initial sync runs, once", () => {
    const syncing = parseInstallProbe(rawProbe({ rescue: false, marker: marker(), syncAction: "resync" }));
    expect(plan(syncing, desired)).toEqual([{ kind: "tuneResync", speedLimitMax: 2_000_000 }]);
    expect(plan(parseInstallProbe(rawProbe({ rescue: false, marker: marker(), syncAction: "resync", speedLimitMax: "2000000" })), desired)).toEqual([]);
    expect(plan(parseInstallProbe(rawProbe({ rescue: false, marker: marker() })), desired, outputs(desired))).toEqual([]);
  });

  it("update: a new hostname is set on the running system, or in the root from rescue", () => {
    const system = parseInstallProbe(rawProbe({ rescue: false, marker: marker() }));
    expect(plan(system, { ...desired, hostname: "lab-2.example.com" }, outputs(desired))).toEqual([{ kind: "setHostname", hostname: "lab-2.example.com", root: null }]);
    const rescue = parseInstallProbe(rawProbe({ marker: marker() }));
    expect(plan(rescue, { ...desired, hostname: "lab-2" }, outputs(desired))).toEqual([{ kind: "setHostname", hostname: "lab-2", root: { kind: "lv", device: "/dev/vg0/root" } }]);
  });

  // Decision (#9): drift no step repairs is no step (it was a refusal); explain names it on the converge.
  it("update: a stopped array is left as it is (and named) without reassemble, reassembled with scan, forced with force", () => {
    const observed = parseInstallProbe(rawProbe({ rescue: false, marker: marker(), md0Stopped: true }));
    expect(plan(observed, desired, outputs(desired))).toEqual([]);
    expect(explainPlan({ observed, plan: [], desired, recorded: outputs(desired) })).toMatch(/array \/dev\/md\/0 \(UUID 3a1b2c3d:4e5f6a7b:8c9d0e1f:12345678\) fell apart.*Set reassemble: "scan"/);
    // Arrays on drives an install is about to overwrite are not the install's drift.
    const beforeInstall = parseInstallProbe(rawProbe({ marker: null, md0Stopped: true }));
    expect(explainPlan({ observed: beforeInstall, plan: [], desired, recorded: null })).toBeNull();
    expect(plan(observed, { ...desired, reassemble: "scan" }, outputs(desired))).toEqual([{ kind: "reassemble", arrays: [], force: false }]);
    expect(plan(observed, { ...desired, reassemble: "force" }, outputs(desired))).toEqual([{ kind: "reassemble", arrays: [], force: true }]);
  });

  it("update: a degraded array gets its missing member back only when reassembly is allowed", () => {
    const observed = parseInstallProbe(rawProbe({ rescue: false, marker: marker(), md1Members: [["nvme0n1p2", "0"], ["nvme1n1p2", "faulty"]], md1Degraded: "1" }));
    expect(plan(observed, desired, outputs(desired))).toEqual([]);
    expect(plan(observed, { ...desired, reassemble: "scan" }, outputs(desired))).toEqual([{ kind: "readdMember", array: "/dev/md1", member: "/dev/nvme1n1p2", uuid: "aaaabbbbccccddddeeeeffff00001111", pin: { path: "/dev/nvme1n1", serial: "LAB100001N1" }, allowWipe: false }]);
  });

  it.each([0, 1] as const)("a host booted with drive %i pulled: degraded, no step, a warning that names the absent drive; with it back, the member is re-added", (pulled) => {
    const away = desired.drives[pulled];
    const observed = parseInstallProbe(rawProbe({ rescue: false, marker: marker(), pulled }));
    const drift = driftOf(observed, desired, []);
    // The other drive answers as nvme0n1 now: the absent one is found by its serial, not its path.
    expect(drift.map((d) => [d.kind, d.array, d.awaiting])).toEqual([
      ["degraded", "/dev/md0", [`${away.path} serial ${away.serial}`]],
      ["degraded", "/dev/md1", [`${away.path} serial ${away.serial}`]],
    ]);
    expect(drift[1].message).toBe(`array /dev/md1 is degraded: 1 of 2 members active, a member is missing; not on the host: ${away.path} serial ${away.serial}`);
    for (const reassemble of ["scan", "force"] as const) {
      expect(plan(observed, { ...desired, reassemble, allowWipe: true }, outputs(desired))).toEqual([]);
      expect(unrepairedDriftMessage(drift, { reassemble })).toMatch(new RegExp(`^running degraded until a drive is back \\(no change is planned for it\\): .*not on the host: ${away.path} serial ${away.serial}.*Put the drive back .*then run up`));
    }
    expect(unrepairedDriftMessage(drift, { reassemble: "never" })).toMatch(/reassemble: "never" leaves as it is/);
    // diff plans against the record of that read: the path that was not there stays not there.
    const recorded = outputsOf({ ...desired, reassemble: "scan" }, observed, { environment: "system", host: "127.0.0.1:2201" }, outputs(desired));
    expect(recorded.missingDrivePaths).toEqual(["/dev/nvme1n1"]);
    expect(plan(recordedFacts(recorded), { ...desired, reassemble: "scan", allowWipe: true }, recorded)).toEqual([]);
    expect(definition.diffWarnings?.(recorded, { ...desired, reassemble: "scan" })).toEqual([expect.stringMatching(/^running degraded until a drive is back/)]);
    // Back in the chassis, at its path, with its serial: the ordinary re-add.
    const back = parseInstallProbe(rawProbe({ rescue: false, marker: marker(), md1Members: [["nvme0n1p2", "0"]], md1Degraded: "1" }));
    expect(driftOf(back, desired, [])[0].awaiting).toBeUndefined();
    expect(outputsOf(desired, back, { environment: "system", host: "127.0.0.1:2201" }, outputs(desired))).not.toHaveProperty("missingDrivePaths");
    expect(unrepairedDriftMessage(driftOf(back, desired, []), { reassemble: "scan" })).toBeNull();
    expect(kinds(plan(back, { ...desired, reassemble: "scan", allowWipe: true }, outputs(desired)))).toEqual(["readdMember"]);
  });

  it("update: an array already rebuilding is left alone (its new member is not active yet)", () => {
    const observed = parseInstallProbe(rawProbe({ rescue: false, marker: marker(), md1Members: [["nvme0n1p2", "0"], ["nvme1n1p2", "spare"]], md1Degraded: "1", syncAction: "recover" }));
    expect(plan(observed, { ...desired, reassemble: "force" }, outputs(desired))).toEqual([]);
  });

  it("refuses to update a host whose marker belongs to another layout", () => {
    const observed = parseInstallProbe(rawProbe({ rescue: false, marker: marker("0".repeat(64)) }));
    expect(() => plan(observed, desired, outputs(desired))).toThrow(/the marker belongs to another layout/);
  });

  it("delete: only from rescue, with allowWipe, on pinned drives", () => {
    const rescue = parseInstallProbe(rawProbe({ marker: marker() }));
    expect(kinds(planDelete(rescue, { drives: desired.drives, allowWipe: true }))).toEqual(["stopStorage", "wipeDrives"]);
    expect(() => planDelete(rescue, { drives: desired.drives, allowWipe: false })).toThrow(/needs allowWipe: true, found false; nothing was written\. Set allowWipe: true and run up, then destroy/);
    expect(() => planDelete(parseInstallProbe(rawProbe({ rescue: false, marker: marker() })), { drives: desired.drives, allowWipe: true })).toThrow(/runs its installed system \(lab-1\); run destroy again/);
    expect(() => planDelete(rescue, { drives: [{ path: "/dev/nvme0n1", serial: "OTHER" }], allowWipe: true })).toThrow(/has serial "LAB100001N0", expected "OTHER"/);
  });
});

describe("a host that cannot be logged into (a crypt system waiting for its passphrase, or off)", () => {
  const desired = raid1Lvm();
  const sha = configSha256(desired);
  const marker = JSON.stringify({ installId: "id-1", configSha256: sha, installedAt: "2026-11-22T08:00:00Z" });
  const reached = { environment: "rescue" as const, host: "127.0.0.1:2201" };

  it("after this create's own reboot it plans nothing; on update, work the record calls for is refused by name", () => {
    expect(plan({ environment: "initramfs" }, desired, null)).toEqual([]);
    expect(plan({ environment: "initramfs" }, desired, outputs(desired))).toEqual([]);
    expect(() => plan({ environment: "unreachable" }, { ...desired, hostname: "lab-2" }, outputs(desired))).toThrow(/setHostname needs the host, which does not answer SSH; power it on/);
    // up cannot unlock before InstallImage: the refusal points at the unlock command instead.
    expect(() => plan({ environment: "initramfs" }, { ...desired, hostname: "lab-2" }, outputs(desired))).toThrow(/setHostname needs the host, which waits in its initramfs .* up unlocks only after InstallImage\. Unlock it with the stack's unlockCommand output/);
  });

  // Decisions (#9): the outputs are the rescue's observation just before the reboot, carried to the end of the
  // run; the boot is counted by the round that rebooted; a later look without a login keeps the record.
  it("the round that rebooted carries what rescue saw and counts the boot; an unseen host keeps the record", () => {
    const before = parseInstallProbe(rawProbe({ marker }));
    const applied = plan(before, desired).filter((step) => step.kind !== "replace") as Parameters<typeof carryOver>[4];
    expect(carryOver(desired, before, reached, null, [])).toBeNull();
    const carried = carryOver(desired, before, reached, null, applied);
    expect(carried).toMatchObject({ environment: "rescue", installId: "id-1", boots: 1, hostKeyFingerprints: [ROOT_FP], observedHostname: "lab-1" });
    const locked = outputsOf(desired, { environment: "initramfs" }, { environment: "initramfs", host: "127.0.0.1:2201" }, carried);
    expect(locked).toEqual({ ...carried, environment: "initramfs-locked", host: "127.0.0.1:2201" });
    expect(outputsOf(desired, { environment: "unreachable" }, reached, locked).environment).toBe("unreachable");
    expect(outputsOf(desired, { environment: "unreachable" }, reached, locked).layout).toEqual(carried?.layout);
    expect(() => outputsOf(desired, { environment: "initramfs" }, reached, null)).toThrow(/no record of the install to keep/);
  });

  it("read keeps an unseen install (not gone); a marker of another install, or wiped drives in rescue, is gone", () => {
    const recorded = outputs(desired);
    expect(definition.exists({ environment: "unreachable" }, recorded)).toBe(true);
    expect(definition.exists(parseInstallProbe(rawProbe({ rescue: false, marker })), recorded)).toBe(true);
    expect(definition.exists(parseInstallProbe(rawProbe({ rescue: false, marker: marker.replace("id-1", "id-2") })), recorded)).toBe(false);
  });
});

describe("delete: reaching a rescue to wipe from", () => {
  const RESCUE = "SHA256:" + "R".repeat(43);
  const OTHER = "SHA256:" + "O".repeat(43);
  const recipe = { serverNumber: 100001, authorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl op"], resetType: "hw", allowFirstContactHostKey: true, sshMs: 600_000 };
  const base = raid1Lvm();
  const props = outputs({ ...base, rescue: { ...base.rescue, hostKeyFingerprints: [RESCUE], robot: recipe } }, { hostKeyFingerprints: [FP] });
  const seen = (fingerprint: string | null): EndpointObservation =>
    fingerprint === null ? { kind: "none", reason: "ECONNREFUSED" } : { kind: "ssh", software: "OpenSSH_9.2p1", hostKey: { type: "ssh-ed25519", base64: "AAAA", fingerprint } };

  it.each<[string, EndpointObservation, string]>([
    ["the stored rescue's key", seen(RESCUE), "rescue"],
    ["the installed system's pinned key", seen(FP), "system"],
    ["nothing", seen(null), "unreachable"],
    ["another key", seen(OTHER), "unknown-key"],
  ])("an endpoint presenting %s is %s", (_case, observation, kind) => {
    expect(classifyHost(observation, wipeProfiles(props)).kind).toBe(kind);
  });

  it("wipes from the stored rescue while it answers; Robot is not needed then", () => {
    expect(planWipeAccess({ kind: "rescue" }, props, false)).toEqual({ kind: "storedRescue" });
  });

  it.each<[string, Parameters<typeof planWipeAccess>[0], RegExp]>([
    ["the installed system", { kind: "system" }, /the host runs its installed system/],
    ["nothing", { kind: "unreachable" }, /nothing answers SSH on 127\.0\.0\.1:2201/],
    ["an unknown key", { kind: "unknown-key", fingerprint: OTHER, software: "OpenSSH_9.2p1" }, /presents SHA256:O+, neither the stored rescue's key nor the installed system's/],
  ])("with %s answering, boots rescue from the profile's recipe at the profile's address", (_case, whereabouts, why) => {
    const access = planWipeAccess(whereabouts, props, true);
    if (access.kind !== "bootRescue") throw new Error(`expected bootRescue, got ${access.kind}`);
    expect(access.why).toMatch(why);
    expect(access.desired).toMatchObject({ serverNumber: 100001, authorizedKeys: recipe.authorizedKeys, resetType: "hw", connect: { host: "127.0.0.1", port: 2201 }, timeouts: { sshMs: 600_000 } });
    // A rescue that an earlier, killed delete booted after the install is adopted rather than reset again.
    expect(access.bootedAfter).toBe(props.installedAt);
  });

  it("refuses, writing nothing, without Robot credentials or without a recipe", () => {
    expect(() => planWipeAccess({ kind: "system" }, props, false)).toThrow(/booting one needs Robot: no Robot webservice credentials; set them with `pulumi config set hetzner-fde:robotUser.*Nothing was written/);
    const handMade = outputs(base);
    expect(() => planWipeAccess({ kind: "system" }, handMade, true)).toThrow(/carries no Robot recipe to boot one \(it did not come from RescueBoot\).*Nothing was written/);
  });
});

describe("create without its rescue", () => {
  it("says which rescue did not answer and how to continue, on one line per cause", () => {
    const message = rescueGoneOnCreate(raid1Lvm().rescue, new Error("no environment of the host answered with its pinned host key:\n  - rescue 127.0.0.1:2201: ECONNREFUSED"));
    expect(message).toMatch(/^create installs from the rescue system at 127\.0\.0\.1:2201, which did not answer with its pinned key \(no environment .* - rescue 127\.0\.0\.1:2201: ECONNREFUSED\)\. Bump RescueBoot's generation/);
    expect(message).toMatch(/interrupted after it rebooted into the installed system, the finished install is found on the drives/);
    expect(message).not.toContain("\n");
  });
});

describe("destructive steps act only on drives that are ours or allowed, and pinned (#10 §2)", () => {
  const desired = raid1Lvm();
  const sha = configSha256(desired);
  const marker = JSON.stringify({ installId: "id-1", configSha256: sha, installedAt: "2026-11-22T08:00:00Z" });
  const kinds = (steps: { kind: string }[]) => steps.map((s) => s.kind);

  it("a create failed on one drive, drives gained a disk with data, up again in the same rescue: that disk is not wiped without allowWipe", () => {
    const before = { ...desired, drives: [desired.drives[0]], raid: false as const };
    const observed = parseInstallProbe(rawProbe({ marker: null, startedFor: startedForRecord(configSha256(before), [["/dev/nvme0n1", "LAB100001N0"]]) }));
    expect(() => plan(observed, desired)).toThrow(/refusing to install over data: .*\/dev\/nvme1n1: a dos signature.*set allowWipe: true/);
    expect(kinds(plan(observed, { ...desired, allowWipe: true }))).toContain("runInstallimage");
  });

  it("the install record makes a drive ours only for the same config hash and that very disk (path, serial)", () => {
    const onlyFirst = parseInstallProbe(rawProbe({ marker: null, startedFor: startedForRecord(sha, [["/dev/nvme0n1", "LAB100001N0"]]) }));
    expect(() => plan(onlyFirst, desired)).toThrow(/refusing to install over data: \/dev\/nvme1n1: /);
    const swapped = parseInstallProbe(rawProbe({ marker: null, startedFor: startedForRecord(sha, [["/dev/nvme0n1", "LAB100001N0"], ["/dev/nvme1n1", "OLDDISK"]]) }));
    expect(() => plan(swapped, desired)).toThrow(/refusing to install over data: \/dev\/nvme1n1: /);
    const legacy = parseInstallProbe(rawProbe({ marker: null, startedFor: `${sha}\n` }));
    expect(() => plan(legacy, desired)).toThrow(/refusing to install over data: \/dev\/nvme0n1: .*\/dev\/nvme1n1: /);
  });

  it("re-add refuses a member partition that holds another filesystem unless allowWipe", () => {
    const observed = parseInstallProbe(rawProbe({ rescue: false, marker, md1Members: [["nvme0n1p2", "0"]], md1Degraded: "1", member2Fstype: "ext4" }));
    expect(() => plan(observed, { ...desired, reassemble: "scan" }, outputs(desired))).toThrow(/refusing to add \/dev\/nvme1n1p2 back into its array: it holds a ext4 filesystem, which the resync would overwrite/);
    expect(plan(observed, { ...desired, reassemble: "scan", allowWipe: true }, outputs(desired))).toEqual([
      { kind: "readdMember", array: "/dev/md1", member: "/dev/nvme1n1p2", uuid: "aaaabbbbccccddddeeeeffff00001111", pin: { path: "/dev/nvme1n1", serial: "LAB100001N1" }, allowWipe: true },
    ]);
    const blank = parseInstallProbe(rawProbe({ rescue: false, marker, md1Members: [["nvme0n1p2", "0"]], md1Degraded: "1", member2Fstype: null }));
    expect(kinds(plan(blank, { ...desired, reassemble: "scan" }, outputs(desired)))).toEqual(["readdMember"]);
  });

  it("re-add and reassemble refuse a drive whose pin does not match (a swapped disk)", () => {
    const degraded = parseInstallProbe(rawProbe({ rescue: false, marker, md1Members: [["nvme0n1p2", "0"]], md1Degraded: "1", serials: ["LAB100001N0", "NEWDISK"] }));
    expect(() => plan(degraded, { ...desired, reassemble: "scan", allowWipe: true }, outputs(desired))).toThrow(/refusing to add \/dev\/nvme1n1p2 back into its array: \/dev\/nvme1n1 has serial "NEWDISK", expected "LAB100001N1"/);
    const stopped = parseInstallProbe(rawProbe({ rescue: false, marker, md0Stopped: true, serials: ["LAB100001N0", "NEWDISK"] }));
    expect(() => plan(stopped, { ...desired, reassemble: "scan" }, outputs(desired))).toThrow(/refusing to reassemble: \/dev\/nvme1n1 has serial "NEWDISK"/);
  });

  it("with allowWipe, check names every drive without a serial or wwn pin and how to find them", () => {
    const failures = validate({ ...desired, allowWipe: true, drives: [{ path: "/dev/nvme0n1" }, desired.drives[1]] });
    expect(failures).toEqual([{ property: "drives[0]", reason: expect.stringMatching(/expected a serial or wwn pin on drives\[0\] \("\/dev\/nvme0n1"\) because allowWipe is true.*lsblk -d -o NAME,SERIAL,WWN/) }]);
    expect(validate({ ...desired, drives: [{ path: "/dev/nvme0n1" }, desired.drives[1]] })).toEqual([]);
  });

  it("install over data and delete refuse unpinned drives even when old state says allowWipe", () => {
    const unpinned = { ...desired, allowWipe: true, drives: [{ path: "/dev/nvme0n1" }, desired.drives[1]] };
    expect(() => plan(parseInstallProbe(rawProbe({ marker: null })), unpinned)).toThrow(/refusing to wipe \/dev\/nvme0n1: a drive with data is wiped only when pinned by serial or wwn/);
    expect(() => planDelete(parseInstallProbe(rawProbe({ marker })), unpinned)).toThrow(/refusing to wipe \/dev\/nvme0n1: not pinned by serial or wwn/);
  });
});
