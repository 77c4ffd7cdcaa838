// Pulled drives: which of a lab server's disks are physically out of the chassis (issue 14 §7,
// the degraded-boot drill). Lab physical state, kept as a file in the server's state dir so the
// CLI (another process) can change it while the daemon runs; the supervisor reads it at every QEMU
// launch, so a change takes effect at the next power-on, reset or reboot, as a drive pulled from a
// powered-off chassis would. The disk files stay where they are: a pulled drive keeps its data.

import * as fs from "fs";
import * as path from "path";
import type { LabServerConfig } from "../config";
import { diskSerial } from "./qemu-args";

/** File in servers/<number>/ (contract: {"pulled": [<disk index>, …]}; absent = every drive in). */
export const PULLED_DRIVES_FILE = "pulled-drives.json";

export type DriveChange = { readonly kind: "pull" | "insert"; readonly index: number };

/** When a change takes effect and how to get there ("… takes effect <this>"), for every message that reports one. */
export function takesEffectAt(serverNumber: number): string {
  return `at the server's next power-on or reset: a Robot reset (POST /reset/${serverNumber} type=hw on the lab's Robot emulator) or a reboot inside the guest`;
}

/**
 * The pulled set after `change`, sorted. Pure, so the rules are table-tested: the index must name
 * one of the server's disks, and one drive must stay in, since QEMU without any disk would boot
 * nothing and such a drill tests nothing. Pulling a pulled drive or inserting an inserted one
 * changes nothing (re-runs converge).
 */
export function applyDriveChange(server: LabServerConfig, pulled: readonly number[], change: DriveChange): number[] {
  checkDiskIndex(server, change.index);
  const next = new Set(pulled);
  if (change.kind === "pull") next.add(change.index);
  else next.delete(change.index);
  if (next.size >= server.disks.count) {
    const others = [...next].filter((i) => i !== change.index).sort((a, b) => a - b);
    throw new Error(
      others.length === 0
        ? `cannot pull disk ${change.index} of server ${server.number} (${server.name}): it is the server's only disk; give it disks.count 2 or more in the lab config to drill a degraded boot`
        : `cannot pull disk ${change.index} of server ${server.number} (${server.name}): it is the last drive in (${others.length === 1 ? `disk ${others[0]} is` : `disks ${others.join(", ")} are`} already pulled); insert one first: npm run lab -- drive insert ${server.number} ${others[0]}`,
    );
  }
  return [...next].sort((a, b) => a - b);
}

/** Throws unless `index` names one of the server's disks. */
export function checkDiskIndex(server: LabServerConfig, index: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= server.disks.count) {
    throw new Error(`server ${server.number} (${server.name}) has disks 0 to ${server.disks.count - 1}; disk ${index} does not exist: pass an index from 0 to ${server.disks.count - 1} (npm run lab -- drive list ${server.number})`);
  }
}

/** A disk index as typed on the command line. */
export function parseDiskIndex(server: LabServerConfig, text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`a disk index is a whole number from 0 to ${server.disks.count - 1} (server ${server.number} ${server.name}), got "${text}"`);
  const index = Number(text);
  checkDiskIndex(server, index);
  return index;
}

/** The pulled set on file in a server's state dir; [] when there is no file. Throws on a file that does not parse. */
export function readPulledDrives(serverDir: string, server: LabServerConfig): number[] {
  const file = path.join(serverDir, PULLED_DRIVES_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  let pulled: unknown;
  try {
    pulled = (JSON.parse(text) as { pulled?: unknown }).pulled;
  } catch {
    pulled = undefined;
  }
  if (!Array.isArray(pulled) || !pulled.every((i) => typeof i === "number")) {
    throw new Error(`${file} must be {"pulled": [<disk index>, …]}, found ${JSON.stringify(text.slice(0, 200))}: fix it or delete it to put every drive of server ${server.number} back in`);
  }
  // Validated against the current config: disks.count may have shrunk since the drive was pulled.
  let checked: number[] = [];
  for (const index of pulled as number[]) checked = applyDriveChange(server, checked, { kind: "pull", index });
  return checked;
}

/** Applies `change` to the file; returns the new pulled set. */
export function changePulledDrives(serverDir: string, server: LabServerConfig, change: DriveChange): number[] {
  const current = readPulledDrives(serverDir, server);
  const next = applyDriveChange(server, current, change);
  // Unchanged: no write, so inserting a drive that was never pulled leaves no file behind.
  if (next.join() === current.join()) return next;
  const file = path.join(serverDir, PULLED_DRIVES_FILE);
  fs.mkdirSync(serverDir, { recursive: true, mode: 0o700 });
  // Atomic replace: the supervisor may read it at any moment (a guest reboot starts QEMU unasked).
  fs.writeFileSync(`${file}.tmp`, JSON.stringify({ pulled: next }) + "\n", { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  return next;
}

/** One line per disk, e.g. `disk 0  LAB100001N0  pulled`. */
export function describeDrives(server: LabServerConfig, pulled: readonly number[]): string[] {
  return Array.from({ length: server.disks.count }, (_, i) => `disk ${i}  ${diskSerial(server, i).padEnd(14)} ${pulled.includes(i) ? "pulled" : "in"}`);
}
