// DropbearInitramfs's steps: the only effects. Each one is guarded on the host (a re-run after a
// kill finds the work done or redoes it whole), and secrets travel only on stdin: the passphrase to
// cryptsetup and cryptroot-unlock, the host key inside configure.sh's records.
import type { HostContext } from "../kernel";
import { RefusalError } from "../kernel/resource";
import { sh, ShellCommand } from "../plumbing/shell";
import { gateProblems, parseGateFacts } from "./gate";
import { unlockAndVerify } from "./loop";
import { MODULES_BEGIN, MODULES_END, MODULES_FILE } from "./render";
import { CLOSE_ROOT_SH, CONFIGURE_SH, GATE_FACTS_SH, OPEN_ROOT_SH } from "./scripts";
import type { DropbearInitramfsStep, LoopTargets, RootPath } from "./types";
import type { Secret } from "../plumbing/secret";

/** The kernel's context; `continueOn` carries the run over to the system the loop ends in. */
export type DropbearContext = HostContext;

type StepOf<K extends DropbearInitramfsStep["kind"]> = Extract<DropbearInitramfsStep, { kind: K }>;

/** `chroot ROOT` in rescue, nothing on the running system. */
function inRoot(root: RootPath): string[] {
  return root === "" ? [] : ["chroot", root];
}

const APT_OPTIONS = ["-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "-y", "--no-install-recommends"];

/**
 * A step killed mid-way (provider host killed, connection dropped) leaves its remote command running:
 * a non-tty session's process gets no hangup. The re-run takes the same lock on the host (in the
 * rescue's /run for a chroot) and so waits for that command to end instead of racing it: two
 * update-initramfs writing one image, or two dpkg runs.
 */
function exclusive(command: ShellCommand): ShellCommand {
  return sh`flock -w 3600 /run/lock/hetzner-fde-dropbear.lock sh -c ${command.text}`;
}

function countBuilds(output: string): number {
  return (output.match(/update-initramfs: Generating /g) ?? []).length;
}

async function openRoot(ctx: DropbearContext, step: StepOf<"openRoot">): Promise<void> {
  await ctx.session.exec(sh`bash -c ${OPEN_ROOT_SH} open-root`, { stdin: step.passphrase ?? "", timeoutMs: 10 * 60_000 });
}

async function writeConfig(ctx: DropbearContext, step: StepOf<"writeConfig">): Promise<void> {
  await ctx.session.exec(sh`bash -c ${CONFIGURE_SH} configure ${step.root} ${MODULES_FILE} ${MODULES_BEGIN} ${MODULES_END} ${step.module ?? ""} ${[...step.stale]}`, {
    stdin: step.records,
    timeoutMs: 120_000,
  });
}

async function installPackages(ctx: DropbearContext, step: StepOf<"installPackages">): Promise<void> {
  const root = inRoot(step.root);
  const started = Date.now();
  // `dpkg --configure -a` first: a run killed inside dpkg leaves packages half-configured, and apt refuses to go on until they are finished.
  const command: ShellCommand = sh`${root} env DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a 2>&1 && ${root} env DEBIAN_FRONTEND=noninteractive apt-get -qq update && ${root} env DEBIAN_FRONTEND=noninteractive apt-get ${APT_OPTIONS} install ${[...step.packages]} 2>&1`;
  const result = await ctx.session.exec(exclusive(command), { timeoutMs: 60 * 60_000 });
  ctx.log.info(`installed ${step.packages.join(", ")} in ${Math.round((Date.now() - started) / 1000)} s; update-initramfs ran ${countBuilds(result.stdout)} time(s) (dpkg's trigger, after every hook was in place)`);
}

async function buildInitramfs(ctx: DropbearContext, step: StepOf<"buildInitramfs">): Promise<void> {
  const started = Date.now();
  await ctx.session.exec(exclusive(sh`${inRoot(step.root)} update-initramfs -u -k ${step.kernel} 2>&1`), { timeoutMs: 60 * 60_000 });
  ctx.log.info(`update-initramfs built /boot/initrd.img-${step.kernel} once, in ${Math.round((Date.now() - started) / 1000)} s`);
}

async function gate(ctx: DropbearContext, step: StepOf<"gate">): Promise<void> {
  const result = await ctx.session.exec(sh`bash -c ${GATE_FACTS_SH} gate-facts ${step.root} ${step.mac.toLowerCase()} ${""} renew`, { timeoutMs: 15 * 60_000 });
  const problems = gateProblems(parseGateFacts(result.stdout), step.expectation);
  if (problems.length > 0) {
    throw new RefusalError(
      "DropbearInitramfs",
      `the built initramfs would leave the host unreachable, so it was not rebooted:\n${problems.map((p) => `  - ${p.piece}: ${p.message}`).join("\n")}`,
    );
  }
  ctx.log.info("gate: the built initramfs has dropbear, the pinned host key, the keys, cryptroot, mdadm.conf, mdadm, lvm, the NIC driver and the network; GRUB boots it");
}

async function closeRoot(ctx: DropbearContext): Promise<void> {
  await ctx.session.exec(sh`bash -s`, { stdin: CLOSE_ROOT_SH, timeoutMs: 120_000 });
}

async function loop(ctx: DropbearContext, targets: LoopTargets, passphrase: Secret, reboot: boolean): Promise<void> {
  const privateKey = ctx.config.privateKey;
  if (privateKey === null) throw new Error("no SSH private key in the provider config");
  const previous = [ctx.session.observedHostKey.fingerprint];
  if (reboot) {
    await ctx.session.exec(sh`sync; setsid sh -c 'sleep 2; reboot' </dev/null >/dev/null 2>&1 &`);
    await ctx.session.close();
    ctx.log.info("rebooting into the installed system; waiting for dropbear in its initramfs");
  }
  const result = await unlockAndVerify(targets, passphrase, privateKey, ctx.log, previous);
  ctx.log.info(
    `${reboot ? "reboot" : "locked host"} → dropbear ${result.dropbearSeconds} s → unlocked ${result.unlockedSeconds} s → sshd ${result.sshdSeconds} s; arrays, LUKS, mounts and host name verified`,
  );
  if (ctx.continueOn) ctx.continueOn(result.session, { environment: "system", host: `${targets.system.host}:${targets.system.port}` });
  else await result.session.close();
}

async function removeUnlock(ctx: DropbearContext, step: StepOf<"removeUnlock">): Promise<void> {
  await ctx.session.exec(sh`bash -c ${CONFIGURE_SH} configure ${step.root} ${MODULES_FILE} ${MODULES_BEGIN} ${MODULES_END} ${""} ${[...step.paths]}`, { stdin: "", timeoutMs: 120_000 });
  const result = await ctx.session.exec(exclusive(sh`${inRoot(step.root)} env DEBIAN_FRONTEND=noninteractive apt-get -y purge dropbear-initramfs 2>&1`), { timeoutMs: 60 * 60_000 });
  ctx.log.info(`removed dropbear-initramfs and the stack's files; update-initramfs ran ${countBuilds(result.stdout)} time(s)`);
}

export const steps = {
  openRoot,
  writeConfig,
  installPackages,
  buildInitramfs,
  gate,
  closeRoot: (ctx: DropbearContext) => closeRoot(ctx),
  rebootAndUnlock: (ctx: DropbearContext, step: StepOf<"rebootAndUnlock">) => loop(ctx, step.targets, step.passphrase, true),
  unlock: (ctx: DropbearContext, step: StepOf<"unlock">) => loop(ctx, step.targets, step.passphrase, false),
  removeUnlock,
};
