// InstallImage's provider: check, diff, create/update (probe → plan → apply, following the host
// through its reboot into the installed system), read, and delete (from a rescue booted through
// Robot when the host is not in one).
//
// Not (yet) the kernel's KernelProvider: that loop keeps one session to one host, while create
// here reboots mid-loop and continues on the installed system (or stops at the LUKS prompt), and
// delete reaches its host by booting rescue through Robot. It uses the kernel's config, classifier,
// refusal error and step runner. This module is serialized into state with the provider object.
import * as pulumi from "@pulumi/pulumi";
import {
  ConnectionProfile,
  ProviderConfig,
  RefusalError,
  ReachedHost,
  checkResult,
  classifyHost,
  jsonSafe,
  openFirstReachable,
  readProviderConfig,
  requirePrivateKey,
  runPlan,
  runStep,
} from "../kernel";
import { createLogger } from "../plumbing/log";
import { generateEd25519KeyPair, parsePublicKey, sha256Fingerprint } from "../plumbing/keys";
import { Secret } from "../plumbing/secret";
import { SshSession, connect, observeEndpoint } from "../plumbing/ssh";
import { bootRescue } from "../rescue-boot";
import { usesCrypt } from "./autosetup";
import { inputsOf, outputsFrom, systemEndpoint } from "./outputs";
import { compareOutputs, dataOnDrives, plan, planDelete, shortHostname } from "./plan";
import { probe } from "./probe";
import { steps } from "./steps";
import { DEFAULT_CRYPT_PBKDF, InstallContext, InstallImageInputs, InstallImageOutputs, InstallObserved, SYSTEM_WAIT_MS } from "./types";
import { describeLoss, migrateOutputs, validate, validateReplacement } from "./validate";
import { planWipeAccess, rescueGoneOnCreate, wipeProfiles } from "./wipe-access";

/** Rounds of probe → plan → apply: install, finish + reboot, resync on the system, converged. */
const MAX_ROUNDS = 6;

class InstallImageProvider implements pulumi.dynamic.ResourceProvider<InstallImageInputs, InstallImageOutputs> {
  // From the stack config in configure; never in a resource's inputs or state. Only delete uses
  // Robot: to boot rescue when the host is not in it.
  private config: ProviderConfig = { privateKey: null, robot: null };
  // Test hook: how often installimage's output is polled.
  private pollMs = 5000;

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    this.config = readProviderConfig((name) => req.config.get(name));
    const poll = req.config.get("installImagePollMs");
    if (poll !== undefined) this.pollMs = Number(poll);
  }

  async check(olds: InstallImageInputs, news: InstallImageInputs): Promise<pulumi.dynamic.CheckResult<InstallImageInputs>> {
    return checkResult(news, [...validate(news), ...validateReplacement(olds, news)]);
  }

  async diff(_id: string, olds: InstallImageOutputs, news: InstallImageInputs): Promise<pulumi.dynamic.DiffResult> {
    return compareOutputs(olds, news);
  }

  async create(inputs: InstallImageInputs): Promise<pulumi.dynamic.CreateResult<InstallImageOutputs>> {
    const outs = await this.converge(inputs, null);
    return { id: outs.installId, outs };
  }

  async update(_id: string, stored: InstallImageOutputs, news: InstallImageInputs): Promise<pulumi.dynamic.UpdateResult<InstallImageOutputs>> {
    const olds = migrateOutputs(stored);
    const hostWork = olds.hostname !== news.hostname || (olds.observedHostname !== null && olds.observedHostname !== shortHostname(news.hostname)) || (olds.drift ?? []).length > 0;
    // Settings and connection profiles are stored, not applied: they change nothing on the host.
    if (!hostWork) return { outs: jsonSafe({ ...olds, ...inputsOf(news) }, "outputs") };
    return { outs: await this.converge(news, olds) };
  }

  async read(id: string, stored?: InstallImageOutputs): Promise<pulumi.dynamic.ReadResult<InstallImageOutputs>> {
    if (!stored?.installId) throw new Error(`InstallImage ${id}: read needs the stored outputs; import is not supported`);
    const props = migrateOutputs(stored);
    const key = this.requireKey();
    let reached;
    try {
      reached = await openFirstReachable(this.profiles(props), key, { preferred: ["system", "rescue"] });
    } catch (error) {
      if (error instanceof Error && error.name === "HostKeyMismatchError") throw error;
      // Not drift: a host waiting in its initramfs, or off, still holds the install.
      return { id, props: jsonSafe({ ...props, environment: "unreachable" as const }, "outputs"), inputs: inputsOf(props) as InstallImageOutputs };
    }
    const ctx = this.context(reached.session, `${reached.profile.host}:${reached.profile.port}`, null, null, props);
    try {
      const observed = await probe(ctx, props);
      const marker = observed.root?.marker;
      if (marker && marker.installId !== props.installId) return {}; // another install took these drives
      if (!marker && observed.root && observed.environment === "rescue" && observed.arrays.length === 0 && dataOnDrives(observed, props.drives).length === 0) return {}; // wiped
      const outs = outputsFrom(props, observed, { environment: observed.environment, host: ctx.host, boots: props.boots, previous: props });
      return { id, props: outs, inputs: inputsOf(props) as InstallImageOutputs };
    } finally {
      await reached.session.close();
    }
  }

  async delete(_id: string, stored: InstallImageOutputs): Promise<void> {
    const props = migrateOutputs(stored);
    // The kernel's retain policy (providers/kernel/provider.ts): without allowWipe nothing on the
    // host is touched, the resource leaves the stack, and the warning says what was kept.
    if (props.allowWipe !== true) {
      createLogger({ context: `InstallImage ${props.hostname}` }).warn(
        `delete leaves ${describeLoss(props)} untouched: allowWipe is false, so it is retained (the resource leaves the stack, nothing on the host changed). ` +
          "To remove it instead, set allowWipe: true, run up, then destroy",
      );
      return;
    }
    const key = this.requireKey();
    const reached = await this.rescueToWipeFrom(props, key);
    const ctx = this.context(reached.session, `${reached.profile.host}:${reached.profile.port}`, null, null, props);
    try {
      const observed = await runStep(ctx, "probe", () => probe(ctx, props));
      await runPlan(ctx, planDelete(observed, props), steps);
    } finally {
      await reached.session.close();
    }
  }

  /** The stored rescue while it still runs; otherwise a fresh rescue booted through Robot with RescueBoot's steps. */
  private async rescueToWipeFrom(props: InstallImageOutputs, key: Secret): Promise<ReachedHost> {
    const state = classifyHost(await observeEndpoint(props.rescue.host, props.rescue.port), wipeProfiles(props));
    const access = planWipeAccess(state, props, this.config.robot !== null);
    if (access.kind === "storedRescue") return openFirstReachable([props.rescue], key);
    createLogger({ context: `InstallImage ${props.hostname}`, secrets: [key] }).info(`wiping needs the rescue system, but ${access.why}: booting rescue through Robot (server ${access.desired.serverNumber}, reset "${access.desired.resetType}")`);
    const booted = await bootRescue({ config: this.config, settings: {} }, access.desired, access.bootedAfter);
    return openFirstReachable([booted.profile], key);
  }

  /** Probe, plan, apply until the plan is empty, following the host through its reboot. */
  /** `olds`: the recorded outputs, null on create (the plan's `recorded`: create installs and reboots, update only repairs). */
  private async converge(inputs: InstallImageInputs, olds: InstallImageOutputs | null): Promise<InstallImageOutputs> {
    const mode = olds === null ? "create" : "update";
    const key = this.requireKey();
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const crypt = usesCrypt(inputs.partitions);
    const oneTime = crypt ? new Secret(crypto.randomBytes(24).toString("base64url")) : null;
    const passphrase = inputs.cryptPassphrase !== undefined ? new Secret(inputs.cryptPassphrase) : null;
    const profiles = mode === "create" ? [inputs.rescue] : this.profiles({ ...inputs, hostKeyFingerprints: olds?.hostKeyFingerprints ?? [] });
    const reached = await openFirstReachable(profiles, key, { preferred: ["system", "rescue"] }).catch((error: unknown) => {
      throw mode === "create" ? new RefusalError("rescue", rescueGoneOnCreate(inputs.rescue, error)) : error;
    });
    let session = reached.session;
    let ctx = this.context(session, `${reached.profile.host}:${reached.profile.port}`, oneTime, passphrase, inputs);
    let boots = olds?.boots ?? 0;
    let lastObserved: InstallObserved | null = null;
    try {
      for (let round = 1; round <= MAX_ROUNDS; round++) {
        const observed = await runStep(ctx, "probe", () => probe(ctx, inputs));
        const todo = plan(observed, inputs, olds);
        if (todo.length === 0) return outputsFrom(inputs, observed, { environment: observed.environment, host: ctx.host, boots, previous: olds ?? undefined });
        lastObserved = observed;
        await runPlan(ctx, todo, steps);
        if (!todo.some((s) => s.kind === "reboot")) continue;
        boots++;
        await session.close();
        if (crypt) {
          // No SSH until the passphrase is typed (dropbear comes with a later resource): the
          // outputs are what rescue saw just before the reboot.
          ctx.log.info("rebooted; the installed system now waits in its initramfs for the LUKS passphrase");
          return outputsFrom(inputs, lastObserved, { environment: "initramfs-locked", host: ctx.host, boots, previous: olds ?? undefined });
        }
        const system = this.systemProfile(inputs, lastObserved);
        session = await runStep(ctx, "waitForSystem", () => this.waitForSystem(ctx, system, inputs.rescue.hostKeyFingerprints));
        const host = `${system.host}:${system.port}`;
        ctx = { ...ctx, session, host, log: createLogger({ context: `InstallImage ${host}`, secrets: ctx.secrets }) };
      }
      throw new Error(`InstallImage ${inputs.hostname}: not converged after ${MAX_ROUNDS} rounds of probe and apply; run up again, and report it if it persists`);
    } finally {
      await session.close();
    }
  }

  private systemProfile(inputs: InstallImageInputs, observed: InstallObserved): ConnectionProfile {
    const endpoint = systemEndpoint(inputs);
    const fingerprints = (observed.root?.hostKeys ?? []).map((line) => sha256Fingerprint(parsePublicKey(line)));
    if (fingerprints.length === 0) throw new Error("the installed root has no SSH host key to pin; not waiting for an sshd that cannot be verified");
    return { environment: "system", host: endpoint.host, port: endpoint.port, user: "root", hostKeyFingerprints: fingerprints };
  }

  /** Waits for the installed system's sshd with its pinned key; the rescue's key means "not rebooted yet". */
  private async waitForSystem(ctx: InstallContext, profile: ConnectionProfile, rescueKeys: readonly string[]): Promise<SshSession> {
    const started = Date.now();
    let lastReport = 0;
    for (;;) {
      let why: string;
      try {
        return await connect(
          { host: profile.host, port: profile.port, user: profile.user, privateKey: this.requireKey(), hostKey: { expect: profile.hostKeyFingerprints }, label: `system ${profile.host}:${profile.port}` },
          { maxAttempts: 1, budgetMs: 20_000, attemptTimeoutMs: 20_000 },
        );
      } catch (error) {
        if (error instanceof Error && error.name === "HostKeyMismatchError") {
          const observed = (error as Error & { observed?: { fingerprint?: string } }).observed?.fingerprint ?? "";
          if (!rescueKeys.includes(observed)) throw error; // neither rescue nor our key: not our host
          why = "rescue still answering";
        } else why = error instanceof Error ? error.message.split("\n")[0] : String(error);
      }
      const elapsed = Date.now() - started;
      if (elapsed > SYSTEM_WAIT_MS) throw new Error(`the installed system did not answer SSH with its pinned key within ${SYSTEM_WAIT_MS / 60_000} min (last: ${why}); look at the server's console`);
      if (elapsed - lastReport >= 30_000) {
        ctx.log.info(`waiting for the installed system on ${profile.host}:${profile.port} (${Math.round(elapsed / 1000)} s): ${why}`);
        lastReport = elapsed;
      }
      await new Promise((resolve) => setTimeout(resolve, 5000));
    }
  }

  private profiles(outs: Pick<InstallImageOutputs, "rescue" | "system" | "hostKeyFingerprints">): ConnectionProfile[] {
    const endpoint = systemEndpoint(outs);
    const system: ConnectionProfile[] = outs.hostKeyFingerprints.length > 0 ? [{ environment: "system", host: endpoint.host, port: endpoint.port, user: "root", hostKeyFingerprints: outs.hostKeyFingerprints }] : [];
    return [...system, outs.rescue];
  }

  private context(session: SshSession, host: string, oneTime: Secret | null, passphrase: Secret | null, inputs: InstallImageInputs | InstallImageOutputs): InstallContext {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const crypto = require("crypto") as typeof import("crypto");
    const pair = generateEd25519KeyPair(`root@${shortHostname(inputs.hostname)}`);
    const hostKey = { private: new Secret(pair.private), public: pair.public };
    const secrets = [this.requireKey(), hostKey.private, ...(oneTime ? [oneTime] : []), ...(passphrase ? [passphrase] : [])];
    return {
      resource: "InstallImage",
      host,
      secrets,
      session,
      hostKey,
      oneTimePassphrase: oneTime,
      passphrase,
      pbkdf: inputs.cryptPbkdf ?? DEFAULT_CRYPT_PBKDF,
      installId: crypto.randomUUID(),
      log: createLogger({ context: `InstallImage ${host}`, secrets }),
      pollMs: this.pollMs,
    };
  }

  private requireKey(): Secret {
    return requirePrivateKey(this.config, "InstallImage");
  }
}

// One instance for every InstallImage, so the closure serializer's per-object cache hits.
export
const provider = new InstallImageProvider();

