// `npm run demo [-- destroy]`: the main job on the embedded lab. Starts the lab with its first
// server, then runs `up` of the `lab` stack for host lab-1: blank disks → rescue → installimage with
// crypt → dropbear in the initramfs → reboot → unlock → verified. With the Pulumi CLI when it is
// installed, otherwise with the local engine (engine/, the same real dynamic-provider host), and
// says which. Every line carries the elapsed time; it ends with the outputs and the ssh command
// with the pinned key. `destroy` wipes the host (allowWipe in the lab) and stops the lab.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { labStateDir } from "../lab/config";
import { labOperatorKeyPath } from "../lab/secrets";
import { runVerb } from "./cli";
import { showValue } from "./deployment";
import { LAB_STACK, labCommand, labHost, prepareLabStack } from "./lab-stack";
import { readProject } from "./stack-config";
import { StateStore } from "./state";
import { plainValues } from "./wire";

const HOST = "lab-1";
const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)}s`;
const say = (line: string): void => console.log(`[${elapsed()}] ${line}`);
let phaseNo = 0;
const phase = (name: string): void => say(`== phase ${++phaseNo}: ${name}`);

function pulumiCliAvailable(): boolean {
  return spawnSync("pulumi", ["version"], { stdio: "ignore" }).status === 0;
}

async function main(destroy: boolean): Promise<number> {
  const dir = path.join(labStateDir(), "demo");
  const stack = prepareLabStack(dir, [HOST]);
  const stateDir = path.join(dir, "state");
  phase(`lab up (server of ${HOST}; npm run lab -- up --config ${stack.labConfig})`);
  if (labCommand(stack, "up").status !== 0) throw new Error("the lab did not start; see its output above");
  const existing = new StateStore(stateDir, LAB_STACK).load(readProject(stack.projectDir).name).resources.length > 0;
  if (existing && !destroy) {
    // A refresh of a host still booting finds no environment: wait until dropbear or sshd answers.
    phase(`waiting for ${HOST} to answer on its dropbear or sshd port (it may be booting)`);
    const { endpoints } = labHost(stack, HOST).host;
    await waitForSshBanner([endpoints.sshPort, endpoints.dropbearPort], 15 * 60_000);
  }

  if (pulumiCliAvailable()) {
    phase(`pulumi ${destroy ? "destroy" : "up"} --stack ${LAB_STACK} (the Pulumi CLI)`);
    return spawnSync("pulumi", destroy ? ["destroy", "--stack", LAB_STACK, "--yes"] : ["up", "--refresh", "--stack", LAB_STACK, "--yes"], { stdio: "inherit", cwd: stack.projectDir }).status ?? 1;
  }
  phase(`${destroy ? "destroy" : "up"} of stack ${LAB_STACK} with the local engine (no Pulumi CLI on PATH; npm run stack -- ${destroy ? "destroy" : "up"} --stack ${LAB_STACK} --dir ${stack.projectDir})`);
  // A stack that exists may sit on a host rebooted since (the lab was down): read it first, as
  // `pulumi up --refresh` does, so a host waiting in its initramfs is unlocked instead of planned around.
  const code = await runVerb({ verb: destroy ? "destroy" : "up", refresh: !destroy && existing, stack: LAB_STACK, dir: stack.projectDir, stateDir, print: say });
  if (destroy) {
    phase("lab down");
    labCommand(stack, "down");
    return code;
  }
  if (code !== 0) return code;

  phase("outputs");
  const project = readProject(stack.projectDir);
  const stackEntry = new StateStore(stateDir, LAB_STACK).load(project.name).resources.find((r) => r.type === "pulumi:pulumi:Stack");
  const outputs = stackEntry?.outputs ?? {};
  for (const [key, value] of Object.entries(outputs)) say(`${key}: ${showValue(value)}`);
  const host = (plainValues(outputs).hosts as Record<string, { knownHosts: string; sshCommand: string; unlockCommand: string }> | undefined)?.[HOST];
  if (!host) throw new Error(`the stack has no outputs for ${HOST}`);
  fs.writeFileSync(path.join(dir, `${HOST}.known_hosts`), host.knownHosts);
  const withKey = (command: string): string => command.replace(/^ssh /, `ssh -i ${labOperatorKeyPath()} `);
  say(`${HOST} is unlocked and verified. Log in with its pinned host key:`);
  console.log(`\n  cd ${dir} && ${withKey(host.sshCommand)}\n`);
  console.log(`After a reboot, unlock it with:\n\n  cd ${dir} && ${withKey(host.unlockCommand)}\n`);
  return 0;
}

/**
 * Resolves once one port sends an SSH banner. Only the banner is read: no key is offered or trusted
 * here; the stack's own connections verify the host keys.
 */
async function waitForSshBanner(ports: readonly number[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const banner = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      const done = (ok: boolean): void => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(5000, () => done(false));
      socket.once("data", (data: Buffer) => done(data.toString("latin1").startsWith("SSH-")));
      socket.once("error", () => done(false));
      socket.once("close", () => done(false));
    });
  while (Date.now() < deadline) {
    for (const port of ports) if (await banner(port)) return say(`${HOST} answers on port ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
  throw new Error(`${HOST} did not answer on ports ${ports.join(", ")} within ${timeoutMs / 60_000} min; npm run lab -- console ${HOST} shows why`);
}

const verb = process.argv[2];
if (verb !== undefined && verb !== "destroy") {
  console.error(`usage: npm run demo [-- destroy]; found ${JSON.stringify(verb)}`);
  process.exit(2);
}
main(verb === "destroy").then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
