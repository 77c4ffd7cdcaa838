// Runs after every test file (jest setupFilesAfterEnv): stops the provider hosts and lab servers
// the file left running, typically because a test failed before its own cleanup.
import { stopLeftovers } from "./leftovers";

afterAll(async () => {
  const stopped = await stopLeftovers();
  if (stopped.length > 0) process.stdout.write(`after-each-file: stopped what the test file left running: ${stopped.join(", ")}\n`);
}, 120_000);
