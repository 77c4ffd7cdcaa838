// The layout on the host (pure): device names and the /autosetup text installimage reads.
import { sha256Hex } from "../kernel";
import type { PartitionSpec } from "../rules/layout";
import { IMAGES_DIR, InstallImageInputs } from "./types";

// ---------------------------------------------------------------------------------------------
// The layout on the host (pure): device names, the /autosetup text

/** Partition `n` of a disk, the way the kernel names it: nvme0n1p1, sda1, …/by-id/x-part1. */
export function partitionDevice(drive: string, n: number): string {
  if (drive.startsWith("/dev/disk/")) return `${drive}-part${n}`;
  return /\d$/.test(drive) ? `${drive}p${n}` : `${drive}${n}`;
}

/** The block device PART i lives on: its md array with RAID, else the partition of the one drive. */
export function partDevice(inputs: Pick<InstallImageInputs, "drives" | "raid">, index: number): string {
  return inputs.raid ? `/dev/md${index}` : partitionDevice(inputs.drives[0].path, index + 1);
}

/** Where the installed root lives: an LV, or a partition (possibly inside LUKS, resolved on the host). */
export type RootLocation = { readonly kind: "lv"; readonly device: string } | { readonly kind: "part"; readonly device: string; readonly crypt: boolean };

export function rootLocation(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions" | "volumes">): RootLocation {
  const lv = (inputs.volumes ?? []).find((v) => v.mount === "/");
  if (lv) return { kind: "lv", device: `/dev/${lv.vg}/${lv.name}` };
  const index = inputs.partitions.findIndex((p) => p.mount === "/");
  return { kind: "part", device: partDevice(inputs, index), crypt: inputs.partitions[index]?.crypt === true };
}

/** The devices installimage puts LUKS on. */
export function cryptDevices(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string[] {
  return inputs.partitions.flatMap((p, i) => (p.crypt ? [partDevice(inputs, i)] : []));
}

export function espDevice(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string | null {
  const index = inputs.partitions.findIndex((p) => p.fs === "esp");
  return index < 0 ? null : partDevice(inputs, index);
}

/** Path of the image file in the rescue's images directory. */
export function imagePath(image: string): string {
  return `${IMAGES_DIR}/${imageBaseName(image)}.tar.gz`;
}

/**
 * installimage's config for the inputs, without CRYPTPASSWORD (the step appends the one-time
 * passphrase on the host's stdin). Deterministic: its hash identifies the install.
 */
export function renderAutosetup(inputs: Pick<InstallImageInputs, "drives" | "raid" | "partitions" | "volumes" | "image" | "hostname">): string {
  const lines = [
    "# written by hetzner-fde InstallImage; do not edit: the stack renders it",
    ...inputs.drives.map((d, i) => `DRIVE${i + 1} ${d.path}`),
    `SWRAID ${inputs.raid ? 1 : 0}`,
    ...(inputs.raid ? [`SWRAIDLEVEL ${inputs.raid.level}`] : []),
    "BOOTLOADER grub",
    `HOSTNAME ${inputs.hostname}`,
    ...inputs.partitions.map((p) => `PART ${p.mount} ${p.mount === "lvm" ? p.vg : p.fs} ${p.size}${p.crypt ? " crypt" : ""}`),
    ...(inputs.volumes ?? []).map((lv) => `LV ${lv.vg} ${lv.name} ${lv.mount} ${lv.fs} ${lv.size}`),
    `IMAGE ${imagePath(inputs.image)}`,
  ];
  return lines.join("\n") + "\n";
}


/** What identifies an install: the rendered config (drives, layout, image, hostname at install time). */
export function configSha256(inputs: Parameters<typeof renderAutosetup>[0]): string {
  return sha256Hex(renderAutosetup({ ...inputs, hostname: "-" }));
}

export function imageBaseName(image: string): string {
  return image.replace(/\.tar\.gz$/, "");
}


/** Whether any partition asks for encryption. */
export function usesCrypt(partitions: readonly PartitionSpec[] | undefined): boolean {
  return Array.isArray(partitions) && partitions.some((p) => p && p.crypt === true);
}

