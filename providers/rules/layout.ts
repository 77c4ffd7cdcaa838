// The partition and logical-volume layout, with installimage's semantics (robot-api.md §6 and its
// validate_vars) plus what full-disk encryption adds: / must be encrypted, so a plain /boot is
// mandatory. Sizes are array-level, as in installimage. Capacity is checked only where it is
// knowable: when every member disk's size is given.
import { checkLvmName, LVM_EXTENT_MIB, LVM_METADATA_MIB } from "../storage/lvm";
import { issueAt, PathSegment, RuleIssue } from "./issue";
import { checkMountPoint } from "./mount";
import { arrayCapacityMiB, describeMiB, parseSize, RaidLevel, raidDataDisks, Size } from "./size";

export const PARTITION_FILESYSTEMS = ["ext2", "ext3", "ext4", "xfs", "btrfs", "swap", "esp"] as const;
export const VOLUME_FILESYSTEMS = ["ext2", "ext3", "ext4", "xfs", "btrfs", "swap"] as const;
export type PartitionFilesystem = (typeof PARTITION_FILESYSTEMS)[number];
export type VolumeFilesystem = (typeof VOLUME_FILESYSTEMS)[number];

/** installimage `PART <mount|lvm> <fs|vg> <size> [crypt]`: `{ mount: lvm, vg: vg0, size: all, crypt: true }`. */
export interface PartitionSpec {
  readonly mount: string;
  readonly fs?: PartitionFilesystem;
  readonly vg?: string;
  readonly size: string;
  readonly crypt?: boolean;
}

/** installimage `LV <vg> <name> <mount> <fs> <size>`. */
export interface VolumeSpec {
  readonly vg: string;
  readonly name: string;
  readonly mount: string;
  readonly fs: VolumeFilesystem;
  readonly size: string;
}

export interface LayoutSpec {
  readonly partitions: readonly PartitionSpec[];
  readonly volumes: readonly VolumeSpec[];
  /** null: a single disk, no md array. */
  readonly raid: { readonly level: RaidLevel; readonly members: number } | null;
  /** Sizes of the member disks (or the one disk); capacity checks run only when none is undefined. */
  readonly memberSizesBytes: readonly (number | undefined)[];
}

export const MIN_BOOT_MIB = 200;
export const MIN_ROOT_MIB = 1500;
export const MIN_ESP_MIB = 256;
/** installimage keeps 1 GiB for the partition sized `all`. */
export const MIN_ALL_PARTITION_MIB = 1024;
/** LUKS2's default header (metadata + keyslots area) comes off the top of an encrypted partition. */
export const LUKS2_HEADER_MIB = 16;
export { LVM_EXTENT_MIB, LVM_METADATA_MIB };

// An array, not a Set: Pulumi's closure serializer copies a module-level Set as a plain object.

export interface LayoutRuleOptions {
  /**
   * true (the stack's default): / must be encrypted, so a plain /boot is always needed. false: a
   * plain install (InstallImage's retrofit flow encrypts later); /boot is then needed only where
   * installimage needs it (RAID 0/5/6/10, / on LVM or encrypted).
   */
  readonly requireEncryptedRoot?: boolean;
}

export function checkLayout(layout: LayoutSpec, options: LayoutRuleOptions = {}): RuleIssue[] {
  const requireEncryptedRoot = options.requireEncryptedRoot ?? true;
  return [
    ...checkPartitions(layout.partitions),
    ...checkVolumes(layout),
    ...checkBootAndRoot(layout, requireEncryptedRoot),
    ...checkDuplicateMounts(layout),
    ...checkCapacity(layout),
  ];
}

function checkPartitions(partitions: readonly PartitionSpec[]): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const seenVgs = new Map<string, number>();
  partitions.forEach((part, i) => {
    const at = (...rest: PathSegment[]) => ["partitions", i, ...rest];
    const size = parseSize(part.size);
    if (!size.ok) issues.push(issueAt(at("size"), size.reason));
    if (size.ok && size.size.kind === "all" && i < partitions.length - 1) {
      issues.push(issueAt(at("size"), `"all" is allowed only on the last partition, found it on partition ${i + 1} of ${partitions.length}; give this one a fixed size or move it last`));
    }
    if (part.mount === "lvm") {
      if (part.vg === undefined) issues.push(issueAt(at("vg"), `an lvm partition needs the name of its volume group, e.g. vg: vg0`));
      else if (checkLvmName(part.vg, "VG")) issues.push(issueAt(at("vg"), checkLvmName(part.vg, "VG") as string));
      else if (seenVgs.has(part.vg)) issues.push(issueAt(at("vg"), `volume group "${part.vg}" is already defined by partitions[${seenVgs.get(part.vg)}]; use one lvm partition per VG`));
      else seenVgs.set(part.vg, i);
      if (part.fs !== undefined) issues.push(issueAt(at("fs"), `an lvm partition holds a volume group, not a filesystem; remove fs: ${part.fs} (filesystems go on the volumes)`));
      return;
    }
    if (part.vg !== undefined) issues.push(issueAt(at("vg"), `only a partition with mount: lvm has a vg, found vg: ${part.vg} on mount ${part.mount}`));
    if (part.fs === undefined) {
      issues.push(issueAt(at("fs"), `expected a filesystem (${PARTITION_FILESYSTEMS.join(", ")}) for mount ${part.mount}`));
      return;
    }
    const badMount = part.mount === "swap" ? undefined : checkMountPoint(part.mount, "/srv");
    if (badMount !== undefined) {
      issues.push(issueAt(at("mount"), part.mount.startsWith("/") ? badMount : `expected "lvm", "swap" or an absolute mount point like /srv, found "${part.mount}"`));
      return;
    }
    issues.push(...checkSwapMount(part.fs, part.mount, at));
    if (part.fs === "esp" || part.mount === "/boot/efi") issues.push(...checkEsp(part, size.ok ? size.size : null, at));
  });
  return issues;
}

function checkSwapMount(fs: string, mount: string, at: (...rest: PathSegment[]) => PathSegment[]): RuleIssue[] {
  if (fs === "swap" && mount !== "swap") return [issueAt(at("mount"), `swap has no mount point: expected mount: swap, found "${mount}"`)];
  if (fs !== "swap" && mount === "swap") return [issueAt(at("fs"), `mount: swap needs fs: swap, found fs: ${fs}`)];
  return [];
}

function checkEsp(part: PartitionSpec, size: Size | null, at: (...rest: PathSegment[]) => PathSegment[]): RuleIssue[] {
  const issues: RuleIssue[] = [];
  if (part.fs !== "esp") return [issueAt(at("fs"), `/boot/efi is the EFI system partition: expected fs: esp, found fs: ${part.fs}`)];
  if (part.mount !== "/boot/efi") return [issueAt(at("mount"), `the EFI system partition mounts at /boot/efi, found "${part.mount}"`)];
  if (part.crypt) issues.push(issueAt(at("crypt"), "the EFI system partition is read by the firmware and cannot be encrypted; remove crypt"));
  if (size?.kind === "all") issues.push(issueAt(at("size"), `the EFI system partition cannot take "all" the space; 256M-1G is usual`));
  if (size?.kind === "fixed" && size.mib < MIN_ESP_MIB) {
    issues.push(issueAt(at("size"), `expected an EFI system partition of at least ${MIN_ESP_MIB}M (installimage's minimum), found ${part.size}`));
  }
  return issues;
}

function checkVolumes(layout: LayoutSpec): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const vgs = new Set(layout.partitions.filter((p) => p.mount === "lvm" && p.vg !== undefined).map((p) => p.vg as string));
  const namesByVg = new Map<string, Map<string, number>>();
  const lastIndexByVg = new Map<string, number>();
  layout.volumes.forEach((lv, j) => lastIndexByVg.set(lv.vg, j));
  layout.volumes.forEach((lv, j) => {
    const at = (...rest: PathSegment[]) => ["volumes", j, ...rest];
    if (!vgs.has(lv.vg)) {
      const known = vgs.size > 0 ? `the layout defines ${[...vgs].join(", ")}` : "the layout has no lvm partition";
      issues.push(issueAt(at("vg"), `no partition creates volume group "${lv.vg}"; ${known} (add { mount: lvm, vg: ${lv.vg}, size: all, crypt: true })`));
    }
    const nameProblem = checkLvmName(lv.name, "LV");
    if (nameProblem) issues.push(issueAt(at("name"), nameProblem));
    const names = namesByVg.get(lv.vg) ?? new Map<string, number>();
    if (names.has(lv.name)) issues.push(issueAt(at("name"), `logical volume "${lv.vg}/${lv.name}" is already defined by volumes[${names.get(lv.name)}]; LV names are unique in a VG`));
    else names.set(lv.name, j);
    namesByVg.set(lv.vg, names);
    const badMount = lv.mount === "swap" ? undefined : checkMountPoint(lv.mount, "/var");
    if (badMount !== undefined) {
      issues.push(issueAt(at("mount"), lv.mount.startsWith("/") ? badMount : `expected "swap" or an absolute mount point like /var, found "${lv.mount}"`));
    } else {
      issues.push(...checkSwapMount(lv.fs, lv.mount, at));
    }
    const size = parseSize(lv.size);
    if (!size.ok) issues.push(issueAt(at("size"), size.reason));
    else if (size.size.kind === "all" && lastIndexByVg.get(lv.vg) !== j) {
      issues.push(issueAt(at("size"), `"all" is allowed only on the last volume of ${lv.vg}, found it on ${lv.vg}/${lv.name}; give it a fixed size or move it after the other ${lv.vg} volumes`));
    }
  });
  layout.partitions.forEach((part, i) => {
    if (part.mount === "lvm" && part.vg !== undefined && !layout.volumes.some((lv) => lv.vg === part.vg)) {
      issues.push(issueAt(["partitions", i, "vg"], `volume group "${part.vg}" has no logical volumes; add at least one to volumes (installimage refuses an empty VG)`));
    }
  });
  return issues;
}

function checkBootAndRoot(layout: LayoutSpec, requireEncryptedRoot: boolean): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const bootIndex = layout.partitions.findIndex((p) => p.mount === "/boot");
  layout.volumes.forEach((lv, j) => {
    if (lv.mount === "/boot") {
      issues.push(issueAt(["volumes", j, "mount"], `/boot cannot be on LVM (found ${lv.vg}/${lv.name}): GRUB must read the kernel before LUKS is unlocked; make /boot a plain partition`));
    }
  });
  if (bootIndex < 0) {
    if (!requireEncryptedRoot) {
      const reason = plainBootNeededBecause(layout);
      if (reason !== null && !layout.volumes.some((lv) => lv.mount === "/boot")) {
        issues.push(issueAt(["partitions"], `expected a plain /boot partition, found none: ${reason}; add { mount: /boot, fs: ext4, size: 1G } first`));
      }
    } else if (!layout.volumes.some((lv) => lv.mount === "/boot")) {
      issues.push(issueAt(["partitions"], "expected a plain /boot partition, found none: / is encrypted, so the kernel and initramfs need an unencrypted /boot; add { mount: /boot, fs: ext4, size: 1G } first"));
    }
  } else {
    const boot = layout.partitions[bootIndex];
    const at = (...rest: PathSegment[]) => ["partitions", bootIndex, ...rest];
    if (boot.crypt) issues.push(issueAt(at("crypt"), "/boot must stay outside LUKS: GRUB loads the kernel from it before anything can unlock; remove crypt here and encrypt the lvm partition"));
    if (boot.fs === "xfs") issues.push(issueAt(at("fs"), "expected ext4 (or ext2/ext3) for /boot, found xfs, which installimage refuses there"));
    const size = parseSize(boot.size);
    if (size.ok && size.size.kind === "fixed" && size.size.mib < MIN_BOOT_MIB) {
      issues.push(issueAt(at("size"), `expected /boot of at least ${MIN_BOOT_MIB}M (installimage's minimum; 1G leaves room for two kernels), found ${boot.size}`));
    }
  }
  issues.push(...checkRoot(layout, requireEncryptedRoot));
  return issues;
}

/** Why installimage needs a separate /boot in a layout that need not be encrypted, or null. */
function plainBootNeededBecause(layout: LayoutSpec): string | null {
  if (layout.raid !== null && layout.raid.level !== 1) return `RAID ${layout.raid.level} needs one (GRUB boots from a RAID 1 /boot)`;
  if (layout.volumes.some((lv) => lv.mount === "/")) return "/ is on LVM, which GRUB does not boot from here";
  const root = layout.partitions.find((p) => p.mount === "/");
  if (root?.crypt) return "/ is encrypted, so the kernel needs an unencrypted /boot";
  return null;
}

function checkRoot(layout: LayoutSpec, requireEncryptedRoot: boolean): RuleIssue[] {
  const rootPart = layout.partitions.findIndex((p) => p.mount === "/");
  const rootLv = layout.volumes.findIndex((lv) => lv.mount === "/");
  if (rootPart < 0 && rootLv < 0) {
    return [issueAt(["volumes"], "expected a filesystem mounted at /, found none; add { vg: vg0, name: root, mount: /, fs: ext4, size: all }")];
  }
  const issues: RuleIssue[] = [];
  const [spec, at] = rootLv >= 0 ? [layout.volumes[rootLv], ["volumes", rootLv]] : [layout.partitions[rootPart], ["partitions", rootPart]];
  const size = parseSize(spec.size);
  if (size.ok && size.size.kind === "fixed" && size.size.mib < MIN_ROOT_MIB) {
    issues.push(issueAt([...at, "size"], `expected / of at least ${MIN_ROOT_MIB}M (installimage's minimum), found ${spec.size}`));
  }
  const encrypted = rootLv >= 0 ? layout.partitions.some((p) => p.mount === "lvm" && p.vg === layout.volumes[rootLv].vg && p.crypt === true) : layout.partitions[rootPart].crypt === true;
  if (!encrypted && requireEncryptedRoot) {
    const where = rootLv >= 0 ? `volume group ${layout.volumes[rootLv].vg} sits on an lvm partition without crypt: true` : "the / partition has no crypt: true";
    issues.push(issueAt(rootLv >= 0 ? ["volumes", rootLv, "vg"] : ["partitions", rootPart, "crypt"], `/ must be encrypted, but ${where}; set crypt: true on the lvm partition`));
  }
  return issues;
}

function checkDuplicateMounts(layout: LayoutSpec): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const seen = new Map<string, string>();
  const visit = (mount: string, where: string, path: PathSegment[]) => {
    if (mount === "lvm" || mount === "swap") return;
    const first = seen.get(mount);
    if (first !== undefined) issues.push(issueAt(path, `mount point ${mount} is already used by ${first}; each mount point appears once`));
    else seen.set(mount, where);
  };
  layout.partitions.forEach((p, i) => visit(p.mount, `partitions[${i}]`, ["partitions", i, "mount"]));
  layout.volumes.forEach((lv, j) => visit(lv.mount, `volumes[${j}]`, ["volumes", j, "mount"]));
  return issues;
}

/** Usable MiB of the array (or disk), or null when a member size is unknown. */
export function layoutCapacityMiB(layout: LayoutSpec): number | null {
  return arrayCapacityMiB(layout.raid?.level ?? null, layout.memberSizesBytes);
}

/** MiB per partition index; `all` resolved against the capacity, null where unknowable or unparsable. */
export function partitionSizesMiB(layout: LayoutSpec): (number | null)[] {
  const capacity = layoutCapacityMiB(layout);
  const parsed = layout.partitions.map((p) => parseSize(p.size));
  const footprints = layout.partitions.map((p, i) => {
    const s = parsed[i];
    return s.ok && s.size.kind === "fixed" ? s.size.mib * bootFootprintFactor(p, layout) : null;
  });
  const fixedSum = footprints.reduce<number>((sum, f) => sum + (f ?? 0), 0);
  return parsed.map((s, i) => {
    if (!s.ok) return null;
    if (s.size.kind === "fixed") return s.size.mib;
    return capacity === null || footprints.some((f, k) => f === null && k !== i) ? null : capacity - fixedSum;
  });
}

/**
 * installimage builds /boot and the ESP as a RAID1 on every member whatever the level, so in
 * array-level terms they cost their size once per data disk.
 */
function bootFootprintFactor(part: PartitionSpec, layout: LayoutSpec): number {
  if (layout.raid === null || (part.mount !== "/boot" && part.mount !== "/boot/efi")) return 1;
  return raidDataDisks(layout.raid.level, layout.raid.members);
}

/** MiB the VG offers to logical volumes, after the LUKS2 header, PV metadata and extent rounding. */
export function volumeGroupCapacityMiB(partitionMiB: number, encrypted: boolean): number {
  const usable = partitionMiB - (encrypted ? LUKS2_HEADER_MIB : 0) - LVM_METADATA_MIB;
  return Math.max(0, Math.floor(usable / LVM_EXTENT_MIB) * LVM_EXTENT_MIB);
}

function checkCapacity(layout: LayoutSpec): RuleIssue[] {
  const capacity = layoutCapacityMiB(layout);
  const sizes = partitionSizesMiB(layout);
  const issues: RuleIssue[] = [];
  if (capacity !== null) {
    const where = layout.raid === null ? "the disk" : `the RAID ${layout.raid.level} array of ${layout.raid.members} disks`;
    let used = 0;
    for (let i = 0; i < layout.partitions.length; i++) {
      const s = parseSize(layout.partitions[i].size);
      if (!s.ok) return issues;
      if (s.size.kind === "all") {
        const rest = capacity - used;
        if (rest < MIN_ALL_PARTITION_MIB) {
          issues.push(issueAt(["partitions", i, "size"], `"all" leaves ${describeMiB(Math.max(rest, 0))} on ${where} (${describeMiB(capacity)}); installimage needs at least 1 GiB here, shrink the partitions before it`));
        }
        continue;
      }
      used += s.size.mib * bootFootprintFactor(layout.partitions[i], layout);
      if (used > capacity) {
        issues.push(issueAt(["partitions", i, "size"], `partitions up to this one need ${describeMiB(used)}, but ${where} holds ${describeMiB(capacity)}; shrink them or use "all" for the last one`));
        return issues;
      }
    }
  }
  layout.partitions.forEach((part, i) => {
    const partMiB = sizes[i];
    if (part.mount !== "lvm" || part.vg === undefined || partMiB === null) return;
    issues.push(...checkVolumeGroupFits(layout, part.vg, volumeGroupCapacityMiB(partMiB, part.crypt === true), part.crypt === true));
  });
  return issues;
}

function checkVolumeGroupFits(layout: LayoutSpec, vg: string, vgMiB: number, encrypted: boolean): RuleIssue[] {
  const basis = `${vg} offers ${describeMiB(vgMiB)}${encrypted ? " after the LUKS2 header" : ""} and LVM metadata`;
  let used = 0;
  for (let j = 0; j < layout.volumes.length; j++) {
    const lv = layout.volumes[j];
    if (lv.vg !== vg) continue;
    const s = parseSize(lv.size);
    if (!s.ok) return [];
    if (s.size.kind === "all") {
      if (vgMiB - used < LVM_EXTENT_MIB) return [issueAt(["volumes", j, "size"], `"all" leaves nothing for ${vg}/${lv.name}: the volumes before it use ${describeMiB(used)} and ${basis}`)];
      continue;
    }
    used += Math.ceil(s.size.mib / LVM_EXTENT_MIB) * LVM_EXTENT_MIB;
    if (used > vgMiB) {
      return [issueAt(["volumes", j, "size"], `volumes in ${vg} up to ${vg}/${lv.name} need ${describeMiB(used)}, but ${basis}; shrink them or size the last one "all"`)];
    }
  }
  return [];
}

/** The layout as installimage lines, for previews and outputs: `PART /boot ext4 1G`, `LV vg0 root / ext4 all`. */
export function describeLayout(layout: Pick<LayoutSpec, "partitions" | "volumes">): string[] {
  return [
    ...layout.partitions.map((p) => (p.mount === "lvm" ? `PART lvm ${p.vg} ${p.size}` : `PART ${p.mount} ${p.fs} ${p.size}`) + (p.crypt ? " crypt" : "")),
    ...layout.volumes.map((lv) => `LV ${lv.vg} ${lv.name} ${lv.mount} ${lv.fs} ${lv.size}`),
  ];
}
