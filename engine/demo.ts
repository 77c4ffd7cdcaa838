// `npm run demo`: the main job on the embedded lab. Starts the lab, then runs `up` of the `lab`
// stack against it: with the Pulumi CLI when it is installed, otherwise with the local engine
// (engine/, which drives the same real dynamic-provider host), and says which.
import { spawnSync } from "child_process";
import { join } from "path";
import { loadLabConfig } from "../lab/config";
import { LAB_SECRETS } from "../lab/secrets";
import { RobotClient } from "../providers/plumbing/robot";
import { Secret } from "../providers/plumbing/secret";
import { runVerb } from "./cli";
import { REPO_ROOT } from "./wire";

const STACK = "lab";

function pulumiCliAvailable(): boolean {
  return spawnSync("pulumi", ["version"], { stdio: "ignore" }).status === 0;
}

function startLab(): void {
  const result = spawnSync(process.execPath, [join(REPO_ROOT, "dist", "lab", "cli.js"), "up"], { stdio: "inherit", cwd: REPO_ROOT });
  if (result.status !== 0) throw new Error(`npm run lab -- up failed (exit ${result.status}); see its output above`);
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
  console.log(`\nThe Pulumi CLI is not on PATH: running \`up\` of stack "${STACK}" with the local engine (npm run stack -- up --stack ${STACK}).\n`);
  const code = await runVerb({ verb: "up", stack: STACK });
  await showLabServers();
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
