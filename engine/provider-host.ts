// The REAL dynamic-provider host from @pulumi/pulumi (`cmd/dynamic-provider`, what `pulumi` starts
// as `pulumi-resource-pulumi-nodejs`), driven over gRPC the way the engine drives it
// (pulumi-dynamic.md §1.4, §4.3): Configure first, plain values with secrets stripped, old OUTPUTS
// as `olds` for Diff/Update/Delete, outputs as `properties` for Read.
//
// One host serves every dynamic resource of a run, as under `pulumi`: it caches the loaded provider
// by its text, so Configure runs once per distinct provider code. Its stdout and stderr are the
// resources' own log lines (the host never connects to an engine, pulumi#6065): they go to `onOutput`.
import { ChildProcess, spawn } from "child_process";
import * as path from "path";
import type * as grpcTypes from "@grpc/grpc-js";
import type * as structTypes from "google-protobuf/google/protobuf/struct_pb";
import type * as provrpcTypes from "@pulumi/pulumi/proto/provider_grpc_pb";
import type * as provTypes from "@pulumi/pulumi/proto/provider_pb";
import { loadWire, Props, PulumiWire, REPO_ROOT } from "./wire";

const STARTUP_TIMEOUT_MS = 20_000;

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

export interface ProviderHostOptions {
  /** Project name: `config.get("k")` inside a provider looks up `<project>:k`. */
  readonly project: string;
  /** The host's cwd: `require("ssh2")` in serialized code resolves from here. */
  readonly cwd?: string;
  /** Every chunk the host prints, and every error message the engine would show. */
  readonly onOutput: (text: string) => void;
  /** Deadline per gRPC call. Default 60 s; an `up` of a real host step needs more. */
  readonly callTimeoutMs?: number;
}

type Callback<T> = (err: grpcTypes.ServiceError | null, resp: T) => void;

export class ProviderHost {
  private constructor(
    private readonly wire: PulumiWire,
    private readonly child: ChildProcess,
    private readonly client: provrpcTypes.ResourceProviderClient,
    private readonly opts: ProviderHostOptions,
  ) {}

  static async start(opts: ProviderHostOptions): Promise<ProviderHost> {
    const wire = loadWire();
    const { child, port } = await spawnHost(wire.hostEntry, opts);
    const client = new wire.provrpc.ResourceProviderClient(`127.0.0.1:${port}`, wire.grpc.credentials.createInsecure());
    return new ProviderHost(wire, child, client, opts);
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** The whole stack config with namespaces, secrets decrypted (what the engine sends). */
  async configure(config: Record<string, string>): Promise<void> {
    const req = new this.wire.prov.ConfigureRequest();
    req.setArgs(this.toStruct(config));
    await this.call<provTypes.ConfigureResponse>("configure", req);
  }

  /** `olds` are the previous inputs, `news` the new ones; both plain, `__provider` included. */
  async check(urn: string, olds: Props, news: Props): Promise<CheckOutcome> {
    const req = new this.wire.prov.CheckRequest();
    req.setUrn(urn);
    req.setOlds(this.toStruct(olds));
    req.setNews(this.toStruct(news));
    const resp = await this.call<provTypes.CheckResponse>("check", req);
    return {
      inputs: resp.getInputs()?.toJavaScript() ?? {},
      failures: resp.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  async diff(urn: string, id: string, olds: Props, news: Props): Promise<DiffOutcome> {
    const req = new this.wire.prov.DiffRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setOlds(this.toStruct(olds));
    req.setNews(this.toStruct(news));
    const resp = await this.call<provTypes.DiffResponse>("diff", req);
    const Changes = this.wire.prov.DiffResponse.DiffChanges;
    const changes = resp.getChanges() === Changes.DIFF_SOME ? "some" : resp.getChanges() === Changes.DIFF_NONE ? "none" : "unknown";
    return { changes, replaces: resp.getReplacesList(), deleteBeforeReplace: resp.getDeletebeforereplace() };
  }

  /** Throws PartialCreateFailure when the provider reported ErrorResourceInitFailed. */
  async create(urn: string, inputs: Props): Promise<{ id: string; outs: Props }> {
    const req = new this.wire.prov.CreateRequest();
    req.setUrn(urn);
    req.setProperties(this.toStruct(inputs));
    const resp = await this.call<provTypes.CreateResponse>("create", req);
    return { id: resp.getId(), outs: resp.getProperties()?.toJavaScript() ?? {} };
  }

  async update(urn: string, id: string, olds: Props, news: Props): Promise<{ outs: Props }> {
    const req = new this.wire.prov.UpdateRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setOlds(this.toStruct(olds));
    req.setNews(this.toStruct(news));
    const resp = await this.call<provTypes.UpdateResponse>("update", req);
    return { outs: resp.getProperties()?.toJavaScript() ?? {} };
  }

  /** Refresh-style read: `props` are the old outputs, `inputs` the old inputs. */
  async read(urn: string, id: string, props: Props, inputs: Props = {}): Promise<ReadOutcome> {
    const req = new this.wire.prov.ReadRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setProperties(this.toStruct(props));
    req.setInputs(this.toStruct(inputs));
    const resp = await this.call<provTypes.ReadResponse>("read", req);
    return { id: resp.getId(), props: resp.getProperties()?.toJavaScript() ?? {}, inputs: resp.getInputs()?.toJavaScript() };
  }

  async delete(urn: string, id: string, props: Props): Promise<void> {
    const req = new this.wire.prov.DeleteRequest();
    req.setId(id);
    req.setUrn(urn);
    req.setProperties(this.toStruct(props));
    await this.call<unknown>("delete", req);
  }

  /** SIGKILL, as a crash or an OOM kill would, mid-call if one is running. */
  kill(): void {
    this.child.kill("SIGKILL");
  }

  /** Stops the host; its output is complete when this resolves (stdout can trail the replies). */
  async stop(): Promise<void> {
    this.client.close();
    if (!this.running) return;
    await new Promise<void>((resolve) => {
      this.child.once("close", () => resolve());
      this.child.kill("SIGTERM");
    });
  }

  private toStruct(props: object): structTypes.Struct {
    return this.wire.struct.Struct.fromJavaScript(props as Record<string, structTypes.JavaScriptValue>);
  }

  private call<T>(method: string, req: unknown): Promise<T> {
    const deadline = new Date(Date.now() + (this.opts.callTimeoutMs ?? 60_000));
    const fn = (this.client as unknown as Record<string, (r: unknown, m: grpcTypes.Metadata, o: grpcTypes.CallOptions, cb: Callback<T>) => void>)[method];
    return new Promise<T>((resolve, reject) => {
      fn.call(this.client, req, new this.wire.grpc.Metadata(), { deadline }, (err, resp) => {
        if (!err) return resolve(resp);
        const failure = this.toFailure(method, err);
        this.opts.onOutput(`error: ${failure.message}\n`); // the engine prints it; kept for leak greps
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

/** Starts the host; its first stdout line is the port it listens on. */
async function spawnHost(hostEntry: string, opts: ProviderHostOptions): Promise<{ child: ChildProcess; port: number }> {
  const output = opts.onOutput;
  const seen: string[] = [];
  // The engine address is required but never used: the host does not connect back (#6065).
  const child = spawn(process.execPath, ["-r", path.join(__dirname, "host-watchdog.js"), hostEntry, "127.0.0.1:1"], {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...process.env, PULUMI_NODEJS_PROJECT: opts.project, PULUMI_PROJECT: opts.project, PULUMI_CONFIG: "{}" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stderr?.on("data", (d: Buffer) => {
    seen.push(d.toString());
    output(d.toString());
  });
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => fail(`did not print its port within ${STARTUP_TIMEOUT_MS}ms`), STARTUP_TIMEOUT_MS);
    const fail = (why: string): void => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(`dynamic-provider host ${why}: ${seen.join("").slice(-2000)}`));
    };
    const onStdout = (d: Buffer): void => {
      stdout += d.toString();
      const newline = stdout.indexOf("\n");
      if (newline === -1) return;
      child.stdout?.off("data", onStdout);
      child.stdout?.on("data", (more: Buffer) => output(more.toString()));
      child.off("exit", onExit);
      clearTimeout(timer);
      if (stdout.length > newline + 1) output(stdout.slice(newline + 1));
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
