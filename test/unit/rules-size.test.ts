import { arrayCapacityMiB, formatMiB, minDrivesFor, parseSize, RAID_LEVELS, raidDataDisks } from "../../providers/rules";

describe("parseSize", () => {
  it.each([
    ["all", { kind: "all" }],
    ["512M", { kind: "fixed", mib: 512 }],
    ["1G", { kind: "fixed", mib: 1024 }],
    ["2T", { kind: "fixed", mib: 2 * 1024 * 1024 }],
    [" 64G ", { kind: "fixed", mib: 65536 }],
  ])("reads %j", (text, size) => {
    expect(parseSize(text)).toEqual({ ok: true, size });
  });

  it.each([
    ["512", /add the unit, e.g. "512M"/],
    ["1g", /write it as "1G"/],
    ["16GiB", /write it as "16G"/],
    ["0M", /greater than zero/],
    ["1.5G", /expected a size like 512M/],
    ["", /expected a size like 512M/],
    ["-1G", /expected a size like 512M/],
    ["ALL", /expected a size like 512M/],
  ])("refuses %j", (text, reason) => {
    const result = parseSize(text);
    expect(result.ok ? "accepted" : result.reason).toMatch(reason);
  });

  it("formats back to the same MiB for every unit boundary", () => {
    for (const mib of [1, 200, 256, 1023, 1024, 1536, 2048, 1048575, 1048576, 3 * 1048576, 1048576 + 1024]) {
      const again = parseSize(formatMiB(mib));
      expect(again.ok && again.size.kind === "fixed" ? again.size.mib : NaN).toBe(mib);
    }
    expect([formatMiB(1024), formatMiB(1536), formatMiB(1048576)]).toEqual(["1G", "1536M", "1T"]);
  });
});

describe("RAID arithmetic", () => {
  it("needs the member counts installimage enforces", () => {
    expect(RAID_LEVELS.map((level) => [level, minDrivesFor(level)])).toEqual([[0, 2], [1, 2], [5, 3], [6, 4], [10, 4]]);
  });

  it.each([
    [0, 3, 3],
    [1, 2, 1],
    [1, 3, 1],
    [5, 4, 3],
    [6, 4, 2],
    [10, 4, 2],
    [10, 3, 1],
  ] as const)("RAID %d over %d disks holds %d disks of data", (level, members, data) => {
    expect(raidDataDisks(level, members)).toBe(data);
  });

  it("bounds every member by the smallest and needs every size", () => {
    const gib = 1024 ** 3;
    expect(arrayCapacityMiB(5, [100 * gib, 120 * gib, 100 * gib])).toBe(2 * 100 * 1024);
    expect(arrayCapacityMiB(null, [20 * gib])).toBe(20 * 1024);
    expect(arrayCapacityMiB(1, [20 * gib, undefined])).toBeNull();
    expect(arrayCapacityMiB(6, [gib, gib])).toBeNull();
    expect(arrayCapacityMiB(null, [])).toBeNull();
  });
});
