// Host tools the lab needs, and the one apt-get line that installs whatever is missing.

import * as fs from "fs";
import * as path from "path";

export interface HostTool {
  /** Executable looked up on PATH, or an absolute file path. */
  readonly file: string;
  readonly debianPackage: string;
  readonly why: string;
}

export const LAB_TOOLS: readonly HostTool[] = [
  { file: "qemu-system-x86_64", debianPackage: "qemu-system-x86", why: "runs the lab servers" },
  { file: "qemu-img", debianPackage: "qemu-utils", why: "creates the servers' qcow2 disks" },
  { file: "debootstrap", debianPackage: "debootstrap", why: "builds the rescue system and OS images" },
  { file: "cpio", debianPackage: "cpio", why: "packs the rescue initramfs" },
  { file: "mkfifo", debianPackage: "coreutils", why: "hands rescue secrets to QEMU without a file on disk" },
];

export const UEFI_TOOLS: readonly HostTool[] = [{ file: "/usr/share/OVMF/OVMF_CODE_4M.fd", debianPackage: "ovmf", why: "UEFI firmware for servers with firmware \"uefi\"" }];

/** Every package the lab may use, so the printed line also fixes the next missing piece. */
const ALL_PACKAGES = ["qemu-system-x86", "qemu-utils", "debootstrap", "cpio", "ovmf"];

/** Pure: the error text for missing tools, or undefined when nothing is missing. */
export function missingToolsMessage(missing: readonly HostTool[]): string | undefined {
  if (missing.length === 0) return undefined;
  const lines = missing.map((t) => `  - ${t.file} (Debian package ${t.debianPackage}): ${t.why}`);
  const packages = [...new Set([...ALL_PACKAGES, ...missing.map((t) => t.debianPackage)])];
  return `The lab needs tools this host does not have:\n${lines.join("\n")}\nInstall them with:\n  sudo apt-get install -y ${packages.join(" ")}`;
}

export function findMissingTools(tools: readonly HostTool[], envPath = process.env.PATH ?? ""): HostTool[] {
  return tools.filter((tool) => !isAvailable(tool.file, envPath));
}

function isAvailable(file: string, envPath: string): boolean {
  if (path.isAbsolute(file)) return fs.existsSync(file);
  // sbin dirs too: debootstrap lives in /usr/sbin, which a normal user's PATH often lacks.
  const dirs = [...envPath.split(path.delimiter), "/usr/sbin", "/sbin"].filter((d) => d !== "");
  return dirs.some((dir) => {
    try {
      fs.accessSync(path.join(dir, file), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
