// The engine's side of the program: an in-process ResourceMonitor. The SDK hands every
// RegisterResource request to it exactly as it would send it to `pulumi` over gRPC, so the engine
// sees what the CLI sees: type, name, parent, custom, the inputs in wire form (secret wrappers, the
// unknown sentinel, the serialized `__provider`) and the options (protect, dependencies,
// deleteBeforeReplace, additionalSecretOutputs, retainOnDelete, ignoreChanges, aliases, import).
//
// Why not `pulumi.runtime.setMocks`: its `newResource` callback receives type, name, inputs and
// provider only; protect, dependsOn, deleteBeforeReplace and additionalSecretOutputs are dropped
// (runtime/mocks.js, 3.270.0). The SDK's own `setMockOptions` takes any monitor object, so this one
// subclasses the SDK's MockMonitor for the parts that need no engine (feature flags, packages,
// transforms) and replaces registration. The callback of a registration fires only when the step
// is done, and the SDK resolves a resource's URN, id and outputs from that callback: a dependent's
// registration waits on them (runtime/resource.js prepareResource awaits dependency URNs and input
// Outputs), so dependency order and output flow are the SDK's own.
import { MockMonitor } from "@pulumi/pulumi/runtime/mocks";
import type * as aliasTypes from "@pulumi/pulumi/proto/alias_pb";
import type * as resTypes from "@pulumi/pulumi/proto/resource_pb";
import type { PulumiWire, Props } from "./wire";

export interface Registration {
  readonly urn: string;
  readonly type: string;
  readonly name: string;
  readonly parent?: string;
  readonly custom: boolean;
  /** Wire form, as the SDK serialized them. */
  readonly inputs: Props;
  readonly protect: boolean;
  readonly dependencies: string[];
  /** Undefined when the program did not set it. */
  readonly deleteBeforeReplace?: boolean;
  readonly retainOnDelete: boolean;
  readonly additionalSecretOutputs: string[];
  /** URNs this resource may have been recorded under before (its own `aliases`; the parent's are added by the deployment). */
  readonly aliases: string[];
  /** Options this engine does not implement but the program set: the engine refuses them by name. */
  readonly unsupported: string[];
}

export interface Registered {
  readonly id: string;
  /** Wire form: secrets wrapped, the unknown sentinel where a preview does not know a value. */
  readonly outputs: Props;
}

export interface MonitorHandler {
  register(r: Registration): Promise<Registered>;
  registerOutputs(urn: string, outputs: Props): Promise<void>;
}

const ROOT_STACK_TYPE = "pulumi:pulumi:Stack";

/**
 * The aliases a child inherits from its parent's (the engine's own rule, since the SDK sends alias
 * specs and leaves inheritance to it): under each old URN of the parent, the child's URN, its name's
 * prefix renamed as the parent was (`pair-b` under `pair` → `twin-b` under `twin`).
 */
export function inheritedAliases(childType: string, childName: string, parentUrn: string, parentAliases: readonly string[], stack: string, project: string): string[] {
  const parentName = parentUrn.split("::").pop()!;
  return parentAliases.map((alias) => {
    const aliasName = alias.split("::").pop()!;
    const name = childName.startsWith(parentName) ? aliasName + childName.slice(parentName.length) : childName;
    return makeUrn(stack, project, childType, name, alias);
  });
}

/** resource.NewURN: the type is qualified by the parent's type chain, except under the root stack. */
export function makeUrn(stack: string, project: string, type: string, name: string, parentUrn?: string): string {
  let qualified = type;
  if (parentUrn) {
    const parentType = parentUrn.split("::")[2];
    if (parentType !== ROOT_STACK_TYPE) qualified = `${parentType}$${type}`;
  }
  return `urn:pulumi:${stack}::${project}::${qualified}::${name}`;
}

type Callback = (err: Error | null, resp?: unknown) => void;

export class EngineMonitor extends MockMonitor {
  constructor(
    private readonly wire: PulumiWire,
    private readonly handler: MonitorHandler,
    private readonly stack: string,
    private readonly project: string,
  ) {
    super({
      newResource: () => {
        throw new Error("unreachable: registration is the engine's");
      },
      call: (args) => {
        throw new Error(`the local engine runs no provider functions; the program invoked ${args.token}`);
      },
    });
  }

  override async registerResource(req: resTypes.RegisterResourceRequest, callback: Callback): Promise<void> {
    try {
      const registration = this.registrationOf(req);
      const done = await this.handler.register(registration);
      const resp = new this.wire.res.RegisterResourceResponse();
      resp.setUrn(registration.urn);
      resp.setId(done.id);
      resp.setObject(this.wire.struct.Struct.fromJavaScript(done.outputs as Record<string, never>));
      callback(null, resp);
    } catch (err) {
      callback(err instanceof Error ? err : new Error(String(err)));
    }
  }

  override registerResourceOutputs(req: resTypes.RegisterResourceOutputsRequest, callback: Callback): void {
    this.handler.registerOutputs(req.getUrn(), req.getOutputs()?.toJavaScript() ?? {}).then(
      () => callback(null, {}),
      (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
    );
  }

  override async readResource(req: resTypes.ReadResourceRequest, callback: Callback): Promise<void> {
    callback(new Error(`the local engine does not read existing resources (${req.getType()} ${req.getName()} uses .get() or import)`));
  }

  /** An alias as the SDK sends it (aliasSpecs: this monitor supports them), as a URN: unset parts are the resource's own. */
  private aliasUrn(alias: aliasTypes.Alias, req: resTypes.RegisterResourceRequest, parent: string | undefined): string {
    if (alias.hasUrn()) return alias.getUrn();
    const spec = alias.getSpec()!;
    const aliasParent = spec.getNoparent() ? undefined : spec.getParenturn() || parent;
    return makeUrn(spec.getStack() || this.stack, spec.getProject() || this.project, spec.getType() || req.getType(), spec.getName() || req.getName(), aliasParent);
  }

  private registrationOf(req: resTypes.RegisterResourceRequest): Registration {
    const parent = req.getParent() || undefined;
    const unsupported: string[] = [];
    if (req.getIgnorechangesList().length > 0) unsupported.push("ignoreChanges");
    if (req.getReplaceonchangesList().length > 0) unsupported.push("replaceOnChanges");
    if (req.getImportid()) unsupported.push("import");
    if (req.getDeletedwith()) unsupported.push("deletedWith");
    if (req.getProvider()) unsupported.push("provider");
    return {
      urn: makeUrn(this.stack, this.project, req.getType(), req.getName(), parent),
      type: req.getType(),
      name: req.getName(),
      parent,
      custom: req.getCustom(),
      inputs: req.getObject()?.toJavaScript() ?? {},
      protect: req.getProtect() ?? false,
      dependencies: req.getDependenciesList(),
      deleteBeforeReplace: req.getDeletebeforereplacedefined() ? req.getDeletebeforereplace() : undefined,
      retainOnDelete: req.getRetainondelete() ?? false,
      additionalSecretOutputs: req.getAdditionalsecretoutputsList(),
      aliases: [...req.getAliasurnsList(), ...req.getAliasesList().map((alias) => this.aliasUrn(alias, req, parent))],
      unsupported,
    };
  }
}
