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
 */

import { ChildProcess, fork, spawn } from "child_process";
import { createRequire } from "module";
import * as path from "path";
import type * as grpcTypes from "@grpc/grpc-js";
import type * as structTypes from "google-protobuf/google/protobuf/struct_pb";
import type * as provrpcTypes from "@pulumi/pulumi/proto/provider_grpc_pb";
import type * as provTypes from "@pulumi/pulumi/proto/provider_pb";
import type * as statusTypes from "@pulumi/pulumi/proto/status_pb";
import { track, untrack } from "../support/leftovers";
import type { ProgramMessage, ProgramReply, ProgramRequest } from "./program-runner";
import { isSecretWrapper } from "./program-runner";

export { UNKNOWN } from "../../providers/kernel/resource";

/** Repo root: this file runs as dist/test/harness/harness.js. */
export const REPO_ROOT = path.resolve(__dirname, "../../..");
const PROJECT = "hetzner-fde";
const STARTUP_TIMEOUT_MS = 20_000;

// ---------------------------------------------------------------------------------------------
// The gRPC and protobuf modules @pulumi/pulumi itself resolves: the serializers check instanceof.

interface PulumiWire {
  grpc: typeof grpcTypes;
  struct: typeof structTypes;
  provrpc: typeof provrpcTypes;
  prov: typeof provTypes;
  status: typeof statusTypes;
  hostEntry: string;
}

function loadWire(): PulumiWire {
  const fromPulumi = createRequire(require.resolve("@pulumi/pulumi/package.json", { paths: [REPO_ROOT] }));
  return {
    grpc: fromPulumi("@grpc/grpc-js"),
    struct: fromPulumi("google-protobuf/google/protobuf/struct_pb"),
    provrpc: fromPulumi("./proto/provider_grpc_pb"),
    prov: fromPulumi("./proto/provider_pb"),
    status: fromPulumi("./proto/status_pb"),
    hostEntry: fromPulumi.resolve("./cmd/dynamic-provider"),
  };
}

// ---------------------------------------------------------------------------------------------
// Results and errors

export type Props = Record<string, unknown>;

export interface CheckOutcome {
  readonly inputs: Props;
  readonly failures: { property: string; reason: string }[];
}
export interface DiffOutcome {
  readonly changes: "some" | "none" | "unknown";
  readonly replaces: string[];
  readonly deleteBeforeReplace: boolean;
}
export interface ReadOutcome {
  /** "" means the resource is gone. */
  readonly id: string;
  readonly props: Props;
  readonly inputs?: Props;
}

/** Create (or update) failed after the resource came into being: the engine records it with `id`. */
export class PartialCreateFailure extends Error {
  constructor(
    message: string,
    readonly id: string,
    readonly properties: Props,
    readonly reasons: string[],
  ) {
    super(message);
    this.name = "PartialCreateFailure";
  }
}

/** Any other failed call; `message` is what the engine would print. */
export class ProviderCallError extends Error {
  constructor(
    readonly method: string,
    readonly code: number,
    details: string,
  ) {
    super(`${method} failed: ${details}`);
    this.name = "ProviderCallError";
  }
}

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

type Callback<T> = (err: grpcTypes.ServiceError | null, resp: T) => void;

export class ProviderHarness {
  readonly state = new StateJournal();
  private readonly urnById = new Map<string, string>();
  private readonly secretKeysByUrn = new Map<string, Set<string>>();

  private constructor(
    private readonly wire: PulumiWire,
    private readonly host: ChildProcess,
    private readonly client: provrpcTypes.ResourceProviderClient,
    readonly program: ProgramReply,
    private readonly opts: HarnessOptions,
    private readonly output: string[],
  ) {}

  static async start(opts: HarnessOptions): Promise<ProviderHarness> {
    const wire = loadWire();
    const output: string[] = [];
    const program = await runProgram(opts, output);
    const { child, port } = await startHost(wire.hostEntry, output);
    const client = new wire.provrpc.ResourceProviderClient(`127.0.0.1:${port}`, wire.grpc.credentials.createInsecure());
    const h = new ProviderHarness(wire, child, client, program, opts, output);
    track(h, `provider host for ${opts.exportName}`, () => h.stop());
    if (opts.configure !== false) await h.configure(opts.config);
    return h;
  }

  /** Whether the dynamic-provider host process is still alive. */
  get hostRunning(): boolean {
    return this.host.exitCode === null && this.host.signalCode === null;
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
    const req = new this.wire.prov.ConfigureRequest();
    req.setArgs(this.toStruct(config));
    await this.call<provTypes.ConfigureResponse>("configure", req);
  }

  async check(urn: string, olds: Props, news: Props, opts: { secretPaths?: readonly string[] } = {}): Promise<CheckOutcome> {
    this.secretKeysByUrn.set(urn, new Set(opts.secretPaths ?? this.opts.secretPaths ?? []));
    const req = new this.wire.prov.CheckRequest();
    req.setUrn(urn);
    req.setOlds(this.toStruct(plainValues(olds)));
    req.setNews(this.toStruct(this.withProvider(plainValues(news))));
    const resp = await this.call<provTypes.CheckResponse>("check", req);
    return {
      inputs: resp.getInputs()?.toJavaScript() ?? {},
      failures: resp.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async create(urn: string, inputs: Props): Promise<{ id: string; outs: Props }> {
    const req = new this.wire.prov.CreateRequest();
    req.setUrn(urn);
    req.setProperties(this.toStruct(this.withProvider(inputs)));
    try {
      const resp = await this.call<provTypes.CreateResponse>("create", req);
      const outs = resp.getProperties()?.toJavaScript() ?? {};
      this.remember(urn, resp.getId(), inputs, outs, "create");
      return { id: resp.getId(), outs };
    } catch (err) {
      if (err instanceof PartialCreateFailure) this.remember(urn, err.id, inputs, err.properties, "partial");
      throw err;
    }
  }

  async diff(id: string, olds: Props, news: Props): Promise<DiffOutcome> {
    const req = new this.wire.prov.DiffRequest();
    req.setId(id);
    req.setUrn(this.urnById.get(id) ?? this.urn);
    req.setOlds(this.toStruct(olds));
    req.setNews(this.toStruct(this.withProvider(plainValues(news))));
    const resp = await this.call<provTypes.DiffResponse>("diff", req);
    const Changes = this.wire.prov.DiffResponse.DiffChanges;
    const changes = resp.getChanges() === Changes.DIFF_SOME ? "some" : resp.getChanges() === Changes.DIFF_NONE ? "none" : "unknown";
    return { changes, replaces: resp.getReplacesList(), deleteBeforeReplace: resp.getDeletebeforereplace() };
  }

  async update(id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
    const urn = this.urnById.get(id) ?? this.urn;
    const req = new this.wire.prov.UpdateRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setOlds(this.toStruct(olds));
    req.setNews(this.toStruct(this.withProvider(plainValues(news))));
    try {
      const resp = await this.call<provTypes.UpdateResponse>("update", req);
      const outs = resp.getProperties()?.toJavaScript() ?? {};
      this.remember(urn, id, news, outs, "update");
      return { outs };
    } catch (err) {
      if (err instanceof PartialCreateFailure) this.remember(urn, id, news, err.properties, "partial");
      throw err;
    }
  }

  /** Refresh-style read: `props` are the old outputs, `inputs` the old inputs. */
  async read(id: string, props: Props, inputs: Props = {}): Promise<ReadOutcome> {
    const urn = this.urnById.get(id) ?? this.urn;
    const req = new this.wire.prov.ReadRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setProperties(this.toStruct(props));
    req.setInputs(this.toStruct(inputs));
    const resp = await this.call<provTypes.ReadResponse>("read", req);
    const outcome = {
      id: resp.getId(),
      props: resp.getProperties()?.toJavaScript() ?? {},
      inputs: resp.getInputs()?.toJavaScript(),
    };
    if (outcome.id === "") this.forget(urn, id);
    else this.remember(urn, outcome.id, outcome.inputs ?? inputs, outcome.props, "read");
    return outcome;
  }

  async delete(id: string, props: Props): Promise<void> {
    const urn = this.urnById.get(id) ?? this.urn;
    const req = new this.wire.prov.DeleteRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setProperties(this.toStruct(props));
    await this.call<unknown>("delete", req);
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
  // A small engine over `state` (step_generator.go semantics, one resource at a time).

  /** `pulumi up` for one resource: Check, Diff, then Create / Update / Replace / Same. */
  async up(news: Props = this.inputs(), urn: string = this.urn): Promise<{ op: "create" | "update" | "replace" | "same"; check: CheckOutcome; diff?: DiffOutcome }> {
    const old = this.state.resources.get(urn);
    const check = await this.check(urn, old?.plainInputs ?? {}, news);
    if (check.failures.length > 0) {
      throw new ProviderCallError("check", 0, check.failures.map((f) => `${f.property}: ${f.reason}`).join("; "));
    }
    if (!old) {
      await this.create(urn, check.inputs);
      return { op: "create", check };
    }
    const diff = await this.diff(old.id, old.plainOutputs, check.inputs);
    const changed = diff.changes === "some" || (diff.changes === "unknown" && JSON.stringify(old.plainInputs) !== JSON.stringify(check.inputs));
    if (diff.replaces.length > 0) {
      if (diff.deleteBeforeReplace) {
        await this.delete(old.id, old.plainOutputs);
        await this.create(urn, check.inputs);
      } else {
        await this.create(urn, check.inputs);
        await this.delete(old.id, old.plainOutputs);
      }
      return { op: "replace", check, diff };
    }
    if (changed || old.op === "partial") {
      await this.update(old.id, old.plainOutputs, check.inputs);
      return { op: "update", check, diff };
    }
    // A same step keeps the OLD outputs, old __provider included (the stale-code trap, §1.4).
    this.state.record({ ...old, op: "same" });
    return { op: "same", check, diff };
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
    this.host.kill("SIGKILL");
  }

  /** Stops the host. `logs` is complete only after this: its stdout can trail the gRPC replies. */
  async stop(): Promise<void> {
    untrack(this);
    this.client.close();
    if (this.host.exitCode !== null || this.host.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.host.once("close", () => resolve()); // "close" comes after stdout/stderr are drained
      this.host.kill("SIGTERM");
    });
  }

  // -------------------------------------------------------------------------------------------

  private withProvider(props: Props): Props {
    return "__provider" in props ? props : { ...props, __provider: this.program.provider };
  }

  private toStruct(props: object): structTypes.Struct {
    return this.wire.struct.Struct.fromJavaScript(props as Record<string, structTypes.JavaScriptValue>);
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

  private call<T>(method: string, req: unknown): Promise<T> {
    const deadline = new Date(Date.now() + (this.opts.callTimeoutMs ?? 60_000));
    const fn = (this.client as unknown as Record<string, (r: unknown, m: grpcTypes.Metadata, o: grpcTypes.CallOptions, cb: Callback<T>) => void>)[method];
    return new Promise<T>((resolve, reject) => {
      fn.call(this.client, req, new this.wire.grpc.Metadata(), { deadline }, (err, resp) => {
        if (!err) return resolve(resp);
        const failure = this.toFailure(method, err);
        this.output.push(`error: ${failure.message}\n`); // the engine prints it; keep it for leak greps
        reject(failure);
      });
    });
  }

  private toFailure(method: string, err: grpcTypes.ServiceError): Error {
    const initFailed = this.initFailure(err);
    if (initFailed) {
      return new PartialCreateFailure(
        `${method} failed: ${detailsOf(err)}`,
        initFailed.getId(),
        initFailed.getProperties()?.toJavaScript() ?? {},
        initFailed.getReasonsList(),
      );
    }
    return new ProviderCallError(method, err.code, detailsOf(err));
  }

  private initFailure(err: grpcTypes.ServiceError): provTypes.ErrorResourceInitFailed | undefined {
    const raw = err.metadata?.get("grpc-status-details-bin")[0];
    if (raw === undefined) return undefined;
    const status = this.wire.status.Status.deserializeBinary(new Uint8Array(Buffer.from(raw)));
    for (const any of status.getDetailsList()) {
      const detail = any.unpack(this.wire.prov.ErrorResourceInitFailed.deserializeBinary, "pulumirpc.ErrorResourceInitFailed");
      if (detail) return detail;
    }
    return undefined;
  }
}

/** Strips the RPC secret wrappers, as the engine does for a provider with acceptSecrets=false. */
export function plainValues(props: Props): Props {
  const unwrap = (v: unknown): unknown => {
    if (isSecretWrapper(v)) return unwrap((v as { value: unknown }).value);
    if (Array.isArray(v)) return v.map(unwrap);
    if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
    return v;
  };
  return unwrap(props) as Props;
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

/** Starts the dynamic-provider host; its first stdout line is the port it listens on. */
async function startHost(hostEntry: string, output: string[]): Promise<{ child: ChildProcess; port: number }> {
  // The engine address is required but never used: the host does not connect back (#6065).
  const child = spawn(process.execPath, [hostEntry, "127.0.0.1:1"], {
    cwd: REPO_ROOT,
    env: { ...process.env, PULUMI_NODEJS_PROJECT: PROJECT, PULUMI_PROJECT: PROJECT, PULUMI_CONFIG: "{}" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.on("data", (d: Buffer) => output.push(d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => fail(`did not print its port within ${STARTUP_TIMEOUT_MS}ms`), STARTUP_TIMEOUT_MS);
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`dynamic-provider host ${why}: ${output.join("").slice(-2000)}`));
    };
    const onStdout = (d: Buffer): void => {
      stdout += d.toString();
      const newline = stdout.indexOf("\n");
      if (newline === -1) return;
      child.stdout?.off("data", onStdout);
      child.stdout?.on("data", (more: Buffer) => output.push(more.toString()));
      child.off("exit", onExit);
      clearTimeout(timer);
      output.push(stdout.slice(newline + 1));
      const port = Number(stdout.slice(0, newline).trim());
      if (Number.isInteger(port) && port > 0) resolve(port);
      else fail(`printed ${JSON.stringify(stdout.slice(0, newline))} instead of a port`);
    };
    const onExit = (code: number | null): void => fail(`exited (${code}) before printing its port`);
    child.stdout?.on("data", onStdout);
    child.once("exit", onExit);
  });
  return { child, port };
}

// The host reports some errors as {code, message} without `details`; grpc-js then puts the text
// only into the message ("2 UNKNOWN: <text>").
function detailsOf(err: grpcTypes.ServiceError): string {
  return err.details || err.message.replace(/^\d+ [A-Z_]+: /, "");
}
