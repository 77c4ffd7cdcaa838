// steps (the only effects; each safe to re-run).
import { RefusalError } from "../kernel/resource";
import type { ResetType } from "../plumbing/robot";
import { connect } from "../plumbing/ssh";
import { identityCommand, identityProblems, parseIdentity } from "./identity";
import type { RescueContext, RescueStep } from "./types";


async function registerKey(ctx: RescueContext, step: Extract<RescueStep, { kind: "registerKey" }>): Promise<void> {
  // ensureKey matches by fingerprint, so a concurrent or earlier upload is reused, not duplicated.
  await ctx.session.robot.ensureKey(`hetzner-fde-${step.fingerprint.replace(/:/g, "").slice(0, 12)}`, step.publicKey);
}

async function disarmBoot(ctx: RescueContext, step: Extract<RescueStep, { kind: "disarmBoot" }>): Promise<void> {
  await ctx.session.robot.disarmBoot(ctx.session.serverNumber, step.bootType);
}

async function armRescue(ctx: RescueContext, step: Extract<RescueStep, { kind: "armRescue" }>): Promise<void> {
  // Re-arming replaces an earlier arm (new password, new host key): what a re-run after a kill needs.
  const armed = await ctx.session.robot.armRescue(ctx.session.serverNumber, { os: "linux", authorizedKeys: step.fingerprints });
  const fingerprints = armed.hostKeys.map((k) => k.fingerprint);
  if (fingerprints.length === 0 && !step.allowFirstContactHostKey) {
    // Refuse before the reset: once it boots, there is no way left to know the rescue's key.
    await ctx.session.robot.disarmRescue(ctx.session.serverNumber);
    throw new RefusalError(
      "allowFirstContactHostKey",
      `Robot reported no host key for the rescue of server ${ctx.session.serverNumber}, and allowFirstContactHostKey is false, so its key could not be verified. ` +
        "Rescue was disarmed again and the server was not reset. Set allowFirstContactHostKey: true to trust the key the rescue presents on first contact (for this boot only; it is recorded in hostKeySource).",
    );
  }
  ctx.session.armedHostKeys = fingerprints;
}

async function reset(ctx: RescueContext, step: Extract<RescueStep, { kind: "reset" }>): Promise<void> {
  // One reset per run: the client waits out a rate limit (Robot refused, so nothing ran) and never
  // repeats a reset whose answer was lost.
  // The boot time and the consumed arm are Robot's to report: the next probe reads them.
  await ctx.session.robot.reset(ctx.session.serverNumber, step.resetType as ResetType);
}

async function awaitRescue(ctx: RescueContext, step: Extract<RescueStep, { kind: "awaitRescue" }>): Promise<void> {
  // Robot's SHA256 and MD5 fingerprints alike are checked in the host-key callback: a host with
  // another key is refused before we authenticate, so it never sees a login or a command.
  const announced = step.pin.source === "armed" ? (ctx.session.armedHostKeys ?? []) : step.pin.fingerprints;
  const verifiedByRobot = announced.length > 0;
  if (!verifiedByRobot && !step.allowFirstContactHostKey) {
    throw new RefusalError(
      "allowFirstContactHostKey",
      `Robot reported no host key for the rescue of server ${ctx.session.serverNumber}, and allowFirstContactHostKey is false. Set it to true for this server (README "First contact"), or bump generation once Robot reports host keys.`,
    );
  }
  const logger = ctx.log.child("ssh");
  const session = await connect(
    {
      host: step.host,
      port: step.port,
      user: "root",
      privateKey: ctx.session.privateKey,
      hostKey: verifiedByRobot ? { expect: announced } : { acceptNew: true },
      label: `rescue ${step.host}:${step.port}`,
    },
    // A booting server drops SYNs without a reset, and a TCP connect then waits out the kernel's SYN
    // backoff (1, 2, 4, 8, 16 s…) even after sshd is up; a fresh dial every 10 s gets in sooner.
    { budgetMs: step.budgetMs, logger, attemptTimeoutMs: 10_000 },
  );
  try {
    const observed = session.observedHostKey;
    const facts = await session.exec(identityCommand(), { timeoutMs: 60_000 });
    const problems = identityProblems(parseIdentity(facts.stdout), step.identity);
    if (problems.length > 0) {
      throw new RefusalError(
        session.address,
        `${session.address} answered with ${observed.type} ${observed.fingerprint}, but ${problems.join("; ")}. Nothing was changed on it. ` +
          "Check that the address reaches this server (connect.host, Robot's IP), that driveSerials are this server's, then bump generation to boot rescue again.",
      );
    }
    // Pinned from now on: the SHA256 of the key that passed (Robot's MD5 is not a form other resources pin).
    const sha256s = announced.filter((fp) => fp.startsWith("SHA256:"));
    const source = verifiedByRobot ? "robot" : "first-contact";
    ctx.session.verified = { hostKey: observed, source, pinned: sha256s.length > 0 ? sha256s : [observed.fingerprint] };
    if (source === "first-contact") {
      ctx.log.info(`Robot reported no host key: trusted ${observed.type} ${observed.fingerprint} on first contact, for this rescue boot only (hostKeySource: first-contact)`);
    }
  } finally {
    await session.close();
  }
}

async function disarmRescue(ctx: RescueContext): Promise<void> {
  // Already disarmed, or the server is gone from the account: nothing left to undo.
  await ctx.session.robot.disarmRescue(ctx.session.serverNumber, { accept: ["NOT_FOUND", "SERVER_NOT_FOUND"] });
}

export const steps = { registerKey, disarmBoot, armRescue, reset, awaitRescue, disarmRescue };
