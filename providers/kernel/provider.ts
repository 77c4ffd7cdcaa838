// The provider every SSH-reached resource runs on: configure, check, diff, create, update, read and
// delete, written once. A resource supplies a `ResourceDefinition` (its types, validate, plan,
// probe, steps and outputs) and gets a `KernelProvider` for `pulumi.dynamic.Resource`.
//
// Delete without `allowWipe` — the one policy, for every resource: RETAIN. Nothing on the host is
// touched, the resource leaves the stack, and one warning names exactly what was kept and how to
// remove it instead (set allowWipe: true, run up, then destroy). Why: a refusal would wedge
// `pulumi destroy` (and every later up that replaces the resource) until someone edits the state by
// hand; retain mirrors Pulumi's own `retainOnDelete` and never loses data. The tool for stopping a
// destroy is Pulumi's `protect`, not a failing delete.
//
// This module is serialized into state with each provider object (pulumi-dynamic.md §1.4): no
// module-level live handles, and no module-level function named like a provider method (`diff`,
// `read`, `create`, `update`, `delete`, `check`, `configure`).
import * as pulumi from "@pulumi/pulumi";
import { createLogger, Logger } from "../plumbing/log";
import type { Secret } from "../plumbing/secret";
import type { SshSession } from "../plumbing/ssh";
import { ProviderConfig, readProviderConfig, requirePrivateKey } from "./config";
import { ConnectionProfile, Environment, HostUnreachableError, isHostUnreachable, openFirstReachable } from "./host-access";
import {
  CheckFailure,
  PlanStep,
  StepContext,
  StepTable,
  checkResult,
  containsUnknown,
  jsonSafe,
  providerVersionChanged,
  runPlan,
  runStep,
} from "./resource";

/** The marker step a plan returns when the change cannot be made in place: `diff` reports it as a
 *  replacement of `fields`, and the engine deletes and re-creates. It is never applied. */
export interface ReplaceStep {
  readonly kind: "replace";
  readonly fields: readonly string[];
}

/** Inputs every kernel resource carries. */
export interface KernelInputs {
  readonly providerVersion: string;
  readonly allowWipe?: boolean;
}

/** Where the host was reached; every resource's outputs record it. */
export interface Reached {
  readonly environment: Environment;
  /** `address:port` */
  readonly host: string;
}

/** What `reach` gets: everything the kernel knows before the host is reached. */
export interface ReachContext {
  /** The resource's channel, prefixed `[Type]` until the host is named. */
  readonly log: Logger;
  readonly config: ProviderConfig;
  readonly privateKey: Secret;
  /** Redacted from every log line and step error (the SSH key, the Robot password, `keys`). */
  readonly secrets: readonly Secret[];
  readonly keys: Readonly<Record<string, Secret>>;
  readonly purpose: "converge" | "read" | "delete";
  readonly settings: Readonly<Record<string, string>>;
}

/** How a resource reached its host: the session its probe and steps use, and where it is. */
export interface Reach<S> {
  readonly session: S;
  readonly reached: Reached;
  /** Closes what reaching opened; called once, at the end of the operation. */
  close(): Promise<void>;
}

/**
 * What steps and probes get: the open session, and the one log channel (prefixed, redacted).
 * `S` is the session `reach` returns: an `SshSession` for every resource that reaches its host by
 * SSH (the default), RescueBoot's Robot client before any SSH exists.
 */
export interface HostContext<S = SshSession> extends StepContext {
  readonly session: S;
  readonly log: Logger;
  readonly config: ProviderConfig;
  /** The resource's own secrets (`ResourceDefinition.secrets`), by name; redacted like the SSH key. */
  readonly keys: Readonly<Record<string, Secret>>;
  /** Why the host was opened: converge (create/update), read or delete. A probe may do more work
   *  when converging (LuksVolume tests its passphrases then, never on refresh). */
  readonly purpose: "converge" | "read" | "delete";
  /** Settings the resource reads from the stack config (`ResourceDefinition.settings`), by key. */
  readonly settings: Readonly<Record<string, string>>;
  /**
   * For a step that ends in another environment (DropbearInitramfs reboots, unlocks and reaches the
   * installed system): hands over the session it reached it with. Later steps and the next probe
   * use it, the outputs name where it is, and the kernel closes it at the end.
   */
  readonly continueOn?: (session: S, reached: Reached) => void;
}

/** What `explain` gets: the situation a plan was made in (desired null on delete, recorded null on create). */
export interface PlanSituation<Inputs, Outputs, Observed> {
  readonly observed: Observed;
  readonly plan: readonly PlanStep[];
  readonly desired: Inputs | null;
  readonly recorded: Outputs | null;
}

/**
 * What a resource supplies. `recorded` is the previous outputs (null on create): everything `plan`
 * needs beyond the observed facts and the desired inputs comes through it, explicitly.
 */
export interface ResourceDefinition<Inputs extends KernelInputs, Outputs extends Inputs, Observed, Step extends PlanStep, S = SshSession> {
  /** Resource class name ("LvmGroup"): the first word of every log line and error. */
  readonly type: string;
  /** Rounds of probe → plan → apply before giving up. */
  readonly maxRounds: number;
  /** Delete the old resource before creating its replacement (both would claim the same disks). */
  readonly deleteBeforeReplace?: boolean;
  /** Input fields whose change is a replacement, reported as such while still unknown in preview. */
  readonly replaceIfUnknown?: readonly string[];
  /** Pure, collects every failure; `olds` are the previous inputs (undefined on create). */
  validate(news: Inputs, olds: Partial<Inputs> | undefined): CheckFailure[];
  /** Connection profiles, from the inputs or the recorded outputs: the default `reach` opens the
   *  first that answers with its pinned key. */
  connection?(subject: Inputs | Outputs): readonly ConnectionProfile[];
  /**
   * How the host is reached, when it is not "SSH to the first profile that answers": RescueBoot
   * talks to Robot before any SSH exists; InstallImage follows its host between rescue and the
   * installed system, and its delete boots a rescue to wipe from. `recorded` is null on create.
   * Without it, `S` must be `SshSession`.
   */
  reach?(ctx: ReachContext, subject: Inputs | Outputs, recorded: Outputs | null): Promise<Reach<S>>;
  /** Read-only; located by the inputs on create/update, by the outputs on read/delete. */
  probe(ctx: HostContext<S>, subject: Inputs | Outputs): Promise<Observed>;
  /** Pure: the steps still to run, [] when converged. May return a `ReplaceStep`. Throws RefusalError. */
  plan(observed: Observed, desired: Inputs, recorded: Outputs | null): (Step | ReplaceStep)[];
  /** The recorded outputs, in the shape a probe returns: `diff` runs `plan` against these. `desired`
   *  is there for facts whose shape depends on the request (which passphrase opens which slot). */
  recordedFacts(recorded: Outputs, desired: Inputs): Observed;
  /** The only effects. */
  readonly steps: StepTable<Step, HostContext<S>>;
  /** Outputs after convergence and after read (JSON-safe, no secrets). `recorded` (null on create)
   *  carries facts a probe cannot see again (when the install happened, how a boot was trusted). */
  outputs(inputs: Inputs, observed: Observed, reached: Reached, recorded: Outputs | null): Outputs;
  /** The outputs of an update that needs no host work (the plan against the recorded facts is
   *  empty). Default: the recorded outputs with the new inputs. Pure. */
  restate?(recorded: Outputs, news: Inputs): Outputs;
  /** The request in the form `diff` compares (defaults filled in, keys by fingerprint), when two
   *  spellings of one request must not be a change. Default: `inputsOf` as given. Pure. */
  requestKey?(inputs: Inputs): unknown;
  /** One sentence on why a plan is what it is, logged by the kernel: on the first round of a
   *  converge, on an update that needs no host work, and on delete (replacing the kernel's "nothing
   *  left" line). RescueBoot says it adopts a running rescue instead of resetting. null: nothing to say. */
  explain?(situation: PlanSituation<Inputs, Outputs, Observed>): string | null;
  /** Warnings `check` logs for valid inputs (an explicit, risky choice the operator should see in every preview). */
  checkWarnings?(news: Inputs): string[];
  /** Warnings `diff` logs about the recorded state that no step of the plan changes, so every preview
   *  names it (InstallImage: drift that `reassemble: never` leaves alone, and that is therefore no change). */
  diffWarnings?(recorded: Outputs, news: Inputs): string[];
  /**
   * For a step after which the next probe may not see the host again (InstallImage reboots into an
   * initramfs that waits for its passphrase, with no SSH): after each round's steps, the record the
   * rest of the run carries, from that round's observation and the steps that ran. `outputs` gets it
   * as `recorded` (`plan` keeps the previous outputs), so the last facts seen survive, and so does
   * what a step did that no probe can see (how many reboots). Default: `recorded` as given. Pure.
   */
  carry?(inputs: Inputs, observed: Observed, reached: Reached, carried: Outputs | null, applied: readonly Step[]): Outputs | null;
  /** The inputs recorded in outputs (what `read` returns as inputs). */
  inputsOf(outputs: Outputs): Inputs;
  id(outputs: Outputs): string;
  /** Whether the recorded resource is still on the host (false: read reports it gone). */
  exists(observed: Observed, recorded: Outputs): boolean;
  /** With allowWipe: the steps that remove it. Pure; [] when nothing of ours is left. */
  planDelete(observed: Observed, recorded: Outputs): Step[];
  /**
   * true for a resource whose delete destroys nothing (RescueBoot only disarms a rescue still armed):
   * `planDelete` then runs whatever allowWipe says, and the retain policy does not apply.
   */
  readonly deleteKeepsData?: boolean;
  /** Without allowWipe: what stays on the host, for the retain warning ("VG vg0 with LVs root, swap and their data"). */
  retained(recorded: Outputs): string;
  /** Outputs stored by an older provider version, in today's shape (renamed fields). Pure, no host. */
  migrate?(stored: Record<string, unknown>): Outputs;
  /** Secrets in the inputs beyond the SSH key and Robot password (passphrases), by name, from the
   *  subject and the recorded outputs (null on read and delete): steps and probes find them in
   *  `ctx.keys`, and the log channel and every step error redact them. */
  secrets?(subject: Inputs | Outputs, recorded: Outputs | null): Readonly<Record<string, Secret>>;
  /** Input fields that are secrets: `read` leaves them out of the inputs it returns (they would be
   *  stored in plain text), as the Resource class marks them secret outputs. */
  readonly secretInputs?: readonly string[];
  /** Stack config keys (namespace hetzner-fde) the resource reads besides the kernel's, into `ctx.settings`. */
  readonly settings?: readonly string[];
}

/** A read's cost in round trips. None when the probe could not log in (a host locked in its
 *  initramfs, or off) and only looked at the SSH port: then no environment was read in. */
function readCost(reached: Reached, commands: number): string {
  if (commands === 0) return `read without a login (${reached.host} let none in): no SSH command`;
  return `read in ${reached.environment} (${reached.host}): ${commands} SSH command(s)`;
}

/** The error when the loop gives up: names the steps that kept coming back. */
export function notConvergedMessage(type: string, subject: string, rounds: number, lastPlan: readonly PlanStep[]): string {
  const kinds = [...new Set(lastPlan.map((s) => s.kind))].join(", ");
  return `${type} ${subject}: still not converged after ${rounds} rounds of probe and apply: the plan kept returning ${kinds}. ` +
    "Each of these steps ran and the next probe still wanted it; look at the step's log lines above for what the host did, and run up again once fixed";
}

function replaceFields(plan: readonly PlanStep[]): string[] {
  return [...new Set(plan.flatMap((step) => (step.kind === "replace" ? [...(step as ReplaceStep).fields] : [])))];
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * `diff`, pure and synchronous: the plan run against the recorded facts. A `ReplaceStep` is a
 * replacement; any other step, a changed input or another provider version is an update; a plan
 * that throws is an update too (update probes the host and reports what stands in the way).
 */
export function diffAgainstRecorded<Inputs extends KernelInputs, Outputs extends Inputs, Observed, Step extends PlanStep, S>(
  def: ResourceDefinition<Inputs, Outputs, Observed, Step, S>,
  stored: Outputs,
  news: Inputs,
): pulumi.dynamic.DiffResult {
  const olds = def.migrate ? def.migrate(stored as unknown as Record<string, unknown>) : stored;
  const fields = def.inputsOf(news as unknown as Outputs);
  if (containsUnknown(fields)) {
    const replaces = (def.replaceIfUnknown ?? []).filter((key) => containsUnknown((news as unknown as Record<string, unknown>)[key]));
    return replaces.length > 0 ? { changes: true, replaces, deleteBeforeReplace: def.deleteBeforeReplace === true } : { changes: true };
  }
  let todo: PlanStep[];
  try {
    todo = def.plan(def.recordedFacts(olds, news), news, olds);
  } catch {
    return { changes: true };
  }
  const replaces = replaceFields(todo);
  if (replaces.length > 0) return { changes: true, replaces, deleteBeforeReplace: def.deleteBeforeReplace === true };
  const request = (inputs: Inputs): unknown => (def.requestKey ? def.requestKey(inputs) : inputs);
  const settingsChanged = providerVersionChanged(olds, news) || !sameJson(request(def.inputsOf(olds)), request(fields)) || olds !== stored;
  return { changes: todo.length > 0 || settingsChanged };
}

export class KernelProvider<Inputs extends KernelInputs, Outputs extends Inputs, Observed, Step extends PlanStep, S = SshSession>
  implements pulumi.dynamic.ResourceProvider<Inputs, Outputs>
{
  private config: ProviderConfig = { privateKey: null, robot: null };
  private settings: Readonly<Record<string, string>> = {};

  constructor(private readonly def: ResourceDefinition<Inputs, Outputs, Observed, Step, S>) {}

  async configure(req: pulumi.dynamic.ConfigureRequest): Promise<void> {
    this.config = readProviderConfig((key) => req.config.get(key));
    const settings: Record<string, string> = {};
    for (const key of this.def.settings ?? []) {
      const value = req.config.get(key);
      if (value !== undefined) settings[key] = value;
    }
    this.settings = settings;
  }

  async check(olds: Inputs, news: Inputs): Promise<pulumi.dynamic.CheckResult<Inputs>> {
    const previous = olds && Object.keys(olds).length > 0 ? olds : undefined;
    const failures = this.def.validate(news, previous);
    if (failures.length === 0) for (const warning of this.def.checkWarnings?.(news) ?? []) createLogger().warn(warning);
    return checkResult(news, failures);
  }

  /** The plan against the recorded facts, and nothing else (no host contact). */
  async diff(id: string, stored: Outputs, news: Inputs): Promise<pulumi.dynamic.DiffResult> {
    const warnings = this.def.diffWarnings?.(this.migrated(stored), news) ?? [];
    if (warnings.length > 0) {
      const log = createLogger({ context: `${this.def.type} ${id}`, secrets: this.knownSecrets() });
      for (const warning of warnings) log.warn(warning);
    }
    return diffAgainstRecorded(this.def, stored, news);
  }

  async create(inputs: Inputs): Promise<pulumi.dynamic.CreateResult<Outputs>> {
    const outs = await this.converge(inputs, null);
    return { id: this.def.id(outs), outs };
  }

  async update(id: string, stored: Outputs, news: Inputs): Promise<pulumi.dynamic.UpdateResult<Outputs>> {
    const def = this.def;
    const olds = this.migrated(stored);
    // Nothing to do on the host by the recorded facts (a new provider version, a migrated field, a
    // changed setting): store the new inputs without connecting.
    let pending = true;
    const facts = def.recordedFacts(olds, news);
    try {
      pending = def.plan(facts, news, olds).length > 0;
    } catch {
      pending = true;
    }
    if (!pending) {
      const why = def.explain?.({ observed: facts, plan: [], desired: news, recorded: olds });
      if (why) createLogger({ context: `${def.type} ${id}`, secrets: this.knownSecrets() }).info(why);
      if (def.restate) return { outs: jsonSafe(def.restate(olds, news), "outputs") };
      // The recorded inputs are replaced, not merged: an input the program dropped leaves the outputs too.
      const kept: Record<string, unknown> = { ...(olds as unknown as Record<string, unknown>) };
      for (const key of Object.keys(def.inputsOf(olds))) delete kept[key];
      return { outs: jsonSafe({ ...kept, ...def.inputsOf(news as unknown as Outputs) }, "outputs") as unknown as Outputs };
    }
    return { outs: await this.converge(news, olds) };
  }

  async read(id: string, stored?: Outputs): Promise<pulumi.dynamic.ReadResult<Outputs>> {
    const def = this.def;
    if (!stored || Object.keys(stored).length === 0) throw new Error(`${def.type} ${id}: read needs the stored outputs; import is not supported`);
    const olds = this.migrated(stored);
    const inputs = def.inputsOf(olds);
    const recorded: Record<string, unknown> = { ...(inputs as unknown as Record<string, unknown>) };
    for (const key of def.secretInputs ?? []) delete recorded[key];
    const readInputs = jsonSafe(recorded, "inputs") as unknown as Outputs;
    try {
      return await this.withHost(olds, null, "read", async (ctx, reached) => {
        const started = Date.now();
        const observed = await def.probe(ctx, olds);
        // The cost of a refresh, per resource, in the unit that matters over a WAN: commands (round trips) on the session.
        const commands = (ctx.session as { commandsRun?: number } | undefined)?.commandsRun;
        if (commands !== undefined) ctx.log.info(`${readCost(reached, commands)}, ${Date.now() - started} ms`);
        if (!def.exists(observed, olds)) return {};
        return { id, props: def.outputs(inputs, observed, reached, olds), inputs: readInputs };
      });
    } catch (error) {
      // A host that is off, booting or locked has not lost what was recorded: a refresh that failed
      // here would fail the whole stack's refresh (and `up --refresh`, which unlocks it) on it.
      if (!isHostUnreachable(error)) throw error;
      const log = createLogger({ context: `${def.type} ${id}`, secrets: this.knownSecrets() });
      log.warn(
        `read kept the recorded state: the host did not answer in any environment this resource can be read in (${(error as HostUnreachableError).tried.join(", ")}); ` +
          "it may be off, booting or locked in its initramfs. Refresh again once it runs its system",
      );
      return { id, props: olds, inputs: readInputs };
    }
  }

  async delete(id: string, stored: Outputs): Promise<void> {
    const def = this.def;
    const olds = this.migrated(stored);
    if (olds.allowWipe !== true && def.deleteKeepsData !== true) {
      const log = createLogger({ context: `${def.type} ${id}` });
      log.warn(
        `delete leaves ${def.retained(olds)} untouched: allowWipe is false, so it is retained (the resource leaves the stack, nothing on the host changed). ` +
          "To remove it instead, set allowWipe: true, run up, then destroy",
      );
      return;
    }
    await this.withHost(olds, null, "delete", async (ctx) => {
      const observed = await runStep(ctx, "probe", () => def.probe(ctx, olds));
      const todo = def.planDelete(observed, olds);
      const why = def.explain?.({ observed, plan: todo, desired: null, recorded: olds });
      if (why) ctx.log.info(why);
      else if (todo.length === 0) ctx.log.warn(`nothing of this resource is left on the host (${def.retained(olds)} not found, or no longer ours); removed from the stack only`);
      await runPlan(ctx, todo, def.steps);
    });
  }

  private converge(inputs: Inputs, recorded: Outputs | null): Promise<Outputs> {
    return convergeDefinition(this.def, { config: this.config, settings: this.settings }, inputs, recorded);
  }

  private withHost<T>(
    subject: Inputs | Outputs,
    recorded: Outputs | null,
    purpose: HostContext["purpose"],
    fn: (ctx: HostContext<S>, reached: Reached) => Promise<T>,
  ): Promise<T> {
    return withReachedHost(this.def, { config: this.config, settings: this.settings }, subject, recorded, purpose, fn);
  }

  private migrated(stored: Outputs): Outputs {
    return this.def.migrate ? this.def.migrate(stored as unknown as Record<string, unknown>) : stored;
  }

  private knownSecrets(): Secret[] {
    return [...(this.config.privateKey ? [this.config.privateKey] : []), ...(this.config.robot ? [this.config.robot.password] : [])];
  }
}

/** What the provider read in `configure`, for the module-level runners. */
export interface ProviderAccess {
  readonly config: ProviderConfig;
  readonly settings: Readonly<Record<string, string>>;
}

/**
 * Probe, plan, apply, until the plan is empty (bounded); then the outputs from the last probe.
 * Exported for a `reach` that must bring another resource's host about first (InstallImage's
 * delete boots a rescue with RescueBoot's definition).
 */
export async function convergeDefinition<Inputs extends KernelInputs, Outputs extends Inputs, Observed, Step extends PlanStep, S>(
  def: ResourceDefinition<Inputs, Outputs, Observed, Step, S>,
  from: ProviderAccess,
  inputs: Inputs,
  recorded: Outputs | null,
): Promise<Outputs> {
  return withReachedHost(def, from, inputs, recorded, "converge", async (ctx, reached) => {
    let last: PlanStep[] = [];
    let carried = recorded;
    for (let round = 1; round <= def.maxRounds; round++) {
      const observed = await runStep(ctx, "probe", () => def.probe(ctx, inputs));
      const todo = def.plan(observed, inputs, recorded);
      if (round === 1) {
        const why = def.explain?.({ observed, plan: todo, desired: inputs, recorded });
        if (why) ctx.log.info(why);
      }
      if (todo.length === 0) return def.outputs(inputs, observed, reached, carried);
      const replaces = replaceFields(todo);
      if (replaces.length > 0) {
        throw new Error(`${def.type}: ${replaces.join(", ")} cannot change in place; the engine replaces the resource for that, so this update should not have run. Run up again`);
      }
      last = todo;
      // Where the host was before the steps: a step may move it (continueOn) to where the next probe looks.
      const before: Reached = { ...reached };
      await runPlan(ctx, todo as Step[], def.steps);
      if (def.carry) carried = def.carry(inputs, observed, before, carried, todo as Step[]);
    }
    throw new Error(notConvergedMessage(def.type, ctx.host, def.maxRounds, last));
  });
}

/** Reaches the host (`def.reach`, or SSH to the first profile that answers), builds the one context and
 *  log channel, runs `fn`, and closes every session opened or handed over. */
export async function withReachedHost<Inputs extends KernelInputs, Outputs extends Inputs, Observed, Step extends PlanStep, S, T>(
  def: ResourceDefinition<Inputs, Outputs, Observed, Step, S>,
  from: ProviderAccess,
  subject: Inputs | Outputs,
  recorded: Outputs | null,
  purpose: HostContext["purpose"],
  fn: (ctx: HostContext<S>, reached: Reached) => Promise<T>,
): Promise<T> {
  const privateKey: Secret = requirePrivateKey(from.config, def.type);
  const keys = def.secrets ? def.secrets(subject, recorded) : {};
  const secrets = [privateKey, ...(from.config.robot ? [from.config.robot.password] : []), ...Object.values(keys)];
  const access: ReachContext = { log: createLogger({ context: def.type, secrets }), config: from.config, privateKey, secrets, keys, purpose, settings: from.settings };
  const { session, reached: at, close } = def.reach ? await def.reach(access, subject, recorded) : await reachBySsh(def, subject, privateKey);
  const host = at.host;
  const log = createLogger({ context: `${def.type} ${host}`, secrets });
  const reached: Reached = { ...at };
  const handedOver: S[] = [];
  const ctx: HostContext<S> = {
    resource: def.type,
    host,
    secrets,
    session,
    log,
    config: from.config,
    keys,
    purpose,
    settings: from.settings,
    continueOn: (next, now) => {
      handedOver.push(next);
      Object.assign(ctx, { session: next, host: now.host });
      Object.assign(reached, now);
    },
  };
  try {
    return await fn(ctx, reached);
  } finally {
    await close();
    for (const open of handedOver) await (open as unknown as SshSession).close();
  }
}

/** The default reach: SSH to the first of the resource's profiles that answers with its pinned key. */
async function reachBySsh<Inputs extends KernelInputs, Outputs extends Inputs, Observed, Step extends PlanStep, S>(
  def: ResourceDefinition<Inputs, Outputs, Observed, Step, S>,
  subject: Inputs | Outputs,
  privateKey: Secret,
): Promise<Reach<S>> {
  if (!def.connection) throw new Error(`${def.type}: the definition has neither reach nor connection`);
  const profiles: readonly ConnectionProfile[] = def.connection(subject);
  const { session, profile } = await openFirstReachable(profiles, privateKey);
  const reached: Reached = { environment: profile.environment, host: `${profile.host}:${profile.port}` };
  return { session: session as unknown as S, reached, close: () => session.close() };
}

