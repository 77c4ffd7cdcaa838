// The bootability gate on a real image: test/unit/fixtures/dropbear-gate-debian12.txt is what
// gate-facts.sh printed for a Debian 12 initrd that update-initramfs built (once, through dpkg's
// trigger) after dropbear-initramfs, cryptsetup-initramfs and busybox were installed over the
// lab's OS image with this resource's files already in place (see the fixture's header below).
// Each test removes or changes one piece and expects the gate to name it and say how to fix it.
import { adapterByKey } from "../../providers/distro";
import { defaultGrubEntry, GateFacts, gateProblems, parseGateFacts } from "../../providers/dropbear-initramfs/gate";
import { hostKeyFileSha256 } from "../../providers/dropbear-initramfs/host-key";
import { GRUB_CFG, KERNEL, KEY, KEYS, NETWORK, gateFactsText } from "./dropbear-fixtures";
import { bootScripts, CONFD_NAME, imageConfigPath, renderAuthorizedKeys, renderConfd, renderDropbearConfig } from "../../providers/dropbear-initramfs/render";
import type { GateExpectation } from "../../providers/dropbear-initramfs/types";

const expected: GateExpectation = {
  dropbearConfig: renderDropbearConfig(adapterByKey("debian-12"), { port: 2222, idleTimeoutSeconds: 300 }),
  confd: { name: CONFD_NAME, text: renderConfd(NETWORK) },
  authorizedKeys: renderAuthorizedKeys(KEYS),
  hostKeySha256: hostKeyFileSha256(KEY.privateKeyDropbear),
  imageConfigPath: imageConfigPath(adapterByKey("debian-12")),
  scripts: bootScripts(NETWORK),
};

/** GateFacts with everything writable, for the changes below. */
interface MutableFacts {
  initrd: { kernelVersion: string; initrdPath: string | null; listing: string[]; files: Record<string, string>; hostKeySha256: Record<string, string> };
  host: { arrayUuids: string[]; nic: { name: string; module: string | null } | null; crypttab: string; grubCfg: string };
}

/** The fixture with one change; returns the pieces the gate names. */
function problemsWith(change: (facts: MutableFacts) => void): { pieces: string[]; messages: string } {
  const facts = JSON.parse(JSON.stringify(parseGateFacts(gateFactsText()))) as MutableFacts;
  change(facts);
  const problems = gateProblems(facts as GateFacts, expected);
  return { pieces: problems.map((p) => p.piece), messages: problems.map((p) => p.message).join("\n") };
}

const dropPath = (facts: MutableFacts, pred: (p: string) => boolean) => {
  facts.initrd.listing = facts.initrd.listing.filter((p) => !pred(p));
};

describe("parseGateFacts", () => {
  it("reads the real image's records", () => {
    const facts = parseGateFacts(gateFactsText());
    expect(facts.initrd.kernelVersion).toBe(KERNEL);
    expect(facts.initrd.initrdPath).toBe(`/boot/initrd.img-${KERNEL}`);
    expect(facts.initrd.listing).toEqual(expect.arrayContaining(["usr/sbin/dropbear", "usr/bin/cryptroot-unlock", "usr/sbin/mdadm", "usr/sbin/lvm", "cryptroot/crypttab"]));
    expect(Object.keys(facts.initrd.files).sort()).toEqual(expect.arrayContaining(["etc/passwd", "etc/dropbear/dropbear.conf", "conf/conf.d/hetzner-fde", "cryptroot/crypttab", "etc/mdadm/mdadm.conf"]));
    expect(Object.keys(facts.initrd.hostKeySha256)).toEqual(["etc/dropbear/dropbear_ed25519_host_key"]);
    expect(facts.host).toMatchObject({ nic: { name: "eth0", module: "virtio_net" }, arrayUuids: ["11111111:22222222:33333333:44444444", "55555555:66666666:77777777:88888888"] });
  });

  it("finds GRUB's default entry at top level, not in the submenu", () => {
    expect(defaultGrubEntry(GRUB_CFG)).toEqual({ linux: `/vmlinuz-${KERNEL}`, args: ["root=/dev/mapper/vg0-root", "ro", "consoleblank=0"], initrds: [`/initrd.img-${KERNEL}`] });
  });
});

describe("gateProblems", () => {
  it("passes the image built from the stack's files", () => {
    expect(problemsWith(() => undefined).pieces).toEqual([]);
  });

  it("names a missing dropbear binary", () => {
    const r = problemsWith((f) => dropPath(f, (p) => p.endsWith("/dropbear")));
    expect(r.pieces).toEqual(["dropbear"]);
    expect(r.messages).toMatch(/install dropbear-initramfs and rebuild it \(`update-initramfs -u -k 6\.1\.0-50-amd64`\)/);
  });

  it("names a missing, a foreign and an extra host key", () => {
    expect(problemsWith((f) => delete f.initrd.hostKeySha256["etc/dropbear/dropbear_ed25519_host_key"]).messages).toMatch(/no etc\/dropbear\/dropbear_ed25519_host_key/);
    expect(problemsWith((f) => (f.initrd.hostKeySha256["etc/dropbear/dropbear_ed25519_host_key"] = "0".repeat(64))).messages).toMatch(/not the key the stack pins/);
    const extra = problemsWith((f) => (f.initrd.hostKeySha256["etc/dropbear/dropbear_rsa_host_key"] = "1".repeat(64)));
    expect(extra.pieces).toEqual(["host key"]);
    expect(extra.messages).toMatch(/also carries etc\/dropbear\/dropbear_rsa_host_key/);
  });

  it("names authorized_keys that are missing or not the stack's", () => {
    const missing = problemsWith((f) => {
      for (const k of Object.keys(f.initrd.files)) if (k.endsWith("/.ssh/authorized_keys")) delete f.initrd.files[k];
    });
    expect(missing.pieces).toEqual(["authorized_keys"]);
    expect(missing.messages).toMatch(/no authorized_keys for root \(expected \/root-\w+\/\.ssh\/authorized_keys\)/);
    const stale = problemsWith((f) => {
      for (const k of Object.keys(f.initrd.files)) if (k.endsWith("/.ssh/authorized_keys")) f.initrd.files[k] = renderAuthorizedKeys([KEYS[0]]);
    });
    expect(stale.messages).toMatch(/1 key line\(s\) missing, 0 not in the stack/);
  });

  it("names a dropbear config from another port", () => {
    const r = problemsWith((f) => (f.initrd.files["etc/dropbear/dropbear.conf"] = f.initrd.files["etc/dropbear/dropbear.conf"].replace("-p 2222", "-p 22")));
    expect(r.pieces).toEqual(["dropbear config"]);
  });

  it("names the network configuration and our boot scripts", () => {
    expect(problemsWith((f) => delete f.initrd.files["conf/conf.d/hetzner-fde"]).messages).toMatch(/no conf\/conf\.d\/hetzner-fde \(IP= and BOOTIF=\)/);
    const script = problemsWith((f) => dropPath(f, (p) => p === "scripts/init-premount/hetzner-fde-ipv6"));
    expect(script.pieces).toEqual(["network"]);
    expect(script.messages).toMatch(/write \/etc\/initramfs-tools\/scripts\/init-premount\/hetzner-fde-ipv6 \(executable\)/);
  });

  it("names a missing or stale cryptroot configuration and a missing cryptroot-unlock", () => {
    const none = problemsWith((f) => delete f.initrd.files["cryptroot/crypttab"]);
    expect(none.pieces).toEqual(["cryptroot"]);
    expect(none.messages).toMatch(/install cryptsetup-initramfs, make sure \/etc\/crypttab names the root's LUKS device \(it has luks-3f1c\)/);
    const stale = problemsWith((f) => (f.host.crypttab = "luks-9999 UUID=9999 none luks\n"));
    expect(stale.messages).toMatch(/unlocks luks-3f1c from UUID=3f1c2a4e-1111-4222-8333-944455556666, which \/etc\/crypttab no longer names/);
    expect(problemsWith((f) => dropPath(f, (p) => p.endsWith("/cryptroot-unlock"))).messages).toMatch(/no cryptroot-unlock/);
  });

  it("names an array mdadm.conf does not list, and missing mdadm and lvm", () => {
    const r = problemsWith((f) => f.host.arrayUuids.push("aaaaaaaa:bbbbbbbb:cccccccc:dddddddd"));
    expect(r.pieces).toEqual(["mdadm.conf"]);
    expect(r.messages).toMatch(/no ARRAY line for aaaaaaaa:bbbbbbbb:cccccccc:dddddddd/);
    expect(problemsWith((f) => dropPath(f, (p) => p.endsWith("/mdadm"))).pieces).toEqual(["mdadm"]);
    expect(problemsWith((f) => dropPath(f, (p) => p.endsWith("/lvm"))).pieces).toEqual(["lvm"]);
  });

  it("names the NIC driver the host really has when the image lacks it, and a MAC no interface has", () => {
    const r = problemsWith((f) => (f.host.nic = { name: "enp0s31f6", module: "e1000e" }));
    expect(r.pieces).toEqual([]); // e1000e is in the image (MODULES=most)
    const igb = problemsWith((f) => (f.host.nic = { name: "eno1", module: "igb" }));
    expect(igb.pieces).toEqual(["NIC driver"]);
    expect(igb.messages).toMatch(/no igb module for eno1: dropbear would have no network; add igb to \/etc\/initramfs-tools\/modules/);
    expect(problemsWith((f) => dropPath(f, (p) => p.includes("virtio_net"))).pieces).toEqual(["NIC driver"]);
    expect(problemsWith((f) => (f.host.nic = null)).messages).toMatch(/no interface of this host has the configured MAC address/);
    expect(problemsWith((f) => (f.host.nic = { name: "eth0", module: null })).pieces).toEqual([]);
  });

  it("checks that GRUB boots this kernel with this initrd and sets no ip=", () => {
    const other = problemsWith((f) => (f.host.grubCfg = GRUB_CFG.replace(`linux\t/vmlinuz-${KERNEL}`, "linux\t/vmlinuz-5.10.0-9-amd64")));
    expect(other.messages).toMatch(/boots \/vmlinuz-5\.10\.0-9-amd64, not the kernel 6\.1\.0-50-amd64/);
    const ip = problemsWith((f) => (f.host.grubCfg = GRUB_CFG.replace("consoleblank=0", "consoleblank=0 ip=dhcp")));
    expect(ip.messages).toMatch(/sets ip=dhcp, which overrides the initramfs network/);
    expect(problemsWith((f) => (f.host.grubCfg = "")).pieces).toEqual(["GRUB"]);
  });

  it("stops at a missing initrd or kernel with the command that builds it", () => {
    expect(problemsWith((f) => (f.initrd.initrdPath = null)).messages).toBe(`there is no /boot/initrd.img-${KERNEL} for the newest kernel ${KERNEL}; build it with \`update-initramfs -c -k ${KERNEL}\` (\`pulumi up\` does)`);
    expect(problemsWith((f) => (f.initrd.kernelVersion = "")).pieces).toEqual(["kernel"]);
  });
});
