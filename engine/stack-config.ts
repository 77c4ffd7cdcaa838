// A project and its stack file, read as `pulumi` reads them: `Pulumi.yaml` names the project and
// the program (`main`), `Pulumi.<stack>.yaml` holds `config:` with `<namespace>:<key>` keys, and
// `secure:` nodes are secrets (values supplied by a SecretResolver, see secrets.ts).
import * as fs from "fs";
import * as path from "path";
import { parse } from "yaml";
import { formatPath, PathSegment } from "../providers/rules";
import type { SecretResolver } from "./secrets";
import { REPO_ROOT } from "./wire";

export interface Project {
  readonly name: string;
  readonly dir: string;
  /** The compiled program to load: `main` with .ts mapped to its dist/ .js. */
  readonly program: string;
}

export interface StackConfig {
  /** `<namespace>:<key>` → value; structured values JSON-encoded, as pulumi.Config reads them. */
  readonly values: Record<string, string>;
  /** The keys holding a secret anywhere inside. */
  readonly secretKeys: string[];
  /** The plaintext of every secret, for redaction and leak checks. Never printed. */
  readonly secrets: string[];
}

export function readProject(dir: string): Project {
  const file = path.join(dir, "Pulumi.yaml");
  const doc = parse(fs.readFileSync(file, "utf8")) as { name?: unknown; main?: unknown };
  if (typeof doc.name !== "string" || doc.name === "") throw new Error(`${file}: name must be the project's name, found ${JSON.stringify(doc.name)}`);
  const main = typeof doc.main === "string" ? doc.main : "index.ts";
  return { name: doc.name, dir, program: compiledProgram(dir, main) };
}

// tsc compiles the repo into dist/ with rootDir ".": infra/index.ts runs as dist/infra/index.js.
function compiledProgram(dir: string, main: string): string {
  const abs = path.resolve(dir, main);
  if (!abs.endsWith(".ts")) return abs;
  const rel = path.relative(REPO_ROOT, abs);
  if (rel.startsWith("..")) throw new Error(`main ${main} is a .ts file outside this repository; point main at its compiled .js`);
  return path.join(REPO_ROOT, "dist", rel.replace(/\.ts$/, ".js"));
}

export async function readStackConfig(project: Project, stack: string, resolve: SecretResolver): Promise<StackConfig> {
  const file = path.join(project.dir, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) throw new Error(`${file} does not exist: stack ${JSON.stringify(stack)} has no stack file in ${project.dir}`);
  const doc = (parse(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  const values: Record<string, string> = {};
  const secretKeys: string[] = [];
  const secrets: string[] = [];
  for (const [fullKey, raw] of Object.entries(doc.config ?? {})) {
    const key = fullKey.includes(":") ? fullKey : `${project.name}:${fullKey}`;
    // Paths are given without this project's namespace, as `pulumi config set --path` takes them.
    const shortKey = key.startsWith(`${project.name}:`) ? key.slice(project.name.length + 1) : key;
    let secret = false;
    // One secret at a time: a prompt must not interleave with the next one.
    const substitute = async (value: unknown, at: PathSegment[]): Promise<unknown> => {
      if (value === null || typeof value !== "object") return value;
      const entries = Object.entries(value);
      if (!Array.isArray(value) && entries.length === 1 && entries[0][0] === "secure") {
        secret = true;
        const plain = await resolve(formatPath(at));
        secrets.push(plain);
        return plain;
      }
      const out: [string, unknown][] = [];
      for (const [k, v] of entries) out.push([k, await substitute(v, [...at, Array.isArray(value) ? Number(k) : k])]);
      return Array.isArray(value) ? out.map(([, v]) => v) : Object.fromEntries(out);
    };
    const value = await substitute(raw, [shortKey]);
    values[key] = typeof value === "string" ? value : JSON.stringify(value);
    if (secret) secretKeys.push(key);
  }
  return { values, secretKeys, secrets };
}
