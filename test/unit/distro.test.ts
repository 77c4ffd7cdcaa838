// The distro adapters: the release is detected from os-release as each release really writes it, and
// each adapter names the dropbear layout that release's dropbear-initramfs reads.
import { ADAPTERS, adapterByKey, detectDistro, parseOsRelease } from "../../providers/distro";

// The /etc/os-release files of the supported releases (abridged to the keys that matter).
const OS_RELEASE: Record<string, string> = {
  "debian-11": 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nNAME="Debian GNU/Linux"\nVERSION_ID="11"\nVERSION="11 (bullseye)"\nVERSION_CODENAME=bullseye\nID=debian\n',
  "debian-12": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n',
  "debian-13": 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nVERSION="13 (trixie)"\nVERSION_CODENAME=trixie\nDEBIAN_VERSION_FULL=13.1\nID=debian\n',
  "ubuntu-22.04": 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n',
  "ubuntu-24.04": 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION="24.04.1 LTS (Noble Numbat)"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n',
};

describe("parseOsRelease", () => {
  it("reads quoted and bare values, and the shell escapes inside double quotes", () => {
    expect(parseOsRelease('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="A \\"quoted\\" name"\n# comment\n')).toEqual({
      id: "debian",
      versionId: "12",
      codename: "",
      prettyName: 'A "quoted" name',
    });
  });
});

describe("detectDistro", () => {
  it.each(Object.keys(OS_RELEASE))("finds the adapter of %s", (key) => {
    const found = detectDistro(OS_RELEASE[key]);
    expect(found).toMatchObject({ ok: true, adapter: { key } });
  });

  it("names the supported releases and what to do for any other", () => {
    const found = detectDistro('PRETTY_NAME="Ubuntu 18.04.6 LTS"\nID=ubuntu\nVERSION_ID="18.04"\n');
    expect(found.ok).toBe(false);
    if (found.ok) return;
    expect(found.reason).toContain('found "Ubuntu 18.04.6 LTS"');
    expect(found.reason).toContain("Debian 11 (bullseye), Debian 12 (bookworm), Debian 13 (trixie), Ubuntu 22.04 (jammy), Ubuntu 24.04 (noble)");
    expect(found.reason).toContain("InstallImage");
    expect(detectDistro("").ok).toBe(false);
  });
});

describe("the adapters", () => {
  it("cover exactly the five supported releases", () => {
    expect(ADAPTERS.map((a) => a.key)).toEqual(["debian-11", "debian-12", "debian-13", "ubuntu-22.04", "ubuntu-24.04"]);
  });

  // dropbear-initramfs 2020.81-4 moved /etc/dropbear-initramfs/config to /etc/dropbear/initramfs/dropbear.conf.
  it.each([
    ["debian-11", "/etc/dropbear-initramfs", "/etc/dropbear-initramfs/config"],
    ["debian-12", "/etc/dropbear/initramfs", "/etc/dropbear/initramfs/dropbear.conf"],
    ["debian-13", "/etc/dropbear/initramfs", "/etc/dropbear/initramfs/dropbear.conf"],
    ["ubuntu-22.04", "/etc/dropbear/initramfs", "/etc/dropbear/initramfs/dropbear.conf"],
    ["ubuntu-24.04", "/etc/dropbear/initramfs", "/etc/dropbear/initramfs/dropbear.conf"],
  ] as const)("%s keeps dropbear's files in %s", (key, dir, config) => {
    const { dropbear } = adapterByKey(key);
    expect(dropbear.dir).toBe(dir);
    expect(dropbear.configFile).toBe(config);
    expect(dropbear.authorizedKeysFile).toBe(`${dir}/authorized_keys`);
    expect(dropbear.hostKeyFiles.ed25519).toBe(`${dir}/dropbear_ed25519_host_key`);
    expect(dropbear.hostKeyFiles.others).toEqual([`${dir}/dropbear_rsa_host_key`, `${dir}/dropbear_ecdsa_host_key`, `${dir}/dropbear_dss_host_key`]);
    expect(dropbear.variables).toEqual({ options: "DROPBEAR_OPTIONS", ifdown: "IFDOWN", shutdownTimeout: "DROPBEAR_SHUTDOWN_TIMEOUT" });
  });

  it.each(ADAPTERS.map((a) => [a.key, a] as const))("%s installs dropbear-initramfs, cryptsetup-initramfs and busybox in one apt run", (_key, adapter) => {
    expect([...adapter.packages]).toEqual(["dropbear-initramfs", "cryptsetup-initramfs", "busybox"]);
  });

  it("knows who configures the initramfs network and what it leaves to the system", () => {
    for (const key of ["debian-11", "debian-12", "debian-13"] as const) {
      expect(adapterByKey(key)).toMatchObject({ initramfs: { networkTool: "klibc-ipconfig", runLeftovers: [] }, systemNetwork: "ifupdown" });
    }
    for (const key of ["ubuntu-22.04", "ubuntu-24.04"] as const) {
      expect(adapterByKey(key)).toMatchObject({ initramfs: { networkTool: "iproute2-dhclient", runLeftovers: ["/run/netplan/*.yaml"] }, systemNetwork: "netplan" });
    }
  });

  it("refuses an unknown key by name", () => {
    expect(() => adapterByKey("ubuntu-18.04" as never)).toThrow(/unknown distro adapter "ubuntu-18.04"; expected one of debian-11/);
  });
});
