// LvmGroup's types: the args the program passes, the inputs the provider sees, the outputs it
// records, the facts a probe observes and the steps a plan is made of.
import * as pulumi from "@pulumi/pulumi";
import type { ConnectionProfile, Environment, HostContext } from "../kernel";

/** Tag put on every VG this resource creates or adopts: a re-run recognises its own half-made VG by it. */
export const OWNER_TAG = "hetzner-fde";

export const FILESYSTEMS = ["ext4", "xfs", "swap"] as const;

/** One fstab field: no whitespace, no comment sign. */
export const FSTAB_FIELD = /^[^\s#]+$/;

export type LvFilesystem = (typeof FILESYSTEMS)[number];

/** One logical volume as the stack asks for it. */
export interface LogicalVolumeArgs {
  /** LV name (LVM's charset A-Z a-z 0-9 + _ . -; not `snapshot*`/`pvmove*`). Renaming = remove + add. */
  readonly name: pulumi.Input<string>;
  /**
   * `8G`/`512M`/`2T` (binary units, rounded up to whole 4 MiB extents), `N%VG`, `N%FREE`, or `all`
   * (= `100%FREE`, "the rest"). At most one LV may use `%FREE`/`all`, and it must be the last.
   * Growing is in place (the filesystem grows with it); shrinking destroys the LV's data and needs
   * `allowWipe` (the LV is recreated empty).
   */
  readonly size: pulumi.Input<string>;
  /** `ext4`, `xfs` or `swap`. Changing it destroys the LV's data and needs `allowWipe`. */
  readonly filesystem: pulumi.Input<LvFilesystem>;
  /** Absolute mount point for the fstab line (ext4/xfs only; swap has none). Optional. */
  readonly mountPoint?: pulumi.Input<string>;
  /** fstab options. Default `defaults` (`sw` for swap). */
  readonly mountOptions?: pulumi.Input<string>;
}

export interface LvmGroupArgs {
  /** How to reach the host in each environment (rescue, initramfs, system); read from whichever is up. */
  readonly connection: pulumi.Input<pulumi.Input<ConnectionProfile>[]>;
  /**
   * Block devices to use as PVs (`/dev/mapper/cryptroot`, `/dev/md1`, `/dev/nvme1n1p2`). Adding one
   * extends the VG in place; removing one replaces the whole VG (needs `allowWipe`). A device that
   * carries any signature (filesystem, LUKS, partition table, another VG) is refused unless
   * `allowWipe` (wipe it; another VG's PV is always refused) or `adopt` (an existing VG of this name).
   */
  readonly pvs: pulumi.Input<pulumi.Input<string>[]>;
  /** VG name. Changing it is a replacement: the old VG and its data go first (needs `allowWipe`). */
  readonly vgName: pulumi.Input<string>;
  /** LVs in creation order; the `%FREE`/`all` one last. LVs in the VG but not listed are left alone. */
  readonly lvs: pulumi.Input<pulumi.Input<LogicalVolumeArgs>[]>;
  /**
   * Target root whose `etc/fstab` gets one line per LV with a mount point, and one per swap LV
   * (`/` on a running system, e.g. `/mnt` under rescue). Lines are written as `/dev/<vg>/<lv>` (what
   * Hetzner's installimage writes for LVs; survives a re-mkfs, unlike a filesystem UUID) and
   * replace any line for the same LV or the same mount point. Omit to leave fstab alone.
   */
  readonly fstabRoot?: pulumi.Input<string>;
  /** Allow destroying data: shrink/remove LVs, change filesystems, wipe PV signatures, and on delete remove LVs, VG and PV labels. Default false. */
  readonly allowWipe?: pulumi.Input<boolean>;
  /** Take over an existing VG of this name that this resource did not create (e.g. installimage's vg0). Default false. */
  readonly adopt?: pulumi.Input<boolean>;
  /** Total PV size in bytes, if known: lets `check` refuse LV sizes that cannot fit before any connection. */
  readonly pvSizeBytes?: pulumi.Input<number>;
}

export interface LogicalVolumeSpec {
  readonly name: string;
  readonly size: string;
  readonly filesystem: LvFilesystem;
  readonly mountPoint?: string;
  readonly mountOptions?: string;
}

export interface LvmGroupInputs {
  readonly connection: ConnectionProfile[];
  readonly pvs: string[];
  readonly vgName: string;
  readonly lvs: LogicalVolumeSpec[];
  readonly fstabRoot?: string;
  readonly allowWipe?: boolean;
  readonly adopt?: boolean;
  readonly pvSizeBytes?: number;
  readonly providerVersion: string;
}

/** One LV as found on the host. */
export interface VolumeState {
  readonly name: string;
  readonly uuid: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly extents: number;
  readonly active: boolean;
  /** blkid's TYPE (`ext4`, `xfs`, `swap`, …), or null when none (or the LV is inactive). */
  readonly filesystem: string | null;
  readonly filesystemUuid: string | null;
  /** Size the filesystem spans (ext4/xfs), or null when unknown. */
  readonly filesystemSizeBytes: number | null;
  /** Where it is mounted now (`[SWAP]` for active swap), or null. */
  readonly mountedAt: string | null;
  /** Whether the stack lists this LV (unlisted LVs are left alone). */
  readonly managed: boolean;
}

export interface PhysicalVolumeState {
  readonly path: string;
  readonly uuid: string;
  readonly sizeBytes: number;
}

export interface LvmGroupOutputs extends LvmGroupInputs {
  /** Which environment the last probe read from. */
  readonly environment: Environment;
  readonly host: string;
  readonly vgUuid: string;
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentSizeBytes: number;
  readonly extentCount: number;
  readonly freeExtents: number;
  readonly physicalVolumes: PhysicalVolumeState[];
  readonly volumes: VolumeState[];
  /** The lines of `<fstabRoot>/etc/fstab` that concern this VG's LVs, as found. */
  readonly fstabLines: string[];
}

/** A signature on a block device (`wipefs -J`). */
export interface DeviceSignature {
  readonly type: string;
  readonly uuid: string | null;
}

/** One requested PV device as found. */
export interface DeviceFacts {
  readonly path: string;
  readonly exists: boolean;
  readonly sizeBytes: number | null;
  readonly signatures: DeviceSignature[];
  /** The LVM PV on this device: its VG name ("" for an orphan PV). null when it is no PV. */
  readonly pv: { readonly uuid: string; readonly vgName: string; readonly sizeBytes: number } | null;
  readonly mountedAt: string | null;
  /** Kernel holders (dm devices on top): in use. */
  readonly holders: number;
}

export interface VgFacts {
  readonly name: string;
  readonly uuid: string;
  readonly tags: string[];
  readonly sizeBytes: number;
  readonly freeBytes: number;
  readonly extentSizeBytes: number;
  readonly extentCount: number;
  readonly freeExtents: number;
  /** Every PV of this VG (paths as LVM names them). */
  readonly pvPaths: string[];
}

export interface LvmObserved {
  readonly devices: DeviceFacts[];
  readonly vg: VgFacts | null;
  readonly lvs: Omit<VolumeState, "managed">[];
  /** Text of `<fstabRoot>/etc/fstab`; null without fstabRoot; "" when the file is empty or absent. */
  readonly fstab: string | null;
  /** Whether `<fstabRoot>/etc` exists (a target root that is not mounted has none). */
  readonly fstabRootReady: boolean;
}

export type LvmGroupStep =
  | { readonly kind: "wipeSignatures"; readonly device: string; readonly signatures: string[] }
  | { readonly kind: "pvcreate"; readonly device: string }
  | { readonly kind: "vgcreate"; readonly vgName: string; readonly devices: string[] }
  | { readonly kind: "vgextend"; readonly vgName: string; readonly devices: string[] }
  | { readonly kind: "adoptVg"; readonly vgName: string }
  | { readonly kind: "activate"; readonly vgName: string }
  | { readonly kind: "lvcreate"; readonly vgName: string; readonly lv: string; readonly extents: number }
  | { readonly kind: "lvextend"; readonly vgName: string; readonly lv: string; readonly extents: number; readonly extentSizeBytes: number }
  | { readonly kind: "growFilesystem"; readonly vgName: string; readonly lv: string; readonly filesystem: LvFilesystem }
  | { readonly kind: "mkfs"; readonly vgName: string; readonly lv: string; readonly filesystem: LvFilesystem; readonly wipe: boolean }
  | { readonly kind: "lvremove"; readonly vgName: string; readonly lv: string }
  | { readonly kind: "writeFstab"; readonly root: string; readonly expectedSha256: string; readonly text: string }
  | { readonly kind: "vgremove"; readonly vgName: string }
  | { readonly kind: "pvremove"; readonly device: string };

export type LvmContext = HostContext;
