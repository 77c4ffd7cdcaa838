// Inputs and probe documents for the InstallImage unit tests, shaped like what the lab host prints.
import type { InstallImageInputs, RawInstallProbe } from "../../providers/install-image";
import { LAB_RAID1_LVM } from "../support/lab-layouts";

/** The host key in the installed root the fixture probe reads (its SHA256 fingerprint is ROOT_FP). */
export const ROOT_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@lab-1";
export const ROOT_FP = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU";
export const FP = "SHA256:" + "A".repeat(43);
export const PASSPHRASE = "Correct-Horse-Battery-9-staple";

// The lab's layout (one source), without its TCG resync setting: the plan tests set resync themselves.
const { resync: _tcgOnly, ...layout } = JSON.parse(JSON.stringify(LAB_RAID1_LVM)) as unknown as Omit<InstallImageInputs, "rescue" | "drives" | "providerVersion">;

export const raid1Lvm = (): InstallImageInputs => ({
  rescue: { environment: "rescue", host: "127.0.0.1", port: 2201, user: "root", hostKeyFingerprints: [FP] },
  drives: [
    { path: "/dev/nvme0n1", serial: "LAB100001N0" },
    { path: "/dev/nvme1n1", serial: "LAB100001N1" },
  ],
  ...layout,
  providerVersion: "1",
});

export const crypted = (): InstallImageInputs => {
  const base = raid1Lvm();
  return { ...base, partitions: [base.partitions[0], { ...base.partitions[1], crypt: true }], cryptPassphrase: PASSPHRASE };
};

const b = (text: string) => Buffer.from(text, "utf8").toString("base64");

export const MD0_UUID = "3a1b2c3d:4e5f6a7b:8c9d0e1f:12345678";
export const MD1_UUID = "aaaabbbb:ccccdddd:eeeeffff:00001111";

function mdExport(n: number, uuid: string, members: [string, string][]): string {
  return [
    "MD_LEVEL=raid1",
    "MD_DEVICES=2",
    "MD_METADATA=1.2",
    `MD_UUID=${uuid}`,
    `MD_DEVNAME=${n}`,
    ...members.flatMap(([dev, role]) => [`MD_DEVICE_dev_${dev}_ROLE=${role}`, `MD_DEVICE_dev_${dev}_DEV=/dev/${dev}`]),
  ].join("\n");
}

export interface ProbeOptions {
  rescue?: boolean;
  blank?: boolean;
  marker?: string | null;
  hostname?: string;
  md1Members?: [string, string][];
  md1Degraded?: string;
  md0Stopped?: boolean;
  grub?: [number, number];
  installerRunning?: boolean;
  /** WORK_DIR/started-for as runInstallimage writes it (see startedForRecord). */
  startedFor?: string;
  /** Serials the host reports for nvme0n1 and nvme1n1 (default the pinned ones). */
  serials?: [string, string];
  /** fstype of nvme1n1p2 (default linux_raid_member). */
  member2Fstype?: string | null;
  syncAction?: string;
  /**
   * A drive taken out of the chassis (0 or 1): the other one is the only disk, so the kernel calls
   * it nvme0n1; /dev/nvme1n1 is gone, and both arrays run on one member.
   */
  pulled?: 0 | 1;
  rescueCryptLines?: number;
  rootCryptLines?: number;
  mdadmConf?: string;
  speedLimitMax?: string;
}

/** The install record runInstallimage writes: config hash, then `path<TAB>serial<TAB>wwn` per drive as lsblk reported it. */
export function startedForRecord(configSha256: string, drives: [string, string][] = [["/dev/nvme0n1", "LAB100001N0"], ["/dev/nvme1n1", "LAB100001N1"]]): string {
  return [configSha256, ...drives.map(([path, serial]) => `${path}\t${serial}\teui.0000000000000001`)].join("\n") + "\n";
}

/** A RAID1 + LVM host after installimage, as the probe prints it (options bend it into other states). */
export function rawProbe(o: ProbeOptions = {}): RawInstallProbe {
  const blank = o.blank === true;
  const part = (disk: string, n: number, size: number) => ({ name: `${disk}p${n}`, path: `/dev/${disk}p${n}`, type: "part", size, serial: null, wwn: null, fstype: "linux_raid_member", mountpoint: null, children: [] });
  const disk = (name: string, serial: string) => ({
    path: b(`/dev/${name}`),
    exists: true,
    grub: blank ? 0 : 1,
    wipefs: b(JSON.stringify({ signatures: blank ? [] : [{ device: name, offset: "0x1fe", type: "dos" }] })),
    lsblk: { blockdevices: [{ name, path: `/dev/${name}`, type: "disk", size: 6442450944, serial, wwn: "eui.0000000000000001", fstype: null, mountpoint: null, children: blank ? [] : [part(name, 1, 1073741824), part(name, 2, 5367660544)] }] },
  });
  const serials = o.serials ?? ["LAB100001N0", "LAB100001N1"];
  const drives: { path: string; exists: boolean; grub?: number; wipefs?: string; lsblk?: ReturnType<typeof disk>["lsblk"] }[] =
    o.pulled === undefined ? [disk("nvme0n1", serials[0]), disk("nvme1n1", serials[1])] : [disk("nvme0n1", serials[1 - o.pulled]), { path: b("/dev/nvme1n1"), exists: false }];
  if (o.member2Fstype !== undefined) drives[1].lsblk?.blockdevices[0].children.forEach((p) => p.name === "nvme1n1p2" && (p.fstype = o.member2Fstype as string));
  if (o.grub) drives.forEach((d, i) => (d.grub = o.grub![i]));
  const md = (n: number, uuid: string, members: [string, string][], degraded = "0") => ({
    device: `/dev/md${n}`,
    export: b(mdExport(n, uuid, members)),
    arrayState: "clean",
    degraded,
    syncAction: o.syncAction ?? "idle",
    syncCompleted: o.syncAction && o.syncAction !== "idle" ? "1048576 / 10483712" : "none",
    syncSpeed: o.syncAction && o.syncAction !== "idle" ? "48000" : "none",
    raidDisks: "2",
  });
  const arrays = blank
    ? []
    : [
        ...(o.md0Stopped ? [] : [o.pulled === undefined ? md(0, MD0_UUID, [["nvme0n1p1", "0"], ["nvme1n1p1", "1"]]) : md(0, MD0_UUID, [["nvme0n1p1", String(1 - o.pulled)]], "1")]),
        o.pulled === undefined ? md(1, MD1_UUID, o.md1Members ?? [["nvme0n1p2", "0"], ["nvme1n1p2", "1"]], o.md1Degraded) : md(1, MD1_UUID, [["nvme0n1p2", String(1 - o.pulled)]], "1"),
      ];
  const examine = blank ? "" : `ARRAY /dev/md/0  metadata=1.2 UUID=${MD0_UUID} name=rescue:0\nARRAY /dev/md/1  metadata=1.2 UUID=${MD1_UUID} name=rescue:1\n`;
  const fstab = "UUID=11111111-2222-3333-4444-555555555555 / ext4 defaults 0 1\nUUID=66666666-7777-8888-9999-000000000000 /boot ext4 defaults 0 2\n";
  const blkid = "DEVNAME=/dev/md0\nUUID=66666666-7777-8888-9999-000000000000\nTYPE=ext4\n\nDEVNAME=/dev/mapper/vg0-root\nUUID=11111111-2222-3333-4444-555555555555\nTYPE=ext4\n";
  const mdadmConf = o.mdadmConf ?? `# mdadm.conf: written by installimage\nARRAY /dev/md/0 metadata=1.2 UUID=${MD0_UUID} name=rescue:0\nARRAY /dev/md/1 metadata=1.2 UUID=${MD1_UUID} name=rescue:1\n`;
  const marker = o.marker === undefined ? null : o.marker;
  return {
    hostname: b(o.rescue === false ? o.hostname ?? "lab-1" : "rescue"),
    rescue: o.rescue !== false,
    firmware: "bios",
    drives,
    arrays,
    examine: b(examine),
    blkid: b(blkid),
    vgs: { report: [{ vg: blank ? [] : [{ vg_name: "vg0", vg_size: "5364514816", vg_free: "0" }] }] },
    lvs: { report: [{ lv: blank ? [] : [{ vg_name: "vg0", lv_name: "swap", lv_size: "1073741824" }, { vg_name: "vg0", lv_name: "root", lv_size: "4290772992" }] }] },
    luks: [],
    root: blank
      ? null
      : {
          device: b("/dev/vg0/root"),
          hostname: b(`${o.hostname ?? "lab-1"}\n`),
          osRelease: b('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'),
          hostKeys: b(`${ROOT_HOST_KEY}\n`),
          marker: marker === null ? "" : b(marker),
          mdadmConf: b(mdadmConf),
          hasMdadmConf: true,
          fstab: b(fstab),
          hasFstab: true,
          crypttab: "",
          cryptLines: o.rootCryptLines ?? 0,
        },
    espLoader: null,
    installer: { running: o.installerRunning === true, rc: "", startedFor: b(o.startedFor ?? "") },
    rescueCryptLines: o.rescueCryptLines ?? 0,
    imageFound: true,
    images: b("Debian-bookworm-latest-amd64-base.tar.gz\n"),
    speedLimitMax: o.speedLimitMax ?? "200000",
  };
}
