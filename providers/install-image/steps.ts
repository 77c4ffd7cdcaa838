// InstallImage's steps: the only effects, each guarded on the host so a re-run converges.
import { PROVIDER_VERSION, requirePrivateKey } from "../kernel";
import { ensureKey, retireKey } from "../storage/cryptsetup";
import { normalizeWwn } from "../rules/device";
import { publicKeyOf } from "../plumbing/keys";
import { Secret } from "../plumbing/secret";
import { ShellCommand, joinShell, sh } from "../plumbing/shell";
import type { SshSession } from "../plumbing/ssh";
import { RootLocation } from "./autosetup";
import { shortHostname } from "./plan";
import { noSession, sshSession, waitForRescueGone, waitForSystem } from "./reach";
import { AUTOSETUP, DriveSpec, DEBUG_FILE, HOST_KEY_DROP_IN, INSTALL_TIMEOUT_MS, INSTALLIMAGE, InstallContext, InstallImageFailed, InstallImageStep, MARKER_FILE, WORK_DIR } from "./types";

// ---------------------------------------------------------------------------------------------
// steps (the only effects; each guarded so a re-run converges)

/** The SSH session every step acts through; none exists while the host waits in its initramfs. */
function shellOf(ctx: InstallContext): SshSession {
  if (ctx.session.ssh === null) throw new Error(`no SSH to the host: it is ${ctx.session.awaiting === "initramfs" ? "waiting in its initramfs for the LUKS passphrase" : "not answering"}`);
  return ctx.session.ssh;
}

/** The run's secret by name (InstallContext), or null. */
function key(ctx: InstallContext, name: "passphrase" | "oneTimePassphrase" | "hostKeyPrivate"): Secret | null {
  return ctx.keys[name] ?? null;
}

/** How often installimage's output is polled (stack config `installImagePollMs`, a test hook). */
function pollMs(ctx: InstallContext): number {
  const configured = Number(ctx.settings.installImagePollMs);
  return Number.isFinite(configured) && configured > 0 ? configured : 5000;
}

/** Shell that sets `$r` to the root's block device (opening nothing: a crypt root must already be open). */
function resolveRoot(root: RootLocation): ShellCommand {
  const crypt = root.kind === "part" && root.crypt ? "yes" : "no";
  return sh`r=${root.device}
if [ ${crypt} = yes ]; then r="/dev/mapper/luks-$(blkid -p -s UUID -o value "$r" 2>/dev/null)"; fi
[ -b "$r" ] || { echo "the installed root $r is not there (arrays stopped, or LUKS closed?)" >&2; exit 3; }`;
}

/** Shell that mounts the installed root read-write at `$M` (unmounted again on exit). */
function mountRoot(root: RootLocation): ShellCommand {
  return sh`set -e
${resolveRoot(root)}
M=${`${WORK_DIR}/root`}; mkdir -p "$M"
if ! mountpoint -q "$M"; then mount "$r" "$M"; trap 'umount "$M"' EXIT; fi`;
}

async function stopInstaller(ctx: InstallContext): Promise<void> {
  // installimage runs in its own session (setsid), so its pid is its process group.
  await shellOf(ctx).exec(sh`W=${WORK_DIR}; p=$(cat "$W/pid" 2>/dev/null); [ -n "$p" ] || exit 0
kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null
i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 30 ]; do sleep 1; i=$((i+1)); done
kill -KILL -- "-$p" 2>/dev/null; rm -f "$W/pid" "$W/rc"; true`);
}

async function writeAutosetup(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "writeAutosetup" }>): Promise<void> {
  const oneTime = key(ctx, "oneTimePassphrase");
  if (step.crypt && !oneTime) throw new Error("the layout encrypts, but no one-time passphrase was made for installimage");
  // The one-time passphrase goes in on stdin: it is never part of a command line.
  const text = step.crypt && oneTime ? `${step.text}CRYPTPASSWORD ${oneTime.reveal()}\n` : step.text;
  // Removed first: `cat >` into an existing file would keep that file's (maybe wider) mode.
  await shellOf(ctx).exec(sh`rm -f ${AUTOSETUP} && umask 077 && cat > ${AUTOSETUP}`, { stdin: new Secret(text) });
}

/** Shell that stops (exit 3) unless each drive exists and carries its pinned serial/WWN: re-checked right before acting. */
export function pinGuard(drives: readonly DriveSpec[]): ShellCommand {
  const lines = drives.flatMap((d) => [
    sh`[ -b ${d.path} ] || { echo ${`${d.path} does not exist`} >&2; exit 3; }`,
    ...(d.serial === undefined ? [] : [sh`s=$(lsblk -dn -o SERIAL ${d.path} | tr -d ' '); [ "$s" = ${d.serial} ] || { echo ${`${d.path} has serial`} "$s, expected" ${d.serial} >&2; exit 3; }`]),
    ...(d.wwn === undefined ? [] : [sh`w=$(lsblk -dn -o WWN ${d.path} | tr -d ' ' | tr A-F a-f); [ "$w" = ${normalizeWwn(d.wwn)} ] || { echo ${`${d.path} has WWN`} "$w, expected" ${d.wwn} >&2; exit 3; }`]),
  ]);
  // Each check exits 3 itself; joinShell groups them in braces, so a caller may append `|| exit 3`.
  return joinShell(lines.length > 0 ? lines : [sh`true`], ";");
}

/** Pin checks and the data guard, on the host, right before installimage is started. */
function preInstallGuard(step: Extract<InstallImageStep, { kind: "runInstallimage" }>): ShellCommand {
  const data = step.allowWipe
    ? sh`true`
    : sh`for d in ${step.drives.map((d) => d.path)}; do
  if [ -n "$(lsblk -n -o NAME "$d" | tail -n +2)" ] || [ -n "$(wipefs -n "$d" 2>/dev/null)" ]; then echo "$d carries data since the probe; not installing without allowWipe" >&2; exit 3; fi
done`;
  return joinShell([pinGuard(step.drives), data], "&&");
}

async function runInstallimage(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "runInstallimage" }>): Promise<void> {
  const W = WORK_DIR;
  const inner = sh`TERM=xterm ${INSTALLIMAGE} -a -c ${AUTOSETUP} > ${`${W}/log`} 2>&1; echo $? > ${`${W}/rc`}`;
  // Detached in its own session: a dropped connection or a killed provider cannot stop it half-way
  // through a partition table; the next run finds it by its pid and stops it before starting over.
  await shellOf(ctx).exec(sh`W=${W}; mkdir -p "$W" && chmod 700 "$W" && rm -f "$W/rc" "$W/log" "$W/pid"
${preInstallGuard(step)} || exit 3
{ printf '%s\\n' ${step.configSha256}; for d in ${step.drives.map((d) => d.path)}; do printf '%s\\t%s\\t%s\\n' "$d" "$(lsblk -dn -o SERIAL "$d" | tr -d ' ')" "$(lsblk -dn -o WWN "$d" | tr -d ' ')"; done; } > "$W/started-for"
setsid sh -c ${inner.text} </dev/null >/dev/null 2>&1 &
echo $! > "$W/pid"`);
  await followInstaller(ctx);
}

/** Streams installimage's output to the log until it exits; on failure, its ERROR: lines become the error. */
async function followInstaller(ctx: InstallContext): Promise<void> {
  const started = Date.now();
  let offset = 0;
  let partial = "";
  for (;;) {
    // Exit code and liveness first, output second: when the exit code is there, the output read
    // after it is complete.
    const result = await shellOf(ctx).exec(sh`W=${WORK_DIR}
rc=$(cat "$W/rc" 2>/dev/null); p=$(cat "$W/pid" 2>/dev/null); alive=dead; [ -n "$p" ] && kill -0 "$p" 2>/dev/null && alive=run
printf '%s\\036%s\\036' "$rc" "$alive"
tail -c +${offset + 1} "$W/log" 2>/dev/null | head -c 65536`);
    const [rcText = "", alive = "", ...rest] = result.stdout.split("\u001e");
    const rc = rcText.trim();
    const chunk = rest.join("\u001e");
    const bytes = Buffer.byteLength(chunk, "utf8");
    offset += bytes;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") ctx.log.info(`installimage: ${line}`);
    if (bytes >= 65536) continue; // more output is waiting
    if (rc !== "") {
      if (partial.trim() !== "") ctx.log.info(`installimage: ${partial}`);
      if (rc === "0") return;
      const debug = await shellOf(ctx).exec(sh`grep -a '^ERROR:' ${DEBUG_FILE} | tail -n 20`, { okExitCodes: [0, 1] });
      const errors = debug.stdout.split("\n").filter((l) => l.trim() !== "");
      throw new InstallImageFailed(
        `installimage exited ${rc}: ${errors.length > 0 ? errors.join(" | ") : `no ERROR: line in ${DEBUG_FILE}; read it on the host`}. Nothing is marked installed; fix the inputs and run up again`,
        errors,
      );
    }
    if (alive !== "run") throw new InstallImageFailed(`installimage stopped without an exit code (killed?); run up again to start over`, []);
    if (Date.now() - started > INSTALL_TIMEOUT_MS) throw new InstallImageFailed(`installimage still running after ${INSTALL_TIMEOUT_MS / 60_000} min; look at ${WORK_DIR}/log on the host`, []);
    await new Promise((resolve) => setTimeout(resolve, pollMs(ctx)));
  }
}

async function installHostKey(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "installHostKey" }>): Promise<void> {
  const hostKey = key(ctx, "hostKeyPrivate");
  if (!hostKey) throw new Error("no host key was generated for the installed system");
  // Private key on stdin only; the other key types go, so sshd presents exactly the pinned key.
  await shellOf(ctx).exec(
    sh`${mountRoot(step.root)}
umask 077
rm -f "$M"/etc/ssh/ssh_host_*
cat > "$M/etc/ssh/ssh_host_ed25519_key"
printf '%s\\n' ${publicKeyOf(hostKey, step.comment)} > "$M/etc/ssh/ssh_host_ed25519_key.pub"
chmod 600 "$M/etc/ssh/ssh_host_ed25519_key"; chmod 644 "$M/etc/ssh/ssh_host_ed25519_key.pub"
mkdir -p "$M/etc/ssh/sshd_config.d"
printf 'HostKey /etc/ssh/ssh_host_ed25519_key\\n' > "$M/"${HOST_KEY_DROP_IN}; chmod 644 "$M/"${HOST_KEY_DROP_IN}`,
    { stdin: hostKey },
  );
}

async function replacePassphrase(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "replacePassphrase" }>): Promise<void> {
  const oneTime = key(ctx, "oneTimePassphrase");
  const passphrase = key(ctx, "passphrase");
  if (!oneTime || !passphrase) throw new Error("replacing installimage's passphrase needs both the one-time and the real passphrase");
  for (const device of step.devices) {
    // ensureKey proves the real passphrase opens a slot; retireKey kills the one-time slot only then.
    await ensureKey(shellOf(ctx), device, oneTime, passphrase, step.pbkdf);
    await retireKey(shellOf(ctx), device, oneTime, passphrase);
  }
}

async function scrubSecrets(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "scrubSecrets" }>): Promise<void> {
  const known = [key(ctx, "oneTimePassphrase"), key(ctx, "passphrase")].filter((s): s is Secret => s !== null);
  const files = sh`${AUTOSETUP} ${DEBUG_FILE} "$M/installimage.conf" "$M/installimage.debug" ${`${WORK_DIR}/log`}`;
  // Then prove it: neither passphrase is left in any of them (patterns on stdin, names printed, never lines).
  const verify =
    known.length === 0
      ? sh`true`
      : sh`set --; for f in ${files}; do if [ -f "$f" ]; then set -- "$@" "$f"; fi; done
if [ $# -gt 0 ] && grep -a -l -F -f - "$@"; then echo "a passphrase is still in the files above" >&2; exit 3; fi`;
  await shellOf(ctx).exec(
    sh`${mountRoot(step.root)}
for f in ${files}; do if [ -f "$f" ]; then sed -i '/CRYPTPASSWORD/d' "$f"; fi; done
${verify}`,
    { stdin: new Secret(known.map((s) => s.reveal()).join("\n") + "\n") },
  );
}

async function writeMarker(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "writeMarker" }>): Promise<void> {
  // A new id per install: the marker names the install, not the server.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require("crypto") as typeof import("crypto");
  const marker = JSON.stringify({ installId: crypto.randomUUID(), configSha256: step.configSha256, installedAt: new Date().toISOString(), providerVersion: PROVIDER_VERSION });
  await shellOf(ctx).exec(
    sh`${mountRoot(step.root)}
mkdir -p "$M/etc/hetzner-fde"
cat > "$M/"${MARKER_FILE}.tmp && mv "$M/"${MARKER_FILE}.tmp "$M/"${MARKER_FILE} && sync`,
    { stdin: marker + "\n" },
  );
}

async function setHostname(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "setHostname" }>): Promise<void> {
  const short = shortHostname(step.hostname);
  const names = step.hostname === short ? short : `${step.hostname} ${short}`;
  const where = step.root ? mountRoot(step.root) : sh`set -e; M=''`;
  const live = step.root ? sh`true` : sh`hostname ${short}`;
  await shellOf(ctx).exec(sh`${where}
n=${names}
printf '%s\\n' ${short} > "$M/etc/hostname"
if grep -q '^127[.]0[.]1[.]1[[:space:]]' "$M/etc/hosts"; then sed -i "s/^127[.]0[.]1[.]1[[:space:]].*/127.0.1.1 $n/" "$M/etc/hosts"; else echo "127.0.1.1 $n" >> "$M/etc/hosts"; fi
${live}`);
}

async function reassemble(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "reassemble" }>): Promise<void> {
  // Exit 1/2 ("nothing to assemble") is judged by the next probe, not here.
  await shellOf(ctx).exec(sh`for a in ${step.arrays}; do mdadm --stop "$a" || true; done
mdadm --assemble --scan ${step.force ? "--force" : []}`, { okExitCodes: [0, 1, 2] });
}

async function readdMember(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "readdMember" }>): Promise<void> {
  // Only the pinned disk, and only a partition that is blank or already carries THIS array's
  // superblock, unless allowWipe: the resync overwrites whatever the partition held.
  await shellOf(ctx).exec(sh`${pinGuard([step.pin])} || exit 3
a=${step.array}; m=${step.member}
[ -b "$m" ] || { echo "$m does not exist" >&2; exit 3; }
su=$(mdadm --examine --export "$m" 2>/dev/null | sed -n 's/^MD_UUID=//p' | tr -d ':-' | tr A-F a-f)
if [ -n "$su" ] && [ "$su" != ${step.uuid} ]; then echo "$m carries the superblock of another array ($su); not adding it to $a" >&2; exit 3; fi
ty=$(blkid -p -s TYPE -o value "$m" 2>/dev/null)
if [ -z "$su" ] && [ -n "$ty" ]; then
  if [ ${step.allowWipe ? "yes" : "no"} = yes ]; then wipefs -a -q "$m"; else echo "$m holds $ty since the probe; not adding it to $a without allowWipe" >&2; exit 3; fi
fi
mdadm "$a" --remove "$m" >/dev/null 2>&1 || true
mdadm "$a" --re-add "$m" 2>/dev/null || mdadm "$a" --add "$m"`);
}

async function waitForResync(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "waitForResync" }>): Promise<void> {
  const file = "/proc/sys/dev/raid/speed_limit_max";
  const old = (await shellOf(ctx).exec(sh`cat ${file}`)).stdout.trim();
  await shellOf(ctx).exec(sh`echo ${step.speedLimitMax} > ${file}`);
  try {
    for (;;) {
      // /proc/mdstat as well: an array whose resync waits behind another's (resync=DELAYED) may read idle in sysfs.
      const state = await shellOf(ctx).exec(sh`for a in /sys/block/md*/md; do n=$(basename "$(dirname "$a")"); printf '%s %s %s %s\\n' "$n" "$(cat "$a/sync_action")" "$(cat "$a/sync_completed")" "$(cat "$a/sync_speed")"; done
grep -c -E 'resync|recovery' /proc/mdstat || true`);
      const lines = state.stdout.trim().split("\n");
      const pending = Number(lines.pop() ?? "0");
      const busy = lines.filter((l) => /\S+ (resync|recover|check|repair)\b/.test(l));
      if (busy.length === 0 && !(pending > 0)) return;
      ctx.log.info(`resync (speed_limit_max ${step.speedLimitMax}): ${busy.map((l) => describeSyncLine(l)).join("; ")}`);
      await new Promise((resolve) => setTimeout(resolve, pollMs(ctx) * 3));
    }
  } finally {
    if (/^\d+$/.test(old)) await shellOf(ctx).exec(sh`echo ${old} > ${file}`);
  }
}

/** `md1 resync 1024 / 4096 5000` → `md1 resync 25.0% at 5000 KiB/s`. */
export function describeSyncLine(line: string): string {
  const [name, action, done, , total, speed] = line.trim().split(/\s+/);
  const percent = Number(total) > 0 ? `${((100 * Number(done)) / Number(total)).toFixed(1)}%` : "?";
  return `${name} ${action} ${percent}${speed && /^\d+$/.test(speed) ? ` at ${speed} KiB/s` : ""}`;
}

async function tuneResync(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "tuneResync" }>): Promise<void> {
  // A watcher on the host restores the old limit when the sync ends, so create need not wait hours.
  const restore = sh`while grep -q -E 'resync|recovery' /proc/mdstat; do sleep 10; done; echo "$OLD" > /proc/sys/dev/raid/speed_limit_max`;
  const result = await shellOf(ctx).exec(sh`f=/proc/sys/dev/raid/speed_limit_max; old=$(cat "$f")
grep -q -E 'resync|recovery' /proc/mdstat || exit 0
echo ${step.speedLimitMax} > "$f"
OLD="$old" setsid sh -c ${restore.text} </dev/null >/dev/null 2>&1 &
echo "$old"; grep -E 'resync|recovery' /proc/mdstat`);
  const [old, ...progress] = result.stdout.trim().split("\n");
  ctx.log.info(`initial resync: speed_limit_max ${old} → ${step.speedLimitMax} until it ends (then restored); ${progress.map((l) => l.trim()).join("; ")}`);
}

/**
 * Reboots, and follows the host: to the installed system's sshd (pinned to the key in its root), or,
 * when it boots into an initramfs that waits for the LUKS passphrase, until the rescue is gone (no SSH
 * until the passphrase is typed; DropbearInitramfs brings the remote unlock). The next probe looks there.
 */
async function reboot(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "reboot" }>): Promise<void> {
  await shellOf(ctx).exec(sh`sync; setsid sh -c 'sleep 2; reboot' </dev/null >/dev/null 2>&1 &`);
  const report = (line: string): void => ctx.log.info(line);
  if (step.system === null) {
    await waitForRescueGone(step.rescue, report);
    ctx.log.info("rebooted; the installed system now waits in its initramfs for the LUKS passphrase");
    ctx.continueOn?.(noSession("initramfs"), { environment: "initramfs", host: `${step.rescue.host}:${step.rescue.port}` });
    return;
  }
  const ssh = await waitForSystem(step.system, step.rescue.hostKeyFingerprints, requirePrivateKey(ctx.config, "InstallImage"), report);
  ctx.continueOn?.(sshSession(ssh), { environment: "system", host: `${step.system.host}:${step.system.port}` });
}

async function stopStorage(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "stopStorage" }>): Promise<void> {
  // Deepest first (lsblk lists parents first, so reversed), a few rounds for stacks md → LUKS → LVM.
  await shellOf(ctx).exec(sh`ds=${step.drives.map((d) => d.path)}
for round in 1 2 3 4 5; do
  lsblk -n -r -o PATH,TYPE,MOUNTPOINT $ds 2>/dev/null | tac | while read -r p ty mp; do
    case "$mp" in "") ;; "[SWAP]") swapoff "$p" 2>/dev/null ;; *) umount "$p" 2>/dev/null ;; esac
    case "$ty" in lvm) lvchange -an "$p" 2>/dev/null || dmsetup remove "$p" 2>/dev/null ;; crypt) cryptsetup close "$p" 2>/dev/null ;; raid*) mdadm --stop "$p" >/dev/null 2>&1 ;; esac
  done
done
left=$(lsblk -n -r -o PATH,TYPE $ds 2>/dev/null | awk '$2 != "disk" && $2 != "part"' | sort -u)
[ -z "$left" ] || { echo "still in use on the drives: $left" >&2; exit 3; }`);
}

async function wipeDrives(ctx: InstallContext, step: Extract<InstallImageStep, { kind: "wipeDrives" }>): Promise<void> {
  // Pins are checked again right before the first write (same guard as the install).
  await shellOf(ctx).exec(sh`${pinGuard(step.drives)} || exit 3
for d in ${step.drives.map((d) => d.path)}; do
  for p in $(lsblk -n -r -o PATH,TYPE "$d" | awk '$2 == "part" {print $1}'); do mdadm --zero-superblock "$p" >/dev/null 2>&1; wipefs -a -q "$p"; done
  wipefs -a -q "$d"
  dd if=/dev/zero of="$d" bs=1M count=2 conv=fsync status=none
  blockdev --rereadpt "$d" 2>/dev/null || partprobe "$d" 2>/dev/null || true
done`);
}

export const steps = {
  stopInstaller,
  writeAutosetup,
  runInstallimage,
  installHostKey,
  replacePassphrase,
  scrubSecrets,
  writeMarker,
  setHostname,
  reassemble,
  readdMember,
  waitForResync,
  tuneResync,
  reboot,
  stopStorage,
  wipeDrives,
};

