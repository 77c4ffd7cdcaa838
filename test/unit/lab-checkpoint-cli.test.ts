// `npm run lab -- checkpoint save|restore|list|prune` as a user runs it (dist/lab/cli.js), on a lab
// state with no VM running: tiny sparse qcow2 disks and a Robot record, in a temp state dir.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { backingFile } from "../../lab/checkpoints/store";

const CLI = path.resolve(__dirname, "../../lab/cli.js");

describe("lab CLI: checkpoint", () => {
  let root: string;
  let env: NodeJS.ProcessEnv;
  let configPath: string;

  const lab = (...args: string[]) => {
    const result = spawnSync(process.execPath, [CLI, ...args, "--config", configPath], { env, encoding: "utf8" });
    return { code: result.status, out: `${result.stdout}${result.stderr}` };
  };
  const disk = (i: number) => path.join(root, "state", "servers", "100001", `disk${i}.qcow2`);

  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-ckpt-cli-"));
    env = { ...process.env, HFDE_LAB_DIR: path.join(root, "state"), HFDE_CHECKPOINT_DIR: path.join(root, "cache") };
    configPath = path.join(root, "lab.config.json");
    fs.writeFileSync(configPath, JSON.stringify({
      robot: { port: 41080, user: "robot", password: "x" },
      mirror: { port: 41081 },
      servers: [{ number: 100001, name: "lab-1", sshPort: 41082, dropbearPort: 41083, disks: { count: 2, sizeGiB: 1 } }],
    }));
    const dir = path.dirname(disk(0));
    fs.mkdirSync(dir, { recursive: true });
    for (const i of [0, 1]) execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", disk(i), "1G"]);
    fs.writeFileSync(path.join(dir, "console-1-disk.log"), "");
    fs.writeFileSync(path.join(root, "state", "robot-state.json"), JSON.stringify({
      version: 1,
      servers: { "100001": { name: "lab-1", power: "running", manualResetPending: false, failNextReset: false, rescue: null, lastRescue: null, activeOtherBoot: null } },
      keys: [],
    }));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it("save, list, restore and prune a server of a stopped lab", () => {
    const saved = lab("checkpoint", "save", "lab-1", "installed");
    expect(saved).toMatchObject({ code: 0, out: expect.stringMatching(/^Saved server 100001 \(disk\) as installed in [\d.]+ s/) });
    expect(lab("checkpoint", "list").out).toMatch(/^installed\s+[\d.]+ GiB {2}server 100001 disk {3}saved /m);

    const restored = lab("checkpoint", "restore", "100001", "installed");
    expect(restored).toMatchObject({ code: 0, out: expect.stringMatching(/Restored installed onto server 100001 in [\d.]+ s; npm run lab -- up boots it into its disks/) });
    expect(backingFile(disk(0))).toBe(path.join(root, "cache", "installed", "disk0.qcow2"));
    expect(lab("checkpoint", "list").out).toMatch(/IN USE/);
    expect(lab("checkpoint", "prune", "--all").out).toMatch(/Nothing to prune\.\nKept \(a lab state's disks still use them\): installed/);
  });

  it("names what is wrong: a missing argument, an unknown checkpoint, a bad --boot", () => {
    expect(lab("checkpoint", "save", "lab-1")).toMatchObject({ code: 1, out: expect.stringContaining("checkpoint save needs <server> <name>") });
    expect(lab("checkpoint", "restore", "lab-1", "nope")).toMatchObject({ code: 1, out: expect.stringContaining("checkpoint nope is unusable: its manifest cannot be read") });
    expect(lab("checkpoint", "save", "lab-1", "x", "--boot", "floppy")).toMatchObject({ code: 1, out: expect.stringContaining('--boot must be rescue or disk, got "floppy"') });
    expect(lab("checkpoint", "save", "lab-9", "x")).toMatchObject({ code: 1, out: expect.stringContaining('no lab server "lab-9"') });
    expect(lab("checkpoint")).toMatchObject({ code: 2, out: expect.stringContaining("checkpoint needs save, restore, list or prune") });
  });
});
