// Runs the Robot emulator standalone: `node dist/lab/robot/main.js config.json`.
// The config is the JSON form of RobotEmulatorOptions (no power controller, no clock), e.g.
//   {"port": 8480, "users": [{"user": "robot", "password": "secret"}], "stateFile": "state/robot.json",
//    "servers": [{"number": 1001, "ipv4": "127.0.0.1", "ipv6Net": "2a01:4f8::"}]}
import { readFileSync } from "fs";
import { RobotEmulatorOptions, startRobotEmulator } from "./server";

async function main(argv: string[]): Promise<void> {
  const configPath = argv[2];
  if (!configPath) throw new Error("usage: node dist/lab/robot/main.js <config.json> (see the comment at the top of lab/robot/main.ts)");
  let options: RobotEmulatorOptions;
  try {
    options = JSON.parse(readFileSync(configPath, "utf8")) as RobotEmulatorOptions;
  } catch (err) {
    throw new Error(`cannot read the emulator config ${configPath}: ${(err as Error).message}`);
  }
  if (!Array.isArray(options.users) || options.users.length === 0) {
    throw new Error(`${configPath}: "users" must list at least one {"user", "password"}, found ${JSON.stringify(options.users)}`);
  }
  const emulator = await startRobotEmulator(options);
  console.log(`Robot emulator listening on ${emulator.url} (${emulator.model.specs.size} servers)`);
  const stop = (): void => void emulator.close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main(process.argv).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
