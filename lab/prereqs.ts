// Host tools the lab needs, and the one apt-get line that installs whatever is missing. The tools
// and their packages are read from lab/host-tools.txt, the list scripts/setup.sh installs from.

import * as fs from "fs";
import * as path from "path";

export type HostToolGroup = "lab" | "uefi" | "images" | "tests" | "bench" | "optional" | "prereq";
const GROUPS: readonly HostToolGroup[] = ["lab", "uefi", "images", "tests", "bench", "optional", "prereq"];

export interface HostTool {
  /** Executable looked up on PATH, or an absolute file path. */
  readonly file: string;
  /** "-" for an optional tool that is not from Debian. */
  readonly debianPackage: string;
  readonly group: HostToolGroup;
  readonly why: string;
}

/** lab/host-tools.txt in the source tree, also when running from dist/. */
export const HOST_TOOLS_FILE = path.resolve(__dirname.includes(`${path.sep}dist${path.sep}`) ? path.resolve(__dirname, "../../lab") : __dirname, "host-tools.txt");

/** Pure: the entries of a host-tools.txt text; a malformed line throws with its number. */
export function parseHostTools(text: string): HostTool[] {
  const tools: HostTool[] = [];
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const match = /^(\S+)\s+(\S+)\s+(\S+)\s+(.+)$/.exec(line);
    const group = match?.[3] as HostToolGroup | undefined;
    if (!match || !group || !GROUPS.includes(group)) {
      throw new Error(`host-tools.txt line ${index + 1}: expected "tool package group why" with group one of ${GROUPS.join(", ")}, found ${JSON.stringify(raw)}`);
    }
    tools.push({ file: match[1], debianPackage: match[2], group, why: match[4] });
  });
  return tools;
}

let cached: HostTool[] | undefined;
export function hostTools(): readonly HostTool[] {
  cached ??= parseHostTools(fs.readFileSync(HOST_TOOLS_FILE, "utf8"));
  return cached;
}

const inGroup = (group: HostToolGroup): HostTool[] => hostTools().filter((t) => t.group === group);

export const LAB_TOOLS: readonly HostTool[] = inGroup("lab");
export const UEFI_TOOLS: readonly HostTool[] = inGroup("uefi");
export const IMAGE_TOOLS: readonly HostTool[] = inGroup("images");

/** The Debian package of a listed tool, or undefined when the list does not name it. */
export function debianPackageOf(file: string): string | undefined {
  return hostTools().find((t) => t.file === file)?.debianPackage;
}

/** Every package the lab may use (servers, UEFI, image builds), so the printed line also fixes the next missing piece. */
function labPackages(): string[] {
  return [...new Set([...LAB_TOOLS, ...UEFI_TOOLS, ...IMAGE_TOOLS].map((t) => t.debianPackage))];
}

/** Pure: the error text for missing tools, or undefined when nothing is missing. */
export function missingToolsMessage(missing: readonly HostTool[]): string | undefined {
  if (missing.length === 0) return undefined;
  const lines = missing.map((t) => `  - ${t.file} (Debian package ${t.debianPackage}): ${t.why}`);
  const packages = [...new Set([...labPackages(), ...missing.map((t) => t.debianPackage)])];
  return `The lab needs tools this host does not have:\n${lines.join("\n")}\nInstall them with (or run scripts/setup.sh, which installs every host tool):\n  sudo apt-get install -y ${packages.join(" ")}`;
}

export function findMissingTools(tools: readonly HostTool[], envPath = process.env.PATH ?? ""): HostTool[] {
  return tools.filter((tool) => !isAvailable(tool.file, envPath));
}

export function isAvailable(file: string, envPath = process.env.PATH ?? ""): boolean {
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
