// The files DropbearInitramfs writes, rendered from the inputs per release: keys restricted, the
// network by MAC in klibc's ip= syntax, IPv6 through our boot script, dropbear's cleanup forced on.
import { adapterByKey } from "../../providers/distro";
import {
  bootif,
  configureRecords,
  dropbearOptions,
  imageConfigPath,
  ipParameter,
  renderAuthorizedKeys,
  renderConfd,
  renderDropbearConfig,
  renderFiles,
  renderModulesBlock,
  staleFiles,
} from "../../providers/dropbear-initramfs/render";
import { hostKeyFromSeed } from "../../providers/dropbear-initramfs/host-key";

const OPS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBi9hKn7LneW0nS51taJfIB2av5pP2T45jlKGC053CBH ops@example";
const PROVIDER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl provider";
const MAC = "90:1B:0E:AA:BB:CC";

describe("authorized_keys", () => {
  it("restricts every key to no forwarding, and unlock-only keys to cryptroot-unlock", () => {
    const lines = renderAuthorizedKeys([OPS, { key: PROVIDER, shell: true }]).split("\n");
    expect(lines[0]).toMatch(/^# Written by hetzner-fde/);
    expect(lines[1]).toBe(`no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="/bin/cryptroot-unlock" ${OPS}`);
    expect(lines[2]).toBe(`no-port-forwarding,no-agent-forwarding,no-X11-forwarding ${PROVIDER}`);
  });

  it("keeps the comment but drops control characters from it", () => {
    const text = renderAuthorizedKeys([`${OPS.split(" ").slice(0, 2).join(" ")} evil\u0007comment`]);
    expect(text).toContain("AAAAIBi9hKn7LneW0nS51taJfIB2av5pP2T45jlKGC053CBH evilcomment\n");
  });
});

describe("dropbear config", () => {
  it("passes port, keys-only, no forwarding and the idle timeout, and forces IFDOWN", () => {
    expect(dropbearOptions({})).toBe("-p 2222 -s -j -k -I 300");
    const text = renderDropbearConfig(adapterByKey("debian-12"), { port: 4748, idleTimeoutSeconds: 120 });
    expect(text).toContain("DROPBEAR_OPTIONS='-p 4748 -s -j -k -I 120'\n");
    expect(text).toContain("IFDOWN='*'\n");
    expect(text).toContain("DROPBEAR_SHUTDOWN_TIMEOUT=60\n");
  });

  it.each([
    ["debian-11", "etc/dropbear/config"],
    ["debian-12", "etc/dropbear/dropbear.conf"],
    ["ubuntu-24.04", "etc/dropbear/dropbear.conf"],
  ] as const)("%s: the hook copies it to %s in the image", (key, inImage) => {
    expect(imageConfigPath(adapterByKey(key))).toBe(inImage);
  });
});

describe("initramfs network", () => {
  it("says dhcp, or a static address in klibc's ip= syntax with the device left to BOOTIF", () => {
    expect(ipParameter({ mac: MAC, ipv4: "dhcp" })).toBe("dhcp");
    expect(ipParameter({ mac: MAC, ipv4: { address: "203.0.113.7/26", gateway: "203.0.113.1" } })).toBe("203.0.113.7::203.0.113.1:255.255.255.192:::off");
    expect(bootif(MAC)).toBe("01-90-1b-0e-aa-bb-cc");
  });

  it("writes BUSYBOX, IP, BOOTIF and, with IPv6, the settings our boot script reads (gateway fe80::1 by default)", () => {
    expect(renderConfd({ mac: MAC, ipv4: "dhcp" }).split("\n").slice(1)).toEqual(["BUSYBOX=y", "IP=dhcp", "BOOTIF=01-90-1b-0e-aa-bb-cc", ""]);
    const v6 = renderConfd({ mac: MAC, ipv4: "dhcp", ipv6: { address: "2a01:4f8:1:2::2/64" } });
    expect(v6).toContain("HFDE_IPV6_ADDRESS=2a01:4f8:1:2::2/64\nHFDE_IPV6_GATEWAY=fe80::1\n");
  });

  it("names the NIC driver in a marked block, and nothing for a built-in driver", () => {
    expect(renderModulesBlock("igb")).toBe("# BEGIN hetzner-fde DropbearInitramfs: the NIC driver dropbear needs\nigb\n# END hetzner-fde\n");
    expect(renderModulesBlock(null)).toBe("");
  });
});

describe("the files of a configuration", () => {
  const key = hostKeyFromSeed(Buffer.alloc(32, 3), "k");
  const inputs = { authorizedKeys: [OPS], network: { mac: MAC, ipv4: "dhcp" as const } };

  it.each(["debian-11", "debian-13", "ubuntu-22.04"] as const)("%s: at the paths that release reads, the host key 0600", (distro) => {
    const adapter = adapterByKey(distro);
    const files = renderFiles(adapter, inputs, key.privateKeyDropbear, { ipv6: "#!/bin/sh\n", cleanup: "#!/bin/sh\n" });
    expect(files.map((f) => [f.path, f.mode])).toEqual([
      [adapter.dropbear.hostKeyFiles.ed25519, "600"],
      [adapter.dropbear.authorizedKeysFile, "600"],
      [adapter.dropbear.configFile, "644"],
      ["/etc/initramfs-tools/conf.d/hetzner-fde", "644"],
      ["/etc/initramfs-tools/scripts/init-bottom/hetzner-fde-network", "755"],
    ]);
    expect(files[0].base64).toBe(key.privateKeyDropbear);
    expect(staleFiles(adapter, inputs.network)).toContain("/etc/initramfs-tools/scripts/init-premount/hetzner-fde-ipv6");
  });

  it("adds the IPv6 boot script only with IPv6, and renders one stdin record per file", () => {
    const adapter = adapterByKey("debian-12");
    const withV6 = { ...inputs, network: { ...inputs.network, ipv6: { address: "2a01:4f8:1:2::2/64" } } };
    const files = renderFiles(adapter, withV6, key.privateKeyDropbear, { ipv6: "V6", cleanup: "C" });
    expect(files.map((f) => f.path)).toContain("/etc/initramfs-tools/scripts/init-premount/hetzner-fde-ipv6");
    expect(staleFiles(adapter, withV6.network)).not.toContain("/etc/initramfs-tools/scripts/init-premount/hetzner-fde-ipv6");
    const records = configureRecords(files).trimEnd().split("\n");
    expect(records).toHaveLength(files.length);
    for (const record of records) expect(record).toMatch(/^[0-7]{3} \/\S+ [A-Za-z0-9+/=]+$/);
  });
});
