// `npm run demo`: the main job on the embedded lab. Starts the lab, then runs the `lab` stack
// against it — with `pulumi up --stack lab` when the Pulumi CLI is installed, otherwise through the
// project's harness (no CLI can be installed on some machines), and says which.
import { spawnSync } from "child_process";
import { join, resolve } from "path";
import { loadLabConfig } from "../lab/config";
import { RobotClient } from "../providers/plumbing/robot";
import { Secret } from "../providers/plumbing/secret";
import { runStackProgram } from "../test/harness/stack-runner";
import { LAB_SECRETS, labSecretFor } from "./lab-secrets";

const REPO_ROOT = resolve(__dirname, "..", "..");
const STACK = "lab";

function pulumiCliAvailable(): boolean {
  return spawnSync("pulumi", ["version"], { stdio: "ignore" }).status === 0;
}

function startLab(): void {
  const result = spawnSync(process.execPath, [join(REPO_ROOT, "dist", "lab", "cli.js"), "up"], { stdio: "inherit", cwd: REPO_ROOT });
  if (result.status !== 0) throw new Error(`npm run lab -- up failed (exit ${result.status}); see its output above`);
}

async function runWithoutCli(): Promise<void> {
  console.log(`\nThe Pulumi CLI is not on PATH: running stack "${STACK}" through the project's harness instead of \`pulumi up\`.`);
  const run = await runStackProgram(REPO_ROOT, STACK, labSecretFor);
  console.log(`\nStack outputs:\n${JSON.stringify(run.outputs, null, 2)}`);
  console.log(`Resources registered: ${run.registered.length === 0 ? "none yet (the host resources arrive with their issues)" : run.registered.map((r) => r.name).join(", ")}`);
  await showLabServers();
}

/** What the lab's Robot says about each server: proof the stack's Robot target is live. */
async function showLabServers(): Promise<void> {
  const lab = loadLabConfig(join(REPO_ROOT, "lab", "lab.config.json"));
  const robot = new RobotClient({ baseUrl: `http://127.0.0.1:${lab.robot.port}`, user: lab.robot.user, password: new Secret(LAB_SECRETS.robotPassword) });
  console.log("\nLab servers, as the Robot emulator reports them:");
  for (const server of await robot.listServers()) {
    const reset = await robot.getReset(server.serverNumber);
    const rescue = await robot.getRescue(server.serverNumber);
    console.log(`  ${server.serverNumber} ${server.serverName}: ${reset.operatingStatus}, rescue ${rescue.active ? "armed" : "not armed"}`);
  }
}

async function main(): Promise<number> {
  startLab();
  if (pulumiCliAvailable()) {
    console.log(`\nRunning \`pulumi up --stack ${STACK}\` with the Pulumi CLI.`);
    return spawnSync("pulumi", ["up", "--stack", STACK, "--yes"], { stdio: "inherit", cwd: REPO_ROOT }).status ?? 1;
  }
  await runWithoutCli();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
