// Runs the Pulumi program (infra/index.ts) for a stack file without the Pulumi CLI: the stack
// config comes from `Pulumi.<stack>.yaml` (secrets supplied by a resolver, since no CLI can decrypt
// them), the program runs under `pulumi.runtime.setMocks`, and its stack outputs come back.
//
// Resources the program registers are recorded; driving dynamic resources through the real
// dynamic-provider host (ProviderHarness) is added here as the host resources land.
import { readFileSync } from "fs";
import { join } from "path";
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { PROJECT, rawConfigFromStackFile, SECRET_KEYS } from "../../infra/config";

export interface StackRun {
  readonly outputs: Record<string, unknown>;
  readonly registered: readonly { type: string; name: string }[];
}

export async function runStackProgram(repoRoot: string, stack: string, resolveSecret: (path: string) => string): Promise<StackRun> {
  const file = parse(readFileSync(join(repoRoot, `Pulumi.${stack}.yaml`), "utf8")) as { config?: Record<string, unknown> };
  const raw = rawConfigFromStackFile(file.config ?? {}, resolveSecret);
  const registered: { type: string; name: string }[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        registered.push({ type: args.type, name: args.name });
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: (args) => args.inputs,
    },
    PROJECT,
    stack,
    false,
  );
  // pulumi.Config reads JSON-encoded values for structured keys, plain strings otherwise.
  const config = Object.fromEntries(Object.entries(raw).map(([k, v]) => [`${PROJECT}:${k}`, typeof v === "string" ? v : JSON.stringify(v)]));
  pulumi.runtime.setAllConfig(config, SECRET_KEYS.map((k) => `${PROJECT}:${k}`));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const program = require(join(repoRoot, "dist", "infra", "index.js")) as Record<string, unknown>;
  const outputs: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(program)) outputs[name] = await resolveOutput(value);
  return { outputs, registered };
}

async function resolveOutput(value: unknown): Promise<unknown> {
  if (pulumi.Output.isInstance(value)) return new Promise((resolve) => value.apply((v) => resolve(v)));
  return value;
}
