// LuksVolume check: every bad input is refused with a field-specific message, before any
// connection; replacements that destroy data are refused without allowWipe.
import { LuksVolumeInputs, validate, validateReplacement } from "../../providers/luks-volume";
import { UNKNOWN } from "../../providers/kernel/resource";

const GOOD_PASSPHRASE = "Correct-Horse-Battery-9-staple";
const FP = "SHA256:" + "A".repeat(43);

const base = (): LuksVolumeInputs => ({
  connection: [{ environment: "rescue", host: "203.0.113.7", port: 22, user: "root", hostKeyFingerprints: [FP] }],
  device: "/dev/md1",
  mapperName: "cryptroot",
  passphrase: GOOD_PASSPHRASE,
  providerVersion: "1",
});

type Mutate = (i: Record<string, unknown>) => void;

const CASES: [string, Mutate, string, RegExp][] = [
  ["device not under /dev", (i) => (i.device = "md1"), "device", /under \/dev.*found "md1"/],
  [
    "an initramfs profile (dropbear's unlock-only shell)",
    (i) => (i.connection = [...(i.connection as object[]), { environment: "initramfs", host: "203.0.113.7", port: 2222, user: "root", hostKeyFingerprints: [FP] }]),
    "connection[1].environment",
    /expected rescue or system, found "initramfs": dropbear's unlock shell runs only cryptroot-unlock/,
  ],
  ["device is a mapping", (i) => (i.device = "/dev/mapper/cryptroot"), "device", /name the device beneath it/],
  ["device with shell characters", (i) => (i.device = "/dev/md1;reboot"), "device", /letters, digits/],
  ["mapper name with a slash", (i) => (i.mapperName = "crypt/root"), "mapperName", /1-127 of A-Z/],
  ["mapper name with a space", (i) => (i.mapperName = "crypt root"), "mapperName", /1-127 of A-Z/],
  ["mapper name control", (i) => (i.mapperName = "control"), "mapperName", /device-mapper's own node/],
  ["short passphrase", (i) => (i.passphrase = "Sh0rt!"), "passphrase", /too weak: it is 6 characters long/],
  ["common passphrase", (i) => (i.passphrase = "Password123!Password"), "passphrase", /common passwords/],
  ["weak extra passphrase", (i) => (i.extraPassphrases = ["aaaaaaaaaaaaaaaaaaaaaaaa"]), "extraPassphrases[0]", /too weak/],
  ["extra equals the passphrase", (i) => (i.extraPassphrases = [GOOD_PASSPHRASE]), "extraPassphrases[0]", /same as passphrase/],
  ["duplicate extras", (i) => (i.extraPassphrases = ["Another-Good-Phrase-42x", "Another-Good-Phrase-42x"]), "extraPassphrases[1]", /same as extraPassphrases\[0\]/],
  ["unknown cipher", (i) => (i.cipher = "aes-cbc-essiv:sha256"), "cipher", /CBC\/ECB/],
  ["key size the cipher lacks", (i) => (i.keySize = 128), "keySize", /expected 256 or 512 bits/],
  ["odd sector size", (i) => (i.sectorSize = 1000), "sectorSize", /512, 1024, 2048, 4096/],
  ["unknown pbkdf", (i) => (i.pbkdf = { type: "scrypt" }), "pbkdf.type", /argon2id, argon2i, pbkdf2/],
  ["argon2 too few iterations", (i) => (i.pbkdf = { type: "argon2id", iterations: 2 }), "pbkdf.iterations", /at least 4/],
  ["argon2 too much memory", (i) => (i.pbkdf = { type: "argon2id", memoryKiB: 8 * 1024 * 1024 }), "pbkdf.memoryKiB", /32\.\.4194304 KiB/],
  ["argon2 too many threads", (i) => (i.pbkdf = { type: "argon2id", parallelism: 9 }), "pbkdf.parallelism", /1\.\.4 threads/],
  ["pbkdf2 with memory", (i) => (i.pbkdf = { type: "pbkdf2", memoryKiB: 1024 }), "pbkdf.memoryKiB", /no memory cost/],
  ["iterations and iter-time", (i) => (i.pbkdf = { type: "argon2id", iterations: 4, iterTimeMs: 2000 }), "pbkdf.iterTimeMs", /either iterations/],
  ["negative iter-time", (i) => (i.pbkdf = { type: "argon2id", iterTimeMs: -5 }), "pbkdf.iterTimeMs", /positive whole number/],
  ["label too long", (i) => (i.label = "x".repeat(48)), "label", /at most 47 bytes/],
  ["label with newline", (i) => (i.label = "a\nb"), "label", /control character/],
  ["crypttab root relative", (i) => (i.crypttab = { root: "mnt" }), "crypttab.root", /absolute directory/],
  ["crypttab root with ..", (i) => (i.crypttab = { root: "/mnt/../etc" }), "crypttab.root", /without "\.\."/],
  ["crypttab option with a comma", (i) => (i.crypttab = { options: ["luks,discard"] }), "crypttab.options[0]", /one crypttab option word/],
  ["crypttab discard option", (i) => (i.crypttab = { options: ["luks", "discard"] }), "crypttab.options[1]", /set discard: true/],
  ["unknown wipe method", (i) => (i.wipe = "shred"), "wipe", /none, random-fast, urandom/],
  ["wipe with adopt", (i) => ((i.wipe = "random-fast"), (i.adopt = true)), "wipe", /adopt takes over an existing container/],
  ["header backup relative", (i) => (i.headerBackupPath = "backup.img"), "headerBackupPath", /absolute/],
  ["header backup under /dev", (i) => (i.headerBackupPath = "/dev/sda"), "headerBackupPath", /under \/dev, \/proc or \/sys/],
  ["disk pin without serial or wwn", (i) => (i.disks = [{}]), "disks[0]", /serial\} and\/or \{wwn/],
  ["disk pin with a bad serial", (i) => (i.disks = [{ serial: "has space" }]), "disks[0]", /serial: expected a disk serial/],
  ["disk pin with a bad wwn", (i) => (i.disks = [{ wwn: "0x12" }]), "disks[0]", /wwn: expected a WWN/],
  ["no connection profile", (i) => (i.connection = []), "connection", /at least one connection profile/],
  ["allowWipe not a boolean", (i) => (i.allowWipe = "yes"), "allowWipe", /true or false/],
];

describe("LuksVolume validate", () => {
  it("accepts the minimal inputs and a full set", () => {
    expect(validate(base())).toEqual([]);
    const full: LuksVolumeInputs = {
      ...base(),
      disks: [{ serial: "S4EWNX0R123456" }, { wwn: "eui.0025388b91d2a1b3" }, { wwn: "nvme.1b36-4c41423130303030314e31-51454d55204e564d65204374726c-00000001" }],
      extraPassphrases: ["Recovery-Phrase-For-Ops-2024"],
      cipher: "serpent-xts-plain64",
      keySize: 256,
      sectorSize: 4096,
      pbkdf: { type: "argon2id", memoryKiB: 65536, iterations: 4, parallelism: 2 },
      label: "root",
      discard: true,
      crypttab: { root: "/mnt", options: ["luks", "initramfs"] },
      wipe: "random-fast",
      allowWipe: true,
      headerBackupPath: "/root/hdr.img",
    };
    expect(validate(full)).toEqual([]);
  });

  it.each(CASES)("refuses %s at %s", (_name, mutate, property, reason) => {
    const inputs = base() as unknown as Record<string, unknown>;
    mutate(inputs);
    const failures = validate(inputs as unknown as LuksVolumeInputs);
    expect(failures.map((f) => f.property)).toContain(property);
    expect(failures.find((f) => f.property === property)!.reason).toMatch(reason);
  });

  it("never quotes a passphrase in a message", () => {
    const weak = "Password123!Password";
    const failures = validate({ ...base(), passphrase: weak, extraPassphrases: [weak.toLowerCase()] });
    expect(failures.length).toBeGreaterThan(0);
    expect(JSON.stringify(failures)).not.toContain(weak);
    expect(JSON.stringify(failures)).not.toContain(weak.toLowerCase());
  });

  it("skips values still unknown in preview", () => {
    expect(validate({ ...base(), device: UNKNOWN, passphrase: UNKNOWN, mapperName: UNKNOWN })).toEqual([]);
  });
});

describe("LuksVolume replacements need allowWipe", () => {
  it.each([
    ["device", { device: "/dev/md2" }],
    ["cipher", { cipher: "serpent-xts-plain64" }],
    ["keySize", { keySize: 256, cipher: "aes-xts-plain64" }],
    ["sectorSize", { sectorSize: 4096 }],
  ])("refuses a %s change and says what would be lost", (field, change) => {
    const failures = validateReplacement(base(), { ...base(), ...change } as LuksVolumeInputs);
    expect(failures.map((f) => f.property)).toContain(field);
    expect(failures.find((f) => f.property === field)!.reason).toMatch(/would be destroyed.*Set allowWipe: true/);
  });

  it("lets the same change through with allowWipe, on create, and for in-place fields", () => {
    expect(validateReplacement(base(), { ...base(), cipher: "serpent-xts-plain64", allowWipe: true })).toEqual([]);
    expect(validateReplacement({}, { ...base(), cipher: "serpent-xts-plain64" })).toEqual([]);
    expect(validateReplacement(base(), { ...base(), label: "new", discard: true, passphrase: "Other-Good-Phrase-77x!" })).toEqual([]);
    // Spelling out the default is no change.
    expect(validateReplacement(base(), { ...base(), cipher: "aes-xts-plain64", keySize: 512, sectorSize: 512 })).toEqual([]);
  });
});
