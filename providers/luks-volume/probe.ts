// LuksVolume's probe: one read-only round trip (probe.sh) and its parser (pure).
import { decodeBase64, readResourceScript } from "../kernel";
import { Secret } from "../plumbing/secret";
import { sh, ShellCommand } from "../plumbing/shell";
import { probe as runProbe } from "../plumbing/ssh";
import { parseBlkidExport, parseCryptStatus, parseDmsetupInfo, parseLuksMetadata, parseWipefsTypes } from "../storage/cryptsetup";
import { DiskFact, JOB_DIR_PREFIX, keyName, LuksContext, LuksObserved, LuksVolumeInputs, LuksVolumeOutputs } from "./types";

export interface ProbeSubject {
  readonly device: string;
  readonly mapperName: string;
  readonly crypttab: { readonly root: string };
}

/** probe.sh's text, captured by value (see kernel/script.ts). */
const PROBE_SCRIPT: string = readResourceScript(__dirname, "luks-volume", "probe.sh");

/** The command that runs probe.sh. The script is an argument (not stdin): stdin carries the passphrases to test. */
export function probeScript(subject: ProbeSubject): ShellCommand {
  return sh`bash -c ${PROBE_SCRIPT} probe ${subject.device} ${subject.mapperName} ${subject.crypttab.root} ${JOB_DIR_PREFIX + subject.mapperName}`;
}

interface RawProbe {
  exists: boolean;
  size?: number;
  lsblk?: unknown;
  wipefs?: unknown;
  blkid?: string;
  luks?: unknown;
  keys?: (number | null)[];
  dm: string;
  status: string;
  crypttab?: string;
  job: { running: boolean; device: string; rc: string };
}

/** Turns the probe's JSON into typed facts. `keyCounts` says how the tested passphrases split into roles. */
export function parseProbe(json: unknown, keyCounts: { extras: number; retired: number } | null): LuksObserved {
  const raw = json as RawProbe;
  if (raw === null || typeof raw !== "object" || typeof raw.exists !== "boolean") throw new Error(`expected {"exists": …}, found ${JSON.stringify(json)?.slice(0, 100)}`);
  const blkid = parseBlkidExport(decodeBase64(raw.blkid));
  const luks =
    raw.luks !== undefined && raw.luks !== null
      ? { uuid: blkid.UUID ?? "", label: blkid.LABEL ?? null, subsystem: blkid.SUBSYSTEM ?? null, metadata: parseLuksMetadata(raw.luks) }
      : null;
  if (luks !== null && !/^[0-9a-f-]{36}$/.test(luks.uuid)) throw new Error(`blkid printed no LUKS UUID for a LUKS device (found ${JSON.stringify(luks.uuid)})`);
  const slots = raw.keys ?? [];
  const keys =
    keyCounts === null || luks === null
      ? null
      : {
          passphrase: slots[0] ?? null,
          extras: Array.from({ length: keyCounts.extras }, (_, i) => slots[1 + i] ?? null),
          retired: Array.from({ length: keyCounts.retired }, (_, i) => slots[1 + keyCounts.extras + i] ?? null),
        };
  const status = parseCryptStatus(decodeBase64(raw.status));
  const rc = decodeBase64(raw.job?.rc).trim();
  const jobDevice = decodeBase64(raw.job?.device).trim();
  return {
    exists: raw.exists,
    sizeBytes: typeof raw.size === "number" ? raw.size : null,
    disks: raw.lsblk ? disksOf(raw.lsblk) : [],
    signatures: raw.wipefs ? parseWipefsTypes(raw.wipefs) : [],
    luks,
    mappings: parseDmsetupInfo(decodeBase64(raw.dm)),
    status: { active: status.active, discards: status.discards },
    crypttab: raw.crypttab === undefined ? null : decodeBase64(raw.crypttab).split("\n"),
    keys,
    randomise: { running: raw.job?.running === true, device: jobDevice === "" ? null : jobDevice, exitCode: /^\d+$/.test(rc) ? Number(rc) : null },
  };
}

/** Every `type: disk` node of `lsblk -J -s` (the devices beneath), deduplicated. */
export function disksOf(lsblk: unknown): DiskFact[] {
  const found = new Map<string, DiskFact>();
  const walk = (nodes: unknown): void => {
    if (!Array.isArray(nodes)) return;
    for (const node of nodes as { path?: string; type?: string; serial?: string | null; wwn?: string | null; children?: unknown }[]) {
      if (node.type === "disk" && node.path) found.set(node.path, { path: node.path, serial: node.serial?.trim() || null, wwn: node.wwn?.trim() || null });
      walk(node.children);
    }
  };
  walk((lsblk as { blockdevices?: unknown })?.blockdevices);
  return [...found.values()];
}

/** Names of the passphrases the probe tests, in the order of `KeyTests` (see `secrets` in provider.ts). */
function testedKeys(ctx: LuksContext): { names: string[]; extras: number; retired: number } {
  const count = (role: string) => Object.keys(ctx.keys).filter((name) => name.startsWith(`${role}:`)).length;
  const extras = count("extra");
  const retired = count("retired");
  const names = [
    keyName({ role: "passphrase" }),
    ...Array.from({ length: extras }, (_, index) => keyName({ role: "extra", index })),
    ...Array.from({ length: retired }, (_, index) => keyName({ role: "retired", index })),
  ];
  return { names, extras, retired };
}

/** One read-only round trip. Passphrases are tested (a KDF run each) only when converging, never on refresh or delete. */
export async function probe(ctx: LuksContext, subject: LuksVolumeInputs | LuksVolumeOutputs): Promise<LuksObserved> {
  const where = { device: subject.device, mapperName: subject.mapperName, crypttab: { root: subject.crypttab?.root ?? "/" } };
  const testKeys = ctx.purpose === "converge" && ctx.keys.passphrase !== undefined;
  const tested = testedKeys(ctx);
  const keys = testKeys ? tested.names.map((name) => ctx.keys[name]) : [];
  const stdin = keys.length > 0 ? new Secret(keys.map((k) => `${k.reveal()}\0`).join("")) : undefined;
  const counts = testKeys ? { extras: tested.extras, retired: tested.retired } : null;
  return runProbe(ctx.session, probeScript(where), (json) => parseProbe(json, counts), { stdin, secrets: keys, timeoutMs: 600_000 });
}
