// LuksVolume's plan (pure): observed facts + desired inputs + the recorded outputs -> the steps still
// to run. The same function answers `diff` (run against the recorded facts, `recordedFacts`) and
// drives create and update (run against a fresh probe), so there is one set of rules.
import { RefusalError, ReplaceStep } from "../kernel";
import type { PbkdfSettings } from "../rules";
import { HFDE_SUBSYSTEM, KeyslotFacts, LuksMetadata } from "../storage/cryptsetup";
import { JOB_DIR_PREFIX, KeyRef, LuksDesired, LuksObserved, LuksStep, LuksVolumeInputs, LuksVolumeOutputs } from "./types";
import { resolveInputs } from "./validate";

/** What kind of run the plan is for: only a create may format. */
interface RunKind {
  readonly update: boolean;
}


/** The crypttab line this volume should have. */
export function crypttabLine(name: string, uuid: string, options: readonly string[], discard: boolean): string {
  const all = [...options, ...(discard ? ["discard"] : [])];
  return `${name} UUID=${uuid} none ${all.length > 0 ? all.join(",") : "luks"}`;
}

/** The line of `lines` that belongs to this volume: same mapper name or same UUID. */
export function findCrypttabLine(lines: readonly string[], name: string, uuid: string | null): string | null {
  for (const line of lines) {
    const fields = line.trim().split(/\s+/);
    if (fields[0] === "" || fields[0].startsWith("#")) continue;
    if (fields[0] === name || (uuid !== null && fields[1] === `UUID=${uuid}`)) return fields.join(" ");
  }
  return null;
}

export const normaliseLine = (line: string | null): string | null => (line === null ? null : line.trim().split(/\s+/).join(" "));

/** Passphrases the stack used before (recorded) and no longer lists: their slots are rotated away. */
export function retiredPassphrases(desired: Pick<LuksVolumeInputs, "passphrase" | "extraPassphrases">, recorded: Pick<LuksVolumeInputs, "passphrase" | "extraPassphrases"> | null): string[] {
  if (recorded === null) return [];
  const wanted = [desired.passphrase, ...(desired.extraPassphrases ?? [])];
  return [recorded.passphrase, ...(recorded.extraPassphrases ?? [])].filter((p) => typeof p === "string" && !wanted.includes(p));
}

/** A new device, or a container of another cipher, key size or sector size: replaced, never changed in place. */
function replacedBy(observed: LuksObserved, desired: LuksDesired, recorded: LuksVolumeOutputs | null): string[] {
  if (recorded === null) return [];
  const fields: string[] = [];
  if (recorded.device !== desired.device) fields.push("device");
  const metadata = observed.luks?.metadata;
  if (metadata) {
    if (metadata.cipher !== desired.cipher) fields.push("cipher");
    if (metadata.keySizeBits !== desired.keySize) fields.push("keySize");
    if (metadata.sectorSize !== desired.sectorSize) fields.push("sectorSize");
  }
  return fields;
}

/**
 * Observed + desired → the steps still to run; empty when converged. `recorded` (the previous
 * outputs, null on create) decides what kind of run this is: only a create may format (on update a
 * new layout is a replacement), and the recorded passphrases the inputs no longer list are retired.
 * Throws RefusalError for anything that would destroy or misattribute data.
 */
export function plan(observed: LuksObserved, inputs: LuksVolumeInputs, recorded: LuksVolumeOutputs | null = null): (LuksStep | ReplaceStep)[] {
  const desired = resolveInputs(inputs);
  const replaces = replacedBy(observed, desired, recorded);
  if (replaces.length > 0) return [{ kind: "replace", fields: replaces }];
  const run: RunKind = { update: recorded !== null };
  if (!observed.exists) {
    throw new RefusalError("device", `${desired.device} does not exist on the host; assemble the array (mdadm --assemble --scan) or create the partition, or correct device`);
  }
  const missingDisks = refuseUnpinnedDisks(observed, desired);
  if (observed.crypttab === null) {
    throw new RefusalError("crypttab.root", `crypttab root ${desired.crypttab.root} has no etc/ directory; mount the target root there first, or set crypttab.root to "/"`);
  }

  const device = desired.device;
  const steps: LuksStep[] = [];
  const reformat = needsFormat(observed, desired, run);
  if (reformat && missingDisks.length > 0) {
    throw notBeneath(observed, desired, missingDisks[0], "a device is formatted only with every pinned disk beneath it. Nothing was written. Put the disk back and re-add it to the array, or correct device or disks");
  }
  if (reformat) {
    steps.push(...formatSteps(observed, desired));
  } else {
    steps.push(...keySteps(observed, desired));
    const luks = observed.luks!;
    if (desired.label !== null && luks.label !== desired.label) steps.push({ kind: "setLabel", device, label: desired.label });
  }

  const uuid = reformat ? null : observed.luks!.uuid;
  const openAs = uuid === null ? undefined : observed.mappings.find((m) => m.luksUuid === uuid);
  const byName = observed.mappings.find((m) => m.name === desired.mapperName);
  if (byName && (uuid === null || byName.luksUuid !== uuid)) {
    throw new RefusalError(
      "mapperName",
      `mapper name "${desired.mapperName}" is already in use by another device-mapper device${byName.luksUuid ? ` (LUKS ${byName.luksUuid})` : ""}; close it (cryptsetup close ${desired.mapperName}) or choose another mapperName`,
    );
  }
  if (!openAs) {
    steps.push({ kind: "open", device, name: desired.mapperName, discard: desired.discard });
  } else {
    if (openAs.name !== desired.mapperName) steps.push({ kind: "rename", from: openAs.name, to: desired.mapperName });
    const discardsActive = openAs.name === desired.mapperName ? observed.status.discards : null;
    if (discardsActive !== desired.discard) steps.push({ kind: "refreshDiscard", name: desired.mapperName, discard: desired.discard });
  }

  const wanted = uuid === null ? null : crypttabLine(desired.mapperName, uuid, desired.crypttab.options, desired.discard);
  const present = normaliseLine(findCrypttabLine(observed.crypttab, desired.mapperName, uuid));
  if (wanted === null || present !== wanted) {
    steps.push({ kind: "writeCrypttab", root: desired.crypttab.root, device, name: desired.mapperName, options: withDiscard(desired) });
  }
  return steps;
}

function withDiscard(desired: LuksDesired): string[] {
  return [...desired.crypttab.options, ...(desired.discard ? ["discard"] : [])];
}

/**
 * The disks beneath the device are the pinned ones. A pinned disk missing while the others are there
 * and nothing unpinned is beneath is a degraded array (a drive failed or pulled, or its members not
 * yet re-added): what keeps the data may run on it, formatting may not. Anything else means the
 * device was renumbered or a disk swapped. Returns the pins that are missing.
 */
function refuseUnpinnedDisks(observed: LuksObserved, desired: LuksDesired): number[] {
  const matches = (pin: LuksDesired["disks"][number], disk: LuksObserved["disks"][number]): boolean =>
    (pin.serial === undefined || disk.serial === pin.serial) && (pin.wwn === undefined || (disk.wwn ?? "").toLowerCase() === pin.wwn.toLowerCase());
  const missing = desired.disks.flatMap((pin, i) => (observed.disks.some((disk) => matches(pin, disk)) ? [] : [i]));
  const unpinned = observed.disks.filter((disk) => !desired.disks.some((pin) => matches(pin, disk)));
  const degraded = missing.length < desired.disks.length && unpinned.length === 0;
  if (missing.length > 0 && !degraded) throw notBeneath(observed, desired, missing[0]);
  return missing;
}

function notBeneath(
  observed: LuksObserved,
  desired: LuksDesired,
  i: number,
  why = "the device may have been renumbered or a disk swapped. Nothing was written. Correct device or disks",
): RefusalError {
  const found = observed.disks.map((d) => `${d.path} (serial ${d.serial ?? "none"}, wwn ${d.wwn ?? "none"})`).join(", ") || "no disks";
  return new RefusalError(`disks[${i}]`, `disks[${i}] ${JSON.stringify(desired.disks[i])} is not beneath ${desired.device}, which sits on ${found}; ${why}`);
}

/** Whether the device must be (re)formatted, refusing when that would destroy data not ours to destroy. */
function needsFormat(observed: LuksObserved, desired: LuksDesired, run: RunKind): boolean {
  const luks = observed.luks;
  const device = desired.device;
  const others = observed.signatures.filter((s) => s !== "crypto_LUKS");
  if (luks === null) {
    if (run.update) {
      throw new RefusalError(desired.device, `the LUKS header on ${device} is gone (signatures now: ${observed.signatures.join(", ") || "none"}); refresh to drop the volume from the stack, then run up to create it again`);
    }
    if (desired.adopt) throw new RefusalError(desired.device, `adopt is set but ${device} holds no LUKS header (signatures: ${others.join(", ") || "none"}); unset adopt to format it`);
    if (others.length > 0 && !desired.allowWipe && !randomiseUnderway(observed, desired)) {
      throw new RefusalError(desired.device, 
        `${device} holds ${others.join(", ")} signatures, so it may hold data; nothing was written. Set allowWipe: true to format over it, or point device at a blank device`,
      );
    }
    return true;
  }
  const keys = observed.keys;
  const opens = keys !== null && [keys.passphrase, ...keys.extras, ...keys.retired].some((slot) => slot !== null);
  const ours = luks.subsystem === HFDE_SUBSYSTEM;
  const mismatch = layoutMismatch(luks.metadata, desired);
  if (run.update) {
    if (!opens) throw new RefusalError(desired.device, `none of the configured passphrases (nor the one being replaced) opens the container on ${device} (UUID ${luks.uuid}); set passphrase to one that does`);
    return false;
  }
  if (opens && (ours || desired.adopt) && mismatch.length === 0) return false;
  // adopt names a container that holds data, typically the installed system's root: it is taken as
  // it is or not at all. allowWipe (there for the drives' other contents) never formats over it.
  if (desired.adopt) {
    if (!opens) {
      throw new RefusalError(desired.device, `adopt is set but the passphrase does not open the LUKS container on ${device} (UUID ${luks.uuid}); nothing was written, and an adopted container is never formatted over, even with allowWipe. Set passphrase to one that opens it`);
    }
    throw new RefusalError(desired.device, `adopt is set but the LUKS container on ${device} (UUID ${luks.uuid}) differs from the inputs: ${mismatch.join("; ")}; nothing was written, and an adopted container is never formatted over, even with allowWipe. Set those inputs to match it`);
  }
  if (desired.allowWipe) return true;
  if (!opens) {
    throw new RefusalError(desired.device, 
      `${device} holds a LUKS container (UUID ${luks.uuid}) that the passphrase does not open; nothing was written. Set allowWipe: true to format over it, or set passphrase to one that opens it and adopt: true`,
    );
  }
  if (mismatch.length > 0) {
    throw new RefusalError(desired.device, `the LUKS container on ${device} (UUID ${luks.uuid}) differs from the inputs: ${mismatch.join("; ")}. Set those inputs to match to ${ours ? "resume" : "adopt"} it, or allowWipe: true to format over it`);
  }
  throw new RefusalError(desired.device, 
    `${device} holds a LUKS container (UUID ${luks.uuid}) that opens with the passphrase but was not created by hetzner-fde; set adopt: true to take it over as is (allowWipe: true would format over it)`,
  );
}

function layoutMismatch(metadata: LuksMetadata, desired: LuksDesired): string[] {
  const out: string[] = [];
  if (metadata.cipher !== desired.cipher) out.push(`cipher is ${metadata.cipher}, not ${desired.cipher}`);
  if (metadata.keySizeBits !== desired.keySize) out.push(`keySize is ${metadata.keySizeBits}, not ${desired.keySize}`);
  if (metadata.sectorSize !== desired.sectorSize) out.push(`sectorSize is ${metadata.sectorSize}, not ${desired.sectorSize}`);
  return out;
}

function randomiseUnderway(observed: LuksObserved, desired: LuksDesired): boolean {
  return observed.randomise.device === desired.device && (observed.randomise.running || observed.randomise.exitCode !== null);
}

function formatSteps(observed: LuksObserved, desired: LuksDesired): LuksStep[] {
  const device = desired.device;
  const steps: LuksStep[] = [];
  const job = observed.randomise;
  const randomised = job.device === device && !job.running && job.exitCode === 0;
  const mayHoldData = observed.signatures.length > 0;
  if (desired.wipe !== "none" && !randomised) {
    steps.push({ kind: "randomise", device, disks: desired.disks, method: desired.wipe, sizeBytes: observed.sizeBytes ?? 0, mayHoldData, job: JOB_DIR_PREFIX + desired.mapperName });
  } else if (mayHoldData) {
    steps.push({ kind: "wipeSignatures", device, disks: desired.disks, signatures: observed.signatures });
  }
  steps.push({ kind: "format", device, disks: desired.disks, cipher: desired.cipher, keySize: desired.keySize, sectorSize: desired.sectorSize, pbkdf: desired.pbkdf, label: desired.label });
  desired.extraPassphrases.forEach((_, index) => steps.push({ kind: "addKey", device, key: { role: "extra", index }, authorizedBy: { role: "passphrase" }, pbkdf: desired.pbkdf }));
  return steps;
}

/** Add missing keys, re-derive keys whose KDF differs, then kill retired and unknown slots (add before kill, always). */
function keySteps(observed: LuksObserved, desired: LuksDesired): LuksStep[] {
  const keys = observed.keys;
  if (keys === null) return [];
  const device = desired.device;
  const steps: LuksStep[] = [];
  const opening: KeyRef[] = [
    ...(keys.passphrase !== null ? [{ role: "passphrase" } as const] : []),
    ...keys.extras.flatMap((slot, index) => (slot !== null ? [{ role: "extra", index } as const] : [])),
    ...keys.retired.flatMap((slot, index) => (slot !== null ? [{ role: "retired", index } as const] : [])),
  ];
  if (keys.passphrase === null) steps.push({ kind: "addKey", device, key: { role: "passphrase" }, authorizedBy: opening[0], pbkdf: desired.pbkdf });
  keys.extras.forEach((slot, index) => {
    if (slot === null) steps.push({ kind: "addKey", device, key: { role: "extra", index }, authorizedBy: { role: "passphrase" }, pbkdf: desired.pbkdf });
  });
  const slotKdf = new Map(observed.luks!.metadata.keyslots.map((k) => [k.slot, k.kdf]));
  const desiredSlots: [KeyRef, number | null][] = [[{ role: "passphrase" }, keys.passphrase], ...keys.extras.map((slot, index): [KeyRef, number | null] => [{ role: "extra", index }, slot])];
  for (const [key, slot] of desiredSlots) {
    const kdf = slot === null ? undefined : slotKdf.get(slot);
    if (kdf && !kdfMatches(kdf, desired.pbkdf)) steps.push({ kind: "convertKey", device, key, pbkdf: desired.pbkdf });
  }
  const wanted = new Set(desiredSlots.map(([, slot]) => slot).filter((s): s is number => s !== null));
  keys.retired.forEach((slot) => {
    if (slot !== null && !wanted.has(slot)) steps.push({ kind: "killSlot", device, slot, keep: { role: "passphrase" }, reason: "retired" });
  });
  const retired = new Set(keys.retired.filter((s): s is number => s !== null));
  for (const { slot } of observed.luks!.metadata.keyslots) {
    if (!wanted.has(slot) && !retired.has(slot)) steps.push({ kind: "killSlot", device, slot, keep: { role: "passphrase" }, reason: "unknown" });
  }
  return steps;
}

/** Only what the stack pins is compared: an iter-time (benchmarked) cost cannot be checked afterwards. */
export function kdfMatches(kdf: KeyslotFacts["kdf"], desired: PbkdfSettings): boolean {
  if (kdf.type !== desired.type) return false;
  if (desired.iterations !== undefined && kdf.iterations !== desired.iterations) return false;
  if (desired.memoryKiB !== undefined && kdf.memoryKiB !== desired.memoryKiB) return false;
  if (desired.parallelism !== undefined && kdf.parallelism !== desired.parallelism) return false;
  return true;
}

/** Delete with allowWipe (without it the kernel retains everything): close, drop the crypttab line,
 *  back the header up, erase the keyslots. Plans nothing for a container that is no longer ours. */
export function planDelete(observed: LuksObserved, recorded: LuksVolumeOutputs): LuksStep[] {
  const outputs = { ...resolveInputs(recorded), uuid: recorded.uuid };
  const steps: LuksStep[] = [];
  const openAs = observed.mappings.find((m) => m.luksUuid === outputs.uuid);
  if (openAs) steps.push({ kind: "close", name: openAs.name });
  if (observed.crypttab !== null && findCrypttabLine(observed.crypttab, outputs.mapperName, outputs.uuid) !== null) {
    steps.push({ kind: "removeCrypttab", root: outputs.crypttab.root, name: outputs.mapperName, uuid: outputs.uuid });
  }
  const ours = observed.luks !== null && observed.luks.uuid === outputs.uuid;
  if (ours) {
    steps.push({ kind: "headerBackup", device: outputs.device, uuid: outputs.uuid, file: outputs.headerBackupPath });
    if (observed.luks!.metadata.keyslots.length > 0) steps.push({ kind: "erase", device: outputs.device, disks: outputs.disks ?? [], uuid: outputs.uuid });
  }
  return steps;
}

/**
 * The recorded outputs as a probe would have shown them, for `diff`. The passphrases are matched to
 * the recorded keyslots in order (the passphrase, then each extra), which is how format and addKey
 * fill them: a keyslot beyond those shows as unknown (added by hand), a passphrase the outputs do not
 * hold opens nothing (to be added), a recorded one the inputs dropped is retired.
 */
export function recordedFacts(recorded: LuksVolumeOutputs, inputs: LuksVolumeInputs): LuksObserved {
  const facts = recorded.observed;
  const desired = resolveInputs(inputs);
  const slots = facts.keyslots.map((k) => k.slot);
  const known = [recorded.passphrase, ...(recorded.extraPassphrases ?? [])];
  const slotOf = (passphrase: string): number | null => {
    const i = known.indexOf(passphrase);
    return i >= 0 && i < slots.length ? slots[i] : null;
  };
  // A crypttab in another root: nothing is known to be there yet.
  const sameRoot = resolveInputs(recorded).crypttab.root === desired.crypttab.root;
  return {
    exists: true,
    sizeBytes: null,
    disks: facts.disks,
    signatures: ["crypto_LUKS"],
    luks: {
      uuid: recorded.uuid,
      label: facts.label,
      subsystem: facts.subsystem,
      metadata: { cipher: facts.cipher, keySizeBits: facts.keySize, sectorSize: facts.sectorSize, keyslots: facts.keyslots, flags: [] },
    },
    mappings: facts.openAs === null ? [] : [{ name: facts.openAs, cryptType: "LUKS2", luksUuid: recorded.uuid }],
    status: { active: facts.openAs !== null, discards: facts.discardsActive === true },
    crypttab: sameRoot && facts.crypttabLine !== null ? [facts.crypttabLine] : [],
    keys: {
      passphrase: slotOf(desired.passphrase),
      extras: desired.extraPassphrases.map(slotOf),
      retired: retiredPassphrases(desired, recorded).map(slotOf),
    },
    randomise: { running: false, device: null, exitCode: null },
  };
}
