// Runs the engine's CLI as a child process against a throw-away project whose program is the
// chain-stack fixture: the engine owns its process (the Pulumi runtime is global per process), and
// a test can SIGKILL it.
import { spawn, spawnSync } from "child_process";
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join, resolve } from "path";
import { StateStore } from "../../engine/state";

export const REPO_ROOT = resolve(__dirname, "../../..");
export const CLI = join(REPO_ROOT, "dist", "engine", "cli.js");
export const TOKEN = "tok-7Hq9-never-in-state";

export interface Fixture {
  readonly dir: string;
  readonly stateDir: string;
  readonly journal: string;
  setVariant(variant: object): void;
  run(verb: string, env?: NodeJS.ProcessEnv): { status: number | null; out: string };
  /** Journal lines written since the last call. */
  journalSince(): string[];
  state(): ReturnType<StateStore["load"]>;
}

export function chainFixture(variant: object = {}): Fixture {
  const dir = mkdtempSync(join(tmpdir(), "hfde-engine-"));
  const stateDir = join(dir, "state");
  const journal = join(dir, "journal");
  writeFileSync(journal, "");
  // The provider host runs in the project directory, and serialized provider code resolves its
  // requires (`@pulumi/pulumi/log`, `ssh2`) from there, as in any Pulumi project.
  symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
  writeFileSync(join(dir, "Pulumi.yaml"), `name: engine-test\nruntime: nodejs\nmain: ${join(REPO_ROOT, "dist/test/engine/fixtures/chain-stack.js")}\n`);
  const setVariant = (v: object): void => {
    writeFileSync(
      join(dir, "Pulumi.test.yaml"),
      `config:\n  engine-test:journal: ${journal}\n  engine-test:token:\n    secure: placeholder\n  engine-test:variant: ${JSON.stringify(v)}\n`,
    );
  };
  setVariant(variant);
  let seen = 0;
  return {
    dir,
    stateDir,
    journal,
    setVariant,
    run: (verb, env = {}) => {
      // `verb` may carry its flags: "up --refresh".
      const r = spawnSync(process.execPath, [CLI, ...verb.split(" "), "--stack", "test", "--dir", dir, "--state-dir", stateDir], {
        env: { ...process.env, HFDE_SECRET_TOKEN: TOKEN, ...env },
        encoding: "utf8",
        timeout: 120_000,
      });
      return { status: r.status, out: r.stdout + r.stderr };
    },
    journalSince: () => {
      const lines = readFileSync(journal, "utf8").split("\n").filter((l) => l !== "");
      const fresh = lines.slice(seen);
      seen = lines.length;
      return fresh;
    },
    state: () => new StateStore(stateDir, "test").load("engine-test"),
  };
}

/** Starts `up` and SIGKILLs the engine once `afterCreates` creates are journaled. */
export async function upAndKill(f: Fixture, afterCreates: number): Promise<string> {
  const child = spawn(process.execPath, [CLI, "up", "--stack", "test", "--dir", f.dir, "--state-dir", f.stateDir], {
    env: { ...process.env, HFDE_SECRET_TOKEN: TOKEN },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolveKilled, reject) => {
    const timer = setInterval(() => {
      const creates = readFileSync(f.journal, "utf8").split("\n").filter((l) => l.startsWith("create")).length;
      if (creates >= afterCreates) {
        clearInterval(timer);
        child.kill("SIGKILL");
      }
    }, 20);
    child.once("exit", (_code, signal) => {
      clearInterval(timer);
      if (signal === "SIGKILL") resolveKilled();
      else reject(new Error(`the engine finished before it was killed:\n${out}`));
    });
  });
  return out;
}

/** "Type name" of every create line of a preview (the engine prints the URN's type and name). */
export function plannedCreates(stdout: string): string[] {
  return stdout
    .split("\n")
    .map((l) => /^ \+ {2}(\S+) (\S+) create /.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => `${m[1].split(":").pop()} ${m[2]}`)
    .sort();
}
