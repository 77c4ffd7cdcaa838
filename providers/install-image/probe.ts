// InstallImage's probe: one read-only round trip (probe.sh) and its parser.
import { blkidUuids, descendants, parseArrayLines, parseLsblk, parseMdArray, MdArrayFacts } from "../storage/md";
import { readResourceScript } from "../kernel/script";
import { ShellCommand, sh } from "../plumbing/shell";
import { observeEndpoint, probe as runProbe } from "../plumbing/ssh";
import { classifyHost } from "../kernel/host-access";
import type { PartitionSpec, VolumeSpec } from "../rules/layout";
import { cryptDevices, espDevice, imagePath, rootLocation } from "./autosetup";
import { systemEndpoint } from "./outputs";
import { AUTOSETUP, DEBUG_FILE, DriveFacts, DriveSpec, IMAGES_DIR, INSTALLIMAGE, InstallContext, InstallImageInputs, InstallImageObserved, InstallImageOutputs, InstallObserved, InstallRecord, InstalledRootFacts, MARKER_FILE, UnseenHost, WORK_DIR } from "./types";

// ---------------------------------------------------------------------------------------------
// probe (one read-only round trip)

/** What the probe needs to know about the layout to find things. */
export interface ProbeSubject {
  readonly drives: readonly DriveSpec[];
  readonly raid: InstallImageInputs["raid"];
  readonly partitions: readonly PartitionSpec[];
  readonly volumes?: readonly VolumeSpec[];
  readonly image: string;
}

/** probe.sh's text, captured by value (see kernel/script.ts). */
const PROBE_SCRIPT: string = readResourceScript(__dirname, "install-image", "probe.sh");

/** probe.sh's text (for tests). */
export function probeScriptText(): string {
  return PROBE_SCRIPT;
}

/**
 * The command that runs probe.sh (sent on stdin) for this layout: where the installed root, the ESP
 * and the LUKS devices are, which drives to look at, and which image the install needs.
 */
export function probeCommand(subject: ProbeSubject): ShellCommand {
  const root = rootLocation({ ...subject, drives: [...subject.drives], partitions: [...subject.partitions], volumes: subject.volumes ? [...subject.volumes] : undefined });
  const esp = espDevice({ drives: [...subject.drives], raid: subject.raid, partitions: [...subject.partitions] });
  const crypt = cryptDevices({ drives: [...subject.drives], raid: subject.raid, partitions: [...subject.partitions] });
  const rootCrypt = root.kind === "part" && root.crypt ? "yes" : "no";
  const drives = subject.drives.map((d) => d.path);
  return sh`bash -s -- ${WORK_DIR} ${INSTALLIMAGE} ${MARKER_FILE} ${AUTOSETUP} ${DEBUG_FILE} ${imagePath(subject.image)} ${IMAGES_DIR} ${root.device} ${rootCrypt} ${esp ?? ""} ${String(drives.length)} ${drives} ${crypt}`;
}

/** The probe's JSON, as printed (base64 fields still encoded). */
export interface RawInstallProbe {
  hostname: string;
  rescue: boolean;
  firmware: "bios" | "uefi";
  drives: { path: string; exists: boolean; grub?: number; wipefs?: string; lsblk?: unknown }[];
  arrays: { device: string; export: string; devs?: string; arrayState: string; degraded: string; syncAction: string; syncCompleted: string; syncSpeed: string; raidDisks: string }[];
  examine: string;
  blkid: string;
  vgs: { report: Array<{ vg?: Array<Record<string, string>> }> };
  lvs: { report: Array<{ lv?: Array<Record<string, string>> }> };
  luks: { device: string; type: string; uuid: string; open: boolean }[];
  root: null | { device: string; hostname: string; osRelease: string; hostKeys: string; marker: string; mdadmConf: string; hasMdadmConf: boolean; fstab: string; hasFstab: boolean; crypttab: string; cryptLines: number };
  espLoader: boolean | null;
  installer: { running: boolean; rc: string; startedFor: string };
  rescueCryptLines: number;
  imageFound: boolean;
  images: string;
  speedLimitMax: string;
}

function b64(text: string | undefined | null): string {
  return text ? Buffer.from(text, "base64").toString("utf8") : "";
}

/** `KEY="value"` lines of os-release → map. */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]] = m[2].replace(/^"(.*)"$/, "$1");
  }
  return out;
}

/**
 * WORK_DIR/started-for as runInstallimage writes it: the config hash on the first line, then one
 * `path<TAB>serial<TAB>wwn` line per drive. An empty file is no record; a record from an older
 * provider (the hash alone) names no drive, so no drive's data counts as ours.
 */
export function parseInstallRecord(text: string): InstallRecord | null {
  const [sha = "", ...lines] = text.split("\n");
  if (sha.trim() === "") return null;
  const drives = lines
    .filter((line) => line.trim() !== "")
    .map((line) => {
      const [path = "", serial = "", wwn = ""] = line.split("\t");
      return { path, serial: serial.trim() || null, wwn: wwn.trim() || null };
    });
  return { configSha256: sha.trim(), drives };
}

export function parseInstallProbe(json: unknown): InstallObserved {
  const raw = json as RawInstallProbe;
  if (!raw || typeof raw !== "object" || !Array.isArray(raw.drives) || !Array.isArray(raw.arrays)) {
    throw new Error(`expected {hostname, drives:[…], arrays:[…], …}, found ${JSON.stringify(json)?.slice(0, 200)}`);
  }
  const drives = raw.drives.map((d): DriveFacts => {
    const path = b64(d.path);
    if (!d.exists) return { path, exists: false, sizeBytes: null, serial: null, wwn: null, mbrGrub: false, signatures: [], stacked: [] };
    const tree = d.lsblk ? parseLsblk(d.lsblk)[0] : undefined;
    const wipefs = b64(d.wipefs);
    const signatures = wipefs ? ((JSON.parse(wipefs) as { signatures?: { type: string }[] }).signatures ?? []).map((s) => s.type) : [];
    return {
      path,
      exists: true,
      sizeBytes: tree?.sizeBytes ?? null,
      serial: tree?.serial ?? null,
      wwn: tree?.wwn ?? null,
      mbrGrub: (d.grub ?? 0) > 0,
      signatures: [...new Set(signatures)],
      stacked: tree ? descendants(tree) : [],
    };
  });
  const arrays: MdArrayFacts[] = [];
  const inactiveArrays: string[] = [];
  for (const a of raw.arrays) {
    const text = b64(a.export);
    // `mdadm --stop` leaves the md node in sysfs for a moment, "clear" and memberless: that is a stopped
    // array, which the superblocks report as fallen apart, not a second, partly assembled one.
    if (a.arrayState === "clear" && b64(a.devs).trim() === "") continue;
    if (!/MD_UUID=/.test(text) || a.arrayState === "inactive" || a.arrayState === "clear") {
      inactiveArrays.push(a.device);
      continue;
    }
    arrays.push(parseMdArray(a.device, text, { ...a, devs: b64(a.devs) }));
  }
  const rootRaw = raw.root;
  const markerText = rootRaw ? b64(rootRaw.marker) : "";
  let marker: InstalledRootFacts["marker"] = null;
  if (markerText.trim() !== "") {
    try {
      const m = JSON.parse(markerText) as { installId?: string; configSha256?: string; installedAt?: string };
      if (m.installId && m.configSha256) marker = { installId: m.installId, configSha256: m.configSha256, installedAt: m.installedAt ?? "" };
    } catch {
      marker = null; // a torn marker is no marker: the install did not finish
    }
  }
  const root: InstalledRootFacts | null = rootRaw
    ? {
        device: b64(rootRaw.device),
        hostname: b64(rootRaw.hostname).trim() || null,
        osRelease: parseOsRelease(b64(rootRaw.osRelease)),
        hostKeys: b64(rootRaw.hostKeys).split("\n").map((l) => l.trim()).filter((l) => l !== ""),
        marker,
        mdadmConf: rootRaw.hasMdadmConf ? b64(rootRaw.mdadmConf) : null,
        fstab: rootRaw.hasFstab ? b64(rootRaw.fstab) : null,
        crypttab: b64(rootRaw.crypttab) || null,
        cryptLines: Number(rootRaw.cryptLines) || 0,
      }
    : null;
  const lvmRows = <K extends "vg" | "lv">(report: { report: Array<Partial<Record<K, Array<Record<string, string>>>>> } | undefined, key: K) =>
    (report?.report ?? []).flatMap((section) => section[key] ?? []);
  const rc = raw.installer?.rc?.trim() ?? "";
  return {
    environment: raw.rescue ? "rescue" : "system",
    hostname: b64(raw.hostname).trim(),
    firmware: raw.firmware === "uefi" ? "uefi" : "bios",
    drives,
    arrays,
    inactiveArrays,
    superblocks: parseArrayLines(b64(raw.examine)),
    volumeGroups: lvmRows(raw.vgs, "vg").map((vg) => ({ name: vg.vg_name, sizeBytes: Number(vg.vg_size), freeBytes: Number(vg.vg_free) })),
    volumes: lvmRows(raw.lvs, "lv").map((lv) => ({ vg: lv.vg_name, name: lv.lv_name, sizeBytes: Number(lv.lv_size) })),
    knownUuids: blkidUuids(b64(raw.blkid)),
    espLoader: raw.espLoader === true ? true : raw.espLoader === false ? false : null,
    root,
    luks: (raw.luks ?? []).filter((l) => b64(l.type) === "crypto_LUKS").map((l) => ({ device: b64(l.device), uuid: b64(l.uuid), open: l.open === true })),
    installer: { running: raw.installer?.running === true, exitCode: /^\d+$/.test(rc) ? Number(rc) : null, startedFor: parseInstallRecord(b64(raw.installer?.startedFor)) },
    rescueCryptLines: Number(raw.rescueCryptLines) || 0,
    imageFound: raw.imageFound === true,
    imagesAvailable: b64(raw.images).split("\n").filter((l) => l.trim() !== ""),
    speedLimitMax: /^\d+$/.test(raw.speedLimitMax?.trim() ?? "") ? Number(raw.speedLimitMax.trim()) : null,
  };
}

/**
 * probe.sh over SSH; without SSH (after this run's reboot into a crypt system's initramfs, or a read
 * of a host that does not answer), one look at the SSH port: dropbear there is the initramfs.
 */
export async function probe(ctx: InstallContext, subject: InstallImageInputs | InstallImageOutputs): Promise<InstallImageObserved> {
  if (ctx.session.ssh === null) return lookWithoutLogin(ctx.session.awaiting ?? "unreachable", subject);
  return runProbe(ctx.session.ssh, probeCommand(subject), parseInstallProbe, { stdin: PROBE_SCRIPT, timeoutMs: 5 * 60_000 });
}

async function lookWithoutLogin(awaiting: UnseenHost["environment"], subject: InstallImageInputs | InstallImageOutputs): Promise<UnseenHost> {
  const endpoint = systemEndpoint(subject);
  const pinned = "hostKeyFingerprints" in subject ? subject.hostKeyFingerprints : [];
  const state = classifyHost(await observeEndpoint(endpoint.host, endpoint.port), [subject.rescue, { environment: "system", hostKeyFingerprints: pinned }]);
  return { environment: state.kind === "initramfs" ? "initramfs" : awaiting };
}
