// LuksVolume's steps: the only effects. Each is guarded on the host (destructive ones re-check the
// disk pins in the same shell), so a re-run after a kill converges and a stale plan writes nothing.
import { RefusalError } from "../kernel";
import type { Secret } from "../plumbing/secret";
import { joinShell, sh, ShellCommand } from "../plumbing/shell";
import {
  addKeyCommand,
  closeCommand,
  convertKeyCommand,
  eraseCommand,
  formatCommand,
  HFDE_SUBSYSTEM,
  headerBackupCommand,
  killSlotCommand,
  openCommand,
  refreshCommand,
  setLabelCommand,
  twoKeys,
  unlockedSlot,
} from "../storage/cryptsetup";
import { DiskPin, KeyRef, keyName, LuksContext, LuksStep, POLL_SETTING } from "./types";

function keyOf(ctx: LuksContext, ref: KeyRef): Secret {
  const key = ctx.keys[keyName(ref)];
  if (!key) throw new Error(`no ${ref.role} passphrase #${"index" in ref ? ref.index : 0} is configured`);
  return key;
}

/**
 * Fails (exit 3, naming the pin) unless each pinned disk still lies beneath the device. Checked in
 * the same shell as the destructive command it guards, as the plan's check could be stale by then
 * (a disk swapped, devices renumbered after a reboot).
 */
export function refuseUnlessPinned(device: string, disks: readonly DiskPin[]): ShellCommand {
  const checks = disks.map((pin) => {
    // lsblk -P prints KEY="value" pairs; index() matches the pair literally. WWNs compare case-insensitively.
    const serial = pin.serial === undefined ? "" : `SERIAL="${pin.serial}"`;
    const wwn = pin.wwn === undefined ? "" : `wwn="${pin.wwn.toLowerCase()}"`;
    const found = sh`lsblk -P -s -o TYPE,SERIAL,WWN ${device} | awk -v s=${serial} -v w=${wwn} 'index($0, "TYPE=\\"disk\\"") == 1 && (s == "" || index($0, s)) && (w == "" || index(tolower($0), w)) { f = 1 } END { exit !f }'`;
    return sh`${found} || { echo ${`disk ${JSON.stringify(pin)} is no longer beneath ${device}; nothing was written (re-run to re-plan)`} >&2; exit 3; }`;
  });
  return checks.length === 0 ? sh`true` : joinShell(checks, "&&");
}

/** Fails (exit 3, naming what holds it) when anything sits on top of the device: an open mapping, an md array, LVM. */
export function refuseIfHeld(device: string): ShellCommand {
  return sh`held=$(ls "/sys/class/block/$(basename "$(readlink -f ${device})")/holders" 2>/dev/null); if [ -n "$held" ]; then echo ${device} "is in use by $held; close or stop it first" >&2; exit 3; fi`;
}

/** Fails (exit 3) when the device carries any signature: the plan thought it blank, the host must agree. */
export function refuseIfNotBlank(device: string): ShellCommand {
  return sh`sigs=$(wipefs -n -o TYPE --noheadings ${device} | tr '\n' ' '); if [ -n "$sigs" ]; then echo ${device} "now holds $sigs; refusing to overwrite it (re-run to re-plan)" >&2; exit 3; fi`;
}

async function randomise(ctx: LuksContext, step: Extract<LuksStep, { kind: "randomise" }>): Promise<void> {
  const job = step.job;
  const state = await ctx.session.exec(sh`if [ -f ${job}/pid ] && kill -0 "$(cat ${job}/pid)" 2>/dev/null; then echo running; fi`);
  if (state.stdout.trim() !== "running") await ctx.session.exec(randomiseStartCommand(step, job));
  await followRandomise(ctx, step, job);
}

/**
 * Starts the randomisation as a detached job, so it survives a dropped SSH connection and a
 * re-run can follow it instead of starting over. random-fast writes zeros through a throwaway
 * plain dm-crypt mapping keyed with 64 bytes of /dev/urandom read by cryptsetup on stdin (the key
 * never exists outside the kernel); the ciphertext is indistinguishable from random data.
 */
export function randomiseStartCommand(
  step: { device: string; disks: readonly DiskPin[]; method: "random-fast" | "urandom"; mayHoldData: boolean },
  job: string,
  // AES-XTS wins wherever the CPU has AES instructions (every server this targets); the benchmark
  // also tries Adiantum, which is faster where AES is emulated in software.
  throwaway: { cipher: string; keyBytes: number } = { cipher: "aes-xts-plain64", keyBytes: 64 },
): ShellCommand {
  const wipeName = `hfde-wipe-${job.slice(job.lastIndexOf("randomise-") + "randomise-".length)}`;
  const target = step.method === "random-fast" ? `/dev/mapper/${wipeName}` : step.device;
  const source = step.method === "random-fast" ? "/dev/zero" : "/dev/urandom";
  const open = step.method === "random-fast"
    ? sh`cryptsetup close ${wipeName} 2>/dev/null; head -c ${throwaway.keyBytes} /dev/urandom | cryptsetup open --type plain --cipher ${throwaway.cipher} --key-size ${throwaway.keyBytes * 8} --key-file=- ${step.device} ${wipeName} || { echo 90 > ${job}/rc; exit 0; }`
    : sh`true`;
  const close = step.method === "random-fast" ? sh`cryptsetup close ${wipeName}` : sh`true`;
  // dd stops with "No space left on device" at the end of the device: that is success.
  const body = sh`${open}
dd if=${source} of=${target} bs=4M oflag=direct status=progress 2>${job}/progress; r=$?
grep -q 'No space left on device' ${job}/progress && r=0
sync; ${close}; echo $r > ${job}/rc`;
  const guards = step.mayHoldData ? sh`true` : refuseIfNotBlank(step.device);
  // The preparation is its own statement: a trailing `&` would background the whole && list.
  return sh`${refuseUnlessPinned(step.device, step.disks)} || exit 3; ${refuseIfHeld(step.device)}; ${guards}; { mkdir -p ${job} && rm -f ${job}/rc ${job}/progress && printf '%s' ${step.device} > ${job}/device; } || exit 1
setsid nohup bash -c ${body.text} </dev/null >/dev/null 2>&1 & echo $! > ${job}/pid`;
}

/** How often a randomise step polls its job: the stack setting hetzner-fde:luksPollMs (tests), else 5 s. */
function pollMs(ctx: LuksContext): number {
  const value = Number(ctx.settings[POLL_SETTING]);
  return Number.isFinite(value) && value > 0 ? value : 5000;
}

async function followRandomise(ctx: LuksContext, step: Extract<LuksStep, { kind: "randomise" }>, job: string): Promise<void> {
  let lastReport = 0;
  for (;;) {
    const poll = await ctx.session.exec(sh`cat ${job}/rc 2>/dev/null; echo; tr '\\r' '\\n' < ${job}/progress 2>/dev/null | grep copied | tail -n1`);
    const [rc, progress = ""] = poll.stdout.split("\n");
    const line = parseDdProgress(progress, step.sizeBytes);
    if (rc.trim() !== "") {
      if (rc.trim() !== "0") throw new Error(`randomising ${step.device} (${step.method}) failed with exit ${rc.trim()}; last progress: ${progress || "none"}`);
      ctx.log.info(`randomise ${step.device} (${step.method}) finished${line ? `: ${line}` : ""}`);
      return;
    }
    if (line && Date.now() - lastReport >= 10_000) {
      ctx.log.info(`randomise ${step.device} (${step.method}): ${line}`);
      lastReport = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs(ctx)));
  }
}

/** "1073741824 bytes (1.1 GB, 1.0 GiB) copied, 7 s, 153 MB/s" → "1.1 GB of 4.3 GB (25%), 153 MB/s". */
export function parseDdProgress(line: string, totalBytes: number): string | null {
  const match = /^(\d+) bytes .*copied, ([\d.]+) s, ([\d.,]+ [kMGT]?B\/s)/.exec(line.trim());
  if (!match) return null;
  const done = Number(match[1]);
  const pct = totalBytes > 0 ? ` (${Math.min(100, Math.floor((done / totalBytes) * 100))}%)` : "";
  return `${formatBytes(done)} of ${formatBytes(totalBytes)}${pct}, ${match[3]}`;
}

function formatBytes(n: number): string {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** wipefs -a, behind the pin and in-use checks, in one round trip. */
export function wipeShell(step: Pick<Extract<LuksStep, { kind: "wipeSignatures" }>, "device" | "disks">): ShellCommand {
  return sh`${refuseUnlessPinned(step.device, step.disks)} || exit 3; ${refuseIfHeld(step.device)}; wipefs -a -q ${step.device}`;
}

async function wipeSignatures(ctx: LuksContext, step: Extract<LuksStep, { kind: "wipeSignatures" }>): Promise<void> {
  await ctx.session.exec(wipeShell(step));
}

/** luksFormat (passphrase on stdin), behind the pin, in-use and blank checks, in one round trip. */
export function formatShell(step: Extract<LuksStep, { kind: "format" }>): ShellCommand {
  const command = formatCommand({ ...step, keySizeBits: step.keySize, label: step.label ?? undefined, subsystem: HFDE_SUBSYSTEM });
  return sh`${refuseUnlessPinned(step.device, step.disks)} || exit 3; ${refuseIfHeld(step.device)}; ${refuseIfNotBlank(step.device)}; ${command}`;
}

async function format(ctx: LuksContext, step: Extract<LuksStep, { kind: "format" }>): Promise<void> {
  await ctx.session.exec(formatShell(step), { stdin: keyOf(ctx, { role: "passphrase" }), timeoutMs: 900_000 });
}

async function addKey(ctx: LuksContext, step: Extract<LuksStep, { kind: "addKey" }>): Promise<void> {
  const added = keyOf(ctx, step.key);
  // A kill after luksAddKey but before the next probe must not add the key twice.
  if ((await unlockedSlot(ctx.session, step.device, added)) !== null) return;
  const existing = keyOf(ctx, step.authorizedBy);
  await ctx.session.exec(addKeyCommand(step.device, step.pbkdf), { stdin: twoKeys(existing, added), secrets: [existing, added], timeoutMs: 900_000 });
  if ((await unlockedSlot(ctx.session, step.device, added)) === null) {
    throw new Error(`luksAddKey on ${step.device} reported success, but the new passphrase opens no keyslot`);
  }
}

async function convertKey(ctx: LuksContext, step: Extract<LuksStep, { kind: "convertKey" }>): Promise<void> {
  await ctx.session.exec(convertKeyCommand(step.device, step.pbkdf), { stdin: keyOf(ctx, step.key), timeoutMs: 900_000 });
}

async function killSlot(ctx: LuksContext, step: Extract<LuksStep, { kind: "killSlot" }>): Promise<void> {
  const keep = keyOf(ctx, step.keep);
  // Prove, right before killing, that the key we keep opens a different slot: never kill the last way in.
  const kept = await unlockedSlot(ctx.session, step.device, keep);
  if (kept === null) throw new RefusalError(`keyslot ${step.slot}`, `refusing to kill keyslot ${step.slot} on ${step.device}: the passphrase to keep opens no slot`);
  if (kept === step.slot) throw new RefusalError(`keyslot ${step.slot}`, `refusing to kill keyslot ${step.slot} on ${step.device}: it is the slot the passphrase to keep opens`);
  const present = await ctx.session.exec(sh`cryptsetup luksDump --dump-json-metadata ${step.device}`);
  if (!(String(step.slot) in (JSON.parse(present.stdout) as { keyslots: object }).keyslots)) return; // already gone: converged
  // cryptsetup itself verifies again that `keep` opens a slot other than this one.
  await ctx.session.exec(killSlotCommand(step.device, step.slot), { stdin: keep, timeoutMs: 900_000 });
}

async function setLabel(ctx: LuksContext, step: Extract<LuksStep, { kind: "setLabel" }>): Promise<void> {
  await ctx.session.exec(setLabelCommand(step.device, step.label));
}

async function open(ctx: LuksContext, step: Extract<LuksStep, { kind: "open" }>): Promise<void> {
  await ctx.session.exec(openCommand(step.device, step.name, step.discard), { stdin: keyOf(ctx, { role: "passphrase" }), timeoutMs: 900_000 });
}

async function rename(ctx: LuksContext, step: Extract<LuksStep, { kind: "rename" }>): Promise<void> {
  // dmsetup renames a mapping that is in use (LVM on top keeps working); cryptsetup has no rename.
  await ctx.session.exec(sh`dmsetup rename ${step.from} ${step.to}`);
}

async function refreshDiscard(ctx: LuksContext, step: Extract<LuksStep, { kind: "refreshDiscard" }>): Promise<void> {
  await ctx.session.exec(refreshCommand(step.name, step.discard), { stdin: keyOf(ctx, { role: "passphrase" }), timeoutMs: 900_000 });
}

async function writeCrypttab(ctx: LuksContext, step: Extract<LuksStep, { kind: "writeCrypttab" }>): Promise<void> {
  // The UUID is read on the host: right after luksFormat the plan could not know it. Other lines
  // (and comments) are kept; the new file replaces the old one atomically.
  const file = `${step.root.replace(/\/+$/, "")}/etc/crypttab`;
  const options = step.options.length > 0 ? step.options.join(",") : "luks";
  await ctx.session.exec(sh`set -e; uuid=$(cryptsetup luksUUID ${step.device}); f=${file}; tmp="$f.hfde-tmp"
{ if [ -f "$f" ]; then awk -v n=${step.name} -v u="UUID=$uuid" '$1 != n && $2 != u' "$f"; fi; printf '%s UUID=%s none %s\n' ${step.name} "$uuid" ${options}; } > "$tmp"
chmod 0644 "$tmp"; mv "$tmp" "$f"`);
}

async function close(ctx: LuksContext, step: Extract<LuksStep, { kind: "close" }>): Promise<void> {
  await ctx.session.exec(closeCommand(step.name));
}

async function removeCrypttab(ctx: LuksContext, step: Extract<LuksStep, { kind: "removeCrypttab" }>): Promise<void> {
  const file = `${step.root.replace(/\/+$/, "")}/etc/crypttab`;
  await ctx.session.exec(sh`set -e; f=${file}; tmp="$f.hfde-tmp"; [ -f "$f" ] || exit 0
awk -v n=${step.name} -v u=${`UUID=${step.uuid}`} '$1 != n && $2 != u' "$f" > "$tmp"; chmod 0644 "$tmp"; mv "$tmp" "$f"`);
}

async function headerBackup(ctx: LuksContext, step: Extract<LuksStep, { kind: "headerBackup" }>): Promise<void> {
  // A backup already there from a killed earlier delete is fine if it is this container's header.
  const existing = await ctx.session.exec(sh`if [ -e ${step.file} ]; then cryptsetup luksUUID ${step.file} 2>/dev/null || echo not-luks; fi`);
  const found = existing.stdout.trim();
  if (found === step.uuid) return;
  if (found !== "") throw new RefusalError("headerBackupPath", `header backup file ${step.file} already exists and holds ${found === "not-luks" ? "no LUKS header" : `the header of ${found}`}; move it away or set headerBackupPath`);
  await ctx.session.exec(sh`mkdir -p "$(dirname ${step.file})" && ${headerBackupCommand(step.device, step.file)} && chmod 0600 ${step.file}`);
}

/** luksErase, behind the pin check and a check that the header is still the recorded one, in one round trip. */
export function eraseShell(step: Extract<LuksStep, { kind: "erase" }>): ShellCommand {
  return sh`${refuseUnlessPinned(step.device, step.disks)} || exit 3; [ "$(cryptsetup luksUUID ${step.device})" = ${step.uuid} ] || { echo ${`${step.device} no longer holds LUKS ${step.uuid}`} >&2; exit 3; }; ${eraseCommand(step.device)}`;
}

async function erase(ctx: LuksContext, step: Extract<LuksStep, { kind: "erase" }>): Promise<void> {
  // Re-check right before the irreversible part: the disks are the pinned ones and the header is still ours.
  await ctx.session.exec(eraseShell(step));
}

export const steps = {
  randomise,
  wipeSignatures,
  format,
  addKey,
  convertKey,
  killSlot,
  setLabel,
  open,
  rename,
  refreshDiscard,
  writeCrypttab,
  close,
  removeCrypttab,
  headerBackup,
  erase,
};
