// Plumbing shared by every resource module: the conformance type, check failures, the one step
// wrapper (log, time, redact, attribute errors), partial-create errors and JSON-safe outputs.
//
// This module is reached from provider objects, so Pulumi's closure serializer copies what they use
// into state by value. Keep it free of module-level state and live handles.

import { keepErrorMessage } from "../plumbing/errors";
import * as pulumi from "@pulumi/pulumi";
import { redact, Secret } from "../plumbing/secret";

// ---------------------------------------------------------------------------------------------
// The shape of a resource module

/** A rule broken by the inputs. `property` is a field path ("devices[1]"); `reason` says what was
 *  expected, what was found and what to do. */
export interface CheckFailure {
  readonly property: string;
  readonly reason: string;
}

/** One named step of a plan. Plans are data: `diff` and preview render them, create/update run them. */
export interface PlanStep {
  readonly kind: string;
}

/** One apply function per step kind, each receiving its own step variant. */
export type StepTable<Step extends PlanStep, Ctx> = {
  readonly [K in Step["kind"]]: (ctx: Ctx, step: Extract<Step, { kind: K }>) => Promise<void>;
};

/**
 * What every resource module exports, checked at compile time:
 * `export const module = { validate, plan, probe, steps } satisfies ResourceModule<I, O, Obs, Step, Ctx>;`
 *
 * - `validate` is pure and collects every failure; it skips values still unknown in preview.
 * - `plan` is pure: observed facts + desired inputs -> the steps still to run (empty = converged).
 * - `probe` is read-only. It is located by the desired inputs on create/update and by the stored
 *   outputs on refresh (which is why outputs must carry everything needed to find the thing).
 * - `steps` are the only effects; they run through `runStep`/`runPlan` and never log or catch.
 *
 * Never give a module-level function the name of the provider method that calls it (a `diff`
 * function called from `async diff()`): the closure serializer binds that name to the method
 * itself, and the host fails with "diff is not defined" (observed with @pulumi/pulumi 3.270).
 */
export interface ResourceModule<Inputs, Outputs, Observed, Step extends PlanStep, Ctx = StepContext> {
  validate(inputs: Inputs): CheckFailure[];
  plan(observed: Observed, desired: Inputs): Step[];
  probe(ctx: Ctx, subject: Inputs | Outputs): Promise<Observed>;
  steps: StepTable<Step, Ctx>;
}

// ---------------------------------------------------------------------------------------------
// Check

/** The value the engine sends for inputs not yet known during preview (`rpc.unknownValue`). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** True for a value that is still unknown in preview; validation rules skip such values. */
export function isUnknown(value: unknown): boolean {
  return value === UNKNOWN;
}

/** Whether any value inside is still unknown. Value by value: inputs also carry `__provider`, whose
 *  code text contains the sentinel itself, so pass the resource's own fields, not the whole inputs. */
export function containsUnknown(value: unknown): boolean {
  if (isUnknown(value)) return true;
  if (Array.isArray(value)) return value.some(containsUnknown);
  return value !== null && typeof value === "object" && Object.values(value).some(containsUnknown);
}

/** Turns validation failures into the dynamic provider's `check` result. */
export function checkResult<T>(inputs: T, failures: readonly CheckFailure[]): pulumi.dynamic.CheckResult<T> {
  return failures.length === 0 ? { inputs } : { inputs, failures: [...failures] };
}

// ---------------------------------------------------------------------------------------------
// Stale provider code (pulumi-dynamic.md §1.4)

/**
 * Version of the provider code, sent as the `providerVersion` input of every resource.
 *
 * The engine keeps a resource's OLD outputs, including its old `__provider` code, whenever diff
 * reports no change; refresh and destroy then run that stored code. A fix to `read` or `delete`
 * therefore never takes effect until each resource goes through an update. Bumping this constant
 * makes `diff` report a change everywhere, so the next `up` stores the new code (the update itself
 * re-probes and finds nothing to do).
 */
export const PROVIDER_VERSION = "4";

/** Whether the stored resource was written by another provider version (and so needs an update). */
export function providerVersionChanged(olds: { providerVersion?: string }, news: { providerVersion?: string }): boolean {
  return olds.providerVersion !== news.providerVersion;
}

// ---------------------------------------------------------------------------------------------
// Running steps

/** Where logs go. `pulumi.log` by default; tests pass a collecting sink. */
export interface StepLog {
  info(message: string): void;
  warn(message: string): void;
}

export interface StepContext {
  /** Resource class name, the first word of every log line ("LuksVolume"). */
  readonly resource: string;
  /** Host (or other target) the steps act on, the second word of every log line. */
  readonly host: string;
  /** Values that must never appear in a log line or error message. */
  readonly secrets: readonly (Secret | string)[];
  /** Defaults to `pulumi.log`. */
  readonly log?: StepLog;
  /** Position in the current plan, for "step 2/4"; set by `runPlan`. */
  readonly position?: { readonly index: number; readonly total: number };
}

/** A step failed. The message names resource, host, step and elapsed time; all text is redacted. */
export class StepError extends Error {
  readonly resource: string;
  readonly host: string;
  readonly step: string;
  readonly elapsedMs: number;
  /** The original error, with its message and stack redacted in place. */
  readonly cause: unknown;

  constructor(ctx: StepContext, step: string, elapsedMs: number, cause: unknown) {
    const reason = redact(errorMessage(cause), ctx.secrets);
    const message = `${ctx.resource} step ${step} on ${ctx.host} failed after ${formatMs(elapsedMs)}: ${reason}`;
    super(message);
    this.name = "StepError";
    this.resource = ctx.resource;
    this.host = ctx.host;
    this.step = step;
    this.elapsedMs = elapsedMs;
    this.cause = cause;
    keepErrorMessage(this, message);
  }
}

/**
 * The one wrapper for cross-cutting concerns around an effect: logs `[Resource host] step 2/4 name`,
 * times it, and on failure throws a `StepError` naming host and step, with secrets redacted from
 * every message. Step functions themselves never log, catch or retry.
 */
export async function runStep<T>(ctx: StepContext, name: string, fn: () => Promise<T>): Promise<T> {
  const log = ctx.log ?? pulumi.log;
  const label = stepLabel(ctx, name);
  const say = (message: string): string => redact(message, ctx.secrets);
  log.info(say(label));
  const started = Date.now();
  try {
    const result = await fn();
    log.info(say(`${label} done in ${formatMs(Date.now() - started)}`));
    return result;
  } catch (err) {
    const elapsed = Date.now() - started;
    if (err instanceof StepError) throw err; // already attributed by an inner runStep
    redactErrorInPlace(err, ctx.secrets);
    const failure = new StepError(ctx, name, elapsed, err);
    log.warn(failure.message);
    throw failure;
  }
}

/** Runs a plan's steps in order through `runStep`, numbering them "1/n".."n/n". */
export async function runPlan<Step extends PlanStep, Ctx extends StepContext>(
  ctx: Ctx,
  plan: readonly Step[],
  steps: StepTable<Step, Ctx>,
): Promise<void> {
  for (const [i, step] of plan.entries()) {
    const stepCtx: Ctx = { ...ctx, position: { index: i + 1, total: plan.length } };
    const apply = steps[step.kind as Step["kind"]] as (ctx: Ctx, step: Step) => Promise<void>;
    await runStep(stepCtx, step.kind, () => apply(stepCtx, step));
  }
}

function stepLabel(ctx: StepContext, name: string): string {
  const position = ctx.position ? ` ${ctx.position.index}/${ctx.position.total}` : "";
  // A plumbing Logger (the kernel's one channel) already prefixes `[Resource host]` itself.
  const prefixed = ctx.log !== undefined && "child" in ctx.log;
  return `${prefixed ? "" : `[${ctx.resource} ${ctx.host}] `}step${position} ${name}`;
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// The cause is kept for callers that inspect its type, so its own text must be clean too.
function redactErrorInPlace(err: unknown, secrets: readonly (Secret | string)[]): void {
  if (!(err instanceof Error)) return;
  try {
    err.message = redact(err.message, secrets);
    if (err.stack) err.stack = redact(err.stack, secrets);
  } catch {
    // Frozen or exotic errors: StepError's own message is already redacted.
  }
}


export { keepErrorMessage };

// ---------------------------------------------------------------------------------------------
// Refusals

/**
 * The one refusal error of every resource: a plan would destroy data (or touch something not ours)
 * without permission, or the host is in a state no step may act on. `subject` names the LV, device
 * or field; the message says what was found and what to do.
 */
export class RefusalError extends Error {
  readonly subject: string;
  constructor(subject: string, message: string) {
    super(message);
    this.name = "RefusalError";
    this.subject = subject;
    keepErrorMessage(this, message);
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers every resource needs once

/** Hex SHA-256 of UTF-8 text (guards "write only over the text the plan was made from"). */
export function sha256Hex(text: string): string {
  // Required here rather than imported at the top: the closure serializer then captures it by reference.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require("crypto") as typeof import("crypto");
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** UTF-8 text of base64 a probe printed (`base64 -w0`); "" for a missing value. */
export function decodeBase64(text: string | null | undefined): string {
  return Buffer.from(text ?? "", "base64").toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// Partial create

/**
 * An error the dynamic-provider host turns into ErrorResourceInitFailed: the engine records a
 * partially created resource with `id` and `properties` as its outputs, so the next `up` updates it
 * and `destroy` can delete it. `properties` carry the inputs' `__provider` for that reason: without
 * it the host cannot load any code to run delete with.
 */
export class PartialCreateError extends Error {
  readonly id: string;
  readonly properties: Record<string, unknown>;
  readonly reasons: string[];

  constructor(id: string, properties: Record<string, unknown>, reasons: string[]) {
    const message = `created ${id} only partially: ${reasons.join("; ")}`;
    super(message);
    this.name = "PartialCreateError";
    this.id = id;
    this.properties = properties;
    this.reasons = reasons;
    keepErrorMessage(this, message);
  }
}

export function partialCreateError(opts: {
  id: string;
  /** Outputs describing what exists so far (JSON-safe, no secrets). */
  outputs: object;
  reasons: string[];
  /** The create inputs; only their `__provider` is copied into the recorded outputs. */
  inputs: object;
}): PartialCreateError {
  const provider = (opts.inputs as { __provider?: unknown }).__provider;
  const properties = jsonSafe({ ...opts.outputs, __provider: provider }, "outputs") as Record<string, unknown>;
  return new PartialCreateError(opts.id, properties, opts.reasons);
}

// ---------------------------------------------------------------------------------------------
// JSON-safe outputs

/**
 * Returns `value` with every `undefined` object property removed, and throws (naming the path)
 * on anything the gRPC Struct conversion mishandles: it fails with "Unexpected struct type" on
 * undefined, Buffer, bigint and Outputs, and silently turns a Date or a class instance into {}.
 */
export function jsonSafe<T>(value: T, path = "value"): T {
  return clean(value, path) as T;
}

function clean(value: unknown, path: string): unknown {
  if (value === null || typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw unsafe(path, `the number ${value}`, "use null or a finite number");
    return value;
  }
  if (value === undefined) throw unsafe(path, "undefined", "omit the element or use null");
  if (typeof value === "bigint") throw unsafe(path, "a bigint", "convert it to a string or a safe number");
  if (typeof value !== "object") throw unsafe(path, `a ${typeof value}`, "outputs must be plain data");
  if (Array.isArray(value)) return value.map((item, i) => clean(item, `${path}[${i}]`));
  if (Buffer.isBuffer(value)) throw unsafe(path, "a Buffer", "encode it as base64 or utf8 text");
  if (value instanceof Date) throw unsafe(path, "a Date", "use value.toISOString()");
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) {
    const kind = (value as object).constructor?.name ?? "non-plain object";
    throw unsafe(path, `an instance of ${kind}`, "return plain objects (no Output, Secret or class instances)");
  }
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (item !== undefined) out[key] = clean(item, `${path}.${key}`);
  }
  return out;
}

function unsafe(path: string, found: string, fix: string): Error {
  return new Error(`${path} is ${found}, which cannot cross the provider's gRPC Struct conversion; ${fix}`);
}

/**
 * Program side: `args` with the values at `keys` wrapped in `pulumi.secret`. The engine stores a
 * resource's inputs as given, so a passphrase passed as a plain string (not read with
 * `config.requireSecret`) would otherwise land in the state file in clear text.
 */
export function withSecretInputs<T extends object>(args: T, keys: readonly (keyof T & string)[]): T {
  const wrapped = { ...args } as Record<string, unknown>;
  for (const key of keys) {
    if (wrapped[key] !== undefined) wrapped[key] = pulumi.secret(wrapped[key]);
  }
  return wrapped as T;
}
