// InstallImage's plan (pure): observed + desired + recorded → the steps still to run.
import * as pulumi from "@pulumi/pulumi";
import { RefusalError, containsUnknown, providerVersionChanged } from "../kernel";
import { bootProblems, formatMdUuid, isDegraded, normalizeMdUuid } from "../storage/md";
import { PIN_ADVICE, normalizeWwn } from "../rules/device";
import { configSha256, cryptDevices, imagePath, partDevice, partitionDevice, renderAutosetup, rootLocation, usesCrypt } from "./autosetup";
import { DEFAULT_SPEED_LIMIT_MAX, DriftItem, DriveFacts, DriveSpec, InstallImageInputs, InstallImageOutputs, InstallImageStep, InstallObserved } from "./types";
import { migrateOutputs, replacedInputs, sameValue } from "./validate";

// ---------------------------------------------------------------------------------------------
// plan (pure): observed + desired → the steps still to run

/**
 * How the plan treats the observed host, from the recorded outputs (null on create): a create may
 * install and reboot; an update of a recorded install never does.
 */
export type PlanMode = "create" | "update";

export function planMode(recorded: InstallImageOutputs | null): PlanMode {
  return recorded === null ? "create" : "update";
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
 * The steps still to run. A create installs (unless the marker of this exact install is on the
 * disk), checks the result can boot, and reboots; an update only fixes the hostname and, when
 * asked, the arrays. Throws InstallImageRefusal for what it will not do (wrong drive, data without
 * allowWipe, a fallen-apart array without reassemble, a system that would not boot).
 */
export function plan(observed: InstallObserved, desired: InstallImageInputs, recorded: InstallImageOutputs | null = null): InstallImageStep[] {
  const mode = planMode(recorded);
  const sha = configSha256(desired);
  const installed = observed.root?.marker?.configSha256 === sha;
  if (!installed) {
    if (mode === "update" || observed.environment !== "rescue") {
      const where = observed.environment === "rescue" ? "on the drives" : `on the running system (${observed.hostname})`;
      throw new RefusalError("install", 
        `the install this resource recorded is not ${where}${observed.root?.marker ? " (the marker belongs to another layout)" : " (no hetzner-fde marker in the installed root)"}; ` +
          `to install again, boot rescue (bump RescueBoot's generation) and replace this resource (set allowWipe: true)`,
      );
    }
    return planInstall(observed, desired, sha);
  }
  return [...planFixes(observed, desired, recorded?.arrayUuids ?? []), ...(mode === "create" ? planFinish(observed, desired) : [])];
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
    { kind: "installHostKey", root },
    ...(crypt ? [{ kind: "replacePassphrase", devices: cryptDevices(desired) } as const, { kind: "scrubSecrets", root } as const] : []),
    { kind: "writeMarker", root, configSha256: sha },
  ];
}

/** Hostname and arrays: what an update (or a converging create) repairs. */
function planFixes(observed: InstallObserved, desired: InstallImageInputs, recordedArrays: readonly string[]): InstallImageStep[] {
  const steps: InstallImageStep[] = [];
  const drift = driftOf(observed, desired, recordedArrays);
  const broken = drift.filter((d) => d.kind === "notAssembled" || d.kind === "inactive");
  if (broken.length > 0) {
    const mode = desired.reassemble ?? "never";
    if (mode === "never") {
      throw new RefusalError("reassemble", `${broken.map((d) => d.message).join("; ")}. Set reassemble: "scan" to run mdadm --stop and --assemble --scan (or "force" to add --force)`);
    }
    const pins = pinMismatches(desired.drives, observed.drives);
    if (pins.length > 0) throw new RefusalError("drives", `refusing to reassemble: ${pins.join("; ")}. Nothing was written; a swapped disk is not assembled into the arrays`);
    steps.push({ kind: "reassemble", arrays: [...observed.inactiveArrays], force: mode === "force" });
    return steps; // members and hostname are judged again once the arrays are back
  }
  if ((desired.reassemble ?? "never") !== "never") {
    // An array already rebuilding is left alone: its new member is not "active" yet, and removing
    // it to add it again would restart the rebuild forever.
    for (const array of observed.arrays.filter((a) => isDegraded(a) && a.sync.action !== "recover")) {
      const index = Number(/(\d+)$/.exec(array.device)?.[1] ?? -1);
      if (!desired.raid || index < 0 || index >= desired.partitions.length) continue;
      const active = array.members.filter((m) => m.role === "active").map((m) => m.device);
      for (const drive of desired.drives) {
        const member = partitionDevice(drive.path, index + 1);
        if (active.includes(member)) continue;
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
  if (desired.reboot === false) return steps;
  if (desired.resync?.waitBeforeReboot && observed.arrays.some((a) => a.sync.action !== "idle")) steps.push({ kind: "waitForResync", speedLimitMax });
  steps.push({ kind: "reboot" });
  return steps;
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
export function driftOf(observed: InstallObserved, desired: Pick<InstallImageInputs, "raid" | "partitions" | "hostname">, recordedUuids: readonly string[]): DriftItem[] {
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
      drift.push({
        kind: "degraded",
        array: array.device,
        message: `array ${array.device} is degraded: ${active} of ${array.raidDisks} members active${faulty.length > 0 ? `, failed: ${faulty.join(", ")}` : ", a member is missing"}`,
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
export function planDelete(observed: InstallObserved, olds: Pick<InstallImageOutputs, "drives" | "allowWipe">): InstallImageStep[] {
  if (olds.allowWipe !== true) throw new RefusalError("allowWipe", "allowWipe is false");
  if (observed.environment !== "rescue") {
    throw new RefusalError("rescue", `wiping needs the rescue system, but the host runs its installed system (${observed.hostname}); run destroy again (it boots rescue through Robot when the host is not in it)`);
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

/**
 * diff: a layout/image change is a replacement, old one first (both want the same drives); a
 * hostname change, drift the last read saw, a changed setting or connection profile is an update.
 * A profile change updates no host: the update only stores the newest profile, which delete and
 * refresh must use (they get the stored outputs, not the program's inputs).
 */
export function compareOutputs(stored: InstallImageOutputs, news: InstallImageInputs): pulumi.dynamic.DiffResult {
  const olds = migrateOutputs(stored);
  if (olds !== stored && replacedInputs(olds, news).length === 0) return { changes: true }; // store the new shape, no host work
  const replaces = replacedInputs(olds, news);
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: true };
  const settings = ["hostname", "rescue", "system", "allowWipe", "reboot", "resync", "reassemble", "cryptPbkdf"] as const;
  const changed = providerVersionChanged(olds, news) || settings.some((key) => containsUnknown(news[key]) || !sameValue(olds[key], news[key]));
  return { changes: changed || (olds.drift ?? []).length > 0 };
}
