// `npm run lab -- up|status|console|down|destroy` as a user runs it, against an isolated state
// dir and free ports (HFDE_LAB_DIR + --config), so a developer's running lab is not touched.
import { execFile } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { promisify } from "util";
import { waitFor } from "../support/wait";

jest.setTimeout(900_000);

const run = promisify(execFile);
const CLI = path.resolve(__dirname, "..", "..", "lab", "cli.js");

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Server>((resolve) => {
      const s = net.createServer();
      s.listen(0, "127.0.0.1", () => resolve(s));
    })),
  );
  const ports = servers.map((s) => (s.address() as net.AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

describe("lab CLI", () => {
  let stateDir: string;
  let configPath: string;
  let ports: number[];
  const lab = (...args: string[]) => run(process.execPath, [CLI, ...args, "--config", configPath], { env: { ...process.env, HFDE_LAB_DIR: stateDir } });

  beforeAll(async () => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), "hfde-lab-cli-"));
    ports = await freePorts(4);
    configPath = path.join(stateDir, "lab.config.json");
    fs.writeFileSync(configPath, JSON.stringify({
      robot: { port: ports[0], user: "robot", password: "cli-test-secret" },
      mirror: { port: ports[1] },
      servers: [{ number: 100001, name: "lab-1", sshPort: ports[2], dropbearPort: ports[3], memoryMiB: 1024 }],
    }));
  });
  afterAll(async () => {
    await lab("down").catch(() => undefined);
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it("up starts the lab in the background and prints the Robot URL, credentials and ports", async () => {
    const { stdout } = await lab("up");
    expect(stdout).toMatch(new RegExp(`Robot: +http://127\\.0\\.0\\.1:${ports[0]} +user robot +password cli-test-secret`));
    expect(stdout).toMatch(new RegExp(`100001 lab-1 +running .*ssh 127\\.0\\.0\\.1:${ports[2]} +dropbear 127\\.0\\.0\\.1:${ports[3]}`));
    // The daemon outlived the CLI process and answers Robot requests.
    const response = await fetch(`http://127.0.0.1:${ports[0]}/server`, { headers: { authorization: `Basic ${Buffer.from("robot:cli-test-secret").toString("base64")}` } });
    expect(response.status).toBe(200);
  });

  it("console shows the delivered server's boot from its blank disks", async () => {
    const text = await waitFor(async () => {
      const shown = (await lab("console", "lab-1")).stdout;
      return /No bootable device/.test(shown) && shown;
    }, { what: "`lab console lab-1` to show the boot from blank disks", timeoutMs: 60_000, intervalMs: 1000 });
    expect(text).toMatch(/No bootable device/);
  });

  it("status reports the boot; down stops the VM and the daemon but keeps the disks", async () => {
    expect((await lab("status")).stdout).toMatch(/100001 lab-1 +running +boot 1 disk \(FAILED: firmware found no bootable device/);
    const pid = Number(fs.readFileSync(path.join(stateDir, "servers", "100001", "qemu.pid"), "utf8"));
    await lab("down");
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    expect((await lab("status")).stdout).toMatch(/Lab is down/);
    expect(fs.existsSync(path.join(stateDir, "servers", "100001", "disk0.qcow2"))).toBe(true);
  });

  it("destroy deletes disks and emulator state but not other files in the state dir", async () => {
    // The config lives in the state dir here, standing in for files other tools keep there (the lab operator key).
    await lab("destroy");
    expect(fs.readdirSync(stateDir)).toEqual(["lab.config.json"]);
  });
});
