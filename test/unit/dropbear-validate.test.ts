// DropbearInitramfs's check: each bad input is refused at preview with the field, what was expected,
// what was found and what to do; a good configuration passes; unknown values are skipped.
import { UNKNOWN } from "../../providers/kernel/resource";
import { validateInputs } from "../../providers/dropbear-initramfs/validate";
import type { DropbearInitramfsInputs } from "../../providers/dropbear-initramfs/types";

const OPS = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBi9hKn7LneW0nS51taJfIB2av5pP2T45jlKGC053CBH ops@example";
const FP = "SHA256:Jezd42ehiCgeXoex1Pk9LKEGZJKSQbv1xX4TkkEgH2g";

const good: DropbearInitramfsInputs = {
  connection: [
    { environment: "rescue", host: "203.0.113.7", port: 22, user: "root", hostKeyFingerprints: [FP] },
    { environment: "system", host: "203.0.113.7", port: 22, user: "root", hostKeyFingerprints: [FP] },
  ],
  hostname: "fsn1-app1.example.com",
  authorizedKeys: [OPS],
  network: { mac: "90:1b:0e:aa:bb:cc", ipv4: { address: "203.0.113.7/26", gateway: "203.0.113.1" }, ipv6: { address: "2a01:4f8:1:2::2/64" } },
  passphrase: "Lab-Crypt-Horse-Battery-7-staple",
  providerVersion: "3",
};

const failuresOf = (change: Partial<Record<keyof DropbearInitramfsInputs, unknown>>) =>
  validateInputs({ ...good, ...change } as DropbearInitramfsInputs);

describe("DropbearInitramfs validate", () => {
  it("passes a complete configuration, and dhcp", () => {
    expect(validateInputs(good)).toEqual([]);
    expect(failuresOf({ network: { mac: "90:1b:0e:aa:bb:cc", ipv4: "dhcp" } })).toEqual([]);
  });

  it("skips values still unknown in preview", () => {
    expect(failuresOf({ connection: UNKNOWN, authorizedKeys: UNKNOWN, network: UNKNOWN, passphrase: UNKNOWN, port: UNKNOWN })).toEqual([]);
  });

  it.each([
    ["port equal to sshd's", { port: 22 }, "port", /expected dropbear's port to differ from sshd's \(22\), found 22.*pick another port/],
    ["sshdPort equal to the default dropbear port", { sshdPort: 2222 }, "port", /differ from sshd's \(2222\)/],
    ["a port out of range", { port: 70000 }, "port", /expected a TCP port 1\.\.65535, found 70000/],
    ["no keys", { authorizedKeys: [] }, "authorizedKeys", /expected at least one OpenSSH public key line/],
    ["a truncated key", { authorizedKeys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBi9hKn7"] }, "authorizedKeys[0]", /paste the whole \.pub line/],
    ["a key twice", { authorizedKeys: [OPS, { key: OPS, shell: true }] }, "authorizedKeys[1]", /found the key of authorizedKeys\[0\] again; remove one/],
    ["shell not a boolean", { authorizedKeys: [{ key: OPS, shell: "yes" }] }, "authorizedKeys[0].shell", /expected true or false, found "yes"/],
    ["a bad MAC", { network: { mac: "90-1b-0e-aa-bb-cc", ipv4: "dhcp" } }, "network.mac", /like 90:1b:0e:aa:bb:cc \(`ip link` shows it\), found "90-1b-0e-aa-bb-cc"/],
    ["a multicast MAC", { network: { mac: "01:00:5e:00:00:01", ipv4: "dhcp" } }, "network.mac", /unicast/],
    ["an IPv4 without prefix", { network: { mac: "90:1b:0e:aa:bb:cc", ipv4: { address: "203.0.113.7", gateway: "203.0.113.1" } } }, "network.ipv4.address", /add the prefix length/],
    ["a /32", { network: { mac: "90:1b:0e:aa:bb:cc", ipv4: { address: "203.0.113.7/32", gateway: "203.0.113.1" } } }, "network.ipv4.address", /klibc's ipconfig .* use the subnet Robot shows/],
    ["a gateway outside the subnet", { network: { mac: "90:1b:0e:aa:bb:cc", ipv4: { address: "203.0.113.7/26", gateway: "198.51.100.1" } } }, "network.ipv4.gateway", /inside 203\.0\.113\.7\/26/],
    ["an IPv6 without prefix", { network: { mac: "90:1b:0e:aa:bb:cc", ipv4: "dhcp", ipv6: { address: "2a01:4f8:1:2::2" } } }, "network.ipv6.address", /add the prefix length/],
    ["an idle timeout of 5 s", { idleTimeoutSeconds: 5 }, "idleTimeoutSeconds", /30\.\.86400.*found 5/],
    ["unlock as a string", { unlock: "yes" }, "unlock", /expected true or false/],
    ["no passphrase with unlock on", { passphrase: undefined }, "passphrase", /unlock` is on \(the default\).*set unlock: false/],
    ["a hostname with a space", { hostname: "bad host" }, "hostname", /expected a host name/],
    ["no system profile", { connection: [good.connection[0]] }, "connection", /environment "system"/],
    ["reach on sshd's endpoint", { reach: { host: "203.0.113.7", port: 22 } }, "reach", /which is the rescue profile's/],
  ])("refuses %s", (_what, change, property, reason) => {
    const failures = failuresOf(change);
    const failure = failures.find((f) => f.property === property);
    expect(failure).toBeDefined();
    expect(failure!.reason).toMatch(reason);
  });

  it("needs no passphrase with unlock off on a host configured from its running system", () => {
    expect(failuresOf({ unlock: false, passphrase: undefined, connection: [good.connection[1]] })).toEqual([]);
    expect(failuresOf({ unlock: false, passphrase: undefined }).map((f) => f.property)).toEqual(["passphrase"]);
  });

  it("reports every problem at once", () => {
    expect(failuresOf({ port: 22, hostname: "bad host", authorizedKeys: [] }).map((f) => f.property).sort()).toEqual(["authorizedKeys", "hostname", "port"]);
  });
});
