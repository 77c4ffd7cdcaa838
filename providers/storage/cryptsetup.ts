// cryptsetup, as the resources drive it: command builders (passphrases always on stdin, never in
// argv or a file), the parsers for what cryptsetup, blkid, wipefs and dmsetup print, and the small
// key-management effects shared by LuksVolume and InstallImage (which swaps installimage's one-time
// passphrase for the real one through a keyslot).
//
// Verified against cryptsetup 2.6.1 (Debian 12, the lab rescue):
// - `--key-file=-` reads stdin to EOF and keeps every byte, trailing newline included. We write the
//   passphrase without one, which is what an operator's typed `cryptroot-unlock` produces.
// - `luksKillSlot -q --key-file=-` still verifies the given passphrase opens a DIFFERENT slot, so
//   the last working slot cannot be killed with it ("No key available with this passphrase", exit 2).
// - `cryptsetup refresh` needs the volume key (stdin) and resets every flag not given again.
// - `luksDump --dump-json-metadata` carries keyslots, segments and flags, but not UUID, label or
//   subsystem: those live in the binary header, and `blkid -p -o export` prints them.
import type { PbkdfSettings } from "../rules/luks";
import { Secret } from "../plumbing/secret";
import { ShellCommand, sh } from "../plumbing/shell";
import type { SshSession } from "../plumbing/ssh";

/** LUKS2 subsystem string our luksFormat writes: it marks a container as created by hetzner-fde,
 *  so a re-run after a kill recognises its own half-finished work and never mistakes a foreign
 *  container for it. */
export const HFDE_SUBSYSTEM = "hetzner-fde";

// ---------------------------------------------------------------------------------------------
// Command builders (pure)

export interface FormatOptions {
  readonly device: string;
  readonly cipher: string;
  readonly keySizeBits: number;
  readonly sectorSize: number;
  readonly pbkdf: PbkdfSettings;
  readonly label?: string;
  readonly subsystem?: string;
}

/** `--pbkdf …` words: a fixed cost (`--pbkdf-force-iterations`) or a benchmarked one (`--iter-time`). */
export function pbkdfWords(pbkdf: PbkdfSettings): string[] {
  const words = ["--pbkdf", pbkdf.type];
  if (pbkdf.memoryKiB !== undefined) words.push("--pbkdf-memory", String(pbkdf.memoryKiB));
  if (pbkdf.parallelism !== undefined) words.push("--pbkdf-parallel", String(pbkdf.parallelism));
  if (pbkdf.iterations !== undefined) words.push("--pbkdf-force-iterations", String(pbkdf.iterations));
  if (pbkdf.iterTimeMs !== undefined) words.push("--iter-time", String(pbkdf.iterTimeMs));
  return words;
}

/** luksFormat; stdin: the passphrase. `-q` because there is no one to type YES: the caller has
 *  already checked the device is blank (or that wiping it was allowed). */
export function formatCommand(o: FormatOptions): ShellCommand {
  const label = o.label !== undefined ? ["--label", o.label] : [];
  const subsystem = o.subsystem !== undefined ? ["--subsystem", o.subsystem] : [];
  return sh`cryptsetup luksFormat -q --type luks2 --cipher ${o.cipher} --key-size ${o.keySizeBits} --sector-size ${o.sectorSize} ${pbkdfWords(o.pbkdf)} ${label} ${subsystem} --key-file=- ${o.device}`;
}

/** Opens a LUKS device; stdin: a passphrase. */
export function openCommand(device: string, name: string, allowDiscards: boolean): ShellCommand {
  const discards = allowDiscards ? ["--allow-discards"] : [];
  return sh`cryptsetup open --type luks2 ${discards} --key-file=- ${device} ${name}`;
}

/** Reloads an open mapping with (or without) discards; stdin: a passphrase (refresh needs the key). */
export function refreshCommand(name: string, allowDiscards: boolean): ShellCommand {
  const discards = allowDiscards ? ["--allow-discards"] : [];
  return sh`cryptsetup refresh ${discards} --key-file=- ${name}`;
}

/** Exit 0 and "Key slot N unlocked." when the stdin passphrase opens a slot; exit 2 when none. */
export function testPassphraseCommand(device: string): ShellCommand {
  return sh`cryptsetup open --test-passphrase -v --key-file=- ${device}`;
}

/**
 * Adds a key. stdin: `twoKeys(existing, added)`. Both passphrases reach cryptsetup through
 * process-substitution pipes fed by bash's builtin printf: no argv, no file on disk, and the forked
 * subshells show only `bash -c <this text>` in `ps`.
 */
export function addKeyCommand(device: string, pbkdf: PbkdfSettings): ShellCommand {
  const script = sh`set -eu; IFS= read -r -d '' existing; IFS= read -r -d '' added; cryptsetup luksAddKey -q ${pbkdfWords(pbkdf)} --key-file=<(printf '%s' "$existing") ${device} <(printf '%s' "$added")`;
  return sh`bash -c ${script.text}`;
}

/** Re-derives a slot's key with new pbkdf settings, in place; stdin: the passphrase of that slot. */
export function convertKeyCommand(device: string, pbkdf: PbkdfSettings): ShellCommand {
  return sh`cryptsetup luksConvertKey -q ${pbkdfWords(pbkdf)} --key-file=- ${device}`;
}

/** Kills `slot`; stdin: a passphrase that must open ANOTHER slot (cryptsetup verifies it). */
export function killSlotCommand(device: string, slot: number): ShellCommand {
  return sh`cryptsetup luksKillSlot -q --key-file=- ${device} ${slot}`;
}

export function setLabelCommand(device: string, label: string): ShellCommand {
  return sh`cryptsetup config --label ${label} ${device}`;
}

export function closeCommand(name: string): ShellCommand {
  return sh`cryptsetup close ${name}`;
}

/** cryptsetup refuses to overwrite an existing backup file, which is what we want. */
export function headerBackupCommand(device: string, file: string): ShellCommand {
  return sh`cryptsetup luksHeaderBackup --header-backup-file ${file} ${device}`;
}

/** Wipes every keyslot: the data is unrecoverable without a header backup. */
export function eraseCommand(device: string): ShellCommand {
  return sh`cryptsetup luksErase -q ${device}`;
}

/** stdin for commands that read two NUL-terminated passphrases (see addKeyCommand). */
export function twoKeys(first: Secret, second: Secret): Secret {
  return new Secret(`${first.reveal()}\0${second.reveal()}\0`);
}

// ---------------------------------------------------------------------------------------------
// Parsers (pure)

export interface KdfFacts {
  readonly type: string;
  /** argon2 time cost or pbkdf2 iterations. */
  readonly iterations: number | null;
  readonly memoryKiB: number | null;
  readonly parallelism: number | null;
}

/** A used keyslot: its number and how its key is derived. Never salts, digests or key material. */
export interface KeyslotFacts {
  readonly slot: number;
  readonly kdf: KdfFacts;
}

export interface LuksMetadata {
  readonly cipher: string;
  readonly keySizeBits: number;
  readonly sectorSize: number;
  readonly keyslots: KeyslotFacts[];
  /** Persistent activation flags stored in the header ("allow-discards", …). */
  readonly flags: string[];
}

/** Parses `cryptsetup luksDump --dump-json-metadata` (LUKS2). Throws naming the field that is off. */
export function parseLuksMetadata(json: unknown): LuksMetadata {
  const root = asRecord(json, "luksDump metadata");
  const segments = asRecord(root.segments, "segments");
  const segment = asRecord(segments["0"] ?? Object.values(segments)[0], "segments.0");
  const keyslots = Object.entries(asRecord(root.keyslots, "keyslots"))
    .map(([slot, raw]) => parseKeyslot(Number(slot), asRecord(raw, `keyslots.${slot}`)))
    .sort((a, b) => a.slot - b.slot);
  const keyBytes = Object.values(asRecord(root.keyslots, "keyslots")).map((k) => (k as { key_size?: unknown }).key_size)[0];
  const config = root.config === undefined ? {} : asRecord(root.config, "config");
  return {
    cipher: asString(segment.encryption, "segments.0.encryption"),
    keySizeBits: typeof keyBytes === "number" ? keyBytes * 8 : 0,
    sectorSize: asNumber(segment.sector_size, "segments.0.sector_size"),
    keyslots,
    flags: Array.isArray(config.flags) ? config.flags.map(String) : [],
  };
}

function parseKeyslot(slot: number, raw: Record<string, unknown>): KeyslotFacts {
  const kdf = asRecord(raw.kdf, `keyslots.${slot}.kdf`);
  const type = asString(kdf.type, `keyslots.${slot}.kdf.type`);
  const num = (v: unknown): number | null => (typeof v === "number" ? v : null);
  return {
    slot,
    kdf: {
      type,
      iterations: num(type === "pbkdf2" ? kdf.iterations : kdf.time),
      memoryKiB: num(kdf.memory),
      parallelism: num(kdf.cpus),
    },
  };
}

/** "Key slot 3 unlocked." → 3; null when the output names no unlocked slot. */
export function parseUnlockedSlot(output: string): number | null {
  const match = /Key slot (\d+) unlocked/.exec(output);
  return match ? Number(match[1]) : null;
}

/** `blkid -p -o export` lines → a map (values unescaped the way blkid escapes them). */
export function parseBlkidExport(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1).replace(/\\(.)/g, "$1");
  }
  return out;
}

/** Signature types `wipefs -n -J` reports ("crypto_LUKS", "ext4", "LVM2_member", "gpt", …), unique. */
export function parseWipefsTypes(json: unknown): string[] {
  const signatures = asRecord(json, "wipefs output").signatures;
  if (!Array.isArray(signatures)) throw new Error("wipefs output: expected a signatures array");
  return [...new Set(signatures.map((s, i) => asString((s as { type?: unknown }).type, `signatures[${i}].type`)))];
}

/** A dm UUID of a LUKS mapping, `CRYPT-LUKS2-<32 hex>-<name>`, → the LUKS UUID with dashes. */
export function luksUuidOfDmUuid(dmUuid: string): string | null {
  const match = /^CRYPT-LUKS[12]-([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})-/.exec(dmUuid);
  return match ? match.slice(1).join("-") : null;
}

export interface DmMapping {
  readonly name: string;
  /** "LUKS2", "PLAIN", … from the dm UUID's CRYPT-<TYPE>- prefix; null for other targets. */
  readonly cryptType: string | null;
  readonly luksUuid: string | null;
}

/** `dmsetup info -c --noheadings --separator ' ' -o name,uuid` → mappings. "No devices found" → []. */
export function parseDmsetupInfo(text: string): DmMapping[] {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !/^No devices found/.test(line))
    .map((line) => {
      const [name, uuid = ""] = line.split(" ");
      const type = /^CRYPT-([A-Z0-9]+)-/.exec(uuid);
      return { name, cryptType: type ? type[1] : null, luksUuid: luksUuidOfDmUuid(uuid) };
    });
}

/** `cryptsetup status <name>`: whether the live mapping passes discards down, and its device. */
export function parseCryptStatus(text: string): { active: boolean; discards: boolean; device: string | null } {
  const flags = /^\s*flags:\s*(.*)$/m.exec(text)?.[1] ?? "";
  return {
    active: /is active/.test(text),
    discards: flags.split(/\s+/).includes("discards"),
    device: /^\s*device:\s*(\S+)/m.exec(text)?.[1] ?? null,
  };
}

function asRecord(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error(`${what}: expected an object, found ${JSON.stringify(value)}`);
  return value as Record<string, unknown>;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== "string") throw new Error(`${what}: expected a string, found ${JSON.stringify(value)}`);
  return value;
}

function asNumber(value: unknown, what: string): number {
  if (typeof value !== "number") throw new Error(`${what}: expected a number, found ${JSON.stringify(value)}`);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Key management effects (shared with InstallImage)

/** The slot `key` opens on `device`, or null. Costs one KDF run per slot tried. */
export async function unlockedSlot(session: SshSession, device: string, key: Secret): Promise<number | null> {
  // Exit 2: no slot opens with this key; exit 1: no keyslot left at all (after luksErase).
  const result = await session.exec(testPassphraseCommand(device), { stdin: key, okExitCodes: [0, 1, 2] });
  return result.exitCode === 0 ? parseUnlockedSlot(result.stdout + result.stderr) : null;
}

/**
 * Makes `added` open the device, authorised by `existing`. Converges: when `added` already opens a
 * slot, nothing is written. Returns the slot `added` opens, proven by a test after the add.
 */
export async function ensureKey(session: SshSession, device: string, existing: Secret, added: Secret, pbkdf: PbkdfSettings): Promise<number> {
  const before = await unlockedSlot(session, device, added);
  if (before !== null) return before;
  await session.exec(addKeyCommand(device, pbkdf), { stdin: twoKeys(existing, added), secrets: [existing, added] });
  const after = await unlockedSlot(session, device, added);
  if (after === null) throw new Error(`luksAddKey on ${device} reported success, but the new passphrase opens no keyslot`);
  return after;
}

/**
 * Kills the slot(s) `retired` opens, after proving `keep` opens another one. Converges: when
 * `retired` opens nothing, nothing is written. Never kills the slot `keep` opens.
 */
export async function retireKey(session: SshSession, device: string, retired: Secret, keep: Secret): Promise<number[]> {
  const killed: number[] = [];
  const kept = await unlockedSlot(session, device, keep);
  if (kept === null) throw new Error(`refusing to kill a keyslot on ${device}: the passphrase to keep opens no slot`);
  for (;;) {
    const slot = await unlockedSlot(session, device, retired);
    if (slot === null || slot === kept) return killed;
    await session.exec(killSlotCommand(device, slot), { stdin: keep });
    killed.push(slot);
  }
}
