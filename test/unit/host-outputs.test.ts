// The pure builders of the stack outputs (infra/outputs.ts) and of the component's inputs
// (components/encrypted-raid-host.ts): what an operator pastes into ssh, what Prometheus reads.
import { spawnSync } from "child_process";
import { mkdtempSync, writeFileSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { childNames, dropbearKeys, initramfsNetwork, rootLuksDevice, rootMapperName, systemEndpoint } from "../../components/encrypted-raid-host";
import { validateStackConfig } from "../../infra/config";
import {
  aliasKnownHostsLine,
  environmentOutput,
  EnvironmentOutput,
  knownHostsContent,
  layoutOutput,
  prometheusTargets,
  sshConfigSnippet,
  unlockCommand,
} from "../../infra/outputs";
import { generateEd25519KeyPair, knownHostsLine, parsePublicKey } from "../../providers/plumbing/keys";
import { validConfig } from "./config-fixtures";

const keys = { rescue: generateEd25519KeyPair("rescue"), initramfs: generateEd25519KeyPair("initramfs"), system: generateEd25519KeyPair("system") };
// The lab's shape: rescue and system share one forwarded port, dropbear has its own.
const at = { rescue: { address: "127.0.0.1", port: 2201 }, initramfs: { address: "127.0.0.1", port: 2221 }, system: { address: "127.0.0.1", port: 2201 } };

function environments(): Record<"rescue" | "initramfs" | "system", EnvironmentOutput> {
  const env = (name: "rescue" | "initramfs" | "system"): EnvironmentOutput =>
    environmentOutput("lab-1", name, { ...at[name], fingerprints: ["SHA256:x"], knownHosts: [knownHostsLine(at[name].address, at[name].port, parsePublicKey(keys[name].public))] });
  return { rescue: env("rescue"), initramfs: env("initramfs"), system: env("system") };
}

describe("known_hosts and ssh_config", () => {
  it("re-keys each environment's known_hosts lines by its own alias, so one address:port can pin two keys", () => {
    const content = knownHostsContent(environments());
    const lines = content.trim().split("\n");
    expect(lines.map((l) => l.split(" ")[0])).toEqual(["lab-1-rescue", "lab-1-initramfs", "lab-1-system"]);
    expect(lines[0]).toBe(`lab-1-rescue ${keys.rescue.public.split(" ").slice(0, 2).join(" ")}`);
    expect(() => aliasKnownHostsLine("a", "garbage")).toThrow(/expected a known_hosts line/);
  });

  it("is accepted by OpenSSH: ssh -G resolves every alias to its address, port and known_hosts file", () => {
    const dir = mkdtempSync(join(tmpdir(), "hfde-sshcfg-"));
    const config = join(dir, "config");
    writeFileSync(config, sshConfigSnippet("lab-1", environments()));
    writeFileSync(join(dir, "lab-1.known_hosts"), knownHostsContent(environments()));
    for (const [env, port] of [["rescue", 2201], ["initramfs", 2221], ["system", 2201]] as const) {
      const r = spawnSync("ssh", ["-G", "-F", config, `lab-1-${env}`], { cwd: dir, encoding: "utf8" });
      expect(r.status).toBe(0);
      expect(r.stderr).not.toMatch(/bad|error|unsupported|deprecated/i);
      expect(r.stdout).toContain(`hostname 127.0.0.1\n`);
      expect(r.stdout).toContain(`port ${port}\n`);
      expect(r.stdout).toContain(`hostkeyalias lab-1-${env}\n`);
      expect(r.stdout).toContain("stricthostkeychecking true\n");
      // ssh-keygen finds the pinned key under the alias: what ssh checks against.
      const found = spawnSync("ssh-keygen", ["-F", `lab-1-${env}`, "-f", join(dir, "lab-1.known_hosts")], { encoding: "utf8" });
      expect(found.stdout).toContain(keys[env].public.split(" ")[1]);
    }
  });

  it("builds the unlock command with the pinned key file, the initramfs alias and dropbear's port", () => {
    expect(unlockCommand("lab-1", environments().initramfs)).toBe(
      "ssh -o UserKnownHostsFile=lab-1.known_hosts -o HostKeyAlias=lab-1-initramfs -o StrictHostKeyChecking=yes -p 2221 root@127.0.0.1 cryptroot-unlock",
    );
    const v6 = { ...environments().initramfs, address: "2001:db8::2", port: 2222 };
    expect(unlockCommand("h", v6)).toContain("-p 2222 root@[2001:db8::2] cryptroot-unlock");
  });
});

describe("layout and monitoring", () => {
  it("reads back arrays with their state, LUKS cipher and keyslot count, VGs and LVs", () => {
    const layout = {
      arrays: [{ device: "/dev/md1", level: 1, members: ["/dev/nvme0n1p2"], uuid: "u", state: "clean, degraded", degraded: true, faultyMembers: [], sync: { action: "recover", percent: 42.5 } }],
      partitions: [],
      volumeGroups: [{ name: "vg0", sizeBytes: 100, freeBytes: 0 }],
      volumes: [{ vg: "vg0", name: "root", sizeBytes: 90 }],
      os: null,
    };
    const luks = { cipher: "aes-xts-plain64", keySize: 512, sectorSize: 512, label: null, subsystem: null, keyslots: [{}, {}] as never[], openAs: "x", discardsActive: false, crypttabLine: null, disks: [] };
    expect(layoutOutput(layout, luks)).toEqual({
      arrays: [{ device: "/dev/md1", level: 1, state: "clean, degraded", degraded: true, members: ["/dev/nvme0n1p2"], sync: "recover 42.5%" }],
      luks: { cipher: "aes-xts-plain64", keySize: 512, keyslots: 2 },
      volumeGroups: [{ name: "vg0", sizeBytes: 100, freeBytes: 0 }],
      volumes: [{ vg: "vg0", name: "root", sizeBytes: 90 }],
    });
    expect(layoutOutput(layout, null).luks).toBeNull();
  });

  it("gives Prometheus file_sd groups with the labels the alert rules select on", () => {
    const groups = prometheusTargets("lab-1", environments().system, environments().initramfs);
    expect(groups).toEqual([
      { targets: ["127.0.0.1:9100"], labels: { hfde_host: "lab-1", hfde_role: "node", hfde_environment: "system" } },
      { targets: ["127.0.0.1:2221"], labels: { hfde_host: "lab-1", hfde_role: "initramfs-probe", hfde_environment: "initramfs" } },
    ]);
    // file_sd: a list of {targets: [string], labels: {string: string}}; label names match Prometheus' grammar.
    for (const g of groups) for (const name of Object.keys(g.labels)) expect(name).toMatch(/^[a-zA-Z_][a-zA-Z0-9_]*$/);
  });
});

describe("the component's inputs from the config", () => {
  const config = validateStackConfig(validConfig());
  if (!config.ok) throw new Error(JSON.stringify(config.errors));
  const [web, ca] = config.config.hosts;

  it("names children stably per host and role", () => {
    expect(childNames("web1")).toEqual({ rescue: "web1-rescue", install: "web1-install", dropbear: "web1-dropbear", rootLuks: "web1-root-luks" });
  });

  it("puts the operator's key first for dropbear and lists each key once", () => {
    const op = generateEd25519KeyPair("op").public;
    const alice = web.dropbear.authorizedKeys[0];
    expect(dropbearKeys(op, [alice, `${alice.split(" ").slice(0, 2).join(" ")} other-comment`, op])).toEqual([op, alice]);
  });

  it("finds the root's LUKS device as installimage numbers it, and the initramfs network by MAC", () => {
    expect(rootLuksDevice(web)).toBe("/dev/md1");
    expect(rootLuksDevice(ca)).toBe("/dev/sda2");
    expect(initramfsNetwork(web)).toEqual({ mac: "90:1b:0e:aa:bb:01", ipv4: "dhcp" });
    expect(initramfsNetwork(ca)).toEqual({ mac: "90:1b:0e:aa:bb:02", ipv4: { address: "198.51.100.23/27", gateway: "198.51.100.1" }, ipv6: { address: "2001:db8:4:1::2/64", gateway: "fe80::1" } });
    expect(systemEndpoint(web)).toEqual({ port: 22 });
  });

  it("keeps installimage's mapper name luks-<uuid>, and names the missing InstallImage output when it cannot", () => {
    expect(rootMapperName([{ device: "/dev/md1", uuid: "0b5e" }], "/dev/md1")).toBe("luks-0b5e");
    expect(() => rootMapperName(undefined, "/dev/md1")).toThrow(/InstallImage does not output the LUKS UUID.*luks: \[\{ device, uuid \}\]/);
  });
});
