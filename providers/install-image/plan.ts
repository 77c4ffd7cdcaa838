// InstallImage's plan (pure; diff is this plan against the recorded facts): observed + desired +
// recorded → the steps still to run.
import type { ConnectionProfile, PlanSituation, ReplaceStep } from "../kernel";
import { RefusalError } from "../kernel";
import { parsePublicKey, sha256Fingerprint } from "../plumbing/keys";
import { bootProblems, formatMdUuid, isDegraded, MdArrayFacts, normalizeMdUuid } from "../storage/md";
import { PIN_ADVICE, normalizeWwn } from "../rules/device";
import { configSha256, cryptDevices, imagePath, partDevice, partitionDevice, renderAutosetup, rootLocation, usesCrypt } from "./autosetup";
import { systemEndpoint } from "./outputs";
import {
  DEFAULT_CRYPT_PBKDF,
  DEFAULT_SPEED_LIMIT_MAX,
  DriftItem,
  DriveFacts,
  DriveSpec,
  InstallImageInputs,
  InstallImageObserved,
  InstallImageOutputs,
  InstallImageStep,
  InstallObserved,
  UnseenHost,
} from "./types";
import { replacedInputs } from "./validate";

// ---------------------------------------------------------------------------------------------
// plan (pure): observed + desired + recorded → the steps still to run

/** Whether the host was seen without a login only (no facts of the install). */
export function isUnseen(observed: InstallImageObserved): observed is UnseenHost {
  return observed.environment === "initramfs" || observed.environment === "unreachable";
}

/**
 * The drives whose data is this resource's own to overwrite without allowWipe: an install started
 * in this rescue boot for exactly this config (same hash) and exactly this disk (same path, and the
 * serial and WWN the host reported when the install started). A disk added to `drives` after a
 * failed create, or a disk swapped in since, is not ours, whatever it holds.
 */
export function drivesOurs(observed: InstallObserved, sha: string): string[] {
  const record = observed.installer.startedFor;
  if (record === null || record.configSha256 !== sha) return [];
  const same = (a: string | null, b: string | null) => (a ?? "") === (b ?? "");
  return observed.drives
    .filter((facts) => facts.exists && record.drives.some((d) => d.path === facts.path && same(d.serial, facts.serial) && same(d.wwn === null ? null : normalizeWwn(d.wwn), facts.wwn === null ? null : normalizeWwn(facts.wwn))))
    .map((facts) => facts.path);
}

/** Drives without a serial or WWN pin: a destructive step may not act on them. */
export function unpinnedDrives(drives: readonly DriveSpec[]): string[] {
  return drives.filter((d) => d.serial === undefined && d.wwn === undefined).map((d) => d.path);
}

/** Whether the pins of every drive match what the host reports; a message per mismatch. */
export function pinMismatches(drives: readonly DriveSpec[], observed: readonly DriveFacts[]): string[] {
  const problems: string[] = [];
  for (const drive of drives) {
    const facts = observed.find((d) => d.path === drive.path);
    if (!facts || !facts.exists) {
      problems.push(`${drive.path} does not exist on the host`);
      continue;
    }
    if (drive.serial !== undefined && facts.serial !== drive.serial) problems.push(`${drive.path} has serial ${JSON.stringify(facts.serial)}, expected "${drive.serial}"`);
    if (drive.wwn !== undefined && (facts.wwn === null || normalizeWwn(facts.wwn) !== normalizeWwn(drive.wwn))) problems.push(`${drive.path} has WWN ${JSON.stringify(facts.wwn)}, expected "${drive.wwn}"`);
  }
  return problems;
}

/** What is on the drives that an install would destroy, one phrase per drive; empty for blank drives. */
export function dataOnDrives(observed: InstallObserved, drives: readonly DriveSpec[]): string[] {
  return drives.flatMap((drive) => {
    const facts = observed.drives.find((d) => d.path === drive.path);
    if (!facts || !facts.exists) return [];
    const parts = facts.stacked.filter((n) => n.type === "part");
    const upper = facts.stacked.filter((n) => n.type !== "part").map((n) => `${n.type} ${n.path}`);
    const what = [
      ...facts.signatures.map((s) => `a ${s} signature`),
      ...(parts.length > 0 ? [`${parts.length} partition(s) (${parts.map((p) => (p.fstype ? `${p.path} ${p.fstype}` : p.path)).join(", ")})`] : []),
      ...[...new Set(upper)],
    ];
    return what.length > 0 ? [`${drive.path}: ${what.join(", ")}`] : [];
  });
}

/**
 * The steps still to run. A create (recorded null) installs (unless the marker of this exact install
 * is on the disk), checks the result can boot, and reboots; an update only fixes the hostname and,
 * when asked, the arrays. Another layout or image is a replacement. Throws RefusalError for what it
 * will not do (wrong drive, data without allowWipe, a system that would not boot).
 */
export function plan(observed: InstallImageObserved, desired: InstallImageInputs, recorded: InstallImageOutputs | null = null): (InstallImageStep | ReplaceStep)[] {
  if (recorded !== null) {
    const replaces = replacedInputs(recorded, desired);
    if (replaces.length > 0) return [{ kind: "replace", fields: replaces }];
  }
  if (isUnseen(observed)) return planUnseen(observed, desired, recorded);
  return planSeen(observed, desired, recorded);
}

function planSeen(observed: InstallObserved, desired: InstallImageInputs, recorded: InstallImageOutputs | null): InstallImageStep[] {
  const sha = configSha256(desired);
  const installed = observed.root?.marker?.configSha256 === sha;
  if (!installed) {
    if (recorded !== null || observed.environment !== "rescue") {
      const where = observed.environment === "rescue" ? "on the drives" : `on the running system (${observed.hostname})`;
      throw new RefusalError("install", 
        `the install this resource recorded is not ${where}${observed.root?.marker ? " (the marker belongs to another layout)" : " (no hetzner-fde marker in the installed root)"}; ` +
          `to install again, boot rescue (bump RescueBoot's generation) and replace this resource (set allowWipe: true)`,
      );
    }
    return planInstall(observed, desired, sha);
  }
  return [...planFixes(observed, desired, recorded?.arrayUuids ?? []), ...(recorded === null ? planFinish(observed, desired) : [])];
}

/**
 * A host that cannot be logged into. On create that is this run's own reboot into an initramfs that
 * waits for the LUKS passphrase: the install is done, and nothing more can be done there. On update,
 * the work the record still calls for cannot be done until the host answers.
 */
function planUnseen(observed: UnseenHost, desired: InstallImageInputs, recorded: InstallImageOutputs | null): InstallImageStep[] {
  if (recorded === null) return [];
  const pending = planSeen(recordedFacts(recorded), desired, recorded);
  if (pending.length === 0) return [];
  const needs = `${pending.map((s) => s.kind).join(", ")} needs the host, which`;
  // up cannot unlock first: DropbearInitramfs, which unlocks, depends on InstallImage and runs after it.
  if (observed.environment === "initramfs") {
    throw new RefusalError("host", `${needs} waits in its initramfs for the LUKS passphrase, and up unlocks only after InstallImage. Unlock it with the stack's unlockCommand output (or run up once without this change), then run up again. Nothing was written`);
  }
  throw new RefusalError("host", `${needs} does not answer SSH; power it on, then run up again. Nothing was written`);
}

function planInstall(observed: InstallObserved, desired: InstallImageInputs, sha: string): InstallImageStep[] {
  const pins = pinMismatches(desired.drives, observed.drives);
  if (pins.length > 0) throw new RefusalError("drives", `refusing to install: ${pins.join("; ")}. Nothing was written; fix drives (path, serial, wwn) to name the intended disks`);
  if (!observed.imageFound) {
    throw new RefusalError("image", `image ${imagePath(desired.image)} is not in the rescue system; available: ${observed.imagesAvailable.join(", ") || "none"}. Fix image`);
  }
  // Per drive: data on a drive is ours to redo only when this boot's install record names this
  // config and this very disk; any other drive with data needs allowWipe, and a pin to wipe by.
  const ours = drivesOurs(observed, sha);
  const foreign = desired.drives.filter((d) => !ours.includes(d.path));
  const data = dataOnDrives(observed, foreign);
  if (data.length > 0 && desired.allowWipe !== true) {
    throw new RefusalError("drives", `refusing to install over data: ${data.join("; ")}. Nothing was written; set allowWipe: true to wipe these drives`);
  }
  const unpinned = unpinnedDrives(foreign).filter((path) => dataOnDrives(observed, [{ path }]).length > 0);
  if (data.length > 0 && unpinned.length > 0) {
    throw new RefusalError("drives", `refusing to wipe ${unpinned.join(", ")}: a drive with data is wiped only when pinned by serial or wwn. Nothing was written; ${PIN_ADVICE}`);
  }
  const root = rootLocation(desired);
  const crypt = usesCrypt(desired.partitions);
  return [
    ...(observed.installer.running ? [{ kind: "stopInstaller" } as const] : []),
    { kind: "writeAutosetup", text: renderAutosetup(desired), crypt },
    { kind: "runInstallimage", drives: desired.drives, configSha256: sha, allowWipe: data.length > 0 || ours.length > 0 },
    { kind: "installHostKey", root, comment: `root@${shortHostname(desired.hostname)}` },
    ...(crypt ? [{ kind: "replacePassphrase", devices: cryptDevices(desired), pbkdf: desired.cryptPbkdf ?? DEFAULT_CRYPT_PBKDF } as const, { kind: "scrubSecrets", root } as const] : []),
    { kind: "writeMarker", root, configSha256: sha },
  ];
}

/** Hostname and arrays: what an update (or a converging create) repairs. */
function planFixes(observed: InstallObserved, desired: InstallImageInputs, recordedArrays: readonly string[]): InstallImageStep[] {
  const steps: InstallImageStep[] = [];
  const drift = driftOf(observed, desired, recordedArrays);
  const broken = drift.filter((d) => d.kind === "notAssembled" || d.kind === "inactive");
  const mode = desired.reassemble ?? "never";
  // With reassemble: never, fallen-apart arrays are drift no step repairs: reported (read's drift,
  // explain, diff's warning), not a change.
  if (broken.length > 0 && mode !== "never") {
    const pins = pinMismatches(desired.drives, observed.drives);
    if (pins.length > 0) throw new RefusalError("drives", `refusing to reassemble: ${pins.join("; ")}. Nothing was written; a swapped disk is not assembled into the arrays`);
    steps.push({ kind: "reassemble", arrays: [...observed.inactiveArrays], force: mode === "force" });
    return steps; // members and hostname are judged again once the arrays are back
  }
  if (mode !== "never") {
    // An array already rebuilding is left alone: its new member is not "active" yet, and removing
    // it to add it again would restart the rebuild forever.
    for (const array of observed.arrays.filter((a) => isDegraded(a) && a.sync.action !== "recover")) {
      const index = Number(/(\d+)$/.exec(array.device)?.[1] ?? -1);
      if (!desired.raid || index < 0 || index >= desired.partitions.length) continue;
      const active = array.members.filter((m) => m.role === "active").map((m) => m.device);
      for (const drive of desired.drives) {
        const member = partitionDevice(drive.path, index + 1);
        if (active.includes(member)) continue;
        // A drive that is out (pulled, dead, not yet replaced) has nothing to re-add: the array runs
        // degraded, read and diff say so, and the member comes back with the drive. A drive that is
        // present with another serial still refuses below: that is a swap the config must name.
        if (!observed.drives.some((d) => d.path === drive.path && d.exists)) continue;
        refuseReadd(observed, drive, member, desired.allowWipe === true);
        steps.push({ kind: "readdMember", array: array.device, member, uuid: array.uuid, pin: pinOf(drive), allowWipe: desired.allowWipe === true });
      }
    }
  }
  const root = observed.environment === "system" ? null : rootLocation(desired);
  if (observed.root && observed.root.hostname !== shortHostname(desired.hostname)) steps.push({ kind: "setHostname", hostname: desired.hostname, root });
  return steps;
}

/**
 * A re-add overwrites the member partition (the resync copies the array over it), so: the drive
 * must be the pinned one, and the partition must be blank or an md member (the host step then
 * checks it is THIS array's), unless allowWipe.
 */
function refuseReadd(observed: InstallObserved, drive: DriveSpec, member: string, allowWipe: boolean): void {
  const pins = pinMismatches([drive], observed.drives);
  if (pins.length > 0) throw new RefusalError("drives", `refusing to add ${member} back into its array: ${pins.join("; ")}. Nothing was written; a swapped disk needs its new serial or wwn in drives`);
  const facts = observed.drives.find((d) => d.path === drive.path);
  const part = facts?.stacked.find((n) => n.path === member);
  const content = part?.fstype ?? null;
  if (content !== null && content !== "linux_raid_member" && !allowWipe) {
    throw new RefusalError(
      "reassemble",
      `refusing to add ${member} back into its array: it holds a ${content} filesystem, which the resync would overwrite. Nothing was written; wipe it by hand if it is expendable, or set allowWipe: true`,
    );
  }
  if (!allowWipe && unpinnedDrives([drive]).length > 0 && content !== null) {
    throw new RefusalError("drives", `refusing to add ${member} back into its array: ${drive.path} is not pinned and ${member} is not blank. Nothing was written; ${PIN_ADVICE}`);
  }
}

/** The pin a host-side guard re-checks right before acting. */
export function pinOf(drive: DriveSpec): { readonly path: string; readonly serial?: string; readonly wwn?: string } {
  return { path: drive.path, ...(drive.serial !== undefined ? { serial: drive.serial } : {}), ...(drive.wwn !== undefined ? { wwn: drive.wwn } : {}) };
}

/** After a finished install, in rescue: scrub leftovers, the boot check, the resync wait, the reboot. */
function planFinish(observed: InstallObserved, desired: InstallImageInputs): InstallImageStep[] {
  const speedLimitMax = desired.resync?.speedLimitMax ?? DEFAULT_SPEED_LIMIT_MAX;
  if (observed.environment !== "rescue") {
    const syncing = observed.arrays.some((a) => a.sync.action === "resync" || a.sync.action === "recover");
    return syncing && observed.speedLimitMax !== speedLimitMax ? [{ kind: "tuneResync", speedLimitMax }] : [];
  }
  const steps: InstallImageStep[] = [];
  if (observed.rescueCryptLines > 0 || (observed.root?.cryptLines ?? 0) > 0) steps.push({ kind: "scrubSecrets", root: rootLocation(desired) });
  const problems = bootProblemsOf(observed, desired);
  if (problems.length > 0) throw new RefusalError("boot", `the installed system would not boot, so it was not rebooted: ${problems.join("; ")}`);
  const syncing = observed.arrays.some((a) => a.sync.action !== "idle");
  // Without the reboot, the next resource reboots (DropbearInitramfs): not in the middle of the initial sync.
  if (desired.reboot === false) return syncing ? [...steps, { kind: "waitForResync", speedLimitMax }] : steps;
  if (desired.resync?.waitBeforeReboot && syncing) steps.push({ kind: "waitForResync", speedLimitMax });
  steps.push({ kind: "reboot", rescue: desired.rescue, system: usesCrypt(desired.partitions) ? null : systemProfile(observed, desired) });
  return steps;
}

/** The installed system's profile, pinned to the host keys in its root (a crypt system offers no SSH before its passphrase). */
function systemProfile(observed: InstallObserved, desired: InstallImageInputs): ConnectionProfile {
  const fingerprints = (observed.root?.hostKeys ?? []).map((line) => sha256Fingerprint(parsePublicKey(line)));
  if (fingerprints.length === 0) throw new RefusalError("boot", "the installed root has no SSH host key to pin, so it was not rebooted: its sshd could not be verified");
  const endpoint = systemEndpoint(desired);
  return { environment: "system", host: endpoint.host, port: endpoint.port, user: "root", hostKeyFingerprints: fingerprints };
}

/** The boot check on observed facts. */
export function bootProblemsOf(observed: InstallObserved, desired: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string[] {
  if (!observed.root) return [`the installed root (${rootDeviceHint(desired)}) could not be read`];
  return bootProblems({
    firmware: observed.firmware,
    mbrGrub: desired.drives.map((d) => ({ drive: d.path, grub: observed.drives.find((f) => f.path === d.path)?.mbrGrub === true })),
    espLoader: observed.espLoader,
    mdadmConf: observed.root.mdadmConf,
    fstab: observed.root.fstab,
    crypttab: observed.root.crypttab,
    knownUuids: observed.knownUuids,
    arrayUuids: observed.arrays.map((a) => a.uuid),
    raid: desired.raid !== false,
    crypt: usesCrypt(desired.partitions),
  });
}

function rootDeviceHint(desired: Pick<InstallImageInputs, "drives" | "raid" | "partitions">): string {
  const index = desired.partitions.findIndex((p) => p.mount === "/");
  return index >= 0 ? partDevice(desired, index) : "an LV";
}

export function shortHostname(hostname: string): string {
  return hostname.split(".")[0];
}

// ---------------------------------------------------------------------------------------------
// Drift (pure)

/**
 * How the host differs from the install: arrays that fell apart (superblocks present, array not
 * running), inactive or degraded arrays (a failed or removed member), a changed host name.
 * `recordedUuids` are the arrays the last create/read saw; they tell a stopped array from none.
 */
/** A configured drive as an operator finds it in the chassis: path, and serial or WWN when pinned. */
function describeDrive(drive: DriveSpec): string {
  const pin = drive.serial !== undefined ? ` serial ${drive.serial}` : drive.wwn !== undefined ? ` wwn ${drive.wwn}` : "";
  return `${drive.path}${pin}`;
}

/**
 * The configured drive is not on the host. A pinned drive is looked for by its pin at every
 * configured path: with one drive out, the kernel renumbers the others (nvme1n1 becomes nvme0n1).
 */
function isAbsent(drive: DriveSpec, observed: InstallObserved): boolean {
  if (drive.serial === undefined && drive.wwn === undefined) return !observed.drives.some((d) => d.path === drive.path && d.exists);
  return !observed.drives.some((d) => d.exists && pinMismatches([{ ...drive, path: d.path }], [d]).length === 0);
}

export function driftOf(observed: InstallObserved, desired: Pick<InstallImageInputs, "raid" | "partitions" | "hostname" | "drives">, recordedUuids: readonly string[]): DriftItem[] {
  const drift: DriftItem[] = [];
  if (desired.raid) {
    const running = observed.arrays.map((a) => a.uuid);
    // The arrays of this install: as recorded, else what the superblocks describe (other disks'
    // arrays are no business of this resource once the install is recorded).
    const recorded = recordedUuids.map(normalizeMdUuid);
    const onDisk = recorded.length > 0 ? recorded : [...new Set(observed.superblocks.map((s) => s.uuid))];
    for (const uuid of onDisk.filter((u) => !running.includes(u))) {
      const line = observed.superblocks.find((s) => s.uuid === uuid);
      drift.push({ kind: "notAssembled", array: line?.device ?? formatMdUuid(uuid), message: `array ${line?.device ?? ""} (UUID ${formatMdUuid(uuid)}) fell apart: its members carry superblocks but it is not assembled`.replace("array  (", "array (") });
    }
    for (const device of observed.inactiveArrays) drift.push({ kind: "inactive", array: device, message: `array ${device} is inactive (partly assembled)` });
    for (const array of observed.arrays) {
      if (array.state === "inactive") {
        drift.push({ kind: "inactive", array: array.device, message: `array ${array.device} is inactive` });
        continue;
      }
      if (!isDegraded(array)) continue;
      // A rebuild onto every member is the cure under way, not drift (the layout shows its progress).
      if (array.sync.action === "recover" && array.members.filter((m) => m.role === "active").length === array.raidDisks) continue;
      const active = array.members.filter((m) => m.role === "active").length;
      const faulty = array.members.filter((m) => m.role === "faulty").map((m) => m.device);
      const awaiting = desired.drives.filter((d) => isAbsent(d, observed)).map(describeDrive);
      drift.push({
        kind: "degraded",
        array: array.device,
        message:
          `array ${array.device} is degraded: ${active} of ${array.raidDisks} members active${faulty.length > 0 ? `, failed: ${faulty.join(", ")}` : ", a member is missing"}` +
          (awaiting.length > 0 ? `; not on the host: ${awaiting.join(", ")}` : ""),
        ...(awaiting.length > 0 ? { awaiting } : {}),
      });
    }
    const expected = desired.partitions.length;
    if (observed.superblocks.length === 0 && recordedUuids.length === 0 && observed.arrays.length < expected && observed.environment === "system") {
      drift.push({ kind: "notAssembled", message: `${expected - observed.arrays.length} of ${expected} arrays are missing` });
    }
  }
  const found = observed.root?.hostname ?? null;
  if (found !== null && found !== shortHostname(desired.hostname)) {
    drift.push({ kind: "hostname", message: `host name is "${found}", expected "${shortHostname(desired.hostname)}"` });
  }
  return drift;
}


/** Delete with allowWipe: only from rescue, only the configured drives, matched by their pins. */
export function planDelete(observed: InstallImageObserved, olds: Pick<InstallImageOutputs, "drives" | "allowWipe">): InstallImageStep[] {
  if (olds.allowWipe !== true) {
    // The kernel retains instead of calling this without allowWipe; the check stays for any other caller.
    throw new RefusalError("allowWipe", "wiping the drives needs allowWipe: true, found false; nothing was written. Set allowWipe: true and run up, then destroy");
  }
  if (observed.environment !== "rescue") {
    const where = isUnseen(observed) ? "the host cannot be logged into" : `the host runs its installed system (${observed.hostname})`;
    throw new RefusalError("rescue", `wiping needs the rescue system, but ${where}; run destroy again (it boots rescue through Robot when the host is not in it)`);
  }
  const pins = pinMismatches(olds.drives, observed.drives);
  if (pins.length > 0) throw new RefusalError("drives", `refusing to wipe: ${pins.join("; ")}. Nothing was written`);
  const unpinned = unpinnedDrives(olds.drives);
  if (unpinned.length > 0) throw new RefusalError("drives", `refusing to wipe ${unpinned.join(", ")}: not pinned by serial or wwn. Nothing was written; ${PIN_ADVICE}, run up, then destroy`);
  return [
    { kind: "stopStorage", drives: olds.drives },
    { kind: "wipeDrives", drives: olds.drives },
  ];
}

// ---------------------------------------------------------------------------------------------
// diff: the plan against the recorded facts

/**
 * The recorded outputs in the shape a probe returns: the marker of the recorded install, the host
 * name as found, the arrays as last seen (members, failed members, what is missing), the drives by
 * their pins. `plan` on these says what an update would do: nothing, a hostname, a repair of drift
 * the last read recorded (when reassemble allows it), or a replacement.
 */
export function recordedFacts(recorded: InstallImageOutputs): InstallObserved {
  const raidDisks = recorded.drives.length;
  // Outputs of a partial create may lack the facts of an install that never finished.
  const layout = recorded.layout ?? { arrays: [], partitions: [], volumeGroups: [], volumes: [], os: null };
  const arrays = layout.arrays.map((a): MdArrayFacts => ({
    device: a.device,
    level: a.level,
    uuid: normalizeMdUuid(a.uuid),
    raidDisks,
    members: [...a.members.map((device, slot) => ({ device, role: "active" as const, slot })), ...a.faultyMembers.map((device) => ({ device, role: "faulty" as const, slot: null }))],
    state: a.state,
    missingMembers: a.degraded ? Math.max(0, raidDisks - a.members.length) : 0,
    sync: { action: a.sync.action, percent: a.sync.percent, speedKiBs: null },
  }));
  const inactive = (recorded.drift ?? []).filter((d) => d.kind === "inactive" && d.array !== undefined).map((d) => d.array as string);
  return {
    environment: recorded.environment === "rescue" ? "rescue" : "system",
    hostname: recorded.observedHostname ?? shortHostname(recorded.hostname),
    firmware: "bios",
    drives: recorded.drives.map((d) => ({ path: d.path, exists: !(recorded.missingDrivePaths ?? []).includes(d.path), sizeBytes: null, serial: d.serial ?? null, wwn: d.wwn ?? null, mbrGrub: true, signatures: [], stacked: [] })),
    arrays,
    inactiveArrays: [...new Set(inactive)],
    superblocks: (recorded.arrayUuids ?? []).map((uuid) => ({ device: null, uuid: normalizeMdUuid(uuid) })),
    volumeGroups: layout.volumeGroups,
    volumes: layout.volumes,
    knownUuids: [],
    espLoader: null,
    root: {
      device: "",
      // Unread host name: the one recorded as requested (a changed request is still a change).
      hostname: recorded.observedHostname ?? shortHostname(recorded.hostname),
      osRelease: {},
      hostKeys: [],
      marker: { installId: recorded.installId, configSha256: configSha256(recorded), installedAt: recorded.installedAt },
      mdadmConf: null,
      fstab: null,
      crypttab: null,
      cryptLines: 0,
    },
    luks: (recorded.luks ?? []).map((c) => ({ ...c, open: true })),
    installer: { running: false, exitCode: null, startedFor: null },
    rescueCryptLines: 0,
    imageFound: true,
    imagesAvailable: [],
    speedLimitMax: null,
  };
}

/**
 * Drift no step repairs: with reassemble "never", everything but the host name; otherwise arrays
 * that wait for a drive that is not on the host.
 */
export function unrepairedDrift(drift: readonly DriftItem[], desired: Pick<InstallImageInputs, "reassemble">): DriftItem[] {
  return (desired.reassemble ?? "never") === "never" ? drift.filter((d) => d.kind !== "hostname") : drift.filter((d) => (d.awaiting ?? []).length > 0);
}

/** The sentence naming drift no step repairs, or null. */
export function unrepairedDriftMessage(drift: readonly DriftItem[], desired: Pick<InstallImageInputs, "reassemble">): string | null {
  const left = unrepairedDrift(drift, desired);
  if (left.length === 0) return null;
  if ((desired.reassemble ?? "never") !== "never") {
    return `running degraded until a drive is back (no change is planned for it): ${left.map((d) => d.message).join("; ")}. ` +
      "Put the drive back (or replace it and give the new one's serial in drives), then run up: it re-adds the member and the resync starts";
  }
  return `drift that reassemble: "never" leaves as it is (no change is planned for it): ${left.map((d) => d.message).join("; ")}. ` +
    `Set reassemble: "scan" to run mdadm --stop and --assemble --scan and re-add missing members (or "force" to add --force), or repair it by hand`;
}

/** The kernel's `explain`: names drift this converge leaves alone (on the install, not on drives an install is about to overwrite). */
export function explainPlan(situation: PlanSituation<InstallImageInputs, InstallImageOutputs, InstallImageObserved>): string | null {
  const { observed, desired, recorded } = situation;
  if (desired === null || isUnseen(observed) || observed.root?.marker?.configSha256 !== configSha256(desired)) return null;
  return unrepairedDriftMessage(driftOf(observed, desired, recorded?.arrayUuids ?? []), desired);
}
