// LuksVolume's outputs (pure): the inputs as given plus what a converged probe shows; and the
// inputs recorded in them.
import { jsonSafe, Reached } from "../kernel";
import { findCrypttabLine, normaliseLine } from "./plan";
import { LuksObserved, LuksVolumeInputs, LuksVolumeOutputs } from "./types";
import { resolveInputs } from "./validate";

export function outputsFrom(inputs: LuksVolumeInputs, observed: LuksObserved, reached: Reached): LuksVolumeOutputs {
  const desired = resolveInputs(inputs);
  const luks = observed.luks;
  if (luks === null) throw new Error(`${desired.device} holds no LUKS header after the run`);
  const openAs = observed.mappings.find((m) => m.luksUuid === luks.uuid)?.name ?? null;
  return jsonSafe(
    {
      ...inputsFromOutputs(inputs),
      uuid: luks.uuid,
      environment: reached.environment,
      host: reached.host,
      observed: {
        cipher: luks.metadata.cipher,
        keySize: luks.metadata.keySizeBits,
        sectorSize: luks.metadata.sectorSize,
        label: luks.label,
        subsystem: luks.subsystem,
        keyslots: luks.metadata.keyslots,
        openAs,
        discardsActive: openAs !== null && openAs === desired.mapperName ? observed.status.discards : null,
        crypttabLine: observed.crypttab === null ? null : normaliseLine(findCrypttabLine(observed.crypttab, desired.mapperName, luks.uuid)),
        disks: observed.disks,
      },
    },
    "outputs",
  );
}

/** The inputs recorded in the outputs, as the program gave them (defaults are not filled in). */
export function inputsFromOutputs(outs: LuksVolumeInputs): LuksVolumeInputs {
  const { connection, device, disks, mapperName, passphrase, extraPassphrases, cipher, keySize, sectorSize, pbkdf, label, discard, crypttab, wipe, adopt, allowWipe, headerBackupPath, providerVersion } = outs;
  return jsonSafe(
    { connection, device, disks, mapperName, passphrase, extraPassphrases, cipher, keySize, sectorSize, pbkdf, label, discard, crypttab, wipe, adopt, allowWipe, headerBackupPath, providerVersion },
    "inputs",
  );
}
