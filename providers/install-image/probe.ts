// InstallImage's probe: one read-only round trip and its parser.
import { blkidUuids, descendants, parseArrayLines, parseLsblk, parseMdArray, MdArrayFacts } from "../storage/md";
import { ShellCommand, joinShell, sh } from "../plumbing/shell";
import { probe as runProbe } from "../plumbing/ssh";
import type { PartitionSpec, VolumeSpec } from "../rules/layout";
import { cryptDevices, espDevice, imagePath, rootLocation } from "./autosetup";
import { AUTOSETUP, DEBUG_FILE, DriveFacts, DriveSpec, IMAGES_DIR, INSTALLIMAGE, InstallContext, InstallImageInputs, InstallImageOutputs, InstallObserved, InstallRecord, InstalledRootFacts, MARKER_FILE, WORK_DIR } from "./types";

// ---------------------------------------------------------------------------------------------
// probe (one read-only round trip)

/** What the probe needs to know about the layout to find things. */
export interface ProbeSubject {
  readonly drives: readonly DriveSpec[];
  readonly raid: InstallImageInputs["raid"];
  readonly partitions: readonly PartitionSpec[];
  readonly logicalVolumes?: readonly VolumeSpec[];
  readonly image: string;
}

/**
 * One script, one JSON document: the drives (lsblk, wipefs, first sector), md arrays (mdadm
 * --detail --export + sysfs), superblocks (mdadm --examine --scan), LVM, every UUID (blkid), the
 * installed root (mounted read-only without journal replay when it is not mounted), the ESP loader,
 * the state of an installimage run this resource started, and CRYPTPASSWORD leftovers (counted,
 * never printed). Free text is base64 so no output can break the JSON.
 */
export function probeScript(subject: ProbeSubject): ShellCommand {
  const root = rootLocation({ ...subject, drives: [...subject.drives], partitions: [...subject.partitions], logicalVolumes: subject.logicalVolumes ? [...subject.logicalVolumes] : undefined });
  const esp = espDevice({ drives: [...subject.drives], raid: subject.raid, partitions: [...subject.partitions] });
  const crypt = cryptDevices({ drives: [...subject.drives], raid: subject.raid, partitions: [...subject.partitions] });
  const drives = subject.drives.map(
    (d, i) => sh`d=${d.path}; printf '%s{"path":"%s"' ${i === 0 ? "" : ","} "$(t "$d")"
if [ -b "$d" ]; then
  printf ',"exists":true,"grub":%s,"wipefs":"%s","lsblk":' "$(dd if="$d" bs=512 count=1 2>/dev/null | grep -a -c GRUB)" "$(wipefs -n -J "$d" 2>/dev/null | t1)"
  lsblk -J -b -o NAME,PATH,TYPE,SIZE,SERIAL,WWN,FSTYPE,MOUNTPOINT "$d" 2>/dev/null || printf null
else printf ',"exists":false'; fi
printf '}'`,
  );
  const luks = crypt.map(
    (dev, i) => sh`c=${dev}; u=$(blkid -p -s UUID -o value "$c" 2>/dev/null); ty=$(blkid -p -s TYPE -o value "$c" 2>/dev/null)
printf '%s{"device":"%s","type":"%s","uuid":"%s","open":%s}' ${i === 0 ? "" : ","} "$(t "$c")" "$(t "$ty")" "$(t "$u")" "$([ -n "$u" ] && [ -b "/dev/mapper/luks-$u" ] && echo true || echo false)"`,
  );
  return joinShell(
    [
      sh`W=${WORK_DIR}
t() { printf '%s' "$1" | base64 -w0; }
t1() { base64 -w0; }
f() { if [ -r "$1" ]; then base64 -w0 < "$1"; fi; }
printf '{"hostname":"%s","rescue":%s,"firmware":"%s"' "$(t "$(hostname)")" "$([ -x ${INSTALLIMAGE} ] && echo true || echo false)" "$([ -d /sys/firmware/efi ] && echo uefi || echo bios)"
printf ',"drives":['`,
      ...drives,
      sh`printf '],"arrays":['; sep=''
for a in /sys/block/md*/md; do
  [ -d "$a" ] || continue
  n=$(basename "$(dirname "$a")"); dev=/dev/$n
  rd() { cat "$a/$1" 2>/dev/null | head -n1; }
  devs=$(for m in "$a"/dev-*; do [ -d "$m" ] && printf '%s %s %s\\n' "\${m##*/dev-}" "$(cat "$m/state" 2>/dev/null)" "$(cat "$m/slot" 2>/dev/null)"; done | t1)
  printf '%s{"device":"%s","export":"%s","devs":"%s","arrayState":"%s","degraded":"%s","syncAction":"%s","syncCompleted":"%s","syncSpeed":"%s","raidDisks":"%s"}' "$sep" "$dev" "$(mdadm --detail --export "$dev" 2>/dev/null | t1)" "$devs" "$(rd array_state)" "$(rd degraded)" "$(rd sync_action)" "$(rd sync_completed)" "$(rd sync_speed)" "$(rd raid_disks)"
  sep=,
done
printf '],"examine":"%s","blkid":"%s"' "$(mdadm --examine --scan 2>/dev/null | t1)" "$(blkid -o export 2>/dev/null | t1)"
printf ',"vgs":'; vgs --reportformat json --units b --nosuffix -o vg_name,vg_size,vg_free 2>/dev/null || printf '{"report":[{}]}'
printf ',"lvs":'; lvs --reportformat json --units b --nosuffix -o vg_name,lv_name,lv_size 2>/dev/null || printf '{"report":[{}]}'
printf ',"luks":['`,
      ...luks,
      sh`printf ']'
r=${root.device}
if [ ${root.kind === "part" && root.crypt ? "yes" : "no"} = yes ]; then r="/dev/mapper/luks-$(blkid -p -s UUID -o value "$r" 2>/dev/null)"; fi
R=''; mounted=''
# Mounted already (as / on the installed system)? Matched by major:minor, whatever the path spelling.
mnt() { mm=$(lsblk -dn -o MAJ:MIN "$1" 2>/dev/null | tr -d ' '); [ -n "$mm" ] && findmnt -rn -o TARGET,MAJ:MIN | awk -v m="$mm" '$2 == m {print $1; exit}'; }
if [ -b "$r" ]; then
  R=$(mnt "$r")
  if [ -z "$R" ]; then
    mkdir -p "$W/probe-root"
    case "$(blkid -p -s TYPE -o value "$r" 2>/dev/null)" in ext*) o=ro,noload ;; xfs) o=ro,norecovery ;; *) o=ro ;; esac
    if mount -o "$o" "$r" "$W/probe-root" 2>/dev/null; then R="$W/probe-root"; mounted=1; fi
  fi
fi
if [ -n "$R" ]; then
  printf ',"root":{"device":"%s","hostname":"%s","osRelease":"%s","hostKeys":"%s","marker":"%s","mdadmConf":"%s","hasMdadmConf":%s,"fstab":"%s","hasFstab":%s,"crypttab":"%s","cryptLines":%s}' \
    "$(t "$r")" "$(f "$R/etc/hostname")" "$(f "$R/etc/os-release")" "$(cat "$R"/etc/ssh/ssh_host_*_key.pub 2>/dev/null | t1)" "$(f "$R/"${MARKER_FILE})" \
    "$(f "$R/etc/mdadm/mdadm.conf")" "$([ -f "$R/etc/mdadm/mdadm.conf" ] && echo true || echo false)" "$(f "$R/etc/fstab")" "$([ -f "$R/etc/fstab" ] && echo true || echo false)" "$(f "$R/etc/crypttab")" \
    "$(cat "$R/installimage.conf" "$R/installimage.debug" 2>/dev/null | grep -c CRYPTPASSWORD)"
else printf ',"root":null'; fi
[ -n "$mounted" ] && umount "$W/probe-root"
e=${esp ?? ""}; printf ',"espLoader":'
if [ -n "$e" ] && [ -d /sys/firmware/efi ] && [ -b "$e" ]; then
  E=$(mnt "$e"); em=''
  if [ -z "$E" ]; then mkdir -p "$W/probe-esp"; mount -o ro "$e" "$W/probe-esp" 2>/dev/null && E="$W/probe-esp" && em=1; fi
  if [ -n "$E" ] && [ -f "$E/EFI/BOOT/BOOTX64.EFI" ]; then printf true; else printf false; fi
  [ -n "$em" ] && umount "$W/probe-esp"
else printf null; fi
running=false; p=$(cat "$W/pid" 2>/dev/null)
if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then running=true; fi
printf ',"installer":{"running":%s,"rc":"%s","startedFor":"%s"}' "$running" "$(cat "$W/rc" 2>/dev/null)" "$(f "$W/started-for")"
printf ',"rescueCryptLines":%s' "$(cat ${AUTOSETUP} ${DEBUG_FILE} 2>/dev/null | grep -c CRYPTPASSWORD)"
printf ',"imageFound":%s,"images":"%s"' "$([ -f ${imagePath(subject.image)} ] && echo true || echo false)" "$(ls ${IMAGES_DIR} 2>/dev/null | t1)"
printf ',"speedLimitMax":"%s"}' "$(cat /proc/sys/dev/raid/speed_limit_max 2>/dev/null)"`,
    ],
    ";",
  );
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
    logicalVolumes: lvmRows(raw.lvs, "lv").map((lv) => ({ vg: lv.vg_name, name: lv.lv_name, sizeBytes: Number(lv.lv_size) })),
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

export async function probe(ctx: InstallContext, subject: InstallImageInputs | InstallImageOutputs): Promise<InstallObserved> {
  return runProbe(ctx.session, probeScript(subject), parseInstallProbe, { timeoutMs: 5 * 60_000 });
}
