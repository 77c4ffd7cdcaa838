// The engine's verbs over one stack: preview and up run the program and turn each registration into
// Check → Diff against the recorded state → Create / Update / Replace / nothing, then delete what
// the program no longer registers; refresh reads every resource; destroy deletes every resource.
// All provider calls go through ONE real dynamic-provider host (provider-host.ts). The state file is
// written after every operation (state.ts); a preview writes nothing and calls no Create, Update,
// Delete or Read, so no provider effect can run.
import * as pulumi from "@pulumi/pulumi";
import * as settings from "@pulumi/pulumi/runtime/settings";
import { runInPulumiStack } from "@pulumi/pulumi/runtime/stack";
import { EngineMonitor, inheritedAliases, Registered, Registration } from "./monitor";
import { PartialCreateFailure, ProviderHost } from "./provider-host";
import type { Project, StackConfig } from "./stack-config";
import type { ResourceState, StackSnapshot, StateStore } from "./state";
import { Counts, decideStep, deletionOrder, emptyCounts, protectedDeleteMessage, protectedReplaceMessage, summaryLines } from "./steps";
import { containsSecret, isSecretWrapper, loadWire, markSecrets, plainValues, Props, secretOutputKeys, secretWrapper, UNKNOWN } from "./wire";

const DYNAMIC_TYPE_PREFIX = "pulumi-nodejs:dynamic";

export interface DeploymentOptions {
  readonly project: Project;
  readonly stack: string;
  readonly config: StackConfig;
  readonly store: StateStore;
  /** Progress and the resources' own log lines, one line at a time. */
  readonly print: (line: string) => void;
  /** Deadline per provider call; a real host step (an install) takes many minutes. */
  readonly callTimeoutMs?: number;
}

export interface DeploymentResult {
  readonly ok: boolean;
  readonly counts: Counts;
  /** Failures as the engine printed them (secrets redacted). */
  readonly errors: string[];
  /** Stack outputs (plain values; secrets included: print them masked). */
  readonly outputs: Props;
}

/** Program runs in this process: Node caches the program module, so there may be only one. */
let programRuns = 0;

/** One run of one verb. Create a new Deployment for every verb. */
export class Deployment {
  private readonly counts = emptyCounts();
  private readonly errors: string[] = [];
  private readonly started = Date.now();
  /** Recorded entries by URN (the old snapshot, updated in place as steps complete). */
  private readonly entries = new Map<string, ResourceState>();
  /** Old halves of create-before-delete replacements still to delete. */
  private readonly pendingDeletes: ResourceState[] = [];
  private readonly registered = new Set<string>();
  /** Every alias URN of each resource registered in this run (children inherit their parent's). */
  private readonly aliasesOf = new Map<string, string[]>();
  private hostPromise?: Promise<ProviderHost>;
  private hostLine = "";
  /** The stack outputs this run's program registered (wire form). */
  private programOutputs: Props = {};

  constructor(private readonly opts: DeploymentOptions) {
    const snapshot = opts.store.load(opts.project.name);
    for (const r of snapshot.resources) {
      if (r.pendingDelete) this.pendingDeletes.push(r);
      else this.entries.set(r.urn, r);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Verbs

  /** `preview` (dryRun) or `up`: runs the program, then deletes what it no longer registers. */
  async update(dryRun: boolean): Promise<DeploymentResult> {
    this.opts.print(`${dryRun ? "Previewing update" : "Updating"} (${this.opts.stack}):`);
    try {
      await this.runProgram(dryRun);
      if (this.errors.length === 0) await this.deleteUnregistered(dryRun);
    } catch (err) {
      this.fail(err);
    } finally {
      await this.stopHost();
    }
    return this.finish(dryRun, this.programOutputs);
  }

  /** `refresh`: Read of every recorded resource with the code that created it; shows the drift. */
  async refresh(): Promise<DeploymentResult> {
    this.opts.print(`Refreshing (${this.opts.stack}):`);
    try {
      const custom = [...this.entries.values()].filter((r) => r.custom);
      await Promise.all(custom.map((r) => this.refreshOne(r).catch((err: unknown) => this.fail(err, r.urn))));
      this.counts.same += [...this.entries.values()].filter((r) => !r.custom).length;
    } finally {
      await this.stopHost();
    }
    return this.finish(false, this.stackOutputs());
  }

  /** `destroy`: Delete of every recorded resource, dependents first. The program does not run. */
  async destroy(): Promise<DeploymentResult> {
    this.opts.print(`Destroying (${this.opts.stack}):`);
    try {
      const all = [...this.entries.values(), ...this.pendingDeletes];
      const refused = all.filter((r) => r.protect && !r.pendingDelete);
      if (refused.length > 0) {
        for (const r of refused) this.fail(new Error(protectedDeleteMessage(r.urn)), r.urn);
      } else {
        await this.deleteAll(all);
      }
    } finally {
      await this.stopHost();
    }
    return this.finish(false, {});
  }

  /** The recorded stack outputs (wire form: secrets wrapped). */
  stackOutputs(): Props {
    const stack = [...this.entries.values()].find((r) => r.type === "pulumi:pulumi:Stack");
    return stack?.outputs ?? {};
  }

  // -------------------------------------------------------------------------------------------
  // Running the program

  private async runProgram(dryRun: boolean): Promise<void> {
    const { project, stack, config } = this.opts;
    // Node runs a required module once: a second program run in this process would register
    // nothing, and an update would then delete every resource of the stack (the drill's second `up`
    // wiped its host that way). Refused before anything is planned.
    if (programRuns++ > 0) {
      throw new Error(
        `the program (${project.program}) already ran in this process, and Node would not run it again: the update would register nothing and delete every resource. ` +
          "The local engine runs one program per process: start the engine CLI (dist/engine/cli.js) once per preview or up",
      );
    }
    const monitor = new EngineMonitor(loadWire(), { register: (r) => this.register(r, dryRun), registerOutputs: (u, o) => this.registerOutputs(u, o, dryRun) }, stack, project.name);
    settings.setMockOptions(monitor, project.name, stack, dryRun);
    pulumi.runtime.setAllConfig(config.values, config.secretKeys);
    // A failed registration rejects promises the program never awaits; `pulumi` reports those as
    // the update's errors, and so does this engine. Late ones can arrive after the program is done,
    // so the handler stays for the life of the process (one Deployment per process).
    process.on("unhandledRejection", (err: unknown) => this.fail(err));
    try {
      // cmd/run does the same: the program runs inside the root Stack component, whose outputs are
      // the module's exports.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      await runInPulumiStack(async () => require(project.program));
    } finally {
      // Registrations whose outputs the program never awaits may still be running, also after a
      // failure elsewhere: every started step finishes (and is recorded) before the host stops.
      await (settings as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs();
    }
  }

  private async register(r: Registration, dryRun: boolean): Promise<Registered> {
    try {
      return await this.registerOne(r, dryRun);
    } catch (err) {
      this.fail(err, r.urn);
      throw err;
    }
  }

  private async registerOne(r: Registration, dryRun: boolean): Promise<Registered> {
    if (this.registered.has(r.urn)) throw new Error(`Duplicate resource URN '${r.urn}'; try giving it a unique name`);
    this.registered.add(r.urn);
    this.adoptAlias(r);
    if (r.unsupported.length > 0) {
      throw new Error(`${r.urn} sets ${r.unsupported.join(", ")}, which the local engine does not implement (see README, "The local engine"); use the Pulumi CLI`);
    }
    if (!r.custom) return this.registerComponent(r, dryRun);
    if (!r.type.startsWith(DYNAMIC_TYPE_PREFIX)) {
      throw new Error(`${r.urn}: the local engine runs dynamic resources only (${DYNAMIC_TYPE_PREFIX}*); ${r.type} needs a provider plugin, use the Pulumi CLI`);
    }
    return this.registerCustom(r, dryRun);
  }

  /**
   * A resource recorded under one of its aliases (renamed, moved into a component) takes over that
   * entry: the same resource under its new URN, so no create and no delete. Children follow their
   * parent's aliases. The first alias that is recorded and not registered in this run wins.
   */
  private adoptAlias(r: Registration): void {
    const parentAliases = r.parent ? this.aliasesOf.get(r.parent) ?? [] : [];
    const aliases = [...r.aliases, ...(r.parent ? inheritedAliases(r.type, r.name, r.parent, parentAliases, this.opts.stack, this.opts.project.name) : [])];
    this.aliasesOf.set(r.urn, aliases);
    if (this.entries.has(r.urn)) return;
    const old = aliases.find((urn) => this.entries.has(urn) && !this.registered.has(urn));
    if (old === undefined) return;
    const entry = this.entries.get(old)!;
    this.entries.delete(old);
    this.entries.set(r.urn, { ...entry, urn: r.urn });
    for (const other of this.entries.values()) {
      if (other.parent === old) this.entries.set(other.urn, { ...other, parent: r.urn });
      if (other.dependencies.includes(old)) this.entries.set(other.urn, { ...this.entries.get(other.urn)!, dependencies: other.dependencies.map((d) => (d === old ? r.urn : d)) });
    }
    this.progress("=", r.urn, `same resource, recorded as ${old.split("::").pop()} (alias)`);
  }

  private async registerComponent(r: Registration, dryRun: boolean): Promise<Registered> {
    const old = this.entries.get(r.urn);
    this.counts[old ? "same" : "create"]++;
    if (!old) this.progress("+", r.urn, dryRun ? "create" : "created");
    if (!dryRun) this.record({ ...this.base(r), id: "", inputs: r.inputs, outputs: old?.outputs ?? {} });
    return { id: "", outputs: {} };
  }

  private async registerOutputs(urn: string, outputs: Props, dryRun: boolean): Promise<void> {
    if (urn.split("::")[2] === "pulumi:pulumi:Stack") this.programOutputs = outputs;
    const entry = this.entries.get(urn);
    if (!dryRun && entry) this.record({ ...entry, outputs });
  }

  private async registerCustom(r: Registration, dryRun: boolean): Promise<Registered> {
    const host = await this.host();
    const old = this.entries.get(r.urn);
    const news = plainValues(r.inputs);
    const check = await host.check(r.urn, old ? plainValues(old.inputs) : {}, news);
    if (check.failures.length > 0) {
      throw new Error(`${r.urn} failed its check:\n${check.failures.map((f) => `  - ${f.property}: ${f.reason}`).join("\n")}`);
    }
    const inputs = resecret(check.inputs, r.inputs);
    const diff = old ? await host.diff(r.urn, old.id, plainValues(old.outputs), check.inputs) : undefined;
    const decision = decideStep(old && { inputs: plainValues(old.inputs), partial: old.initErrors !== undefined }, check.inputs, diff, r.deleteBeforeReplace);
    if (decision.op === "replace" && old?.protect && r.protect) throw new Error(protectedReplaceMessage(r.urn));
    const secretKeys = secretOutputKeys(r.inputs, r.additionalSecretOutputs);

    if (dryRun) {
      this.counts[decision.op]++;
      const symbol = { create: "+", update: "~", replace: "+-", same: " " }[decision.op];
      if (decision.op !== "same") this.progress(symbol, r.urn, decision.op === "replace" && decision.deleteBeforeReplace ? "replace (delete before replace)" : decision.op);
      // What `pulumi` shows a program in preview: for a same step the recorded outputs; otherwise the
      // checked inputs (the host cannot preview, supportsPreview=false), and every other output
      // unknown. An id not yet known is "".
      if (decision.op === "same" && old) return { id: old.id, outputs: old.outputs };
      return { id: decision.op === "update" && old ? old.id : "", outputs: markSecrets(check.inputs, secretKeys) };
    }

    const entry = (id: string, outs: Props, extra: Partial<ResourceState> = {}): ResourceState => ({
      ...this.base(r),
      id,
      inputs,
      outputs: markSecrets(outs, secretKeys),
      ...extra,
    });
    switch (decision.op) {
      case "same": {
        // A same step keeps the OLD outputs, old __provider included (pulumi-dynamic.md §1.4).
        this.counts.same++;
        const kept = entry(old!.id, {}, { outputs: old!.outputs });
        this.record(kept);
        return { id: kept.id, outputs: kept.outputs };
      }
      case "create": {
        const created = await this.timed("+", r.urn, "creating", "created", () => this.createStep(r.urn, check.inputs, entry));
        this.counts.create++;
        return { id: created.id, outputs: created.outputs };
      }
      case "update": {
        const updated = await this.timed("~", r.urn, "updating", "updated", async () => {
          try {
            const res = await host.update(r.urn, old!.id, plainValues(old!.outputs), check.inputs);
            return this.record(entry(old!.id, res.outs));
          } catch (err) {
            if (err instanceof PartialCreateFailure) this.record(entry(old!.id, err.properties, { initErrors: err.reasons }));
            throw err;
          }
        });
        this.counts.update++;
        return { id: updated.id, outputs: updated.outputs };
      }
      case "replace": {
        const replaced = await this.timed("+-", r.urn, "replacing", "replaced", async () => {
          if (decision.deleteBeforeReplace) {
            await this.deleteStep(old!);
            this.entries.delete(r.urn);
            this.save();
            return this.createStep(r.urn, check.inputs, entry);
          }
          const pending: ResourceState = { ...old!, pendingDelete: true };
          this.pendingDeletes.push(pending);
          let created: ResourceState;
          try {
            created = await this.createStep(r.urn, check.inputs, entry);
          } catch (err) {
            // Nothing new exists unless the create was partial: the old one stays the resource.
            if (!(err instanceof PartialCreateFailure)) this.pendingDeletes.splice(this.pendingDeletes.indexOf(pending), 1);
            throw err;
          }
          await this.deletePending(old!);
          return created;
        });
        this.counts.replace++;
        return { id: replaced.id, outputs: replaced.outputs };
      }
    }
  }

  private async createStep(urn: string, inputs: Props, entry: (id: string, outs: Props, extra?: Partial<ResourceState>) => ResourceState): Promise<ResourceState> {
    const host = await this.host();
    try {
      const res = await host.create(urn, inputs);
      return this.record(entry(res.id, res.outs));
    } catch (err) {
      // Recorded with its id, so the next `up` updates it and `destroy` can delete it.
      if (err instanceof PartialCreateFailure) this.record(entry(err.id, err.properties, { initErrors: err.reasons }));
      throw err;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Deletes

  private async deleteUnregistered(dryRun: boolean): Promise<void> {
    const gone = [...this.entries.values()].filter((r) => !this.registered.has(r.urn));
    for (const r of gone) if (r.protect) throw new Error(protectedDeleteMessage(r.urn));
    if (dryRun) {
      for (const r of [...gone, ...this.pendingDeletes]) {
        this.counts.delete++;
        this.progress("-", r.urn, "delete");
      }
      return;
    }
    await this.deleteAll([...gone, ...this.pendingDeletes]);
  }

  /** Deletes `doomed`, dependents first (the order is computed over everything recorded). */
  private async deleteAll(doomed: readonly ResourceState[]): Promise<void> {
    const all = [...this.entries.values(), ...this.pendingDeletes];
    const order = deletionOrder(all);
    const byUrn = new Map<string, ResourceState[]>();
    for (const r of doomed) byUrn.set(r.urn, [...(byUrn.get(r.urn) ?? []), r]);
    for (const urn of order) {
      for (const r of byUrn.get(urn) ?? []) {
        await this.timed("-", r.urn, "deleting", "deleted", async () => {
          if (r.pendingDelete) await this.deletePending(r);
          else {
            await this.deleteStep(r);
            this.entries.delete(r.urn);
            this.save();
          }
          return r;
        });
        this.counts.delete++;
      }
    }
  }

  private async deletePending(old: ResourceState): Promise<void> {
    await this.deleteStep(old);
    const i = this.pendingDeletes.findIndex((p) => p.urn === old.urn && p.id === old.id);
    if (i !== -1) this.pendingDeletes.splice(i, 1);
    this.save();
  }

  private async deleteStep(r: ResourceState): Promise<void> {
    if (!r.custom || r.retainOnDelete) return;
    const host = await this.host();
    await host.delete(r.urn, r.id, plainValues(r.outputs));
  }

  // -------------------------------------------------------------------------------------------
  // Refresh

  private async refreshOne(r: ResourceState): Promise<void> {
    const host = await this.host();
    const started = Date.now();
    const read = await host.read(r.urn, r.id, plainValues(r.outputs), plainValues(r.inputs));
    if (read.id === "") {
      this.entries.delete(r.urn);
      this.save();
      this.counts.delete++;
      this.progress("-", r.urn, `deleted: the resource is gone (${elapsed(started)})`);
      return;
    }
    const secretKeys = [...new Set([...secretOutputKeys(r.inputs, r.additionalSecretOutputs), ...Object.keys(r.outputs).filter((k) => isSecretWrapper(r.outputs[k]))])];
    const outputs = markSecrets(read.props, secretKeys);
    const inputs = read.inputs ? resecret(read.inputs, r.inputs) : r.inputs;
    const drift = driftOf(r.outputs, outputs);
    this.record({ ...r, id: read.id, outputs, inputs });
    if (drift.length === 0) {
      this.counts.same++;
      return;
    }
    this.counts.update++;
    this.progress("~", r.urn, `updated (${elapsed(started)}): ${drift.join(", ")}`);
  }

  // -------------------------------------------------------------------------------------------
  // State, host, output

  private base(r: Registration): Omit<ResourceState, "id" | "inputs" | "outputs"> {
    return {
      urn: r.urn,
      type: r.type,
      custom: r.custom,
      parent: r.parent,
      dependencies: r.dependencies,
      protect: r.protect,
      retainOnDelete: r.retainOnDelete,
      additionalSecretOutputs: r.additionalSecretOutputs,
    };
  }

  private record(entry: ResourceState): ResourceState {
    this.entries.set(entry.urn, entry);
    this.save();
    return entry;
  }

  private save(): void {
    const snapshot: StackSnapshot = {
      project: this.opts.project.name,
      stack: this.opts.stack,
      resources: [...this.entries.values(), ...this.pendingDeletes],
    };
    this.opts.store.save(snapshot);
  }

  private host(): Promise<ProviderHost> {
    this.hostPromise ??= (async () => {
      const host = await ProviderHost.start({
        project: this.opts.project.name,
        cwd: this.opts.project.dir,
        onOutput: (text) => this.hostOutput(text),
        callTimeoutMs: this.opts.callTimeoutMs,
      });
      await host.configure(this.opts.config.values);
      return host;
    })();
    return this.hostPromise;
  }

  private async stopHost(): Promise<void> {
    if (!this.hostPromise) return;
    const host = await this.hostPromise.catch(() => undefined);
    await host?.stop();
    if (this.hostLine !== "") this.opts.print(`    ${this.redact(this.hostLine)}`);
    this.hostLine = "";
  }

  // The resources' own lines: the host prints them (pulumi.log falls back to the console there).
  private hostOutput(text: string): void {
    const lines = (this.hostLine + text).split("\n");
    this.hostLine = lines.pop() ?? "";
    for (const line of lines) if (line.trim() !== "") this.opts.print(`    ${this.redact(line)}`);
  }

  // Values shorter than 4 characters are no real secret (validation refuses them) and would mangle
  // every line they occur in.
  private redact(text: string): string {
    let out = text;
    for (const s of this.opts.config.secrets) if (s.length >= 4) out = out.split(s).join("[secret]");
    return out;
  }

  private async timed<T>(symbol: string, urn: string, doing: string, done: string, fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    this.progress(symbol, urn, `${doing}...`);
    const result = await fn();
    this.progress(symbol, urn, `${done} (${elapsed(started)})`);
    return result;
  }

  private progress(symbol: string, urn: string, what: string): void {
    const [, , , type, name] = urn.split("::").length === 4 ? ["", "", "", ...urn.split("::").slice(2)] : urn.split("::");
    this.opts.print(` ${symbol.padEnd(2)} ${(type ?? urn).split("$").pop()} ${name ?? ""} ${what} [${elapsed(this.started)}]`);
  }

  private fail(err: unknown, urn?: string): void {
    const message = this.redact(err instanceof Error ? err.message : String(err));
    // The SDK wraps a failed registration into the errors of everything that depended on it
    // ("error serializing property …: failed to register new resource …: <the cause>"): say it once.
    if (this.errors.some((seen) => message.includes(seen))) return;
    this.errors.push(message);
    this.opts.print(`error: ${urn && !message.includes(urn) ? `${urn}: ` : ""}${message}`);
  }

  private finish(dryRun: boolean, outputs: Props): DeploymentResult {
    if (Object.keys(outputs).length > 0) {
      this.opts.print("Outputs:");
      for (const [k, v] of Object.entries(outputs)) this.opts.print(`    ${k}: ${showValue(v)}`);
    }
    for (const line of summaryLines(this.counts, dryRun)) this.opts.print(line);
    this.opts.print(`Duration: ${elapsed(this.started)}`);
    if (this.errors.length > 0) this.opts.print(`error: ${dryRun ? "preview" : "update"} failed (${this.errors.length} error${this.errors.length === 1 ? "" : "s"} above)`);
    return { ok: this.errors.length === 0, counts: this.counts, errors: this.errors, outputs: plainValues(outputs) };
  }
}

/** The checked inputs, with the keys that were secret at registration wrapped again. */
function resecret(checked: Props, registered: Props): Props {
  return Object.fromEntries(Object.entries(checked).map(([k, v]) => [k, containsSecret(registered[k]) && !isSecretWrapper(v) ? secretWrapper(v) : v]));
}

/** Output keys whose value changed, with old → new for values that are not secret. */
function driftOf(olds: Props, news: Props): string[] {
  const keys = [...new Set([...Object.keys(olds), ...Object.keys(news)])].filter((k) => k !== "__provider");
  return keys
    .filter((k) => JSON.stringify(olds[k]) !== JSON.stringify(news[k]))
    .map((k) => (containsSecret(olds[k]) || containsSecret(news[k]) ? `${k} [secret] changed` : `${k}: ${short(olds[k])} => ${short(news[k])}`));
}

function short(v: unknown): string {
  const text = JSON.stringify(v) ?? "undefined";
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** A stack output for the terminal: secrets masked, as `pulumi stack output` shows them. */
export function showValue(v: unknown): string {
  const mask = (x: unknown): unknown => {
    if (isSecretWrapper(x)) return "[secret]";
    if (x === UNKNOWN) return "[unknown]";
    if (Array.isArray(x)) return x.map(mask);
    if (x !== null && typeof x === "object") return Object.fromEntries(Object.entries(x).map(([k, y]) => [k, mask(y)]));
    return x;
  };
  return JSON.stringify(mask(v));
}

function elapsed(since: number): string {
  const ms = Date.now() - since;
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}
