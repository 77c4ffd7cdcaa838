// DropbearInitramfs's shell: every .sh parses (bash -n; the boot scripts also with dash, the
// initramfs's /bin/sh is busybox ash), and configure.sh really writes a root: files from stdin
// records with their modes, stale host keys removed, the NIC driver block replaced, not appended.
import { execFileSync, spawnSync } from "child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync, existsSync } from "fs";
import { tmpdir } from "os";
import * as path from "path";
import { adapterByKey } from "../../providers/distro";
import { configureRecords, MODULES_BEGIN, MODULES_END, MODULES_FILE, renderFiles, staleFiles } from "../../providers/dropbear-initramfs/render";
import { hostKeyFromSeed } from "../../providers/dropbear-initramfs/host-key";
import { BOOT_CLEANUP_SH, BOOT_IPV6_SH, CLOSE_ROOT_SH, CONFIGURE_SH, GATE_FACTS_SH, OPEN_ROOT_SH, PROBE_SH, SCRIPT_FILES, VERIFY_SH } from "../../providers/dropbear-initramfs/scripts";

const TEXTS: Record<string, string> = { "configure.sh": CONFIGURE_SH, "gate-facts.sh": GATE_FACTS_SH, "probe.sh": PROBE_SH, "open-root.sh": OPEN_ROOT_SH, "close-root.sh": CLOSE_ROOT_SH, "verify.sh": VERIFY_SH, "boot-ipv6.sh": BOOT_IPV6_SH, "boot-cleanup.sh": BOOT_CLEANUP_SH };

describe("DropbearInitramfs shell", () => {
  it.each([...SCRIPT_FILES])("%s parses with bash -n", (name) => {
    expect(() => execFileSync("bash", ["-n"], { input: TEXTS[name] })).not.toThrow();
  });

  it.each(["boot-ipv6.sh", "boot-cleanup.sh"])("%s parses with a POSIX sh (dash) and answers prereqs with dropbear", (name) => {
    expect(() => execFileSync("dash", ["-n"], { input: TEXTS[name] })).not.toThrow();
    expect(execFileSync("dash", ["-s", "prereqs"], { input: TEXTS[name], encoding: "utf8" })).toBe("dropbear\n");
  });

  it.each([...SCRIPT_FILES])("%s has no shellcheck warnings", (name) => {
    const result = spawnSync("shellcheck", ["--severity=warning", "--format=gcc", "-"], { input: TEXTS[name], encoding: "utf8" });
    if (result.error) throw new Error(`shellcheck did not run (${result.error.message}); run scripts/setup.sh, which installs it`);
    expect(result.stdout).toBe("");
  });

  it("a syntax error is caught (the check can fail)", () => {
    expect(() => execFileSync("bash", ["-n"], { input: "if true; then\n", stdio: "pipe" })).toThrow();
  });
});

describe("configure.sh on a real directory", () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), "hfde-configure-"));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const adapter = adapterByKey("debian-12");
  const key = hostKeyFromSeed(Buffer.alloc(32, 5), "k");
  const inputs = {
    authorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBi9hKn7LneW0nS51taJfIB2av5pP2T45jlKGC053CBH ops"],
    network: { mac: "90:1b:0e:aa:bb:cc", ipv4: "dhcp" as const },
  };

  it("writes every file with its mode, removes foreign host keys and keeps one NIC block", () => {
    const files = renderFiles(adapter, inputs, key.privateKeyDropbear, { ipv6: BOOT_IPV6_SH, cleanup: BOOT_CLEANUP_SH });
    mkdirSync(path.join(root, "etc/dropbear/initramfs"), { recursive: true });
    mkdirSync(path.join(root, "etc/initramfs-tools"), { recursive: true });
    writeFileSync(path.join(root, "etc/dropbear/initramfs/dropbear_rsa_host_key"), "generated on the host");
    writeFileSync(path.join(root, "etc/initramfs-tools/modules"), "# List of modules\nloop\n");
    const configure = (module: string) =>
      execFileSync("bash", ["-c", CONFIGURE_SH, "configure.sh", root, MODULES_FILE, MODULES_BEGIN, MODULES_END, module, ...staleFiles(adapter, inputs.network)], {
        input: configureRecords(files),
      });
    configure("igb");
    configure("e1000e"); // a re-run replaces the block
    for (const file of files) {
      const written = path.join(root, file.path);
      expect(readFileSync(written).toString("base64")).toBe(file.base64);
      expect((statSync(written).mode & 0o777).toString(8)).toBe(file.mode);
    }
    expect(existsSync(path.join(root, "etc/dropbear/initramfs/dropbear_rsa_host_key"))).toBe(false);
    expect(readFileSync(path.join(root, "etc/initramfs-tools/modules"), "utf8")).toBe(`# List of modules\nloop\n${MODULES_BEGIN}\ne1000e\n${MODULES_END}\n`);
    configure("");
    expect(readFileSync(path.join(root, "etc/initramfs-tools/modules"), "utf8")).toBe("# List of modules\nloop\n");
  });
});
