import {
  checkDnsLabel,
  checkEndpointAddress,
  checkGateway,
  checkHostname,
  checkInterfaceName,
  checkPort,
  checkRobotUrl,
  checkSha256Fingerprint,
  parseInterfaceAddress,
} from "../../providers/rules";

describe("parseInterfaceAddress", () => {
  it.each([
    ["203.0.113.7/26", "ipv4", { address: "203.0.113.7", prefix: 26 }],
    ["10.0.2.15/24", "ipv4", { address: "10.0.2.15", prefix: 24 }],
    ["198.51.100.23/32", "ipv4", { address: "198.51.100.23", prefix: 32 }],
    ["2001:db8::2/64", "ipv6", { address: "2001:db8::2", prefix: 64 }],
  ] as const)("reads %s", (text, family, value) => {
    expect(parseInterfaceAddress(text, family)).toEqual({ ok: true, value });
  });

  it.each([
    ["203.0.113.7", "ipv4", /add the prefix length/],
    ["203.0.113.7/33", "ipv4", /prefix must be 0\.\.32/],
    ["203.0.113.7/x", "ipv4", /prefix must be 0\.\.32/],
    ["203.0.113.256/24", "ipv4", /"203\.0\.113\.256" is not an IPv4 address/],
    ["0x7f.1/8", "ipv4", /is not an IPv4 address/],
    ["203.0.113.0/24", "ipv4", /network address/],
    ["203.0.113.255/24", "ipv4", /broadcast address/],
    ["2001:db8::2/129", "ipv6", /prefix must be 0\.\.128/],
    ["203.0.113.7/24", "ipv6", /is not an IPv6 address/],
  ] as const)("refuses %s as %s", (text, family, reason) => {
    const result = parseInterfaceAddress(text, family);
    expect(result.ok ? "accepted" : result.reason).toMatch(reason);
  });
});

describe("checkGateway", () => {
  const v4 = { address: "203.0.113.7", prefix: 26 };
  it.each([
    ["203.0.113.1", v4, "ipv4", undefined],
    ["203.0.113.65", v4, "ipv4", /inside 203\.0\.113\.7\/26/],
    ["203.0.113.7", v4, "ipv4", /other than the host's own address/],
    ["172.31.1.1", { address: "198.51.100.23", prefix: 32 }, "ipv4", undefined],
    ["fe80::1", { address: "2001:db8::2", prefix: 64 }, "ipv6", undefined],
    ["2001:db9::1", { address: "2001:db8::2", prefix: 64 }, "ipv6", /inside 2001:db8::2\/64/],
    ["gateway", v4, "ipv4", /expected an IPv4 gateway address/],
  ] as const)("%s for %j", (gateway, own, family, expected) => {
    const reason = checkGateway(gateway, own, family);
    if (expected === undefined) expect(reason).toBeUndefined();
    else expect(reason).toMatch(expected);
  });
});

describe("names, ports, fingerprints, URLs", () => {
  it.each([
    [checkDnsLabel, "fsn1-app1", true],
    [checkDnsLabel, "lab-1", true],
    [checkDnsLabel, "-lab", false],
    [checkDnsLabel, "Lab1", false],
    [checkDnsLabel, "app1.example.org", false],
    [checkHostname, "app1.example.org", true],
    [checkHostname, "a..b", false],
    [checkHostname, "under_score.example", false],
    [checkEndpointAddress, "127.0.0.1", true],
    [checkEndpointAddress, "2001:db8::1", true],
    [checkEndpointAddress, "rescue.example.org", true],
    [checkEndpointAddress, "http://host", false],
    [checkInterfaceName, "enp0s31f6", true],
    [checkInterfaceName, "eth0", true],
    [checkInterfaceName, "a-name-longer-than-15", false],
    [checkInterfaceName, "eth 0", false],
    [checkSha256Fingerprint, "SHA256:B1mzx0YHukHWZ5xWPK4qKagCMztQzMaUEL+HBmHTstg", true],
    [checkSha256Fingerprint, "SHA256:B1mzx0YHukHWZ5xWPK4qKagCMztQzMaUEL+HBmHTstg=", false],
    [checkSha256Fingerprint, "aa:bb:cc", false],
    [checkRobotUrl, "https://robot-ws.your-server.de", true],
    [checkRobotUrl, "http://127.0.0.1:40080", true],
    [checkRobotUrl, "http://localhost:40080", true],
    [checkRobotUrl, "http://robot-ws.your-server.de", false],
    [checkRobotUrl, "robot-ws.your-server.de", false],
  ] as const)("%p(%j) accepts: %p", (check, value, ok) => {
    const reason = (check as (v: string) => string | undefined)(value);
    if (ok) expect(reason).toBeUndefined();
    else expect(reason).toEqual(expect.stringContaining(`"${value}"`));
  });

  it.each([[1, true], [65535, true], [0, false], [65536, false], [22.5, false]])("port %d valid: %p", (port, ok) => {
    expect(checkPort(port) === undefined).toBe(ok);
  });
});
