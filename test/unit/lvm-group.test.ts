// LvmGroup's pure parts: validation, size arithmetic, the plan (and the convergence of %FREE, all
// and %VG over repeated runs), fstab editing, diff against recorded outputs, and parsing of real
// `pvs/vgs/lvs --reportformat json --units b --nosuffix`, `wipefs -J` and blkid output.
import {
  EXTENT_SIZE_BYTES,
  LvmGroupInputs,
  LvmGroupOutputs,
  LvmGroupStep,
  LvmObserved,
  OWNER_TAG,
  VgFacts,
  compareOutputs,
  decideSize,
  editFstab,
  isShrink,
  outputsFrom,
  parseLvSize,
  parseProbe,
  plan,
  planDelete,
  targetExtents,
  validate,
  validateDestructiveChanges,
  LvmRecord,
  probeCommand,
  probeScriptText,
} from "../../providers/lvm-group";
import { execFileSync, spawnSync } from "child_process";
import { readFileSync } from "fs";
import { join } from "path";
import type { ReplaceStep } from "../../providers/kernel";
import { MIB } from "../../providers/rules/size";
import { UNKNOWN } from "../../providers/kernel/resource";

const GIB = 1024 * MIB;
const FP = "SHA256:" + "A".repeat(43);
const CONNECTION = [{ environment: "rescue" as const, host: "127.0.0.1", port: 2201, user: "root", hostKeyFingerprints: [FP] }];

function inputs(overrides: Partial<LvmGroupInputs> = {}): LvmGroupInputs {
  return {
    connection: CONNECTION,
    pvs: ["/dev/mapper/cryptroot"],
    vgName: "vg0",
    volumes: [
      { name: "swap", size: "1G", filesystem: "swap" },
      { name: "root", size: "all", filesystem: "ext4", mountPoint: "/" },
    ],
    providerVersion: "1",
    ...overrides,
  };
}

// ---------------------------------------------------------------------------------------------
// validate

describe("validate", () => {
  it("accepts the DESIGN layout (swap + root taking the rest)", () => {
    expect(validate(inputs())).toEqual([]);
  });

  it.each<[string, Partial<LvmGroupInputs>, string, RegExp]>([
    ["PV not under /dev", { pvs: ["mapper/cryptroot"] }, "pvs[0]", /under \/dev.*write "\/dev\/mapper\/cryptroot"/],
    ["PV absolute but outside /dev", { pvs: ["/tmp/disk.img"] }, "pvs[0]", /under \/dev/],
    ["PV listed twice", { pvs: ["/dev/md1", "/dev/md1"] }, "pvs[1]", /listed twice/],
    ["no PV", { pvs: [] }, "pvs", /at least one/],
    ["VG name with a space", { vgName: "vg 0" }, "vgName", /A-Z a-z 0-9/],
    ["VG name starting with -", { vgName: "-vg" }, "vgName", /not starting with "-"/],
    ["VG name ..", { vgName: ".." }, "vgName", /not a valid VG name/],
    ["duplicate LV name", { volumes: [{ name: "a", size: "1G", filesystem: "ext4" }, { name: "a", size: "1G", filesystem: "xfs" }] }, "volumes[1].name", /used twice/],
    ["reserved LV name snapshot*", { volumes: [{ name: "snapshot1", size: "1G", filesystem: "ext4" }] }, "volumes[0].name", /reserves LV names starting with "snapshot"/],
    ["reserved LV name pvmove", { volumes: [{ name: "pvmove", size: "1G", filesystem: "ext4" }] }, "volumes[0].name", /"pvmove"/],
    ["reserved LV suffix", { volumes: [{ name: "data_tmeta", size: "1G", filesystem: "ext4" }] }, "volumes[0].name", /"_tmeta"/],
    ["LV name charset", { volumes: [{ name: "root/x", size: "1G", filesystem: "ext4" }] }, "volumes[0].name", /A-Z a-z 0-9/],
    ["%FREE used twice", { volumes: [{ name: "a", size: "50%FREE", filesystem: "ext4" }, { name: "b", size: "all", filesystem: "ext4" }] }, "volumes[1].size", /only one LV can take a share of the free space.*volumes\[0\]/],
    ["all not last", { volumes: [{ name: "a", size: "all", filesystem: "ext4" }, { name: "b", size: "1G", filesystem: "ext4" }] }, "volumes[0].size", /must be the last LV; move "a"/],
    ["bare number size", { volumes: [{ name: "a", size: "8", filesystem: "ext4" }] }, "volumes[0].size", /add the unit, e.g. "8M"/],
    ["lower-case unit", { volumes: [{ name: "a", size: "8g", filesystem: "ext4" }] }, "volumes[0].size", /write it as "8G"/],
    ["percent over 100", { volumes: [{ name: "a", size: "120%VG", filesystem: "ext4" }] }, "volumes[0].size", /from 1 to 100/],
    ["unsupported percent", { volumes: [{ name: "a", size: "10%PVS", filesystem: "ext4" }] }, "volumes[0].size", /N%VG or N%FREE/],
    ["unknown filesystem", { volumes: [{ name: "a", size: "1G", filesystem: "btrfs" as never }] }, "volumes[0].filesystem", /ext4, xfs, swap.*"btrfs"/],
    ["swap with a mount point", { volumes: [{ name: "swap", size: "1G", filesystem: "swap", mountPoint: "/swap" }] }, "volumes[0].mountPoint", /swap LV has no mount point/],
    ["relative mount point", { volumes: [{ name: "a", size: "1G", filesystem: "ext4", mountPoint: "var" }] }, "volumes[0].mountPoint", /absolute path/],
    ["mount point with ..", { volumes: [{ name: "a", size: "1G", filesystem: "ext4", mountPoint: "/var/../x" }] }, "volumes[0].mountPoint", /normalised/],
    ["mount point with a space", { volumes: [{ name: "a", size: "1G", filesystem: "ext4", mountPoint: "/my data" }] }, "volumes[0].mountPoint", /without spaces/],
    ["duplicate mount point", { volumes: [{ name: "a", size: "1G", filesystem: "ext4", mountPoint: "/srv" }, { name: "b", size: "1G", filesystem: "xfs", mountPoint: "/srv" }] }, "volumes[1].mountPoint", /also the mount point of volumes\[0\]/],
    ["mount options with a space", { volumes: [{ name: "a", size: "1G", filesystem: "ext4", mountPoint: "/a", mountOptions: "defaults, noatime" }] }, "volumes[0].mountOptions", /without spaces/],
    ["%VG over 100", { volumes: [{ name: "a", size: "60%VG", filesystem: "ext4" }, { name: "b", size: "50%VG", filesystem: "ext4" }] }, "volumes", /add up to 110%/],
    ["fixed sizes beyond pvSizeBytes", { pvSizeBytes: 10 * GIB, volumes: [{ name: "a", size: "8G", filesystem: "ext4" }, { name: "b", size: "4G", filesystem: "ext4" }] }, "volumes", /need 12288 MiB but the PVs .* about 10236 MiB/],
    ["all left with nothing", { pvSizeBytes: 8 * GIB + MIB, volumes: [{ name: "a", size: "8G", filesystem: "ext4" }, { name: "b", size: "all", filesystem: "ext4" }] }, "volumes[1].size", /would get nothing/],
    ["bad pvSizeBytes", { pvSizeBytes: -1 }, "pvSizeBytes", /positive whole number/],
    ["fstabRoot relative", { fstabRoot: "mnt" }, "fstabRoot", /absolute path/],
    ["allowWipe not boolean", { allowWipe: "yes" as never }, "allowWipe", /true or false/],
    ["no connection", { connection: [] }, "connection", /at least one connection profile/],
    ["an initramfs profile", { connection: [...CONNECTION, { ...CONNECTION[0], environment: "initramfs" as const, port: 2222 }] }, "connection[1].environment", /found "initramfs": dropbear's unlock shell runs only cryptroot-unlock/],
  ])("%s → %s", (_name, overrides, property, reason) => {
    const failures = validate(inputs(overrides));
    expect(failures).toContainEqual({ property, reason: expect.stringMatching(reason) });
  });

  it("skips values still unknown in preview", () => {
    expect(validate(inputs({ vgName: UNKNOWN, pvs: UNKNOWN as never, volumes: [{ name: UNKNOWN, size: UNKNOWN, filesystem: "ext4" }] }))).toEqual([]);
    expect(validate(inputs({ volumes: UNKNOWN as never }))).toEqual([]);
  });

  it("fits exactly: 8G + all in 10 GiB passes", () => {
    expect(validate(inputs({ pvSizeBytes: 10 * GIB, volumes: [{ name: "a", size: "8G", filesystem: "ext4" }, { name: "b", size: "all", filesystem: "ext4" }] }))).toEqual([]);
  });
});

describe("validateDestructiveChanges (check, against the previous inputs)", () => {
  const olds = inputs({ volumes: [{ name: "data", size: "4G", filesystem: "ext4", mountPoint: "/srv" }, { name: "rest", size: "50%FREE", filesystem: "xfs" }] });

  it.each<[string, Partial<LvmGroupInputs>, string, RegExp]>([
    ["a removed LV", { volumes: [{ name: "rest", size: "50%FREE", filesystem: "xfs" }] }, "volumes", /removing LV "data" \(vg0\/data\) destroys its data; set allowWipe: true/],
    ["a shrunk LV", { volumes: [{ name: "data", size: "2G", filesystem: "ext4", mountPoint: "/srv" }, olds.volumes[1]] }, "volumes[0].size", /shrinking LV "data" \(vg0\/data\) from 4G to 2G destroys its data/],
    ["a smaller %FREE", { volumes: [olds.volumes[0], { name: "rest", size: "40%FREE", filesystem: "xfs" }] }, "volumes[1].size", /shrinking LV "rest"/],
    ["a new filesystem", { volumes: [{ name: "data", size: "4G", filesystem: "xfs", mountPoint: "/srv" }, olds.volumes[1]] }, "volumes[0].filesystem", /changing LV "data" \(vg0\/data\) from ext4 to xfs destroys its data/],
    ["a renamed VG", { vgName: "vg1" }, "vgName", /renaming VG "vg0" to "vg1" replaces it.*data, rest/],
    ["a dropped PV", { pvs: ["/dev/md2"] }, "pvs", /removing PV \/dev\/mapper\/cryptroot replaces VG "vg0"/],
  ])("refuses %s without allowWipe, naming it", (_name, overrides, property, reason) => {
    const news = { ...olds, ...overrides };
    expect(validateDestructiveChanges(olds, news)).toContainEqual({ property, reason: expect.stringMatching(reason) });
    expect(validateDestructiveChanges(olds, { ...news, allowWipe: true })).toEqual([]);
  });

  it.each<[string, Partial<LvmGroupInputs>, Partial<LvmGroupInputs>]>([
    ["a grown LV", olds, { volumes: [{ name: "data", size: "6G", filesystem: "ext4", mountPoint: "/srv" }, olds.volumes[1]] }],
    ["an added LV", olds, { volumes: [olds.volumes[0], { name: "more", size: "1G", filesystem: "ext4" }, olds.volumes[1]] }],
    ["a new mount point", olds, { volumes: [{ ...olds.volumes[0], mountPoint: "/data" }, olds.volumes[1]] }],
    ["an added PV", olds, { pvs: [...olds.pvs, "/dev/md2"] }],
    // Check sends empty olds on a first create; a VG name and LVs that differ from any earlier
    // inputs must not be mistaken for a rename or a removal.
    ["a first create (no olds)", {}, { vgName: "vg1", volumes: [{ name: "other", size: "1G", filesystem: "ext4" }] }],
  ])("lets %s through", (_name, previous, overrides) => {
    expect(validateDestructiveChanges(previous, { ...olds, ...overrides })).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// sizes

describe("sizes", () => {
  it.each<[string, unknown]>([
    ["8G", { kind: "fixed", bytes: 8 * GIB }],
    ["512M", { kind: "fixed", bytes: 512 * MIB }],
    ["2T", { kind: "fixed", bytes: 2048 * GIB }],
    ["20%VG", { kind: "percentVg", percent: 20 }],
    ["100%FREE", { kind: "percentFree", percent: 100 }],
    ["all", { kind: "percentFree", percent: 100 }],
  ])("parseLvSize(%s)", (text, size) => {
    expect(parseLvSize(text)).toEqual({ ok: true, size });
  });

  const geometry = { extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: 1023 };
  it.each<[string, number, number, number]>([
    // size, free, own → target extents
    ["1G", 1023, 0, 256],
    ["1025M", 1023, 0, 257], // rounded up to whole extents, as lvcreate -L does
    ["10%VG", 0, 0, 102],
    ["100%VG", 0, 0, 1023],
    ["all", 767, 0, 767],
    ["all", 0, 767, 767], // after creation: own + free is still the same
    ["all", 100, 767, 867], // the VG grew: the rest grows with it
    ["50%FREE", 800, 0, 400],
    ["50%FREE", 400, 400, 400], // after creation: the same request yields the same extents
  ])("targetExtents(%s, free %d, own %d) = %d", (size, free, own, expected) => {
    const parsed = parseLvSize(size);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(targetExtents(parsed.size, geometry, free, own)).toBe(expected);
  });

  it.each<[number, number, string, boolean, string]>([
    [256, 256, "1G", false, "keep"],
    [257, 256, "1G", false, "keep"], // one extent of rounding is tolerated
    [255, 256, "1G", false, "keep"],
    [200, 256, "1G", false, "grow"],
    [300, 256, "1G", false, "shrink"],
    [767, 768, "all", false, "grow"], // the rest takes even one free extent
    [500, 400, "50%FREE", false, "keep"], // re-derived smaller: never a shrink
    [500, 400, "50%FREE", true, "shrink"], // asked smaller: a shrink
  ])("decideSize(current %d, target %d, %s, changed %s) = %s", (current, target, size, changed, expected) => {
    const parsed = parseLvSize(size);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(decideSize(current, target, parsed.size, changed)).toBe(expected);
  });

  it.each<[string, string, boolean]>([
    ["4G", "2G", true],
    ["4G", "4096M", false],
    ["4G", "8G", false],
    ["50%VG", "40%VG", true],
    ["all", "50%FREE", true],
    ["4G", "10%VG", false], // not comparable without the VG: the plan decides at update
  ])("isShrink(%s → %s) = %s", (from, to, expected) => {
    expect(isShrink(from, to)).toBe(expected);
  });
});

// ---------------------------------------------------------------------------------------------
// plan, against a model host that applies steps the way LVM does

interface ModelHost {
  observed: LvmObserved;
}

const PV_BYTES = 4 * GIB;

function blankHost(overrides: Partial<LvmObserved> = {}): ModelHost {
  return {
    observed: {
      devices: [{ path: "/dev/mapper/cryptroot", exists: true, sizeBytes: PV_BYTES, signatures: [], pv: null, mountedAt: null, holders: 0 }],
      vg: null,
      lvs: [],
      fstab: null,
      fstabRootReady: false,
      ...overrides,
    },
  };
}

function pvExtents(bytes: number): number {
  return Math.floor((bytes - MIB) / EXTENT_SIZE_BYTES);
}

/** Applies steps the way the host would, in the model. */
function apply(host: ModelHost, steps: PlannedStep[]): void {
  const o = host.observed as { -readonly [K in keyof LvmObserved]: LvmObserved[K] };
  const vg = () => o.vg as { -readonly [K in keyof VgFacts]: VgFacts[K] };
  for (const step of steps) {
    switch (step.kind) {
      case "pvcreate":
        o.devices = o.devices.map((d) => (d.path === step.device ? { ...d, signatures: [{ type: "LVM2_member", uuid: "x" }], pv: { uuid: "x", vgName: "", sizeBytes: pvExtents(PV_BYTES) * EXTENT_SIZE_BYTES } } : d));
        break;
      case "vgcreate":
      case "vgextend": {
        const added = step.devices.reduce((sum, path) => sum + pvExtents(o.devices.find((d) => d.path === path)?.sizeBytes ?? 0), 0);
        o.devices = o.devices.map((d) => (step.devices.includes(d.path) && d.pv ? { ...d, pv: { ...d.pv, vgName: step.vgName } } : d));
        const count = (o.vg?.extentCount ?? 0) + added;
        const free = (o.vg?.freeExtents ?? 0) + added;
        o.vg = { name: step.vgName, uuid: "vg-uuid", tags: [OWNER_TAG], sizeBytes: count * EXTENT_SIZE_BYTES, freeBytes: free * EXTENT_SIZE_BYTES, extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: count, freeExtents: free, pvPaths: [...(o.vg?.pvPaths ?? []), ...step.devices] };
        break;
      }
      case "lvcreate":
        o.lvs = [...o.lvs, { name: step.lv, uuid: step.lv, path: `/dev/${step.vgName}/${step.lv}`, sizeBytes: step.extents * EXTENT_SIZE_BYTES, extents: step.extents, active: true, filesystem: null, filesystemUuid: null, filesystemSizeBytes: null, mountedAt: null }];
        vg().freeExtents -= step.extents;
        break;
      case "lvextend": {
        const lv = o.lvs.find((l) => l.name === step.lv);
        if (!lv) throw new Error(`no LV ${step.lv}`);
        vg().freeExtents -= step.extents - lv.extents;
        if (vg().freeExtents < 0) throw new Error("model: VG overcommitted");
        o.lvs = o.lvs.map((l) => (l.name === step.lv ? { ...l, extents: step.extents, sizeBytes: step.extents * EXTENT_SIZE_BYTES } : l));
        break;
      }
      case "lvremove": {
        const lv = o.lvs.find((l) => l.name === step.lv);
        vg().freeExtents += lv?.extents ?? 0;
        o.lvs = o.lvs.filter((l) => l.name !== step.lv);
        break;
      }
      case "mkfs":
      case "growFilesystem":
        o.lvs = o.lvs.map((l) => (l.name === step.lv ? { ...l, filesystem: step.kind === "mkfs" ? step.filesystem : l.filesystem, filesystemUuid: `${step.lv}-fs`, filesystemSizeBytes: step.filesystem === "swap" ? null : l.sizeBytes } : l));
        break;
      case "writeFstab":
        o.fstab = step.text;
        break;
      case "activate":
        o.lvs = o.lvs.map((l) => ({ ...l, active: true }));
        break;
      default:
        break;
    }
  }
}

/** What the provider does: probe, plan, apply, until the plan is empty. Returns every step run. */
function converge(host: ModelHost, desired: LvmGroupInputs, requested: Record<string, string> = {}): PlannedStep[] {
  const all: PlannedStep[] = [];
  for (let round = 0; round < 4; round++) {
    const steps = plan(host.observed, desired, recordedRequests(requested, desired));
    if (steps.length === 0) return all;
    apply(host, steps);
    all.push(...steps);
  }
  throw new Error("model did not converge");
}

/** The previous outputs as plan sees them: the LV sizes asked for last time (same VG and PVs). */
function recordedRequests(requested: Record<string, string>, desired: Pick<LvmGroupInputs, "vgName" | "pvs"> = inputs()): LvmRecord | null {
  const lvs = Object.entries(requested).map(([name, size]) => ({ name, size, filesystem: "ext4" as const }));
  return lvs.length === 0 ? null : { vgName: desired.vgName, pvs: desired.pvs, volumes: lvs };
}

type PlannedStep = LvmGroupStep | ReplaceStep;

const kinds = (steps: PlannedStep[]) => steps.map((s) => ("lv" in s ? `${s.kind} ${s.lv}` : s.kind));

describe("plan", () => {
  it("creates PV, VG, LVs and filesystems on a blank device, in phases", () => {
    const host = blankHost();
    const first = plan(host.observed, inputs());
    expect(kinds(first)).toEqual(["pvcreate", "vgcreate"]);
    apply(host, first);
    expect(kinds(plan(host.observed, inputs()))).toEqual(["lvcreate swap", "mkfs swap", "lvcreate root", "mkfs root"]);
  });

  const layouts: [string, LvmGroupInputs["volumes"]][] = [
    ["swap 1G + root all", inputs().volumes],
    ["root 100%FREE", [{ name: "root", size: "100%FREE", filesystem: "ext4" }]],
    ["%VG then 50%FREE", [{ name: "a", size: "30%VG", filesystem: "xfs" }, { name: "b", size: "50%FREE", filesystem: "ext4" }]],
    ["only %VG", [{ name: "a", size: "33%VG", filesystem: "ext4" }, { name: "b", size: "67%VG", filesystem: "ext4" }]],
    ["odd fixed sizes", [{ name: "a", size: "1025M", filesystem: "ext4" }, { name: "b", size: "3M", filesystem: "swap" }, { name: "c", size: "all", filesystem: "xfs" }]],
  ];

  it.each(layouts)("%s converges: a second run plans nothing, and nothing is left for `all`", (_name, lvs) => {
    const host = blankHost();
    const desired = inputs({ volumes: lvs });
    converge(host, desired);
    const requested = Object.fromEntries(lvs.map((lv) => [lv.name, lv.size]));
    expect(plan(host.observed, desired, recordedRequests(requested))).toEqual([]);
    if (lvs.some((lv) => lv.size === "all" || lv.size === "100%FREE")) expect(host.observed.vg?.freeExtents).toBe(0);
  });

  it("grows an LV in place, with its filesystem, and the rest gives nothing up", () => {
    const host = blankHost();
    const lvs = [{ name: "data", size: "1G", filesystem: "ext4" as const }, { name: "rest", size: "50%FREE", filesystem: "xfs" as const }];
    converge(host, inputs({ volumes: lvs }));
    const grown = [{ ...lvs[0], size: "1200M" }, lvs[1]];
    const steps = converge(host, inputs({ volumes: grown }), { data: "1G", rest: "50%FREE" });
    expect(kinds(steps)).toEqual(["lvextend data", "growFilesystem data"]);
    expect(host.observed.lvs.find((l) => l.name === "data")?.extents).toBe(300);
  });

  it("adds an LV in place before the rest", () => {
    const host = blankHost();
    const lvs = [{ name: "data", size: "1G", filesystem: "ext4" as const }];
    converge(host, inputs({ volumes: lvs }));
    expect(kinds(converge(host, inputs({ volumes: [...lvs, { name: "logs", size: "512M", filesystem: "xfs" }] }), { data: "1G" }))).toEqual(["lvcreate logs", "mkfs logs"]);
  });

  it("refuses to grow an LV when `all` took the space, saying what is free", () => {
    const host = blankHost();
    converge(host, inputs());
    const grown = inputs({ volumes: [{ name: "swap", size: "2G", filesystem: "swap" }, inputs().volumes[1]] });
    expect(() => plan(host.observed, grown, recordedRequests({ swap: "1G", root: "all" }))).toThrow(/growing LV "swap" to 512 extents \(2G\) needs 256 free extents, VG "vg0" has 0/);
  });

  it("refuses a shrink found only on the host (an LV grown by hand), naming the LV", () => {
    const host = blankHost();
    const lvs = [{ name: "data", size: "1G", filesystem: "ext4" as const }];
    converge(host, inputs({ volumes: lvs }));
    apply(host, [{ kind: "lvextend", vgName: "vg0", lv: "data", extents: 300, extentSizeBytes: EXTENT_SIZE_BYTES }]);
    expect(() => plan(host.observed, inputs({ volumes: lvs }), recordedRequests({ data: "1G" }))).toThrow(/shrinking LV "data" \(vg0\/data\) from 300 to 256 extents.*allowWipe: true/);
    expect(kinds(plan(host.observed, inputs({ volumes: lvs, allowWipe: true }), recordedRequests({ data: "1G" })))).toEqual(["lvremove data", "lvcreate data", "mkfs data"]);
  });

  it("refuses to remove a previously managed LV without allowWipe, and removes it with", () => {
    const host = blankHost();
    const lvs = [{ name: "a", size: "1G", filesystem: "ext4" as const }, { name: "b", size: "1G", filesystem: "ext4" as const }];
    converge(host, inputs({ volumes: lvs }));
    const requested = { a: "1G", b: "1G" };
    expect(() => plan(host.observed, inputs({ volumes: [lvs[0]] }), recordedRequests(requested))).toThrow(/removing LV "b" \(vg0\/b\)/);
    expect(kinds(plan(host.observed, inputs({ volumes: [lvs[0]], allowWipe: true }), recordedRequests(requested)))).toEqual(["lvremove b"]);
  });

  it("refuses a filesystem change without allowWipe; with it, reformats with wipe", () => {
    const host = blankHost();
    const lvs = [{ name: "a", size: "1G", filesystem: "ext4" as const }];
    converge(host, inputs({ volumes: lvs }));
    const xfs = [{ ...lvs[0], filesystem: "xfs" as const }];
    expect(() => plan(host.observed, inputs({ volumes: xfs }), recordedRequests({ a: "1G" }))).toThrow(/changing the filesystem of LV "a" \(vg0\/a\) from ext4 to xfs destroys its data/);
    expect(plan(host.observed, inputs({ volumes: xfs, allowWipe: true }), recordedRequests({ a: "1G" }))).toEqual([{ kind: "mkfs", vgName: "vg0", lv: "a", filesystem: "xfs", wipe: true }]);
  });

  it.each<[string, Partial<LvmObserved>, Partial<LvmGroupInputs>, RegExp]>([
    ["a PV with a filesystem", { devices: [{ path: "/dev/mapper/cryptroot", exists: true, sizeBytes: PV_BYTES, signatures: [{ type: "ext4", uuid: "u" }], pv: null, mountedAt: null, holders: 0 }] }, {}, /\/dev\/mapper\/cryptroot already carries data \(ext4 signature\); set allowWipe: true/],
    ["a PV of another VG", { devices: [{ path: "/dev/mapper/cryptroot", exists: true, sizeBytes: PV_BYTES, signatures: [{ type: "LVM2_member", uuid: "u" }], pv: { uuid: "u", vgName: "other", sizeBytes: 1 }, mountedAt: null, holders: 0 }] }, { allowWipe: true }, /PV of another VG "other"/],
    ["a missing device", { devices: [{ path: "/dev/mapper/cryptroot", exists: false, sizeBytes: null, signatures: [], pv: null, mountedAt: null, holders: 0 }] }, {}, /does not exist on the host; open the LUKS mapping/],
    ["a VG we did not create", { vg: { name: "vg0", uuid: "u", tags: [], sizeBytes: 1, freeBytes: 0, extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: 1, freeExtents: 0, pvPaths: ["/dev/mapper/cryptroot"] } }, {}, /not created by this stack.*set adopt: true/],
    ["a wipe of a device in use", { devices: [{ path: "/dev/mapper/cryptroot", exists: true, sizeBytes: PV_BYTES, signatures: [{ type: "ext4", uuid: "u" }], pv: null, mountedAt: "/mnt", holders: 0 }] }, { allowWipe: true }, /in use \(mounted at \/mnt\)/],
  ])("refuses %s", (_name, observed, desired, reason) => {
    expect(() => plan(blankHost(observed).observed, inputs(desired))).toThrow(reason);
  });

  it("wipes a foreign signature only with allowWipe, re-checking on the host", () => {
    const host = blankHost({ devices: [{ path: "/dev/mapper/cryptroot", exists: true, sizeBytes: PV_BYTES, signatures: [{ type: "xfs", uuid: "u" }], pv: null, mountedAt: null, holders: 0 }] });
    expect(kinds(plan(host.observed, inputs({ allowWipe: true })))).toEqual(["wipeSignatures", "pvcreate", "vgcreate"]);
  });

  it("resumes a killed create: an orphan PV joins, a tagged VG is ours, an LV without a filesystem gets one", () => {
    const host = blankHost();
    apply(host, [{ kind: "pvcreate", device: "/dev/mapper/cryptroot" }]);
    expect(kinds(plan(host.observed, inputs()))).toEqual(["vgcreate"]);
    apply(host, [{ kind: "vgcreate", vgName: "vg0", devices: ["/dev/mapper/cryptroot"] }, { kind: "lvcreate", vgName: "vg0", lv: "swap", extents: 256 }]);
    expect(kinds(plan(host.observed, inputs()))).toEqual(["mkfs swap", "lvcreate root", "mkfs root"]);
  });

  it("activates an inactive VG (after a reboot) before judging its filesystems", () => {
    const host = blankHost();
    converge(host, inputs());
    const o = host.observed as { lvs: LvmObserved["lvs"] };
    o.lvs = o.lvs.map((l) => ({ ...l, active: false, filesystem: null }));
    expect(kinds(plan(host.observed, inputs()))).toEqual(["activate"]);
  });

  it("grows a filesystem left behind by a run killed after lvextend", () => {
    const host = blankHost();
    const lvs = [{ name: "data", size: "1G", filesystem: "ext4" as const }];
    converge(host, inputs({ volumes: lvs }));
    const o = host.observed as { lvs: LvmObserved["lvs"] };
    o.lvs = o.lvs.map((l) => ({ ...l, filesystemSizeBytes: l.sizeBytes - 64 * MIB }));
    expect(kinds(plan(host.observed, inputs({ volumes: lvs }), recordedRequests({ data: "1G" })))).toEqual(["growFilesystem data"]);
  });

  it("adopts an untagged VG with adopt: tags it, keeps unlisted LVs", () => {
    const host = blankHost();
    converge(host, inputs());
    const o = host.observed as { vg: VgFacts };
    o.vg = { ...o.vg, tags: [] };
    expect(kinds(plan(host.observed, inputs({ adopt: true, volumes: [inputs().volumes[0]] })))).toEqual(["adoptVg"]);
  });

  it("writes fstab lines, and a second run leaves them", () => {
    const host = blankHost({ fstab: "proc /proc proc defaults 0 0\n/dev/md0 /boot ext4 defaults 0 2\n/dev/md1 / ext4 defaults 0 1\n", fstabRootReady: true });
    const desired = inputs({ fstabRoot: "/mnt" });
    converge(host, desired);
    expect(host.observed.fstab).toBe("proc /proc proc defaults 0 0\n/dev/md0 /boot ext4 defaults 0 2\n/dev/vg0/root / ext4 defaults 0 1\n/dev/vg0/swap none swap sw 0 0\n");
    expect(plan(host.observed, desired, recordedRequests({ swap: "1G", root: "all" }))).toEqual([]);
  });

  it("refuses fstabRoot when the target root is not mounted", () => {
    const host = blankHost();
    converge(host, inputs());
    expect(() => plan(host.observed, inputs({ fstabRoot: "/mnt" }))).toThrow(/fstabRoot "\/mnt" has no etc\/ directory/);
  });
});

describe("editFstab", () => {
  const desired = { vgName: "vg-a", volumes: [{ name: "swap", size: "1G", filesystem: "swap" as const }, { name: "var", size: "1G", filesystem: "xfs" as const, mountPoint: "/var" }, { name: "root", size: "all", filesystem: "ext4" as const, mountPoint: "/", mountOptions: "errors=remount-ro" }] };
  it.each<[string, string, string]>([
    ["empty", "", "/dev/vg-a/root / ext4 errors=remount-ro 0 1\n/dev/vg-a/var /var xfs defaults 0 0\n/dev/vg-a/swap none swap sw 0 0\n"],
    [
      "installimage-style UUID and mapper lines replaced in place",
      "# fstab\nUUID=root-fs / ext4 defaults 0 1\n/dev/mapper/vg--a-swap none swap sw 0 0\n/dev/md0 /boot ext3 defaults 0 2\n",
      "# fstab\n/dev/vg-a/root / ext4 errors=remount-ro 0 1\n/dev/vg-a/var /var xfs defaults 0 0\n/dev/vg-a/swap none swap sw 0 0\n/dev/md0 /boot ext3 defaults 0 2\n",
    ],
    ["a line of an LV no longer listed goes", "/dev/vg-a/old /old ext4 defaults 0 2\n/dev/sda1 /x ext4 defaults 0 2\n", "/dev/vg-a/root / ext4 errors=remount-ro 0 1\n/dev/vg-a/var /var xfs defaults 0 0\n/dev/vg-a/swap none swap sw 0 0\n/dev/sda1 /x ext4 defaults 0 2\n"],
    ["comments mentioning the mount point stay", "# / was on md1\n", "# / was on md1\n/dev/vg-a/root / ext4 errors=remount-ro 0 1\n/dev/vg-a/var /var xfs defaults 0 0\n/dev/vg-a/swap none swap sw 0 0\n"],
  ])("%s", (_name, current, expected) => {
    const once = editFstab(current, desired, [{ name: "root", filesystemUuid: "root-fs" }]);
    expect(once).toBe(expected);
    expect(editFstab(once, desired, [{ name: "root", filesystemUuid: "root-fs" }])).toBe(once);
  });
});

// ---------------------------------------------------------------------------------------------
// probe parsing (output captured from the lab rescue: lvm2 2.03.16, util-linux 2.38.1)

const REAL_PROBE = {
  pvs: { report: [{ pv: [{ pv_name: "/dev/nvme1n1", vg_name: "vgt", pv_uuid: "ITDdLU-PpRw-w8PS-X5Si-zpCb-9DDK-3N6CRY", pv_size: "4290772992", pv_major: "259", pv_minor: "0" }] }] },
  vgs: { report: [{ vg: [{ vg_name: "vgt", vg_uuid: "i4NODg-Sunk-qRZD-gZiu-efUc-PviF-F0gECW", vg_tags: "hetzner-fde", vg_size: "4290772992", vg_free: "0", vg_extent_size: "4194304", vg_extent_count: "1023", vg_free_count: "0" }] }] },
  lvs: {
    report: [
      {
        lv: [
          { lv_name: "a", vg_name: "vgt", lv_uuid: "ns80jv-8fuG-vfPr-QT46-7tD0-3V0n-VdaTkn", lv_size: "209715200", lv_path: "/dev/vgt/a", lv_active: "active" },
          { lv_name: "rest", vg_name: "vgt", lv_uuid: "abgKas-NHi9-DjN9-yNlV-Aq6N-Kads-n2jHvE", lv_size: "4081057792", lv_path: "/dev/vgt/rest", lv_active: "" },
        ],
      },
    ],
  },
  devices: [
    { index: 0, exists: true, sizeBytes: 4294967296, mountedAt: "", holders: 2, signatures: { signatures: [{ device: "nvme1n1", offset: "0x218", type: "LVM2_member", uuid: "ITDdLU-PpRw-w8PS-X5Si-zpCb-9DDK-3N6CRY", label: null }] }, majMin: "103:0" },
    { index: 1, exists: false },
  ],
  filesystems: [
    { lv: "a", type: "ext4", uuid: "01d655d5-5291-4314-89b2-59acedd083d2", sizeBytes: "209715200", mountedAt: "/mnt" },
    { lv: "rest", type: "", uuid: "", sizeBytes: "", mountedAt: "" },
  ],
  fstabRootReady: true,
  fstab: Buffer.from("/dev/vgt/a /mnt ext4 defaults 0 2\n").toString("base64"),
};

describe("parseProbe", () => {
  it("turns real lvm2/wipefs/blkid JSON into facts (PV matched by major:minor, sizes in bytes)", () => {
    const facts = parseProbe(REAL_PROBE, { vgName: "vgt", pvs: ["/dev/disk/by-id/nvme-lab-2", "/dev/missing"] });
    expect(facts.vg).toEqual({
      name: "vgt",
      uuid: "i4NODg-Sunk-qRZD-gZiu-efUc-PviF-F0gECW",
      tags: ["hetzner-fde"],
      sizeBytes: 4290772992,
      freeBytes: 0,
      extentSizeBytes: 4194304,
      extentCount: 1023,
      freeExtents: 0,
      pvPaths: ["/dev/nvme1n1"],
    });
    expect(facts.devices[0]).toEqual({
      path: "/dev/disk/by-id/nvme-lab-2",
      exists: true,
      sizeBytes: 4294967296,
      signatures: [{ type: "LVM2_member", uuid: "ITDdLU-PpRw-w8PS-X5Si-zpCb-9DDK-3N6CRY" }],
      pv: { uuid: "ITDdLU-PpRw-w8PS-X5Si-zpCb-9DDK-3N6CRY", vgName: "vgt", sizeBytes: 4290772992 },
      mountedAt: null,
      holders: 2,
    });
    expect(facts.devices[1]).toMatchObject({ path: "/dev/missing", exists: false, pv: null });
    expect(facts.lvs).toEqual([
      { name: "a", uuid: "ns80jv-8fuG-vfPr-QT46-7tD0-3V0n-VdaTkn", path: "/dev/vgt/a", sizeBytes: 209715200, extents: 50, active: true, filesystem: "ext4", filesystemUuid: "01d655d5-5291-4314-89b2-59acedd083d2", filesystemSizeBytes: 209715200, mountedAt: "/mnt" },
      { name: "rest", uuid: "abgKas-NHi9-DjN9-yNlV-Aq6N-Kads-n2jHvE", path: "/dev/vgt/rest", sizeBytes: 4081057792, extents: 973, active: false, filesystem: null, filesystemUuid: null, filesystemSizeBytes: null, mountedAt: null },
    ]);
    expect(facts.fstab).toBe("/dev/vgt/a /mnt ext4 defaults 0 2\n");
  });

  it("reports an absent VG as null (not an error)", () => {
    const facts = parseProbe({ ...REAL_PROBE, vgs: { report: [{ vg: [] }] } }, { vgName: "vg0", pvs: ["/dev/nvme1n1"] });
    expect(facts.vg).toBeNull();
    expect(facts.lvs).toEqual([]);
  });

  it.each<[string, unknown, RegExp]>([
    ["a report without rows", { ...REAL_PROBE, pvs: {} }, /expected \{"report"/],
    ["a non-numeric size", { ...REAL_PROBE, vgs: { report: [{ vg: [{ ...REAL_PROBE.vgs.report[0].vg[0], vg_size: "4.00g" }] }] } }, /expected a number for vg_size, found "4.00g"/],
  ])("throws on %s", (_name, json, reason) => {
    expect(() => parseProbe(json, { vgName: "vgt", pvs: ["/dev/nvme1n1"] })).toThrow(reason);
  });
});

// ---------------------------------------------------------------------------------------------
// diff (pure, against recorded outputs) and delete planning

function recordedAfterCreate(desired: LvmGroupInputs): LvmGroupOutputs {
  const host = blankHost(desired.fstabRoot ? { fstab: "", fstabRootReady: true } : {});
  converge(host, desired);
  return outputsFrom(desired, host.observed, { environment: "rescue", host: "127.0.0.1:2201" });
}

describe("compareOutputs (diff)", () => {
  it("proposes no change for the same inputs, with an `all` LV and fstab", () => {
    const desired = inputs({ fstabRoot: "/mnt" });
    expect(compareOutputs(recordedAfterCreate(desired), desired)).toEqual({ changes: false });
  });

  it.each<[string, (o: LvmGroupOutputs) => LvmGroupOutputs]>([
    ["an LV resized by hand (drift read by refresh)", (o) => ({ ...o, observedVolumes: o.observedVolumes.map((v) => (v.name === "swap" ? { ...v, extents: v.extents + 16, sizeBytes: v.sizeBytes + 64 * MIB } : v)) })],
    ["the rest LV shrunk by hand, leaving free space", (o) => ({ ...o, freeExtents: 10, observedVolumes: o.observedVolumes.map((v) => (v.name === "root" ? { ...v, extents: v.extents - 10 } : v)) })],
    ["a filesystem wiped by hand", (o) => ({ ...o, observedVolumes: o.observedVolumes.map((v) => (v.name === "root" ? { ...v, filesystem: null } : v)) })],
    ["an fstab line removed by hand", (o) => ({ ...o, fstabLines: o.fstabLines.slice(1) })],
    ["an older provider version", (o) => ({ ...o, providerVersion: "0" })],
  ])("reports a change for %s", (_name, drift) => {
    const desired = inputs({ fstabRoot: "/mnt" });
    expect(compareOutputs(drift(recordedAfterCreate(desired)), desired)).toEqual({ changes: true });
  });

  it.each<[string, Partial<LvmGroupInputs>]>([
    ["a grown LV", { volumes: [{ name: "swap", size: "2G", filesystem: "swap" }, inputs().volumes[1]] }],
    ["an added LV", { volumes: [inputs().volumes[0], { name: "srv", size: "1G", filesystem: "xfs" }, inputs().volumes[1]] }],
    ["allowWipe switched on (so that a later delete may wipe)", { allowWipe: true }],
  ])("updates in place for %s", (_name, overrides) => {
    expect(compareOutputs(recordedAfterCreate(inputs()), inputs(overrides))).toEqual({ changes: true });
  });

  it("treats a value unknown in preview as a change, but not the sentinel inside __provider's code text", () => {
    const recorded = recordedAfterCreate(inputs());
    expect(compareOutputs(recorded, inputs({ volumes: [inputs().volumes[0], { ...inputs().volumes[1], size: UNKNOWN }] }))).toEqual({ changes: true });
    expect(compareOutputs(recorded, { ...inputs(), __provider: `const UNKNOWN = "${UNKNOWN}";` } as LvmGroupInputs)).toEqual({ changes: false });
  });

  it.each<[string, Partial<LvmGroupInputs>, string[]]>([
    ["a renamed VG", { vgName: "vg1" }, ["vgName"]],
    ["a dropped PV", { pvs: ["/dev/md1"] }, ["pvs"]],
  ])("replaces (old first) for %s", (_name, overrides, replaces) => {
    expect(compareOutputs(recordedAfterCreate(inputs()), inputs(overrides))).toEqual({ changes: true, replaces, deleteBeforeReplace: true });
  });
});

describe("planDelete", () => {
  it("removes fstab lines, LVs, VG and PV labels", () => {
    const desired = inputs({ fstabRoot: "/mnt" });
    const host = blankHost({ fstab: "proc /proc proc defaults 0 0\n", fstabRootReady: true });
    converge(host, desired);
    const steps = planDelete(host.observed, desired);
    expect(kinds(steps)).toEqual(["writeFstab", "lvremove swap", "lvremove root", "vgremove", "pvremove"]);
    expect(steps[0]).toMatchObject({ text: "proc /proc proc defaults 0 0\n" });
  });

  it("touches nothing when the VG on the host has another UUID than the recorded one (#10: installimage names every VG vg0)", () => {
    const host = blankHost();
    converge(host, inputs());
    expect(kinds(planDelete(host.observed, { ...inputs(), vgUuid: "vg-uuid" }))).toEqual(["lvremove swap", "lvremove root", "vgremove", "pvremove"]);
    expect(planDelete(host.observed, { ...inputs(), vgUuid: "another-uuid" })).toEqual([]);
  });

  it("refuses while an LV is mounted, naming it", () => {
    const host = blankHost();
    converge(host, inputs());
    const o = host.observed as { lvs: LvmObserved["lvs"] };
    o.lvs = o.lvs.map((l) => (l.name === "root" ? { ...l, mountedAt: "/mnt" } : l));
    expect(() => planDelete(host.observed, inputs())).toThrow(/root is mounted at \/mnt; unmount first/);
  });
});

// ---------------------------------------------------------------------------------------------
// probe.sh: a real shell file, checked like one

describe("probe.sh", () => {
  const file = join(__dirname, "..", "..", "providers", "lvm-group", "probe.sh"); // dist/ copy, as the provider reads it

  it("is copied next to the compiled probe and is the text the provider sends", () => {
    expect(readFileSync(file, "utf8")).toBe(probeScriptText());
  });

  it("parses with bash -n", () => {
    expect(() => execFileSync("bash", ["-n", file])).not.toThrow();
  });

  const shellcheck = spawnSync("shellcheck", ["--version"]).status === 0;
  (shellcheck ? it : it.skip)("passes shellcheck", () => {
    expect(spawnSync("shellcheck", ["-s", "bash", file], { encoding: "utf8" }).stdout).toBe("");
  });

  it("takes every value as an argument: the command line quotes them, the script text stays fixed", () => {
    expect(probeCommand({ vgName: "vg0", pvs: ["/dev/x; touch /tmp/hfde-pwned"], fstabRoot: "/mnt" }).text).toBe("bash -s -- vg0 /mnt '/dev/x; touch /tmp/hfde-pwned'");
    expect(probeCommand({ vgName: "vg0", pvs: ["/dev/md1"] }).text).toBe("bash -s -- vg0 '' /dev/md1");
  });
});
