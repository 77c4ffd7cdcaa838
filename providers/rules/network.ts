// Names, addresses and ports: hostnames, interface addresses in CIDR form, gateways, interface
// names, TCP ports, SSH fingerprints and the Robot URL.
import * as ipaddr from "ipaddr.js";

export type IpFamily = "ipv4" | "ipv6";

/** A DNS label: what a host's `name` must be, because it becomes a config key and a resource name. */
export function checkDnsLabel(label: string): string | undefined {
  if (/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) return undefined;
  return `expected a DNS label (1-63 of a-z, 0-9 and "-", not starting or ending with "-"), found "${label}"`;
}

/** An RFC 1123 host name, dotted labels allowed (an FQDN). */
export function checkHostname(name: string): string | undefined {
  const labels = name.split(".");
  const labelOk = (l: string) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l);
  if (name.length <= 253 && labels.every(labelOk)) return undefined;
  return `expected a host name (dot-separated labels of letters, digits and "-", each 1-63 long, 253 at most), found "${name}"`;
}

export function isIpAddress(text: string, family?: IpFamily): boolean {
  if (family !== "ipv6" && ipaddr.IPv4.isValidFourPartDecimal(text)) return true;
  return family !== "ipv4" && text.includes(":") && ipaddr.IPv6.isValid(text);
}

/** Where we dial: an IP address or a host name. */
export function checkEndpointAddress(address: string): string | undefined {
  if (isIpAddress(address) || checkHostname(address) === undefined) return undefined;
  return `expected an IPv4/IPv6 address or a host name, found "${address}"`;
}

export interface InterfaceAddress {
  readonly address: string;
  readonly prefix: number;
}

/**
 * An interface address in CIDR form, `203.0.113.7/26` or `2001:db8::2/64`: the host's own address
 * plus its prefix. The network or broadcast address of the subnet is refused.
 */
export function parseInterfaceAddress(text: string, family: IpFamily): { ok: true; value: InterfaceAddress } | { ok: false; reason: string } {
  const example = family === "ipv4" ? "203.0.113.7/26" : "2001:db8::2/64";
  const fail = (why: string) => ({ ok: false as const, reason: `expected an ${family === "ipv4" ? "IPv4" : "IPv6"} address with prefix like ${example}, found "${text}"${why}` });
  const slash = text.indexOf("/");
  if (slash < 0) return fail("; add the prefix length");
  const address = text.slice(0, slash);
  const prefixText = text.slice(slash + 1);
  if (!isIpAddress(address, family)) return fail(`; "${address}" is not an ${family === "ipv4" ? "IPv4" : "IPv6"} address`);
  const maxPrefix = family === "ipv4" ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > maxPrefix) return fail(`; the prefix must be 0..${maxPrefix}`);
  const prefix = Number(prefixText);
  if (family === "ipv4" && prefix < 31) {
    const parsed = ipaddr.IPv4.parse(address);
    if (parsed.toString() === ipaddr.IPv4.networkAddressFromCIDR(text).toString()) return fail("; that is the network address of the subnet, not a host address");
    if (parsed.toString() === ipaddr.IPv4.broadcastAddressFromCIDR(text).toString()) return fail("; that is the broadcast address of the subnet");
  }
  return { ok: true, value: { address, prefix } };
}

/**
 * The gateway must be an address of the family, differ from the host's address and sit inside its
 * subnet; exceptions: a /32 IPv4 (point-to-point, as Hetzner routes some setups) and an IPv6
 * link-local gateway (Hetzner's fe80::1).
 */
export function checkGateway(gateway: string, own: InterfaceAddress, family: IpFamily): string | undefined {
  if (!isIpAddress(gateway, family)) return `expected an ${family === "ipv4" ? "IPv4" : "IPv6"} gateway address, found "${gateway}"`;
  const gw = ipaddr.parse(gateway);
  const self = ipaddr.parse(own.address);
  if (gw.toString() === self.toString()) return `expected a gateway other than the host's own address, found "${gateway}"`;
  if (family === "ipv4" && own.prefix === 32) return undefined;
  if (family === "ipv6" && gw.range() === "linkLocal") return undefined;
  if (!gw.match(self, own.prefix)) {
    return `expected a gateway inside ${own.address}/${own.prefix}, found "${gateway}"; the initramfs cannot reach a gateway outside its subnet`;
  }
  return undefined;
}

/** Linux interface names: 1-15 bytes, no "/", whitespace or ":" (IFNAMSIZ and dev_valid_name). */
export function checkInterfaceName(name: string): string | undefined {
  if (/^[A-Za-z0-9_.-]{1,15}$/.test(name) && name !== "." && name !== "..") return undefined;
  return `expected a Linux interface name (1-15 of letters, digits, "_", "." and "-", e.g. eth0 or enp0s31f6), found "${name}"`;
}

export function checkPort(port: number): string | undefined {
  if (Number.isInteger(port) && port >= 1 && port <= 65535) return undefined;
  return `expected a TCP port 1..65535, found ${port}`;
}

/** `SHA256:` + 43 unpadded base64 characters, as `ssh-keygen -lf` prints it. */
export function checkSha256Fingerprint(fingerprint: string): string | undefined {
  if (/^SHA256:[A-Za-z0-9+/]{43}$/.test(fingerprint)) return undefined;
  return `expected a host key fingerprint like "SHA256:" + 43 base64 characters (ssh-keygen -lf prints it), found "${fingerprint}"`;
}

/** The Robot password travels in every request, so plain http is only allowed to a loopback emulator. */
export function checkRobotUrl(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `expected a URL like https://robot-ws.your-server.de, found "${url}"`;
  }
  if (parsed.protocol === "https:") return undefined;
  const loopback = ["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname);
  if (parsed.protocol === "http:" && loopback) return undefined;
  return `expected an https:// URL (the Robot password is sent with every request; http is allowed only to a loopback emulator), found "${url}"`;
}
