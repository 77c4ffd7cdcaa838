// LvmGroup's probe: one read-only round trip printing pvs/vgs/lvs as JSON, each PV device's
// signatures, each LV's filesystem and the fstab; and its parser (pure).
import { decodeBase64 } from "../kernel";
import { sh, ShellCommand } from "../plumbing/shell";
import { probe as runProbe } from "../plumbing/ssh";
import { EXTENT_SIZE_BYTES } from "../storage/lvm";
import { DeviceFacts, LvmContext, LvmGroupInputs, LvmGroupOutputs, LvmObserved, VgFacts } from "./types";

/**
 * The probe script's text, read once at module load so the closure serializer captures it by value
 * (the dynamic-provider host has no source tree). `npm run build` copies every providers .sh file next to
 * the compiled .js; the source-tree path is the fallback when running from an unbuilt checkout.
 */
const PROBE_SCRIPT: string = readScript("probe.sh");

function readScript(name: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("fs") as typeof import("fs");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require("path") as typeof import("path");
  const candidates = [path.join(__dirname, name), path.join(__dirname, "..", "..", "..", "providers", "lvm-group", name)];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`LvmGroup: ${name} not found at ${candidates.join(" or ")}; run npm run build`);
  return fs.readFileSync(found, "utf8");
}

/** The command that runs probe.sh (sent on stdin) for this VG, fstab root and PV devices. */
export function probeCommand(subject: { vgName: string; pvs: readonly string[]; fstabRoot?: string }): ShellCommand {
  return sh`bash -s -- ${subject.vgName} ${subject.fstabRoot ?? ""} ${subject.pvs}`;
}

/** probe.sh's text (for tests). */
export function probeScriptText(): string {
  return PROBE_SCRIPT;
}

interface RawLvmReport<K extends string> {
  report: Array<Partial<Record<K, Array<Record<string, string>>>>>;
}

export interface RawProbe {
  pvs: RawLvmReport<"pv">;
  vgs: RawLvmReport<"vg">;
  lvs: RawLvmReport<"lv">;
  devices: Array<{ index: number; exists: boolean; sizeBytes?: number; mountedAt?: string; holders?: number; signatures?: { signatures: Array<{ type: string; uuid?: string | null }> }; majMin?: string }>;
  filesystems: Array<{ lv: string; type: string; uuid: string; sizeBytes: string; mountedAt: string }>;
  fstabRootReady: boolean;
  fstab: string | null;
}

function rows<K extends string>(report: RawLvmReport<K> | undefined, key: K): Array<Record<string, string>> {
  if (!report || !Array.isArray(report.report)) throw new Error(`expected {"report":[{"${key}":[…]}]}, found ${JSON.stringify(report)?.slice(0, 200)}`);
  return report.report.flatMap((section) => section[key] ?? []);
}

function num(value: string | undefined, what: string): number {
  const n = Number(value);
  if (value === undefined || value === "" || !Number.isFinite(n)) throw new Error(`expected a number for ${what}, found ${JSON.stringify(value)}`);
  return n;
}

/** Parses the probe's JSON (lvm2 `--reportformat json --units b --nosuffix`, wipefs -J, blkid) into facts. */
export function parseProbe(json: unknown, subject: { vgName: string; pvs: readonly string[] }): LvmObserved {
  const raw = json as RawProbe;
  const pvRows = rows(raw.pvs, "pv");
  const vgRow = rows(raw.vgs, "vg").find((vg) => vg.vg_name === subject.vgName);
  const extentSize = vgRow ? num(vgRow.vg_extent_size, "vg_extent_size") : EXTENT_SIZE_BYTES;
  const vg: VgFacts | null = vgRow
    ? {
        name: vgRow.vg_name,
        uuid: vgRow.vg_uuid,
        tags: vgRow.vg_tags ? vgRow.vg_tags.split(",") : [],
        sizeBytes: num(vgRow.vg_size, "vg_size"),
        freeBytes: num(vgRow.vg_free, "vg_free"),
        extentSizeBytes: extentSize,
        extentCount: num(vgRow.vg_extent_count, "vg_extent_count"),
        freeExtents: num(vgRow.vg_free_count, "vg_free_count"),
        pvPaths: pvRows.filter((pv) => pv.vg_name === subject.vgName).map((pv) => pv.pv_name),
      }
    : null;
  const filesystems = new Map((raw.filesystems ?? []).map((fs) => [fs.lv, fs]));
  const lvs = vg
    ? rows(raw.lvs, "lv")
        .filter((lv) => lv.vg_name === subject.vgName)
        .map((lv) => {
          const fs = filesystems.get(lv.lv_name);
          const sizeBytes = num(lv.lv_size, "lv_size");
          return {
            name: lv.lv_name,
            uuid: lv.lv_uuid,
            path: lv.lv_path || `/dev/${subject.vgName}/${lv.lv_name}`,
            sizeBytes,
            extents: Math.round(sizeBytes / extentSize),
            active: lv.lv_active === "active",
            filesystem: fs?.type ? fs.type : null,
            filesystemUuid: fs?.uuid ? fs.uuid : null,
            filesystemSizeBytes: fs?.sizeBytes ? Number(fs.sizeBytes) : null,
            mountedAt: fs?.mountedAt ? fs.mountedAt : null,
          };
        })
    : [];
  const devices = subject.pvs.map((path, index): DeviceFacts => {
    const d = (raw.devices ?? []).find((x) => x.index === index);
    if (!d || !d.exists) return { path, exists: false, sizeBytes: null, signatures: [], pv: null, mountedAt: null, holders: 0 };
    const majMin = hexMajMinToDecimal(d.majMin);
    const pvRow = pvRows.find((pv) => pv.pv_name === path || (majMin !== null && `${pv.pv_major}:${pv.pv_minor}` === majMin));
    return {
      path,
      exists: true,
      sizeBytes: d.sizeBytes ?? null,
      signatures: (d.signatures?.signatures ?? []).map((s) => ({ type: s.type, uuid: s.uuid ?? null })),
      pv: pvRow ? { uuid: pvRow.pv_uuid, vgName: pvRow.vg_name ?? "", sizeBytes: num(pvRow.pv_size, "pv_size") } : null,
      mountedAt: d.mountedAt ? d.mountedAt : null,
      holders: d.holders ?? 0,
    };
  });
  const fstab = raw.fstab === null || raw.fstab === undefined ? null : decodeBase64(raw.fstab);
  return { devices, vg, lvs, fstab, fstabRootReady: raw.fstabRootReady === true };
}

function hexMajMinToDecimal(text: string | undefined): string | null {
  const m = /^([0-9a-f]+):([0-9a-f]+)$/i.exec(text ?? "");
  return m ? `${parseInt(m[1], 16)}:${parseInt(m[2], 16)}` : null;
}

export async function probe(ctx: LvmContext, subject: LvmGroupInputs | LvmGroupOutputs): Promise<LvmObserved> {
  return runProbe(ctx.session, probeCommand(subject), (json) => parseProbe(json, subject), { stdin: PROBE_SCRIPT });
}

