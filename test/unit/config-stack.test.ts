// The config as a whole: every error reported at once, secrets never echoed, the shipped stack
// files valid, and the summary the program exports.
import { readFileSync } from "fs";
import { join } from "path";
import { parse } from "yaml";
import { formatValidationErrors, rawConfigFromStackFile, summarizeHost, validateStackConfig } from "../../infra/config";
import { LAB_SECRETS, labSecretFor } from "../../lab/secrets";
import { ALICE, MALFORMED, OPERATOR_KEY, PASSPHRASE_CA, PASSPHRASE_WEB, Raw, validConfig } from "./config-fixtures";

const repo = join(__dirname, "..", "..", "..");
const stackFile = (stack: string) => parse(readFileSync(join(repo, `Pulumi.${stack}.yaml`), "utf8")) as { config: Record<string, unknown> };

function rejected(config: Raw) {
  const result = validateStackConfig(config);
  if (result.ok) throw new Error("expected the config to be rejected");
  return result.errors;
}

describe("all errors are reported together", () => {
  it("reports mistakes in different hosts, sections and top-level keys in one result", () => {
    const config = validConfig();
    config.hosts[0].raid.level = 5; // cross-field rule, host 0
    config.hosts[0].drives[0].serial = "bad serial"; // field rule, host 0 (drives section now malformed)
    config.hosts[0].dropbear.port = 22; // cross-field rule, host 0, other section
    config.hosts[1].mirror.schedule = "every 15 minutes"; // field rule, host 1
    config.hosts[1].dropbear.network.ipv4.gateway = "10.0.0.1"; // object rule, host 1
    config.luksPassphrases.ca1 = "tooshort"; // stack rule
    config.robotUrl = "ftp://robot"; // top-level field
    const paths = rejected(config).map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        "hosts[0].drives[0].serial",
        "hosts[0].dropbear.port",
        "hosts[1].mirror.schedule",
        "hosts[1].dropbear.network.ipv4.gateway",
        "luksPassphrases.ca1",
        "robotUrl",
      ]),
    );
    expect(paths.length).toBeGreaterThanOrEqual(6);
  });

  it("runs cross-field rules of a host whose other sections are malformed", () => {
    const config = validConfig();
    config.hosts[0].image = "Gentoo"; // unrelated section broken
    config.hosts[0].volumes[0].size = "600G"; // capacity rule still runs
    const paths = rejected(config).map((e) => e.path);
    expect(paths).toEqual(expect.arrayContaining(["hosts[0].image", "hosts[0].volumes[0].size"]));
  });

  it("renders one block with a headline and one line per error", () => {
    const config = validConfig();
    config.hosts[0].raid.level = 5;
    config.hosts[1].mirror.schedule = "* * *";
    const text = formatValidationErrors(rejected(config), "prod");
    const lines = text.split("\n");
    expect(lines[0]).toBe('2 problems in the config of stack "prod":');
    expect(lines.slice(1)).toEqual([expect.stringMatching(/^ {2}- hosts\[0\]\.raid\.level: RAID 5 needs/), expect.stringMatching(/^ {2}- hosts\[1\]\.mirror\.schedule: expected a 5-field/)]);
  });
});

describe("secrets never appear in an error", () => {
  const weak = ["Password123456!!", "Kx9#mP2$", "aaaaaaaaaaaaaaaaaaaaaaaa", "abcabcabcabcabcabcabc", "qwertzuiop1234567890", "\n", "Qz7"];

  it.each(weak)("a weak passphrase (#%#) is described, not quoted", (passphrase) => {
    const config = validConfig();
    config.luksPassphrases.web1 = passphrase;
    const errors = rejected(config);
    expect(errors.map((e) => e.path)).toContain("luksPassphrases.web1");
    for (const e of errors) if (passphrase.trim().length > 0) expect(e.message).not.toContain(passphrase);
  });

  it("no message of any malformed case contains a passphrase or the Robot password", () => {
    const secrets = [PASSPHRASE_WEB, PASSPHRASE_CA, validConfig().robotPassword, OPERATOR_KEY.private.split("\n")[1]];
    for (const [title, mutate] of MALFORMED) {
      const config = validConfig();
      mutate(config);
      const text = formatValidationErrors(rejected(config));
      for (const secret of secrets) expect({ title, leaked: text.includes(secret) }).toEqual({ title, leaked: false });
    }
  });

  it("hides secrets of the wrong type and secrets put in the wrong place", () => {
    const config = validConfig();
    config.robotPassword = 987654321987;
    config.luksPassphrases.ca1 = ["Hidden-Value-In-A-List-99"];
    config.hosts[0].luks.passphrase = PASSPHRASE_WEB;
    const text = formatValidationErrors(rejected(config));
    expect(text).toMatch(/robotPassword: expected the Robot webservice password as a secret string, found a number \(value hidden\)/);
    expect(text).not.toContain("987654321987");
    expect(text).not.toContain("Hidden-Value-In-A-List-99");
    expect(text).not.toContain(PASSPHRASE_WEB);
  });

  it("returns the secrets wrapped, so the validated config can be logged", () => {
    const result = validateStackConfig(validConfig());
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const dumped = JSON.stringify(result.config);
    expect(dumped).not.toContain(PASSPHRASE_WEB);
    expect(dumped).not.toContain(validConfig().robotPassword);
    expect(result.config.hosts[0].luks.passphrase.reveal()).toBe(PASSPHRASE_WEB);
    expect(result.config.robot?.password.reveal()).toBe(validConfig().robotPassword);
  });
});

describe("defaults", () => {
  it("fills in the documented defaults", () => {
    const config = validConfig();
    const host = config.hosts[1];
    for (const key of ["image", "sshd", "luks"]) delete host[key];
    // The network has no default: the initramfs needs the NIC's MAC, which only the host knows.
    host.dropbear = { authorizedKeys: [ALICE], network: { mode: "dhcp", mac: "90:1b:0e:aa:bb:02" } };
    host.mirror = { drive: { path: "/dev/sdb" } };
    const result = validateStackConfig(config);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const ca1 = result.config.hosts[1];
    expect(ca1.image).toBe("Debian-bookworm-latest-amd64-base");
    expect(ca1.hostname).toBe("ca1");
    expect(ca1.sshd.port).toBe(22);
    expect(ca1.dropbear.port).toBe(2222);
    expect(ca1.dropbear.network).toEqual({ mode: "dhcp", mac: "90:1b:0e:aa:bb:02" });
    expect(ca1.luks).toMatchObject({ cipher: "aes-xts-plain64", keySize: 256, pbkdf: { type: "argon2id", iterTimeMs: 2000 } });
    expect(ca1.mirror).toEqual({ drive: { path: "/dev/sdb" }, schedule: "*/15 * * * *", logRotations: 52, mountPoint: "/mirror" });
    expect(ca1.allowWipe).toBe(false);
    expect(ca1.protect).toBe(true);
    expect(ca1.target.ssh).toMatchObject({ port: 22, user: "root" });
  });

  it("needs no Robot access when no host is a Robot server", () => {
    const config = validConfig();
    config.hosts.shift();
    delete config.luksPassphrases.web1;
    delete config.robotUser;
    delete config.robotPassword;
    const result = validateStackConfig(config);
    expect(result.ok ? result.config.robot : result.errors).toBeNull();
  });
});

describe("the shipped stack files", () => {
  const prodSecret = (path: string) => (path === "sshPrivateKey" ? OPERATOR_KEY.private : `Prod-Stand-In-${path.length}-for-${path.replace(/\W/g, "")}`);

  it("Pulumi.prod.yaml validates with its placeholder secrets substituted", () => {
    const result = validateStackConfig(rawConfigFromStackFile(stackFile("prod").config, prodSecret));
    expect(result.ok ? result.config.hosts.map((h) => h.name) : result.errors).toEqual(["fsn1-app1", "hel1-ca1"]);
  });

  it("Pulumi.prod.yaml: a RAID 1 host and a single-disk host with a mirror and static IPv4+IPv6, all protected", () => {
    const result = validateStackConfig(rawConfigFromStackFile(stackFile("prod").config, prodSecret));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const [raidHost, mirrorHost] = result.config.hosts;
    expect(raidHost.raid?.level).toBe(1);
    expect(raidHost.drives).toHaveLength(2);
    expect(summarizeHost(raidHost).layout).toEqual(["PART /boot ext4 1G", "PART lvm vg0 all crypt", "LV vg0 swap swap swap 16G", "LV vg0 root / ext4 all"]);
    expect(mirrorHost.raid).toBeUndefined();
    expect(mirrorHost.mirror?.drive.path).toBe("/dev/sdb");
    expect(mirrorHost.dropbear.network).toMatchObject({ mode: "static", ipv4: { address: expect.any(String) }, ipv6: { address: expect.any(String) } });
    for (const host of result.config.hosts) expect({ host: host.name, protect: host.protect, allowWipe: host.allowWipe }).toEqual({ host: host.name, protect: true, allowWipe: false });
  });

  it("Pulumi.lab.yaml validates with the lab secrets and targets the lab servers", () => {
    const result = validateStackConfig(rawConfigFromStackFile(stackFile("lab").config, labSecretFor));
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.config.robot).toMatchObject({ url: "http://127.0.0.1:40080", user: "robot" });
    expect(result.config.hosts.map((h) => [h.name, h.target.robot?.serverNumber, h.endpoints, h.allowWipe])).toEqual([
      ["lab-1", 100001, { address: "127.0.0.1", sshPort: 2201, dropbearPort: 2221 }, true],
      ["lab-2", 100002, { address: "127.0.0.1", sshPort: 2202, dropbearPort: 2222 }, true],
    ]);
  });

  it("lab secrets match the lab's own config", () => {
    const lab = JSON.parse(readFileSync(join(repo, "lab", "lab.config.json"), "utf8")) as { robot: { password: string } };
    expect(LAB_SECRETS.robotPassword).toBe(lab.robot.password);
    expect(() => labSecretFor("luksPassphrases.lab-3")).toThrow(/LAB_SECRETS does not provide/);
  });

  it.each(["prod", "lab"])("Pulumi.%s.yaml keeps every secret in a secure: node, never in plain text", (stack) => {
    const config = stackFile(stack).config;
    const secretPaths: string[] = [];
    rawConfigFromStackFile(config, (path) => {
      secretPaths.push(path);
      return "";
    });
    expect(secretPaths.sort()).toEqual(stack === "prod" ? ["luksPassphrases.fsn1-app1", "luksPassphrases.hel1-ca1", "robotPassword", "sshPrivateKey"] : ["luksPassphrases.lab-1", "luksPassphrases.lab-2", "robotPassword", "sshPrivateKey"]);
    const text = readFileSync(join(repo, `Pulumi.${stack}.yaml`), "utf8").split("\n").filter((line) => !line.trimStart().startsWith("#")).join("\n");
    for (const value of Object.values(LAB_SECRETS.luksPassphrases)) expect(text).not.toContain(value);
    expect(text).not.toContain(LAB_SECRETS.robotPassword);
  });

  it("Pulumi.yaml names the project, the TypeScript runtime, the program and typed config", () => {
    const project = parse(readFileSync(join(repo, "Pulumi.yaml"), "utf8")) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(project).toMatchObject({ name: "hetzner-fde", runtime: { name: "nodejs", options: { typescript: true } }, main: "infra/index.ts" });
    expect(project.description).toEqual(expect.any(String));
    expect(project.config.robotPassword).toMatchObject({ type: "string", secret: true });
    for (const [key, decl] of Object.entries<Record<string, unknown>>(project.config)) {
      expect({ key, type: ["string", "integer", "boolean", "array"].includes(decl.type as string), description: typeof decl.description }).toEqual({ key, type: true, description: "string" });
    }
  });
});

describe("rawConfigFromStackFile", () => {
  it("drops the namespace, ignores other projects' keys and resolves secure nodes by path", () => {
    const raw = rawConfigFromStackFile(
      { "hetzner-fde:robotUser": "u", "aws:region": "eu-central-1", "hetzner-fde:luksPassphrases": { a: { secure: "v1:xyz" } }, "hetzner-fde:hosts": [{ x: { secure: "v1:q" } }] },
      (path) => `<${path}>`,
    );
    expect(raw).toEqual({ robotUser: "u", luksPassphrases: { a: "<luksPassphrases.a>" }, hosts: [{ x: "<hosts[0].x>" }] });
  });
});

describe("summarizeHost", () => {
  it("describes target, storage, layout, LUKS, dropbear and mirror without secrets", () => {
    const result = validateStackConfig(validConfig());
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const [web, ca] = result.config.hosts.map(summarizeHost);
    expect(web).toMatchObject({
      name: "web1",
      target: "robot server 2345678",
      storage: "RAID 1 over /dev/nvme0n1 + /dev/nvme1n1 (476.9 GiB)",
      luks: "LUKS2 aes-xts-plain64 256-bit, argon2id (1048576 KiB, 4 iterations, 4 threads)",
      dropbear: "port 2222, 1 key(s), dhcp",
      mirror: null,
    });
    expect(ca).toMatchObject({
      target: "ssh root@198.51.100.23:22",
      storage: "single disk /dev/sda (447.1 GiB)",
      dropbear: "port 2222, 1 key(s), 198.51.100.23/27 + 2001:db8:4:1::2/64 on eno1",
      mirror: '/dev/sdb at /mirror, "*/15 * * * *", 52 logs kept',
    });
    expect(JSON.stringify([web, ca])).not.toContain(PASSPHRASE_WEB);
  });
});
