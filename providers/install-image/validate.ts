// InstallImage's check (pure): every failure names its field; a replacement needs allowWipe.
import { CheckFailure, ConnectionProfile, containsUnknown, isUnknown, validateProfiles } from "../kernel";
import { checkDiskPath, checkSerial, checkWipePins, checkWwn, normalizeWwn } from "../rules/device";
import { formatPath } from "../rules/issue";
import { parseImageName } from "../rules/image";
import { checkLayout } from "../rules/layout";
import { checkPbkdf, PBKDF_TYPES } from "../rules/luks";
import { checkEndpointAddress, checkHostname, checkPort } from "../rules/network";
import { PASSPHRASE_RULE, passphraseWeaknesses } from "../rules/passphrase";
import { RAID_LEVELS, RaidLevel, minDrivesFor } from "../rules/size";
import { imageBaseName, usesCrypt } from "./autosetup";
import { DriveSpec, InstallImageInputs, MIN_ESP_SIZE_MIB, REASSEMBLE_MODES, SystemEndpoint } from "./types";

// ---------------------------------------------------------------------------------------------
// validate (pure; check)

export function validate(inputs: InstallImageInputs): CheckFailure[] {
  return [
    ...validateRescue(inputs.rescue),
    ...validateSystem(inputs.system),
    ...validateDrives(inputs.drives),
    ...validateRaid(inputs.raid, inputs.drives),
    ...validateLayout(inputs),
    ...validateImage(inputs.image),
    ...validateHostnameInput(inputs.hostname),
    ...validateCrypt(inputs),
    ...validateOptions(inputs),
    ...validateWipePins(inputs),
  ];
}

/** With allowWipe, every drive must be pinned: destructive steps act only on pinned disks. */
function validateWipePins(inputs: InstallImageInputs): CheckFailure[] {
  if (inputs.allowWipe !== true || !Array.isArray(inputs.drives) || containsUnknown(inputs.drives)) return [];
  const entries = inputs.drives.flatMap((drive, i) => (drive && typeof drive === "object" ? [{ drive, path: ["drives", i], label: `drives[${i}]` }] : []));
  return checkWipePins(entries).map((issue) => ({ property: formatPath(issue.path), reason: issue.message }));
}

function validateRescue(rescue: unknown): CheckFailure[] {
  if (isUnknown(rescue)) return [];
  if (rescue === null || typeof rescue !== "object" || Array.isArray(rescue)) {
    return [{ property: "rescue", reason: `expected a connection profile {environment: "rescue", host, port, user, hostKeyFingerprints} (RescueBoot's profile output), found ${JSON.stringify(rescue)}` }];
  }
  const failures = validateProfiles([rescue], "rescue").map((f) => ({ ...f, property: f.property.replace(/^rescue\[0\]/, "rescue") }));
  const env = (rescue as ConnectionProfile).environment;
  if (env !== undefined && env !== "rescue" && failures.every((f) => f.property !== "rescue.environment")) {
    failures.push({ property: "rescue.environment", reason: `expected "rescue" (installimage runs in the rescue system), found "${env}"` });
  }
  return failures;
}

function validateSystem(system: unknown): CheckFailure[] {
  if (system === undefined || isUnknown(system)) return [];
  if (system === null || typeof system !== "object") return [{ property: "system", reason: `expected {host?, port?}, found ${JSON.stringify(system)}` }];
  const failures: CheckFailure[] = [];
  const { host, port } = system as SystemEndpoint;
  if (host !== undefined && !isUnknown(host)) {
    const reason = typeof host === "string" ? checkEndpointAddress(host) : `expected an address, found ${JSON.stringify(host)}`;
    if (reason) failures.push({ property: "system.host", reason });
  }
  if (port !== undefined && !isUnknown(port)) {
    const reason = typeof port === "number" ? checkPort(port) : `expected a port number, found ${JSON.stringify(port)}`;
    if (reason) failures.push({ property: "system.port", reason });
  }
  return failures;
}

export function validateDrives(drives: unknown): CheckFailure[] {
  if (isUnknown(drives)) return [];
  if (!Array.isArray(drives) || drives.length === 0) {
    return [{ property: "drives", reason: `expected at least one drive like { path: "/dev/nvme0n1", serial: "S4EW…" }, found ${JSON.stringify(drives)}` }];
  }
  const failures: CheckFailure[] = [];
  const firstIndex = (key: "path" | "serial" | "wwn", value: string, i: number) =>
    drives.findIndex((d: DriveSpec, j) => j < i && d && typeof d[key] === "string" && (key === "wwn" ? normalizeWwn(d[key] as string) === normalizeWwn(value) : d[key] === value));
  drives.forEach((drive: DriveSpec, i) => {
    const at = `drives[${i}]`;
    if (drive === null || typeof drive !== "object") {
      failures.push({ property: at, reason: `expected { path, serial?, wwn? }, found ${JSON.stringify(drive)}` });
      return;
    }
    if (!isUnknown(drive.path)) {
      const reason = typeof drive.path === "string" ? checkDiskPath(drive.path) : `expected a device path like /dev/nvme0n1, found ${JSON.stringify(drive.path)}`;
      if (reason) failures.push({ property: `${at}.path`, reason });
      else {
        const twin = firstIndex("path", drive.path, i);
        if (twin >= 0) failures.push({ property: `${at}.path`, reason: `"${drive.path}" is listed twice (also drives[${twin}]); list each drive once` });
      }
    }
    for (const key of ["serial", "wwn"] as const) {
      const value = drive[key];
      if (value === undefined || isUnknown(value)) continue;
      const reason = typeof value !== "string" ? `expected a string, found ${JSON.stringify(value)}` : key === "serial" ? checkSerial(value) : checkWwn(value);
      if (reason) failures.push({ property: `${at}.${key}`, reason });
      else {
        const twin = firstIndex(key, value, i);
        if (twin >= 0) failures.push({ property: `${at}.${key}`, reason: `${key} "${value}" is also drives[${twin}]'s: the same disk cannot be listed twice under two paths` });
      }
    }
  });
  return failures;
}

function validateRaid(raid: unknown, drives: unknown): CheckFailure[] {
  if (isUnknown(raid)) return [];
  const count = Array.isArray(drives) && !isUnknown(drives) ? drives.length : null;
  if (raid === false) {
    if (count !== null && count > 1) {
      return [{ property: "raid", reason: `without RAID installimage installs on one drive and leaves the others alone, but ${count} drives are listed; list only the drive to install on, or set raid: { level: 1 }` }];
    }
    return [];
  }
  if (raid === null || typeof raid !== "object" || !("level" in raid)) {
    return [{ property: "raid", reason: `expected { level: ${RAID_LEVELS.join("|")} } or false (no md RAID), found ${JSON.stringify(raid)}` }];
  }
  const level = (raid as { level: unknown }).level;
  if (isUnknown(level)) return [];
  if (!RAID_LEVELS.includes(level as RaidLevel)) return [{ property: "raid.level", reason: `expected one of ${RAID_LEVELS.join(", ")}, found ${JSON.stringify(level)}` }];
  const needed = minDrivesFor(level as RaidLevel);
  if (count !== null && count < needed) {
    return [{ property: "raid.level", reason: `RAID ${level} needs at least ${needed} drives, found ${count}; add drives or choose RAID 1` }];
  }
  return [];
}

function validateLayout(inputs: InstallImageInputs): CheckFailure[] {
  const { partitions, volumes, raid, drives } = inputs;
  if (isUnknown(partitions) || isUnknown(volumes)) return [];
  if (!Array.isArray(partitions) || partitions.length === 0) {
    return [{ property: "partitions", reason: `expected installimage PARTs like [{ mount: "/boot", fs: "ext4", size: "1G" }, { mount: "lvm", vg: "vg0", size: "all" }], found ${JSON.stringify(partitions)}` }];
  }
  if (volumes !== undefined && !Array.isArray(volumes)) {
    return [{ property: "volumes", reason: `expected a list of { vg, name, mount, fs, size }, found ${JSON.stringify(volumes)}` }];
  }
  if (containsUnknown(partitions) || containsUnknown(volumes ?? [])) return [];
  const members = Array.isArray(drives) ? drives.length : 1;
  const raidSpec = raid && typeof raid === "object" && RAID_LEVELS.includes(raid.level) ? { level: raid.level, members } : null;
  const issues = checkLayout(
    { partitions, volumes: volumes ?? [], raid: raidSpec, memberSizesBytes: Array.from({ length: members }, () => undefined) },
    { requireEncryptedRoot: false },
  );
  const failures = issues.map((issue) => ({ property: formatPath(issue.path), reason: issue.message }));
  partitions.forEach((part, i) => {
    // The rule's own minimum applies to /boot/efi mounts; an esp elsewhere is caught there too.
    if (part.fs === "esp" && /^\d+M$/.test(part.size) && parseInt(part.size, 10) < MIN_ESP_SIZE_MIB && !failures.some((f) => f.property === `partitions[${i}].size`)) {
      failures.push({ property: `partitions[${i}].size`, reason: `expected an EFI system partition of at least ${MIN_ESP_SIZE_MIB}M, found ${part.size}` });
    }
  });
  return failures;
}


function validateImage(image: unknown): CheckFailure[] {
  if (isUnknown(image)) return [];
  if (typeof image !== "string") return [{ property: "image", reason: `expected an image name like Debian-bookworm-latest-amd64-base, found ${JSON.stringify(image)}` }];
  const parsed = parseImageName(imageBaseName(image));
  return parsed.ok ? [] : [{ property: "image", reason: parsed.reason }];
}

function validateHostnameInput(hostname: unknown): CheckFailure[] {
  if (isUnknown(hostname)) return [];
  const reason = typeof hostname === "string" ? checkHostname(hostname) : `expected a host name, found ${JSON.stringify(hostname)}`;
  return reason ? [{ property: "hostname", reason }] : [];
}


function validateCrypt(inputs: InstallImageInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const passphrase = inputs.cryptPassphrase;
  if (!isUnknown(inputs.partitions) && Array.isArray(inputs.partitions)) {
    const crypt = usesCrypt(inputs.partitions);
    if (crypt && passphrase === undefined) {
      failures.push({ property: "cryptPassphrase", reason: "a partition has crypt: true, so a passphrase is needed; set it with `pulumi config set --secret` and pass it here" });
    }
    if (!crypt && passphrase !== undefined && !isUnknown(passphrase)) {
      failures.push({ property: "cryptPassphrase", reason: "no partition has crypt: true, so the passphrase would be unused; remove it or set crypt: true on the lvm partition" });
    }
  }
  if (passphrase !== undefined && !isUnknown(passphrase)) {
    if (typeof passphrase !== "string") failures.push({ property: "cryptPassphrase", reason: "expected a string" });
    else {
      const weak = passphraseWeaknesses(passphrase);
      if (weak.length > 0) failures.push({ property: "cryptPassphrase", reason: `the passphrase ${weak.join("; ")}. Expected ${PASSPHRASE_RULE}` });
    }
  }
  const pbkdf = inputs.cryptPbkdf;
  if (pbkdf !== undefined && !isUnknown(pbkdf)) {
    if (!pbkdf || !PBKDF_TYPES.includes(pbkdf.type)) failures.push({ property: "cryptPbkdf.type", reason: `expected one of ${PBKDF_TYPES.join(", ")}, found ${JSON.stringify(pbkdf?.type)}` });
    else failures.push(...checkPbkdf(pbkdf).map((issue) => ({ property: `cryptPbkdf.${formatPath(issue.path)}`, reason: issue.message })));
  }
  return failures;
}

function validateOptions(inputs: InstallImageInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  for (const flag of ["allowWipe", "reboot"] as const) {
    const value = inputs[flag];
    if (value !== undefined && !isUnknown(value) && typeof value !== "boolean") failures.push({ property: flag, reason: `expected true or false, found ${JSON.stringify(value)}` });
  }
  const mode = inputs.reassemble;
  if (mode !== undefined && !isUnknown(mode) && !REASSEMBLE_MODES.includes(mode)) {
    failures.push({ property: "reassemble", reason: `expected one of ${REASSEMBLE_MODES.join(", ")}, found ${JSON.stringify(mode)}` });
  }
  const resync = inputs.resync;
  if (resync !== undefined && !isUnknown(resync)) {
    const max = resync?.speedLimitMax;
    if (max !== undefined && !isUnknown(max) && !(Number.isSafeInteger(max) && max >= 1000)) {
      failures.push({ property: "resync.speedLimitMax", reason: `expected KiB/s as a whole number of at least 1000 (the kernel's default is 200000), found ${JSON.stringify(max)}` });
    }
    const wait = resync?.waitBeforeReboot;
    if (wait !== undefined && !isUnknown(wait) && typeof wait !== "boolean") failures.push({ property: "resync.waitBeforeReboot", reason: `expected true or false, found ${JSON.stringify(wait)}` });
  }
  return failures;
}



// ---------------------------------------------------------------------------------------------
// diff (pure, no SSH)

/** Inputs whose change destroys the install: a replacement, old one deleted first (same drives). */
export const REPLACING_INPUTS = ["drives", "raid", "partitions", "volumes", "image"] as const;

export function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** `crypt` lives in partitions, so a crypt change is a partitions change. */
export function replacedInputs(olds: Partial<InstallImageInputs>, news: InstallImageInputs): (typeof REPLACING_INPUTS)[number][] {
  return REPLACING_INPUTS.filter((key) => {
    if (containsUnknown(news[key])) return true;
    if (key === "image") return imageBaseName(olds.image ?? "") !== imageBaseName(news.image ?? "");
    return !sameValue(olds[key], news[key]);
  });
}

/** What a replacement would destroy, from the old inputs: drives, arrays, VGs and LVs. */
export function describeLoss(olds: Pick<InstallImageInputs, "drives" | "raid" | "partitions" | "volumes">): string {
  const drives = olds.drives.map((d) => `${d.path}${d.serial ? ` (serial ${d.serial})` : d.wwn ? ` (WWN ${d.wwn})` : ""}`).join(", ");
  const arrays = olds.raid ? olds.partitions.map((p, i) => `/dev/md${i} (${p.mount === "lvm" ? `VG ${p.vg}` : p.mount})`).join(", ") : "";
  const vgs = [...new Set((olds.volumes ?? []).map((lv) => lv.vg))].map((vg) => `VG ${vg} with LVs ${(olds.volumes ?? []).filter((lv) => lv.vg === vg).map((lv) => `${lv.name} (${lv.mount})`).join(", ")}`);
  return [`drives ${drives}`, ...(arrays ? [`arrays ${arrays}`] : []), ...vgs].join("; ");
}

/** check: a replacement wipes the drives, so it needs allowWipe; the failure lists what would be lost. */
export function validateReplacement(stored: Partial<InstallImageInputs> | undefined, news: InstallImageInputs): CheckFailure[] {
  // Inputs recorded by an older provider version name the LVs logicalVolumes.
  const olds = stored ? migrateOutputs(stored) : stored;
  if (!olds || !Array.isArray(olds.drives) || !Array.isArray(olds.partitions) || news.allowWipe === true) return [];
  const changed = replacedInputs(olds, news).filter((key) => !containsUnknown(news[key]));
  if (changed.length === 0) return [];
  return [
    {
      property: changed[0],
      reason: `changing ${changed.join(", ")} reinstalls the server and destroys everything on it: ${describeLoss(olds as InstallImageInputs)}. Set allowWipe: true to allow it`,
    },
  ];
}

/**
 * Inputs or outputs stored by an older provider version, in today's shape: the LV list was called
 * `logicalVolumes` (in the inputs and in `layout`), it is `volumes`, as in LvmGroup. Pure, no host;
 * the next up stores the new shape (an update that does no host work).
 */
export function migrateOutputs<T>(stored: T): T {
  const old = stored as unknown as Record<string, unknown> & { logicalVolumes?: unknown; layout?: Record<string, unknown> & { logicalVolumes?: unknown } };
  if (!old || typeof old !== "object") return stored;
  let out: Record<string, unknown> = old;
  if ("logicalVolumes" in old) {
    const { logicalVolumes, ...rest } = old;
    out = { ...rest, ...(logicalVolumes !== undefined && !("volumes" in old) ? { volumes: logicalVolumes } : {}) };
  }
  const layout = old.layout;
  if (layout && typeof layout === "object" && "logicalVolumes" in layout) {
    const { logicalVolumes, ...rest } = layout;
    out = { ...out, layout: { ...rest, volumes: logicalVolumes } };
  }
  return out as unknown as T;
}
