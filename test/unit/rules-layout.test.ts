import {
  checkLayout,
  describeLayout,
  LayoutSpec,
  partitionSizesMiB,
  PartitionSpec,
  volumeGroupCapacityMiB,
  VolumeSpec,
} from "../../providers/rules";

const GIB = 1024 ** 3;
const BOOT: PartitionSpec = { mount: "/boot", fs: "ext4", size: "1G" };
const LVM: PartitionSpec = { mount: "lvm", vg: "vg0", size: "all", crypt: true };
const SWAP: VolumeSpec = { vg: "vg0", name: "swap", mount: "swap", fs: "swap", size: "8G" };
const ROOT: VolumeSpec = { vg: "vg0", name: "root", mount: "/", fs: "ext4", size: "all" };

function layout(overrides: Partial<LayoutSpec> = {}): LayoutSpec {
  return { partitions: [BOOT, LVM], volumes: [SWAP, ROOT], raid: { level: 1, members: 2 }, memberSizesBytes: [100 * GIB, 100 * GIB], ...overrides };
}

const issuesOf = (spec: LayoutSpec) => checkLayout(spec).map((i) => `${i.path.join(".")}: ${i.message}`);

describe("checkLayout", () => {
  it("accepts the seed's layout, with and without known sizes", () => {
    expect(issuesOf(layout())).toEqual([]);
    expect(issuesOf(layout({ memberSizesBytes: [undefined, undefined] }))).toEqual([]);
    expect(issuesOf(layout({ raid: null, memberSizesBytes: [20 * GIB] }))).toEqual([]);
  });

  it.each<[string, Partial<LayoutSpec>, RegExp]>([
    ["ESP at /boot/efi is fine", { partitions: [{ mount: "/boot/efi", fs: "esp", size: "512M" }, BOOT, LVM] }, /^$/],
    ["ESP with all", { partitions: [BOOT, LVM, { mount: "/boot/efi", fs: "esp", size: "all" }] }, /partitions\.2\.size: the EFI system partition cannot take "all"/],
    ["ESP elsewhere", { partitions: [{ mount: "/efi", fs: "esp", size: "512M" }, BOOT, LVM] }, /partitions\.0\.mount: the EFI system partition mounts at \/boot\/efi/],
    ["swap partition at a path", { partitions: [BOOT, { mount: "/swap", fs: "swap", size: "4G" }, LVM] }, /partitions\.1\.mount: swap has no mount point/],
    ["relative mount", { partitions: [BOOT, { mount: "srv", fs: "ext4", size: "4G" }, LVM] }, /partitions\.1\.mount: expected "lvm", "swap" or an absolute mount point/],
    ["vg on a plain partition", { partitions: [{ ...BOOT, vg: "vg0" }, LVM] }, /partitions\.0\.vg: only a partition with mount: lvm has a vg/],
    ["lvm without vg", { partitions: [BOOT, { mount: "lvm", size: "all", crypt: true }] }, /partitions\.1\.vg: an lvm partition needs the name of its volume group/],
    ["two lvm partitions for one VG", { partitions: [BOOT, { ...LVM, size: "10G" }, LVM] }, /partitions\.2\.vg: volume group "vg0" is already defined by partitions\[1\]/],
    ["bad VG name", { partitions: [BOOT, { ...LVM, vg: "-vg" }], volumes: [{ ...SWAP, vg: "-vg" }, { ...ROOT, vg: "-vg" }] }, /partitions\.1\.vg: expected a volume group name/],
    ["reserved LV name", { volumes: [{ ...SWAP, name: "snapshot" }, ROOT] }, /volumes\.0\.name: expected a logical volume name/],
    ["root on a plain encrypted partition is fine", { partitions: [BOOT, { mount: "/", fs: "ext4", size: "all", crypt: true }], volumes: [] }, /^$/],
    ["root on a plain unencrypted partition", { partitions: [BOOT, { mount: "/", fs: "ext4", size: "all" }], volumes: [] }, /partitions\.1\.crypt: \/ must be encrypted, but the \/ partition has no crypt: true/],
    ["all-partition under 1 GiB", { partitions: [{ ...BOOT, size: "101500M" }, LVM] }, /partitions\.1\.size: "all" leaves 900 MiB on the RAID 1 array of 2 disks \(100\.0 GiB\)/],
    // VG: 102400 - 1024 (/boot) - 16 (LUKS2) - 1 (PV metadata) = 101359, rounded to 4 MiB extents: 101356.
    ["all-LV left with nothing", { volumes: [{ ...SWAP, size: "101356M" }, ROOT] }, /volumes\.1\.size: "all" leaves nothing for vg0\/root: the volumes before it use 99\.0 GiB/],
    ["fixed LVs filling the VG exactly are fine", { volumes: [{ ...SWAP, size: "1356M" }, { ...ROOT, size: "100000M" }] }, /^$/],
    ["fixed LVs one extent over the VG", { volumes: [{ ...SWAP, size: "1360M" }, { ...ROOT, size: "100000M" }] }, /volumes\.1\.size: volumes in vg0 up to vg0\/root need 99\.0 GiB, but vg0 offers 99\.0 GiB/],
    // installimage builds /boot as RAID 1 on every member: under RAID 0 it costs its size per data disk.
    ["RAID 0 counts /boot on every member", { raid: { level: 0, members: 2 }, partitions: [{ ...BOOT, size: "110G" }, LVM] }, /partitions\.0\.size: partitions up to this one need 220\.0 GiB, but the RAID 0 array of 2 disks holds 200\.0 GiB/],
  ])("%s", (_title, overrides, expected) => {
    const text = issuesOf(layout(overrides)).join("\n");
    expect(text).toMatch(expected);
  });

  it("reports several layout mistakes at once", () => {
    const spec = layout({
      partitions: [{ ...BOOT, crypt: true, size: "100M" }, LVM],
      volumes: [{ ...SWAP, mount: "/swap", size: "all" }, { ...ROOT, name: "swap" }],
    });
    expect(checkLayout(spec).map((i) => i.path.join("."))).toEqual(
      expect.arrayContaining(["partitions.0.crypt", "partitions.0.size", "volumes.0.mount", "volumes.0.size", "volumes.1.name"]),
    );
  });
});

describe("capacity arithmetic", () => {
  it("resolves all against the array", () => {
    expect(partitionSizesMiB(layout())).toEqual([1024, 100 * 1024 - 1024]);
    expect(partitionSizesMiB(layout({ raid: { level: 10, members: 4 }, memberSizesBytes: Array(4).fill(100 * GIB) }))).toEqual([1024, 200 * 1024 - 2 * 1024]);
    expect(partitionSizesMiB(layout({ memberSizesBytes: [100 * GIB, undefined] }))).toEqual([1024, null]);
  });

  it("takes the LUKS2 header and LVM metadata off a VG and rounds to extents", () => {
    expect(volumeGroupCapacityMiB(1024, true)).toBe(1004);
    expect(volumeGroupCapacityMiB(1024, false)).toBe(1020);
    expect(volumeGroupCapacityMiB(10, true)).toBe(0);
  });
});

describe("describeLayout", () => {
  it("renders installimage lines", () => {
    expect(describeLayout(layout())).toEqual(["PART /boot ext4 1G", "PART lvm vg0 all crypt", "LV vg0 swap swap swap 8G", "LV vg0 root / ext4 all"]);
  });
});
