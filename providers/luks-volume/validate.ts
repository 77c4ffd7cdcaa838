// LuksVolume's check: every rule the inputs alone can break, each failure naming its field (pure),
// and `resolveInputs`, which fills in the defaults for plan and outputs.
import { CheckFailure, SHELL_ENVIRONMENTS, isUnknown, validateProfiles } from "../kernel";
import { checkCipher, checkPbkdf, checkSerial, checkWwn, PbkdfSettings, PBKDF_TYPES, passphraseWeaknesses, RuleIssue } from "../rules";
import { checkBlockDevicePath } from "../rules/device";
import { CrypttabSettings, DEFAULT_CIPHER, DEFAULT_KEY_SIZE, DEFAULT_SECTOR_SIZE, DiskPin, LuksDesired, LuksVolumeInputs, SECTOR_SIZES, WIPE_METHODS } from "./types";

export function resolveInputs(inputs: LuksVolumeInputs): LuksDesired {
  return {
    connection: inputs.connection,
    device: inputs.device,
    disks: inputs.disks ?? [],
    mapperName: inputs.mapperName,
    passphrase: inputs.passphrase,
    extraPassphrases: inputs.extraPassphrases ?? [],
    cipher: inputs.cipher ?? DEFAULT_CIPHER,
    keySize: inputs.keySize ?? DEFAULT_KEY_SIZE,
    sectorSize: inputs.sectorSize ?? DEFAULT_SECTOR_SIZE,
    pbkdf: inputs.pbkdf ?? { type: "argon2id" },
    label: inputs.label ?? null,
    discard: inputs.discard ?? false,
    crypttab: { root: inputs.crypttab?.root ?? "/", options: [...(inputs.crypttab?.options ?? ["luks"])] },
    wipe: inputs.wipe ?? "none",
    adopt: inputs.adopt ?? false,
    allowWipe: inputs.allowWipe ?? false,
    headerBackupPath: inputs.headerBackupPath ?? `/root/luks-header-${inputs.mapperName}.img`,
    providerVersion: inputs.providerVersion,
  };
}

export function validate(inputs: LuksVolumeInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail = (property: string, reason: string | undefined): void => {
    if (reason) failures.push({ property, reason });
  };
  const known = (value: unknown): boolean => value !== undefined && !isUnknown(value);
  const fromRules = (prefix: string, issues: RuleIssue[]): void => {
    for (const issue of issues) fail([prefix, ...issue.path].filter((p) => p !== "").join("."), issue.message);
  };

  if (!isUnknown(inputs.connection)) failures.push(...validateProfiles(inputs.connection, "connection", SHELL_ENVIRONMENTS));
  if (!isUnknown(inputs.device)) fail("device", checkDevicePath(inputs.device));
  if (known(inputs.disks)) {
    if (!Array.isArray(inputs.disks)) fail("disks", `expected a list of {serial} or {wwn} pins, found ${JSON.stringify(inputs.disks)}`);
    else inputs.disks.forEach((pin, i) => fail(`disks[${i}]`, checkDiskPin(pin)));
  }
  if (!isUnknown(inputs.mapperName)) fail("mapperName", checkMapperName(inputs.mapperName));
  if (!isUnknown(inputs.passphrase)) fail("passphrase", checkPassphrase(inputs.passphrase));
  if (known(inputs.extraPassphrases)) {
    if (!Array.isArray(inputs.extraPassphrases)) fail("extraPassphrases", "expected a list of passphrases");
    else {
      inputs.extraPassphrases.forEach((extra, i) => {
        if (isUnknown(extra)) return;
        fail(`extraPassphrases[${i}]`, checkPassphrase(extra));
        if (extra === inputs.passphrase) fail(`extraPassphrases[${i}]`, "is the same as passphrase; each keyslot needs its own passphrase, remove the duplicate");
        else if (inputs.extraPassphrases!.indexOf(extra) !== i) fail(`extraPassphrases[${i}]`, `is the same as extraPassphrases[${inputs.extraPassphrases!.indexOf(extra)}]; remove the duplicate`);
      });
    }
  }
  const cipher = inputs.cipher ?? DEFAULT_CIPHER;
  const keySize = inputs.keySize ?? DEFAULT_KEY_SIZE;
  if (!isUnknown(cipher) && !isUnknown(keySize)) fromRules("", checkCipher(cipher, keySize));
  if (known(inputs.sectorSize) && !SECTOR_SIZES.includes(inputs.sectorSize!)) {
    fail("sectorSize", `expected one of ${SECTOR_SIZES.join(", ")} bytes, found ${JSON.stringify(inputs.sectorSize)}`);
  }
  if (known(inputs.pbkdf)) failures.push(...validatePbkdf(inputs.pbkdf!));
  if (known(inputs.label)) fail("label", checkLabel(inputs.label!));
  if (known(inputs.discard) && typeof inputs.discard !== "boolean") fail("discard", `expected true or false, found ${JSON.stringify(inputs.discard)}`);
  if (known(inputs.crypttab)) failures.push(...validateCrypttab(inputs.crypttab!));
  if (known(inputs.wipe) && !WIPE_METHODS.includes(inputs.wipe!)) {
    fail("wipe", `expected one of ${WIPE_METHODS.join(", ")}, found ${JSON.stringify(inputs.wipe)}`);
  }
  if (inputs.adopt === true && known(inputs.wipe) && inputs.wipe !== "none") {
    fail("wipe", `adopt takes over an existing container as is, so it cannot randomise the device first; found wipe: "${inputs.wipe}" with adopt: true. Remove one of them`);
  }
  for (const flag of ["adopt", "allowWipe"] as const) {
    if (known(inputs[flag]) && typeof inputs[flag] !== "boolean") fail(flag, `expected true or false, found ${JSON.stringify(inputs[flag])}`);
  }
  if (known(inputs.headerBackupPath)) fail("headerBackupPath", checkHostFilePath(inputs.headerBackupPath!));
  return failures;
}

/**
 * Changes that replace the container, and so destroy everything inside it, refused without
 * allowWipe. `olds` are the previous INPUTS (what check receives), empty on create.
 */
export function validateReplacement(olds: Partial<LuksVolumeInputs>, news: LuksVolumeInputs): CheckFailure[] {
  if (olds.device === undefined || news.allowWipe === true) return [];
  const before = resolveInputs(olds as LuksVolumeInputs);
  const after = resolveInputs(news);
  const changed = REPLACING_FIELDS.filter((field) => !isUnknown(after[field]) && before[field] !== after[field]);
  return changed.map((field) => ({
    property: field,
    reason:
      `changing ${field} from ${JSON.stringify(before[field])} to ${JSON.stringify(after[field])} replaces the LUKS container on ${before.device}: ` +
      `its header, keyslots and everything inside /dev/mapper/${before.mapperName} (LVM, filesystems, files) would be destroyed. ` +
      `Set allowWipe: true to accept that, or keep ${field} at ${JSON.stringify(before[field])}`,
  }));
}

const REPLACING_FIELDS = ["device", "cipher", "keySize", "sectorSize"] as const;

/** The device holding the header: the one device-path rule (rules/device.ts), and never a mapping. */
function checkDevicePath(device: unknown): string | undefined {
  const reason = checkBlockDevicePath(device);
  if (reason) return reason;
  if ((device as string).startsWith("/dev/mapper/")) return `expected the device that holds the LUKS header, found the mapping "${device}"; name the device beneath it`;
  return undefined;
}

function checkDiskPin(pin: DiskPin): string | undefined {
  if (pin === null || typeof pin !== "object" || (pin.serial === undefined && pin.wwn === undefined)) {
    return `expected {serial} and/or {wwn} of a disk beneath the device, found ${JSON.stringify(pin)}`;
  }
  if (pin.serial !== undefined) {
    const reason = checkSerial(pin.serial);
    if (reason) return `serial: ${reason}`;
  }
  // NVMe namespaces without an EUI/NGUID report "nvme.<vid>-<serial hex>-<model hex>-<nsid>" (QEMU does).
  if (pin.wwn !== undefined && checkWwn(pin.wwn) !== undefined && !/^nvme\.[0-9a-f]{4}-[0-9a-f-]+$/i.test(pin.wwn)) {
    return `wwn: ${checkWwn(pin.wwn)}`;
  }
  return undefined;
}

function checkMapperName(name: unknown): string | undefined {
  if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,126}$/.test(name)) {
    return `expected 1-127 of A-Z a-z 0-9 _ . + - starting with a letter or digit (it becomes /dev/mapper/<name> and a crypttab field), found ${JSON.stringify(name)}`;
  }
  if (name === "control") return `"control" is /dev/mapper/control, the device-mapper's own node; choose another name such as "cryptroot"`;
  return undefined;
}

function checkPassphrase(passphrase: unknown): string | undefined {
  if (typeof passphrase !== "string") return "expected a passphrase string; set it with `pulumi config set --secret`";
  const reasons = passphraseWeaknesses(passphrase);
  // The reasons describe the passphrase's shape, never its content.
  return reasons.length === 0 ? undefined : `is too weak: it ${reasons.join("; it ")}. Choose a passphrase with at least 16 characters from several classes, or 24+ characters of random words`;
}

function validatePbkdf(pbkdf: PbkdfSettings): CheckFailure[] {
  if (pbkdf === null || typeof pbkdf !== "object") return [{ property: "pbkdf", reason: `expected {type, memoryKiB?, iterations?, parallelism?, iterTimeMs?}, found ${JSON.stringify(pbkdf)}` }];
  if (!PBKDF_TYPES.includes(pbkdf.type)) return [{ property: "pbkdf.type", reason: `expected one of ${PBKDF_TYPES.join(", ")}, found ${JSON.stringify(pbkdf.type)}` }];
  const failures: CheckFailure[] = [];
  for (const field of ["memoryKiB", "iterations", "parallelism", "iterTimeMs"] as const) {
    const value = pbkdf[field];
    if (value !== undefined && !(Number.isInteger(value) && value > 0)) failures.push({ property: `pbkdf.${field}`, reason: `expected a positive whole number, found ${JSON.stringify(value)}` });
  }
  if (failures.length > 0) return failures;
  return checkPbkdf(pbkdf).map((issue) => ({ property: ["pbkdf", ...issue.path].join("."), reason: issue.message }));
}

function checkLabel(label: string): string | undefined {
  if (typeof label !== "string") return `expected text, found ${JSON.stringify(label)}`;
  // LUKS2 keeps the label in a 48-byte field with a terminating NUL.
  if (Buffer.byteLength(label) > 47) return `expected at most 47 bytes (the LUKS2 header field), found ${Buffer.byteLength(label)}`;
  if (hasControlCharacter(label)) return "expected printable characters only, found a control character";
  return undefined;
}

function hasControlCharacter(text: string): boolean {
  return [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function validateCrypttab(crypttab: CrypttabSettings): CheckFailure[] {
  const failures: CheckFailure[] = [];
  if (crypttab.root !== undefined && !isUnknown(crypttab.root)) {
    const reason = checkHostDirPath(crypttab.root);
    if (reason) failures.push({ property: "crypttab.root", reason });
  }
  if (crypttab.options !== undefined && !isUnknown(crypttab.options)) {
    if (!Array.isArray(crypttab.options)) return [...failures, { property: "crypttab.options", reason: `expected a list like ["luks", "initramfs"], found ${JSON.stringify(crypttab.options)}` }];
    crypttab.options.forEach((option, i) => {
      const at = `crypttab.options[${i}]`;
      if (typeof option !== "string" || !/^[A-Za-z0-9_][A-Za-z0-9_.:=/+-]*$/.test(option)) {
        failures.push({ property: at, reason: `expected one crypttab option word (no spaces or commas), found ${JSON.stringify(option)}` });
      } else if (option === "discard") {
        failures.push({ property: at, reason: 'set discard: true instead of a "discard" option, so the live mapping follows it too' });
      }
    });
  }
  return failures;
}

function checkHostDirPath(path: unknown): string | undefined {
  if (typeof path !== "string" || !path.startsWith("/")) return `expected an absolute directory like "/" or "/mnt", found ${JSON.stringify(path)}`;
  if (path.split("/").includes("..") || /\s/.test(path) || hasControlCharacter(path)) return `expected a plain absolute path without "..", spaces or control characters, found ${JSON.stringify(path)}`;
  return undefined;
}

function checkHostFilePath(path: string): string | undefined {
  const reason = checkHostDirPath(path);
  if (reason) return reason;
  if (path.endsWith("/")) return `expected a file path, found the directory "${path}"`;
  if (/^\/(dev|proc|sys)\//.test(path)) return `expected a regular file path, found "${path}" under /dev, /proc or /sys`;
  return undefined;
}
