import { checkCipher, checkCronSchedule, checkPbkdf, parseImageName, SUPPORTED_IMAGES } from "../../providers/rules";

describe("checkCronSchedule", () => {
  it.each(["*/15 * * * *", "0 3 * * 1-5", "0 3 * * MON", "5,35 */2 * * *", "@hourly", "@daily"])("accepts %j", (expr) => {
    expect(checkCronSchedule(expr)).toBeUndefined();
  });

  it.each([
    ["*/15 * * *", /5-field.*found 4 field/],
    ["0 0 * * * *", /5-field.*found 6 field/],
    ["61 * * * *", /0-59/],
    ["0 25 * * *", /0-23/],
    ["*/0 * * * *", /valid cron expression/],
    ["@reboot", /one of @hourly/],
    ["every 15 minutes", /5-field.*found 3 field/],
  ])("refuses %j", (expr, reason) => {
    expect(checkCronSchedule(expr)).toMatch(reason);
  });
});

describe("parseImageName", () => {
  it("accepts every supported name and reads its release", () => {
    expect(SUPPORTED_IMAGES.map((name) => {
      const parsed = parseImageName(name);
      return parsed.ok ? `${parsed.image.distro} ${parsed.image.release} ${parsed.image.codename}` : parsed.reason;
    })).toEqual(["debian 11 bullseye", "debian 12 bookworm", "debian 13 trixie", "ubuntu 22.04 jammy", "ubuntu 24.04 noble"]);
  });

  it("accepts Debian's versioned names", () => {
    const parsed = parseImageName("Debian-1209-bookworm-amd64-base");
    expect(parsed.ok && parsed.image.release).toBe("12");
  });

  it.each([
    ["Debian-1109-bookworm-amd64-base", /expected one of/],
    ["Ubuntu-1804-bionic-64-minimal", /expected one of/],
    ["Ubuntu-2404-noble-arm64-base", /only amd64/],
    ["Debian-bookworm-latest-amd64-base.tar.gz", /drop the archive suffix/],
    ["debian-bookworm-latest-amd64-base", /expected one of/],
  ])("refuses %s", (name, reason) => {
    const parsed = parseImageName(name);
    expect(parsed.ok ? "accepted" : parsed.reason).toMatch(reason);
  });
});

describe("LUKS settings", () => {
  it.each([
    ["aes-xts-plain64", 512, []],
    ["aes-xts-plain64", 256, []],
    ["xchacha20,aes-adiantum-plain64", 256, []],
    ["aes-xts-plain64", 128, [["keySize"], /256 or 512 bits/]],
    ["xchacha20,aes-adiantum-plain64", 512, [["keySize"], /expected 256 bits/]],
    ["aes-cbc-essiv:sha256", 256, [["cipher"], /CBC\/ECB/]],
    ["aes", 256, [["cipher"], /bare cipher names/]],
    ["rot13", 256, [["cipher"], /found "rot13"$/]],
  ] as const)("%s with %d bits", (cipher, keySize, expected) => {
    const issues = checkCipher(cipher, keySize);
    if (expected.length === 0) expect(issues).toEqual([]);
    else expect(issues).toEqual([{ path: expected[0], message: expect.stringMatching(expected[1] as RegExp) }]);
  });

  it.each([
    [{ type: "argon2id", memoryKiB: 1048576, iterations: 4, parallelism: 4 }, []],
    [{ type: "argon2id", iterTimeMs: 2000 }, []],
    [{ type: "pbkdf2", iterations: 1000 }, []],
    [{ type: "argon2id", iterations: 3 }, ["iterations"]],
    [{ type: "argon2i", memoryKiB: 16 }, ["memoryKiB"]],
    [{ type: "argon2id", parallelism: 0 }, ["parallelism"]],
    [{ type: "pbkdf2", iterations: 999, memoryKiB: 1024, parallelism: 2 }, ["memoryKiB", "parallelism", "iterations"]],
    [{ type: "argon2id", iterations: 4, iterTimeMs: 2000 }, ["iterTimeMs"]],
  ] as const)("%j", (pbkdf, fields) => {
    expect(checkPbkdf(pbkdf).map((issue) => issue.path.join("."))).toEqual(fields);
  });
});
