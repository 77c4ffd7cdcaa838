/**
 * ProviderHarness: drives the REAL Pulumi dynamic-provider host (`@pulumi/pulumi/cmd/dynamic-provider`)
 * over gRPC, doing what the engine does (pulumi-dynamic.md §1.4, §2, §4.3):
 * Configure first, plain values with secrets stripped, old OUTPUTS as `olds` for Diff/Update/Delete,
 * outputs as `properties` for Read, the unknown sentinel in preview.
 *
 * The serialized provider comes from the PROGRAM side: a child process (program-runner.ts) loads the
 * compiled module from dist/, constructs the resource under `pulumi.runtime.setMocks`, with secret
 * args as `pulumi.secret(...)`, and hands back `__provider`, type, URN and inputs.
 *
 * ```ts
 * const h = await ProviderHarness.start({
 *   module: "test/harness/fixtures/marker-file", exportName: "MarkerFile",   // dist/<module>.js
 *   args: { path: "/tmp/x", content: "a", token: "s3cret" }, secretPaths: ["token"],
 *   config: { "hetzner-fde:markerFileMode": "640" }, secretConfigKeys: [],    // Configure runs in start()
 * });
 * const news = h.inputs({ content: "b" });         // program inputs, plain, + overrides (no __provider needed)
 * const chk = await h.check(h.urn, {}, news);      // {inputs, failures}: failures are returned, not thrown
 * const cr  = await h.create(h.urn, chk.inputs);   // {id, outs}; partial create -> throws PartialCreateFailure
 * const df  = await h.diff(cr.id, cr.outs, news);  // {changes: "some"|"none"|"unknown", replaces, deleteBeforeReplace}
 * const up  = await h.update(cr.id, cr.outs, news);// {outs}
 * const rd  = await h.read(cr.id, cr.outs, chk.inputs); // {id ("" = gone), props, inputs?}
 * await h.delete(cr.id, up.outs);
 * await h.preview(h.urn, h.inputs({ content: UNKNOWN }), existing?);  // Check (+ Diff if existing)
 * await h.up(news?) / h.refresh() / h.destroy();   // a small engine: step logic over h.state
 * await h.stop();                                 // h.logs is complete only after stop()
 * h.state.text(); h.logs; h.secrets                // for secret-leak greps (see leaks.ts)
 * ```
 * Other failures throw `ProviderCallError { method, code }` with the host's message.
 *
 * A thin layer over the local engine (engine/): the host process, the gRPC calls and their error
 * decoding are engine/provider-host.ts, and `up`'s choice of step is engine/steps.ts `decideStep`,
 * the same code `npm run stack` runs. What is the harness's own is one resource at a time, a
 * journal of what the engine would have stored, and overrides a test needs (olds, ids, UNKNOWN).
 */

import { fork } from "child_process";
import * as path from "path";
import { PartialCreateFailure, ProviderCallError, ProviderHost } from "../../engine/provider-host";
import type { CheckOutcome, DiffOutcome, ReadOutcome } from "../../engine/provider-host";
import { decideStep } from "../../engine/steps";
import { plainValues, Props, REPO_ROOT } from "../../engine/wire";
import { track, untrack } from "../support/leftovers";
import type { ProgramMessage, ProgramReply, ProgramRequest } from "./program-runner";

export { UNKNOWN } from "../../providers/kernel/resource";
export { PartialCreateFailure, ProviderCallError, plainValues, REPO_ROOT };
export type { CheckOutcome, DiffOutcome, Props, ReadOutcome };

const PROJECT = "hetzner-fde";

// ---------------------------------------------------------------------------------------------
// What an engine would have recorded

export interface StateEntry {
  readonly urn: string;
  readonly id: string;
  /** Stored form: secret values are replaced by ENCRYPTED, as the engine encrypts them. */
  readonly inputs: Props;
  readonly outputs: Props;
  /** Plain forms, for the mini-engine's own use (never grep these: they hold the secrets). */
  readonly plainInputs: Props;
  readonly plainOutputs: Props;
  /** The last operation ("partial" = created with ErrorResourceInitFailed). */
  readonly op: "create" | "partial" | "update" | "read" | "same";
}

export const ENCRYPTED = "[encrypted]";

export class StateJournal {
  readonly resources = new Map<string, StateEntry>();
  /** Every entry ever written, including deleted resources', in stored form. */
  readonly history: StateEntry[] = [];

  record(entry: StateEntry): void {
    this.resources.set(entry.urn, entry);
    this.history.push(entry);
  }

  remove(urn: string): void {
    this.resources.delete(urn);
  }

  /** The stored form of everything ever recorded, as one string to grep. */
  text(): string {
    return JSON.stringify(this.history.map(({ urn, id, inputs, outputs, op }) => ({ urn, id, inputs, outputs, op })));
  }
}

/** Stored form of properties: values under secret top-level keys encrypted (annotateSecrets re-marks
 *  an output secret when the input of the same key was secret). */
function storedForm(props: Props, secretKeys: ReadonlySet<string>, providerIsSecret: boolean): Props {
  const out: Props = {};
  for (const [key, value] of Object.entries(props)) {
    const secret = secretKeys.has(key) || (key === "__provider" && providerIsSecret);
    out[key] = secret ? ENCRYPTED : value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The harness

export interface HarnessOptions {
  /** Repo-relative module path without extension; dist/<module>.js is loaded. */
  readonly module: string;
  readonly exportName: string;
  /** Resource name in the URN. Default "test". */
  readonly name?: string;
  /** Program-side constructor args (plain JSON). */
  readonly args?: Props;
  /** Top-level arg keys passed as pulumi.secret(...) and treated as secret in state. */
  readonly secretPaths?: readonly string[];
  /** Stack config with namespaces, e.g. {"hetzner-fde:sshUser": "root"}. */
  readonly config?: Record<string, string>;
  /** Config keys set with `--secret`: their values join `secrets` for leak greps. */
  readonly secretConfigKeys?: readonly string[];
  readonly stack?: string;
  /** Call Configure in start() (default true): the host needs it before any other method. */
  readonly configure?: boolean;
  /** Deadline per gRPC call. Default 60 s. */
  readonly callTimeoutMs?: number;
}

export class ProviderHarness {
  readonly state = new StateJournal();
  private readonly urnById = new Map<string, string>();
  private readonly secretKeysByUrn = new Map<string, Set<string>>();

  private constructor(
    private readonly host: ProviderHost,
    readonly program: ProgramReply,
    private readonly opts: HarnessOptions,
    private readonly output: string[],
  ) {}

  static async start(opts: HarnessOptions): Promise<ProviderHarness> {
    const output: string[] = [];
    const program = await runProgram(opts, output);
    const host = await ProviderHost.start({ project: PROJECT, cwd: REPO_ROOT, onOutput: (text) => output.push(text), callTimeoutMs: opts.callTimeoutMs });
    const h = new ProviderHarness(host, program, opts, output);
    track(h, `provider host for ${opts.exportName}`, () => h.stop());
    if (opts.configure !== false) await h.configure(opts.config);
    return h;
  }

  /** Whether the dynamic-provider host process is still alive. */
  get hostRunning(): boolean {
    return this.host.running;
  }

  /** URN of the resource the program constructed. */
  get urn(): string {
    return this.program.urn;
  }

  /** Plaintext of every secret arg and secret config value (what leak greps look for). */
  get secrets(): string[] {
    const args = (this.opts.secretPaths ?? []).map((k) => this.opts.args?.[k]);
    const config = (this.opts.secretConfigKeys ?? []).map((k) => this.opts.config?.[k]);
    return [...args, ...config].filter((v): v is string => typeof v === "string" && v.length > 0);
  }

  /** Everything the host and the program printed, plus every error message the engine would show. */
  get logs(): string {
    return this.output.join("");
  }

  /** The program's registered inputs as the engine sends them (plain values), with overrides. */
  inputs(overrides: Props = {}): Props {
    return { ...plainValues(this.program.inputs), ...overrides };
  }

  async configure(config: Record<string, string> = this.opts.config ?? {}): Promise<void> {
    await this.host.configure(config);
  }

  async check(urn: string, olds: Props, news: Props, opts: { secretPaths?: readonly string[] } = {}): Promise<CheckOutcome> {
    this.secretKeysByUrn.set(urn, new Set(opts.secretPaths ?? this.opts.secretPaths ?? []));
    return this.host.check(urn, plainValues(olds), this.withProvider(plainValues(news)));
  }

  async create(urn: string, inputs: Props): Promise<{ id: string; outs: Props }> {
    try {
      const res = await this.host.create(urn, this.withProvider(inputs));
      this.remember(urn, res.id, inputs, res.outs, "create");
      return res;
    } catch (err) {
      if (err instanceof PartialCreateFailure) this.remember(urn, err.id, inputs, err.properties, "partial");
      throw err;
    }
  }

  async diff(id: string, olds: Props, news: Props): Promise<DiffOutcome> {
    return this.host.diff(this.urnById.get(id) ?? this.urn, id, olds, this.withProvider(plainValues(news)));
  }

  async update(id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
    const urn = this.urnById.get(id) ?? this.urn;
    try {
      const res = await this.host.update(urn, id, olds, this.withProvider(plainValues(news)));
      this.remember(urn, id, news, res.outs, "update");
      return res;
    } catch (err) {
      if (err instanceof PartialCreateFailure) this.remember(urn, id, news, err.properties, "partial");
      throw err;
    }
  }

  /** Refresh-style read: `props` are the old outputs, `inputs` the old inputs. */
  async read(id: string, props: Props, inputs: Props = {}): Promise<ReadOutcome> {
    const urn = this.urnById.get(id) ?? this.urn;
    const outcome = await this.host.read(urn, id, props, inputs);
    if (outcome.id === "") this.forget(urn, id);
    else this.remember(urn, outcome.id, outcome.inputs ?? inputs, outcome.props, "read");
    return outcome;
  }

  async delete(id: string, props: Props): Promise<void> {
    const urn = this.urnById.get(id) ?? this.urn;
    await this.host.delete(urn, id, props);
    this.forget(urn, id);
  }

  /**
   * What `pulumi preview` runs: Check, then Diff against the recorded resource if there is one
   * (never Create/Update/Delete). Put UNKNOWN in `news` for values not known yet.
   */
  async preview(urn: string, news: Props, existing: StateEntry | undefined = this.state.resources.get(urn)): Promise<{ check: CheckOutcome; diff?: DiffOutcome }> {
    const check = await this.check(urn, existing?.plainInputs ?? {}, news);
    if (!existing || check.failures.length > 0) return { check };
    return { check, diff: await this.diff(existing.id, existing.plainOutputs, check.inputs) };
  }

  // -------------------------------------------------------------------------------------------
  // One resource through the engine's step choice (engine/steps.ts), over `state`.

  /** `pulumi up` for one resource: Check, Diff, then Create / Update / Replace / Same. */
  async up(news: Props = this.inputs(), urn: string = this.urn): Promise<{ op: "create" | "update" | "replace" | "same"; check: CheckOutcome; diff?: DiffOutcome }> {
    const old = this.state.resources.get(urn);
    const check = await this.check(urn, old?.plainInputs ?? {}, news);
    if (check.failures.length > 0) {
      throw new ProviderCallError("check", 0, check.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
    }
    const diff = old ? await this.diff(old.id, old.plainOutputs, check.inputs) : undefined;
    const { op, deleteBeforeReplace } = decideStep(old && { inputs: old.plainInputs, partial: old.op === "partial" }, check.inputs, diff);
    if (op === "create") await this.create(urn, check.inputs);
    else if (op === "replace" && deleteBeforeReplace) {
      await this.delete(old!.id, old!.plainOutputs);
      await this.create(urn, check.inputs);
    } else if (op === "replace") {
      await this.create(urn, check.inputs);
      await this.delete(old!.id, old!.plainOutputs);
    } else if (op === "update") await this.update(old!.id, old!.plainOutputs, check.inputs);
    // A same step keeps the OLD outputs, old __provider included (the stale-code trap, §1.4).
    else this.state.record({ ...old!, op: "same" });
    return { op, check, diff };
  }

  /** `pulumi refresh` for one resource: Read(id, old outputs, old inputs). */
  async refresh(urn: string = this.urn): Promise<ReadOutcome | undefined> {
    const old = this.state.resources.get(urn);
    return old ? this.read(old.id, old.plainOutputs, old.plainInputs) : undefined;
  }

  /** `pulumi destroy`: Delete(id, old outputs) for every recorded resource, newest first. */
  async destroy(): Promise<void> {
    for (const entry of [...this.state.resources.values()].reverse()) await this.delete(entry.id, entry.plainOutputs);
  }

  /**
   * Kills the host process with SIGKILL, as a crash or an OOM kill would, mid-call if one is
   * running: for kill-and-rerun tests. Start a new harness to continue.
   */
  killHost(): void {
    this.host.kill();
  }

  /** Stops the host. `logs` is complete only after this: its stdout can trail the gRPC replies. */
  async stop(): Promise<void> {
    untrack(this);
    await this.host.stop();
  }

  // -------------------------------------------------------------------------------------------

  private withProvider(props: Props): Props {
    return "__provider" in props ? props : { ...props, __provider: this.program.provider };
  }

  private remember(urn: string, id: string, inputs: Props, outputs: Props, op: StateEntry["op"]): void {
    const secretKeys = this.secretKeysByUrn.get(urn) ?? new Set(this.opts.secretPaths ?? []);
    const providerIsSecret = this.program.providerIsSecret;
    this.urnById.set(id, urn);
    this.state.record({
      urn,
      id,
      inputs: storedForm(inputs, secretKeys, providerIsSecret),
      // annotateSecrets: an output is secret only when an input of the same key was.
      outputs: storedForm(outputs, secretKeys, providerIsSecret),
      plainInputs: inputs,
      plainOutputs: outputs,
      op,
    });
  }

  // Only if still current: a create-before-delete replacement has already recorded the new id.
  private forget(urn: string, id: string): void {
    if (this.state.resources.get(urn)?.id === id) this.state.remove(urn);
  }
}

// ---------------------------------------------------------------------------------------------
// Child processes

async function runProgram(opts: HarnessOptions, logs: string[]): Promise<ProgramReply> {
  const request: ProgramRequest = {
    module: opts.module,
    exportName: opts.exportName,
    name: opts.name ?? "test",
    args: opts.args ?? {},
    secretPaths: opts.secretPaths ?? [],
    project: PROJECT,
    stack: opts.stack ?? "test",
    repoRoot: REPO_ROOT,
  };
  const child = fork(path.join(__dirname, "program-runner.js"), [], { cwd: REPO_ROOT, execArgv: [], stdio: ["ignore", "pipe", "pipe", "ipc"] });
  child.stdout?.on("data", (d: Buffer) => logs.push(d.toString()));
  child.stderr?.on("data", (d: Buffer) => logs.push(d.toString()));
  const message = await new Promise<ProgramMessage>((resolve, reject) => {
    child.once("message", (m: ProgramMessage) => resolve(m));
    child.once("exit", (code) => reject(new Error(`program runner exited (${code}) without a reply: ${logs.join("").slice(-2000)}`)));
    child.send(request);
  });
  if (!message.ok) throw new Error(`program runner: ${message.error}`);
  return message.reply;
}

