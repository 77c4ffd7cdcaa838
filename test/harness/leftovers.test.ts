// A harness a test forgot to stop (say, its test failed before the cleanup) is stopped when the
// file ends, so its host process and gRPC channel cannot keep jest from exiting.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { stopLeftovers } from "../support/leftovers";
import { ProviderHarness } from "./harness";

// Starting a harness (a program child and a provider host) takes 5-12 s on a loaded 2-core machine.
jest.setTimeout(30_000);

it("stopLeftovers stops a provider host that was never stopped, and only once", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-leftovers-"));
  try {
    const forgotten = await ProviderHarness.start({ module: "test/harness/fixtures/marker-file", exportName: "MarkerFile", args: { path: path.join(dir, "m"), content: "x" } });
    expect(forgotten.hostRunning).toBe(true);
    expect(await stopLeftovers()).toEqual(["provider host for MarkerFile"]);
    expect(forgotten.hostRunning).toBe(false);
    expect(await stopLeftovers()).toEqual([]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

it("a harness stopped by its test is not stopped again", async () => {
  const h = await ProviderHarness.start({ module: "test/harness/fixtures/marker-file", exportName: "MarkerFile", args: { path: "/nonexistent/m", content: "x" } });
  await h.stop();
  expect(await stopLeftovers()).toEqual([]);
});
