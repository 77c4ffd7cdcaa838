// The lab stack on a chosen subset of the lab's servers, shared by `npm run demo` and the
// end-to-end test (test/lab/host-stack.test.ts): a lab config with only those servers (one VM is
// what this 2-core machine runs well), and a project directory whose Pulumi.lab.yaml is the
// repository's, filtered to those hosts. The program is the repository's compiled infra/index.ts.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse, stringify } from "yaml";
import { REPO_ROOT } from "./wire";

export const LAB_STACK = "lab";

export interface LabStack {
  /** Project directory: Pulumi.yaml, Pulumi.lab.yaml, node_modules (a link). */
  readonly projectDir: string;
  /** lab config with only the chosen servers (`npm run lab -- up --config <it>`). */
  readonly labConfig: string;
  readonly hosts: readonly string[];
}

/** Writes the filtered lab config and project into `dir`. Hosts are Pulumi.lab.yaml names (lab-1). */
export function prepareLabStack(dir: string, hosts: readonly string[] = ["lab-1"]): LabStack {
  fs.mkdirSync(dir, { recursive: true });
  const stackFile = parse(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.lab.yaml"), "utf8")) as { config: Record<string, unknown> };
  const config = stackFile.config;
  const allHosts = config["hetzner-fde:hosts"] as { name: string; target: { robot?: { serverNumber: number } } }[];
  const chosen = allHosts.filter((h) => hosts.includes(h.name));
  const missing = hosts.filter((h) => !chosen.some((c) => c.name === h));
  if (missing.length > 0) throw new Error(`Pulumi.lab.yaml has no host ${missing.join(", ")}; its hosts are ${allHosts.map((h) => h.name).join(", ")}`);
  config["hetzner-fde:hosts"] = chosen;
  const passphrases = config["hetzner-fde:luksPassphrases"] as Record<string, unknown>;
  config["hetzner-fde:luksPassphrases"] = Object.fromEntries(Object.entries(passphrases).filter(([name]) => hosts.includes(name)));

  const projectDir = path.join(dir, "project");
  fs.mkdirSync(projectDir, { recursive: true });
  const project = parse(fs.readFileSync(path.join(REPO_ROOT, "Pulumi.yaml"), "utf8")) as Record<string, unknown>;
  fs.writeFileSync(path.join(projectDir, "Pulumi.yaml"), stringify({ ...project, main: path.join(REPO_ROOT, "dist", "infra", "index.js") }));
  fs.writeFileSync(path.join(projectDir, `Pulumi.${LAB_STACK}.yaml`), `# Pulumi.lab.yaml of ${REPO_ROOT}, hosts ${hosts.join(", ")} only.\n${stringify(stackFile)}`);
  // The provider host resolves the serialized providers' requires from the project directory.
  const modules = path.join(projectDir, "node_modules");
  if (!fs.existsSync(modules)) fs.symlinkSync(path.join(REPO_ROOT, "node_modules"), modules);

  const lab = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, "lab", "lab.config.json"), "utf8")) as { servers: { number: number }[] };
  const numbers = chosen.map((h) => h.target.robot?.serverNumber);
  lab.servers = lab.servers.filter((s) => numbers.includes(s.number));
  const labConfig = path.join(dir, "lab.config.json");
  fs.writeFileSync(labConfig, JSON.stringify(lab, null, 2));
  return { projectDir, labConfig, hosts };
}

/**
 * The lab stack prepared in `dir` as it stands: its config may have changed since (the e2e adds an
 * unlock key), and the drill must run against what was deployed, not the repository's file.
 * Prepared afresh only when missing.
 */
export function openLabStack(dir: string, hosts: readonly string[] = ["lab-1"]): LabStack {
  const stack = { projectDir: path.join(dir, "project"), labConfig: path.join(dir, "lab.config.json"), hosts };
  const prepared = fs.existsSync(path.join(stack.projectDir, `Pulumi.${LAB_STACK}.yaml`)) && fs.existsSync(stack.labConfig);
  return prepared ? stack : prepareLabStack(dir, hosts);
}

/** One host's entry and the stack-wide settings, as the prepared project's Pulumi.lab.yaml has them. */
export interface LabHostEntry {
  readonly name: string;
  readonly target: { readonly robot: { readonly serverNumber: number } };
  readonly endpoints: { readonly sshPort: number; readonly dropbearPort: number };
  readonly drives: readonly { readonly path: string; readonly serial?: string }[];
}

export function labHost(stack: LabStack, name: string): { host: LabHostEntry; robotUrl: string; robotUser: string } {
  const doc = parse(fs.readFileSync(path.join(stack.projectDir, `Pulumi.${LAB_STACK}.yaml`), "utf8")) as { config: Record<string, unknown> };
  const host = (doc.config["hetzner-fde:hosts"] as LabHostEntry[]).find((h) => h.name === name);
  if (!host) throw new Error(`the lab stack in ${stack.projectDir} has no host ${name}`);
  return { host, robotUrl: String(doc.config["hetzner-fde:robotUrl"]), robotUser: String(doc.config["hetzner-fde:robotUser"]) };
}

/** `npm run lab -- <command> [args…] --config <labConfig>`, output inherited or captured. */
export function labCommand(stack: LabStack, command: "up" | "down" | "destroy" | "status" | readonly string[], env: NodeJS.ProcessEnv = process.env, inherit = true): { status: number | null; out: string } {
  const words = typeof command === "string" ? [command] : command;
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, "dist", "lab", "cli.js"), ...words, "--config", stack.labConfig], {
    cwd: REPO_ROOT,
    env,
    stdio: inherit ? "inherit" : "pipe",
    encoding: "utf8",
  });
  return { status: r.status, out: inherit ? "" : `${r.stdout ?? ""}${r.stderr ?? ""}` };
}
