// LUKS passphrase strength. The passphrase guards a disk that can be imaged and attacked offline,
// and an operator types it into `cryptroot-unlock` over SSH, so the rule is:
//   1. not empty, at most 512 characters (cryptsetup's interactive limit), no line breaks (a line
//      break cannot be typed at the unlock prompt; on stdin it would become part of the key), and
//      no other control characters: NUL separates the two keys on luksAddKey's stdin, so a NUL
//      inside would enrol only the part before it, and no control character can be typed at the
//      prompt either;
//   2. at least 16 characters;
//   3. under 24 characters it needs three of: lower case, upper case, digits, other characters;
//      from 24 characters on, length alone carries it (four or five random words);
//   4. at least 8 distinct characters, and not one short block repeated;
//   5. at least 10 characters left once common passwords (also in l33t spelling), keyboard rows and
//      runs like "abcd"/"4321" are taken out.
// Every reason says WHY it is weak and never quotes any part of the passphrase.

export const PASSPHRASE_RULE =
  "at least 16 characters (three of lower/upper/digit/other under 24), at least 8 distinct characters, " +
  "no repeated block, printable characters only (no line breaks, NUL or other control characters), and not built from common passwords, keyboard rows or sequences";

const MIN_LENGTH = 16;
const LENGTH_WITHOUT_VARIETY = 24;
const MAX_LENGTH = 512;
const MIN_DISTINCT = 8;
const MIN_SUBSTANCE = 10;

// A small list of the passwords that top every leak; enough to catch "Password123!Password".
const COMMON_PASSWORDS = [
  "password", "passwort", "passphrase", "qwertz", "qwerty", "azerty", "letmein", "welcome", "admin", "administrator",
  "root", "toor", "changeme", "secret", "iloveyou", "monkey", "dragon", "master", "shadow", "sunshine", "princess",
  "football", "baseball", "superman", "batman", "trustno1", "hello", "login", "abc123", "hetzner", "server", "ubuntu",
  "debian", "linux", "default", "test", "geheim", "hallo", "cryptroot", "luks", "unlock",
];

const KEYBOARD_ROWS = ["1234567890", "qwertyuiop", "qwertzuiop", "asdfghjkl", "yxcvbnm", "zxcvbnm", "azertyuiop"];

const LEET: Record<string, string> = { "0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i" };

export function passphraseWeaknesses(passphrase: string): string[] {
  if (passphrase.length === 0) return ["is empty"];
  const reasons: string[] = [];
  const chars = [...passphrase];
  if (chars.length > MAX_LENGTH) reasons.push(`is ${chars.length} characters long (cryptsetup reads at most ${MAX_LENGTH} at a prompt)`);
  if (/[\r\n]/.test(passphrase)) reasons.push("contains a line break, which cannot be typed at the cryptroot-unlock prompt");
  const controls = [...passphrase].filter((c) => /[\p{Cc}]/u.test(c) && c !== "\r" && c !== "\n");
  if (controls.length > 0) {
    reasons.push(
      `contains ${count(controls.length, "control character")} (such as NUL or tab), which cannot be typed at the cryptroot-unlock prompt ` +
        "and would cut the key short on stdin, where NUL separates two keys; use printable characters only",
    );
  }
  if (chars.length < MIN_LENGTH) reasons.push(`is ${count(chars.length, "character")} long (at least ${MIN_LENGTH} needed)`);
  const classes = characterClasses(passphrase);
  if (chars.length < LENGTH_WITHOUT_VARIETY && classes < 3) {
    reasons.push(
      `uses ${classes} of the 4 character classes lower, upper, digit, other (under ${LENGTH_WITHOUT_VARIETY} characters at least 3 needed)`,
    );
  }
  const distinct = new Set(chars).size;
  if (distinct < MIN_DISTINCT) reasons.push(`has only ${count(distinct, "distinct character")} (at least ${MIN_DISTINCT} needed)`);
  const period = repeatedBlockLength(chars);
  if (period !== null) reasons.push(`is ${period === 1 ? "one character" : `one block of ${period} characters`} repeated`);
  else {
    const substance = substanceLength(passphrase);
    if (substance < MIN_SUBSTANCE && chars.length >= MIN_LENGTH) {
      reasons.push(
        `is built from common passwords, keyboard rows or sequences (only ${count(substance, "character")} outside them, at least ${MIN_SUBSTANCE} needed)`,
      );
    }
  }
  return reasons;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

function characterClasses(text: string): number {
  return [/\p{Ll}/u, /\p{Lu}/u, /\p{Nd}/u, /[^\p{Ll}\p{Lu}\p{Nd}]/u].filter((re) => re.test(text)).length;
}

/** Smallest block length p ≤ n/2 such that the text is that block repeated (the tail may be partial). */
function repeatedBlockLength(chars: readonly string[]): number | null {
  for (let p = 1; p <= chars.length / 2; p++) {
    let repeats = true;
    for (let i = p; i < chars.length && repeats; i++) repeats = chars[i] === chars[i - p];
    if (repeats) return p;
  }
  return null;
}

/** Characters left after removing keyboard-row fragments, ±1 runs of 3 or more and common passwords. */
function substanceLength(passphrase: string): number {
  // Sequences first, on the real characters: l33t-mapping "1234" first would hide the run.
  let text = removeRuns(removeKeyboardFragments(passphrase.toLowerCase()));
  text = [...text].map((c) => LEET[c] ?? c).join("");
  for (const word of [...COMMON_PASSWORDS].sort((a, b) => b.length - a.length)) text = text.split(word).join("\u0000");
  return [...text].filter((c) => c !== "\u0000").length;
}

function removeKeyboardFragments(text: string): string {
  let out = text;
  for (const row of KEYBOARD_ROWS) {
    for (let len = row.length; len >= 4; len--) {
      for (let start = 0; start + len <= row.length; start++) {
        const fragment = row.slice(start, start + len);
        out = out.split(fragment).join("\u0000").split([...fragment].reverse().join("")).join("\u0000");
      }
    }
  }
  return out;
}

/** Drops runs of ≥3 characters whose code points step by +1 or −1 ("abc", "987"). */
function removeRuns(text: string): string {
  const chars = [...text];
  const keep = chars.map(() => true);
  let start = 0;
  while (start < chars.length) {
    let end = start + 1;
    const step = end < chars.length ? chars[end].codePointAt(0)! - chars[start].codePointAt(0)! : 0;
    if (step === 1 || step === -1) {
      while (end < chars.length && chars[end].codePointAt(0)! - chars[end - 1].codePointAt(0)! === step) end++;
      if (end - start >= 3) for (let i = start; i < end; i++) keep[i] = false;
      start = end - 1 > start ? end - 1 : end;
    } else {
      start = end;
    }
  }
  return chars.filter((_, i) => keep[i]).join("");
}
