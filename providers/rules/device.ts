// Disk identity: the /dev path a drive is addressed by, and the serial or WWN that pins it, so a
// renumbered or swapped disk stops the run before anything is written.
import { PathSegment, RuleIssue, quote } from "./issue";

/** The device-path pattern every resource accepts: under /dev, letters, digits and ._:+@-/ only. */
export const DEVICE_PATH_PATTERN = /^\/dev\/[A-Za-z0-9._:+@/-]+$/;

/** A whole-disk path: absolute, under /dev, and not a partition. Returns the reason it is not, or undefined. */
export function checkDiskPath(path: string): string | undefined {
  if (!path.startsWith("/")) {
    return `expected an absolute device path like /dev/nvme0n1, found "${path}"; write "/dev/${path.replace(/^\.?\/?(dev\/)?/, "")}"`;
  }
  const segments = path.slice(1).split("/");
  if (segments.some((s) => s === "" || s === "." || s === "..")) {
    const normal = normalisePath(segments);
    const advice = normal.startsWith("/dev/") ? `write "${normal}"` : `it means "${normal}", which is not a disk`;
    return `expected a normalised device path without ".", ".." or empty segments, found "${path}"; ${advice}`;
  }
  if (!path.startsWith("/dev/")) return `expected a device path under /dev (e.g. /dev/sda, /dev/disk/by-id/...), found "${path}"`;
  const charset = checkDevicePathCharset(path);
  if (charset) return charset;
  if (isPartitionPath(path)) {
    return `expected a whole disk, found the partition "${path}"; name the disk (e.g. ${wholeDiskOf(path)}), partitions come from the layout`;
  }
  return undefined;
}

function normalisePath(segments: readonly string[]): string {
  const out: string[] = [];
  for (const s of segments) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else out.push(s);
  }
  return `/${out.join("/")}`;
}

/**
 * The identity a /dev/disk/by-id name carries, as udev builds it: `nvme-<model>_<serial>` (newer
 * udev adds `_<nsid>`), `ata-<model>_<serial>`, `scsi-<n><vendor>_<model>_<serial>`,
 * `usb-<vendor>_<model>_<serial>-<lun>`; `wwn-0x…`, `nvme-eui.…`, `nvme-nvme.…` name the WWN.
 * Serial candidates are the last `_` field, and the one before it when the last is a namespace
 * number; a model name never ends the name, so a serial found here is what lsblk -o SERIAL prints.
 */
export function identityInDiskPath(path: string): { serials: string[]; wwn: string | null } {
  const match = /^\/dev\/disk\/by-id\/([^/]+)$/.exec(path);
  if (!match) return { serials: [], wwn: null };
  const name = match[1];
  const wwn = /^wwn-(0x[0-9a-fA-F]+)$/.exec(name)?.[1] ?? /^nvme-((?:eui|naa|uuid|nvme)\..+)$/.exec(name)?.[1] ?? null;
  if (wwn !== null) return { serials: [], wwn: normalizeWwn(wwn) };
  const body = /^(?:nvme|ata|scsi|usb)-(.+)$/.exec(name)?.[1];
  if (body === undefined) return { serials: [], wwn: null };
  const fields = body.replace(/-\d+:\d+$/, "").split("_");
  if (fields.length < 2) return { serials: [], wwn: null };
  const serials = [fields[fields.length - 1]];
  if (/^\d{1,3}$/.test(serials[0]) && fields.length >= 3) serials.push(fields[fields.length - 2]);
  return { serials: serials.filter((s) => checkSerial(s) === undefined), wwn: null };
}

function isPartitionPath(path: string): boolean {
  return (
    /^\/dev\/(sd|vd|hd|xvd)[a-z]+\d+$/.test(path) ||
    /^\/dev\/(nvme\d+n\d+|mmcblk\d+|loop\d+|md\d+)p\d+$/.test(path) ||
    /^\/dev\/disk\/by-[a-z]+\/.+-part\d+$/.test(path)
  );
}

function wholeDiskOf(path: string): string {
  return path.replace(/-part\d+$/, "").replace(/^(\/dev\/(?:nvme\d+n\d+|mmcblk\d+|loop\d+|md\d+))p\d+$/, "$1").replace(/^(\/dev\/[a-z]+[a-z])\d+$/, "$1");
}

/** Serial as `lsblk -o SERIAL` prints it: printable, no spaces (they would be trimmed anyway), ≤ 64 characters. */
export function checkSerial(serial: string): string | undefined {
  if (/^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$/.test(serial)) return undefined;
  return `expected a disk serial as lsblk -o SERIAL prints it (1-64 of A-Z a-z 0-9 _ . : + -, e.g. S4EWNX0R123456), found "${serial}"`;
}

/**
 * WWN as `lsblk -o WWN` prints it: `0x` + 16 or 32 hex digits (NAA, SATA/SAS), or one of the
 * forms the kernel gives NVMe namespaces (`wwid` in sysfs): `eui.`/`naa.` + 16 or 32 hex digits,
 * `uuid.<uuid>`, or, when the drive reports no identifier, `nvme.<vid>-<serial>-<model>-<nsid>` in hex.
 */
export function checkWwn(wwn: string): string | undefined {
  const forms = [
    /^0x[0-9a-fA-F]{16}([0-9a-fA-F]{16})?$/,
    /^(eui|naa)\.[0-9a-fA-F]{16}([0-9a-fA-F]{16})?$/,
    /^uuid\.[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    /^nvme\.[0-9a-fA-F]{4}-[0-9a-fA-F]{2,80}-[0-9a-fA-F]{2,160}-[0-9a-fA-F]{8}$/,
  ];
  if (forms.some((form) => form.test(wwn))) return undefined;
  return `expected a WWN as lsblk -o WWN prints it: 0x + 16 or 32 hex digits (e.g. 0x5000c500a1b2c3d4), eui./naa. + 16 or 32 hex digits (e.g. eui.0025388b91d2a1b3), uuid.<uuid> or nvme.<vid>-<serial>-<model>-<nsid> (NVMe without an identifier), found "${wwn}"`;
}

/** Case-insensitive comparison key, since lsblk and the stack may differ in hex case. */
export function normalizeWwn(wwn: string): string {
  return wwn.toLowerCase();
}

function checkDevicePathCharset(path: string): string | undefined {
  if (!DEVICE_PATH_PATTERN.test(path) || path.includes("/../") || path.endsWith("/")) {
    return `expected a device path of letters, digits and ._:+@-/ only, found "${path}"`;
  }
  return undefined;
}

/** Any block device path (a disk, partition, md array or /dev/mapper name). Returns the reason it is not one, or undefined. */
export function checkBlockDevicePath(path: unknown): string | undefined {
  if (typeof path !== "string") return `expected a device path string, found ${JSON.stringify(path)}`;
  if (!path.startsWith("/dev/")) {
    return `expected a block device path under /dev (e.g. /dev/mapper/cryptroot, /dev/md1), found "${path}"${path.startsWith("/") ? "" : `; write "/dev/${path}"`}`;
  }
  return checkDevicePathCharset(path);
}

/** How to find the pins of a host's disks: the advice every "not pinned" message ends with. */
export const PIN_ADVICE = "boot the rescue and run `lsblk -d -o NAME,SERIAL,WWN`, then add serial: <SERIAL> (or wwn: <WWN>) to the entry";

/** A disk as every config names it: a path, and optionally the serial or WWN that pins it. */
export interface PinnableDrive {
  readonly path: string;
  readonly serial?: string;
  readonly wwn?: string;
}

/**
 * With allowWipe, destructive steps overwrite the configured disks; a disk addressed by a kernel
 * name alone (/dev/sda) could be another disk after a swap or a renumbering. So every disk that can
 * be wiped needs a pin the resources re-check right before they act: a serial or a WWN. One issue
 * per unpinned entry (`label` names it the way the user wrote it: "drives[1]").
 */
export function checkWipePins(entries: readonly { drive: PinnableDrive; path: readonly PathSegment[]; label: string }[]): RuleIssue[] {
  return entries
    .filter((e) => e.drive.serial === undefined && e.drive.wwn === undefined)
    .map((e) => ({
      path: e.path,
      message:
        `expected a serial or wwn pin on ${e.label} (${quote(e.drive.path)}) because allowWipe is true, found neither: a disk named by path alone may be another disk after a swap or renumbering, and allowWipe would let it be wiped. ` +
        `${PIN_ADVICE[0].toUpperCase()}${PIN_ADVICE.slice(1)}; or set allowWipe: false`,
    }));
}
