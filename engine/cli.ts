// `npm run stack -- <verb> --stack <name>`: the local engine's command line, for machines without
// the Pulumi CLI. Verbs as `pulumi` names them: preview, up, refresh, destroy, output (`pulumi
// stack output`). Exit status: 0 done, 1 failed, 2 usage.
import * as path from "path";
import { Deployment, DeploymentResult, showValue } from "./deployment";
import { secretResolver } from "./secrets";
import { readProject, readStackConfig } from "./stack-config";
import { defaultStateDir, StateStore } from "./state";
import { plainValues, REPO_ROOT } from "./wire";

export const VERBS = ["preview", "up", "refresh", "destroy", "output"] as const;
export type Verb = (typeof VERBS)[number];

export interface RunOptions {
  readonly verb: Verb;
  readonly stack: string;
  /** The project directory (holds Pulumi.yaml). Default: this repository. */
  readonly dir?: string;
  /** Default: `$HFDE_LAB_DIR/stacks` (the lab's state directory). */
  readonly stateDir?: string;
  readonly showSecrets?: boolean;
  /** `up --refresh`: read every resource first, as `pulumi up --refresh` does (a host found locked is then unlocked). */
  readonly refresh?: boolean;
  readonly print?: (line: string) => void;
}

const USAGE = `usage: npm run stack -- <${VERBS.join("|")}> --stack <name> [--dir <project dir>] [--state-dir <dir>] [--show-secrets] [--refresh (up)]`;

/** Runs one verb; resolves to the exit status. */
export async function runVerb(opts: RunOptions): Promise<number> {
  const print = opts.print ?? ((line: string) => console.log(line));
  const project = readProject(path.resolve(opts.dir ?? REPO_ROOT));
  const store = new StateStore(opts.stateDir ?? defaultStateDir(), opts.stack);
  if (opts.verb === "output") {
    const deployment = new Deployment({ project, stack: opts.stack, config: { values: {}, secretKeys: [], secrets: [] }, store, print });
    const outputs = deployment.stackOutputs();
    print(opts.showSecrets ? JSON.stringify(plainValues(outputs), null, 2) : showValue(outputs));
    return 0;
  }
  const config = await readStackConfig(project, opts.stack, secretResolver({ stack: opts.stack }));
  // One Deployment per run: it shuts its provider hosts down when the run ends.
  const newDeployment = (): Deployment => new Deployment({ project, stack: opts.stack, config, store, print, callTimeoutMs: 60 * 60_000 });
  print(`Local engine (no Pulumi CLI): project ${project.name}, stack ${opts.stack}, state ${store.file}`);
  const release = opts.verb === "preview" ? () => undefined : store.lock();
  try {
    let result: DeploymentResult;
    if (opts.verb === "up" && opts.refresh) {
      result = await newDeployment().refresh();
      if (result.ok) result = await newDeployment().update(false);
    } else if (opts.verb === "preview" || opts.verb === "up") result = await newDeployment().update(opts.verb === "preview");
    else if (opts.verb === "refresh") result = await newDeployment().refresh();
    else result = await newDeployment().destroy();
    return result.ok ? 0 : 1;
  } finally {
    release();
  }
}

export function parseArgs(argv: readonly string[]): RunOptions | string {
  const [verb, ...rest] = argv;
  if (!VERBS.includes(verb as Verb)) return `${verb === undefined ? "no verb given" : `unknown verb ${JSON.stringify(verb)}`}\n${USAGE}`;
  let stack: string | undefined;
  let dir: string | undefined;
  let stateDir: string | undefined;
  let showSecrets = false;
  let refresh = false;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    const value = (): string => {
      const v = rest[++i];
      if (v === undefined) throw new Error(`${arg} needs a value\n${USAGE}`);
      return v;
    };
    try {
      if (arg === "--stack" || arg === "-s") stack = value();
      else if (arg === "--dir" || arg === "-C") dir = value();
      else if (arg === "--state-dir") stateDir = value();
      else if (arg === "--show-secrets") showSecrets = true;
      else if (arg === "--refresh" && verb === "up") refresh = true;
      else if (arg === "--yes" || arg === "-y" || arg === "--non-interactive") continue; // accepted for `pulumi` muscle memory: the engine never asks
      else return `unknown option ${JSON.stringify(arg)}\n${USAGE}`;
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (stack === undefined) return `--stack is required: the engine has no selected stack\n${USAGE}`;
  return { verb: verb as Verb, stack, dir, stateDir, showSecrets, refresh };
}

if (require.main === module) {
  const parsed = parseArgs(process.argv.slice(2));
  if (typeof parsed === "string") {
    console.error(parsed);
    process.exit(2);
  }
  runVerb(parsed).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
