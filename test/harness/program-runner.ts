// The PROGRAM side of a harness run, in its own Node process: loads a compiled resource module from
// dist/, installs Pulumi mocks and constructs the resource, then reports what the engine would have
// received (type, URN, inputs with secret wrappers, the serialized `__provider` text).
//
// It runs outside jest on purpose: the closure serializer must see real CommonJS modules, not jest's
// module registry. Started with child_process.fork; one request in, one reply out, over IPC.

import { createRequire } from "module";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { isSecretWrapper } from "../../engine/wire";

export { isSecretWrapper };

export interface ProgramRequest {
  /** Repo-relative module path without extension, e.g. "test/harness/fixtures/marker-file". */
  readonly module: string;
  readonly exportName: string;
  readonly name: string;
  /** Constructor args as plain JSON; the values at `secretPaths` are wrapped in pulumi.secret. */
  readonly args: Record<string, unknown>;
  readonly secretPaths: readonly string[];
  readonly project: string;
  readonly stack: string;
  readonly repoRoot: string;
}

export interface ProgramReply {
  readonly type: string;
  readonly urn: string;
  /** Inputs as registered, secret values still in the RPC wrapper form. */
  readonly inputs: Record<string, unknown>;
  /** The serialized provider text (unwrapped if it was secret). */
  readonly provider: string;
  /** Whether the engine would have stored `__provider` as a secret (the closure captured one). */
  readonly providerIsSecret: boolean;
}

export type ProgramMessage = { ok: true; reply: ProgramReply } | { ok: false; error: string };

// Serialization failures never reject under mocks: urn/id just never resolve (pulumi-dynamic.md §4.2).
const REGISTRATION_TIMEOUT_MS = 20_000;

async function run(req: ProgramRequest): Promise<ProgramReply> {
  const registered = new Promise<{ type: string; name: string; inputs: Record<string, unknown> }>((resolve, reject) => {
    const failures: string[] = [];
    process.on("unhandledRejection", (err) => {
      failures.push(err instanceof Error ? err.message : String(err));
      reject(new Error(`constructing ${req.exportName} failed: ${failures.join("; ")}`));
    });
    setTimeout(() => reject(new Error(`${req.exportName} was not registered within ${REGISTRATION_TIMEOUT_MS}ms`)), REGISTRATION_TIMEOUT_MS).unref();
    pulumi.runtime.setMocks(
      {
        newResource: (a) => {
          resolve({ type: a.type, name: a.name, inputs: a.inputs });
          return { id: `${a.name}-id`, state: a.inputs };
        },
        call: (a) => a.inputs,
      },
      req.project,
      req.stack,
      false,
    );
  });

  // Loaded by absolute path with Node's own require: the module under test resolves @pulumi/pulumi
  // from the same node_modules as this runner, so both share one runtime (and one set of mocks).
  const mod = createRequire(__filename)(path.join(req.repoRoot, "dist", req.module)) as Record<string, unknown>;
  const ResourceClass = mod[req.exportName] as (new (name: string, args: unknown) => unknown) | undefined;
  if (typeof ResourceClass !== "function") {
    throw new Error(`dist/${req.module}.js has no export ${req.exportName}; exports are: ${Object.keys(mod).join(", ")}`);
  }
  new ResourceClass(req.name, wrapSecrets(req.args, req.secretPaths));

  const seen = await registered;
  const rawProvider = seen.inputs.__provider;
  const providerIsSecret = isSecretWrapper(rawProvider);
  const provider = providerIsSecret ? (rawProvider as { value: unknown }).value : rawProvider;
  if (typeof provider !== "string") throw new Error(`__provider is ${typeof provider}, expected the serialized provider text`);
  return {
    type: seen.type,
    urn: `urn:pulumi:${req.stack}::${req.project}::${seen.type}::${seen.name}`,
    inputs: seen.inputs,
    provider,
    providerIsSecret,
  };
}

function wrapSecrets(args: Record<string, unknown>, secretPaths: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...args };
  for (const key of secretPaths) {
    if (key.includes(".") || key.includes("[")) throw new Error(`secretPaths supports top-level keys only, got ${key}`);
    if (key in out) out[key] = pulumi.secret(out[key]);
  }
  return out;
}

if (require.main === module) {
  process.once("message", (req: ProgramRequest) => {
    run(req).then(
      (reply) => process.send?.({ ok: true, reply } satisfies ProgramMessage, () => process.exit(0)),
      (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? err.message : String(err) } satisfies ProgramMessage, () => process.exit(1)),
    );
  });
}
