// DropbearInitramfs's check (pure): every problem at once, each naming the field, what was expected,
// what was found and what to do. Values still unknown in preview are skipped.
import { validateProfiles } from "../kernel/host-access";
import type { CheckFailure } from "../kernel/resource";
import { isUnknown } from "../kernel/resource";
import { parsePublicKey } from "../plumbing/keys";
import { checkEndpointAddress, checkGateway, checkHostname, checkPort, parseInterfaceAddress } from "../rules/network";
import {
  AuthorizedKey,
  DEFAULT_DROPBEAR_PORT,
  DEFAULT_SSHD_PORT,
  DropbearInitramfsInputs,
  HETZNER_IPV6_GATEWAY,
} from "./types";

type Fail = (property: string, reason: string | undefined) => void;

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

export function validateInputs(inputs: DropbearInitramfsInputs): CheckFailure[] {
  const failures: CheckFailure[] = [];
  const fail: Fail = (property, reason) => {
    if (reason) failures.push({ property, reason });
  };
  const known = (value: unknown) => value !== undefined && !isUnknown(value);

  if (known(inputs.connection)) {
    failures.push(...validateProfiles(inputs.connection));
    if (Array.isArray(inputs.connection) && !inputs.connection.some((p) => p?.environment === "system" || isUnknown(p) || isUnknown(p?.environment))) {
      fail("connection", 'expected a profile with environment "system" (the installed system\'s sshd and its pinned key): the unlock is verified there; add InstallImage\'s system profile');
    }
    if (Array.isArray(inputs.connection) && inputs.connection.some((p) => p?.environment === "initramfs")) {
      fail("connection", 'expected no "initramfs" profile: this resource makes that one itself (outputs.initramfsProfile), from `port`, `reach` and the host key it generates; remove it');
    }
  }
  if (known(inputs.hostname)) fail("hostname", typeof inputs.hostname === "string" ? checkHostname(inputs.hostname) : `expected a host name, found ${JSON.stringify(inputs.hostname)}`);

  validateKeys(inputs.authorizedKeys, fail);
  validatePorts(inputs, fail);
  validateNetwork(inputs.network, fail);

  const idle = inputs.idleTimeoutSeconds;
  if (known(idle) && !(Number.isInteger(idle) && (idle as number) >= 30 && (idle as number) <= 86400)) {
    fail("idleTimeoutSeconds", `expected whole seconds 30..86400 (dropbear -I closes idle sessions after it), found ${JSON.stringify(idle)}`);
  }
  for (const flag of ["unlock", "rebootOnUpdate", "allowWipe"] as const) {
    const value = inputs[flag];
    if (known(value) && typeof value !== "boolean") fail(flag, `expected true or false, found ${JSON.stringify(value)}`);
  }
  const passphrase = inputs.passphrase;
  const needsPassphrase = inputs.unlock !== false || (Array.isArray(inputs.connection) && inputs.connection.some((p) => p?.environment === "rescue"));
  if (passphrase === undefined && needsPassphrase && !isUnknown(inputs.unlock)) {
    fail("passphrase", "expected the LUKS passphrase: `unlock` is on (the default) and a rescue setup opens the root with it; pass the secret from `pulumi config set --secret`, or set unlock: false on a host configured from its running system");
  } else if (known(passphrase) && (typeof passphrase !== "string" || passphrase === "")) {
    fail("passphrase", "expected a non-empty string (the LUKS passphrase)");
  }
  return failures;
}

function validateKeys(keys: unknown, fail: Fail): void {
  if (keys === undefined || isUnknown(keys)) {
    if (keys === undefined) fail("authorizedKeys", "expected at least one OpenSSH public key that may log in to dropbear (the provider's own key among them), found none");
    return;
  }
  if (!Array.isArray(keys) || keys.length === 0) {
    fail("authorizedKeys", `expected at least one OpenSSH public key line (or { key, shell }), found ${JSON.stringify(keys)}`);
    return;
  }
  const seen = new Map<string, number>();
  keys.forEach((entry: unknown, i) => {
    if (isUnknown(entry)) return;
    const at = `authorizedKeys[${i}]`;
    const key = typeof entry === "string" ? entry : (entry as AuthorizedKey | null)?.key;
    if (typeof entry !== "string" && (typeof entry !== "object" || entry === null)) {
      fail(at, `expected an OpenSSH public key line or { key, shell }, found ${JSON.stringify(entry)}`);
      return;
    }
    if (typeof entry === "object") {
      const shell = (entry as AuthorizedKey).shell;
      if (shell !== undefined && typeof shell !== "boolean") fail(`${at}.shell`, `expected true or false, found ${JSON.stringify(shell)}`);
    }
    if (typeof key !== "string") {
      fail(typeof entry === "string" ? at : `${at}.key`, `expected an OpenSSH public key line, found ${JSON.stringify(key)}`);
      return;
    }
    try {
      const parsed = parsePublicKey(key);
      const id = parsed.blob.toString("base64");
      const first = seen.get(id);
      if (first !== undefined) fail(at, `expected each key once, found the key of authorizedKeys[${first}] again; remove one`);
      else seen.set(id, i);
      if (/[\r\n]/.test(key.trim())) fail(at, "expected one key line, found a line break inside it");
    } catch (err) {
      fail(typeof entry === "string" ? at : `${at}.key`, `${(err as Error).message}; paste the whole .pub line`);
    }
  });
}

function validatePorts(inputs: DropbearInitramfsInputs, fail: Fail): void {
  const port = inputs.port ?? DEFAULT_DROPBEAR_PORT;
  const sshd = inputs.sshdPort ?? DEFAULT_SSHD_PORT;
  if (!isUnknown(inputs.port)) fail("port", checkPort(port));
  if (!isUnknown(inputs.sshdPort)) fail("sshdPort", checkPort(sshd));
  if (!isUnknown(inputs.port) && !isUnknown(inputs.sshdPort) && port === sshd) {
    fail("port", `expected dropbear's port to differ from sshd's (${sshd}), found ${port}: each port must answer with one pinned host key, or a client that knows one environment refuses the other; pick another port (e.g. 2222)`);
  }
  const reach = inputs.reach;
  if (reach === undefined || isUnknown(reach)) return;
  if (typeof reach !== "object" || reach === null) {
    fail("reach", `expected { host, port }, found ${JSON.stringify(reach)}`);
    return;
  }
  fail("reach.host", typeof reach.host === "string" ? checkEndpointAddress(reach.host) : `expected an address, found ${JSON.stringify(reach.host)}`);
  fail("reach.port", typeof reach.port === "number" ? checkPort(reach.port) : `expected a port number, found ${JSON.stringify(reach.port)}`);
  if (Array.isArray(inputs.connection)) {
    const clash = inputs.connection.find((p) => p?.host === reach.host && p?.port === reach.port);
    if (clash) fail("reach", `expected an endpoint of its own, found ${reach.host}:${reach.port}, which is the ${clash.environment} profile's: each endpoint answers with one pinned host key; use dropbear's forwarded port`);
  }
}

function validateNetwork(network: DropbearInitramfsInputs["network"] | undefined, fail: Fail): void {
  if (isUnknown(network)) return;
  if (typeof network !== "object" || network === null) {
    fail("network", `expected { mac, ipv4: "dhcp" | { address, gateway }, ipv6? }, found ${JSON.stringify(network)}`);
    return;
  }
  if (!isUnknown(network.mac)) {
    if (typeof network.mac !== "string" || !MAC.test(network.mac)) {
      fail("network.mac", `expected the MAC address of the interface the server is reached through, like 90:1b:0e:aa:bb:cc (\`ip link\` shows it), found ${JSON.stringify(network.mac)}`);
    } else if ((parseInt(network.mac.slice(0, 2), 16) & 1) === 1) {
      fail("network.mac", `expected a unicast MAC address (a NIC's own), found the multicast address ${network.mac}`);
    }
  }
  const ipv4 = network.ipv4;
  if (!isUnknown(ipv4) && ipv4 !== "dhcp") {
    if (typeof ipv4 !== "object" || ipv4 === null) {
      fail("network.ipv4", `expected "dhcp" or { address: "203.0.113.7/26", gateway: "203.0.113.1" }, found ${JSON.stringify(ipv4)}`);
    } else if (!isUnknown(ipv4.address)) {
      const parsed = typeof ipv4.address === "string" ? parseInterfaceAddress(ipv4.address, "ipv4") : { ok: false as const, reason: `expected an IPv4 address with prefix, found ${JSON.stringify(ipv4.address)}` };
      if (!parsed.ok) fail("network.ipv4.address", parsed.reason);
      else if (parsed.value.prefix > 30) {
        fail("network.ipv4.address", `expected a prefix of /30 or shorter, found /${parsed.value.prefix}: klibc's ipconfig in the initramfs adds no on-link route to a gateway outside the subnet, so a /31 or /32 leaves dropbear unreachable; use the subnet Robot shows for the main IP, or "dhcp"`);
      } else if (!isUnknown(ipv4.gateway)) {
        fail("network.ipv4.gateway", typeof ipv4.gateway === "string" ? checkGateway(ipv4.gateway, parsed.value, "ipv4") : `expected an IPv4 gateway, found ${JSON.stringify(ipv4.gateway)}`);
      }
    }
  }
  const ipv6 = network.ipv6;
  if (ipv6 === undefined || isUnknown(ipv6)) return;
  if (typeof ipv6 !== "object" || ipv6 === null) {
    fail("network.ipv6", `expected { address: "2a01:4f8:…::2/64", gateway?: "${HETZNER_IPV6_GATEWAY}" }, found ${JSON.stringify(ipv6)}`);
    return;
  }
  if (isUnknown(ipv6.address)) return;
  const parsed = typeof ipv6.address === "string" ? parseInterfaceAddress(ipv6.address, "ipv6") : { ok: false as const, reason: `expected an IPv6 address with prefix, found ${JSON.stringify(ipv6.address)}` };
  if (!parsed.ok) {
    fail("network.ipv6.address", parsed.reason);
    return;
  }
  const gateway = ipv6.gateway ?? HETZNER_IPV6_GATEWAY;
  if (!isUnknown(gateway)) fail("network.ipv6.gateway", typeof gateway === "string" ? checkGateway(gateway, parsed.value, "ipv6") : `expected an IPv6 gateway, found ${JSON.stringify(gateway)}`);
}
