// Properties of the size and extent arithmetic (rules/size.ts, storage/lvm.ts), over generated
// inputs: round-trips, monotonicity and bounds. The example tables in rules-size.test.ts and
// lvm-group.test.ts pin the spellings; these pin the laws that every value must obey.
import fc from "fast-check";
import { MIB, RAID_LEVELS, RaidLevel, arrayCapacityMiB, bytesToMiB, describeMiB, formatMiB, minDrivesFor, parseSize, raidDataDisks } from "../../providers/rules/size";
import { EXTENT_SIZE_BYTES, EXTENT_TOLERANCE, PV_OVERHEAD_BYTES, decideSize, estimateExtents, extentsForBytes, isShrink, parseLvSize, sameSizeRequest, targetExtents } from "../../providers/storage/lvm";

const TIB_MIB = 1024 * 1024;
/** Up to 64 TiB in MiB: larger than any disk the resources meet, small enough for exact doubles. */
const anyMib = fc.integer({ min: 1, max: 64 * TIB_MIB });
/** The unit boundaries, where off-by-one mistakes live and random draws rarely land. */
const boundaryMib = fc.constantFrom(1, 1023, 1024, 1025, 1536, TIB_MIB - 1024, TIB_MIB - 1, TIB_MIB, TIB_MIB + 1, TIB_MIB + 1024);
const mib = fc.oneof(anyMib, boundaryMib);
const unit = fc.constantFrom("M", "G", "T");
const level = fc.constantFrom<RaidLevel>(...RAID_LEVELS);
/** Disk sizes in bytes, 1 MiB .. 64 TiB, not MiB-aligned (real disks rarely are). */
const diskBytes = fc.integer({ min: MIB, max: 64 * TIB_MIB * MIB });
const percent = fc.integer({ min: 1, max: 100 });

describe("rules/size", () => {
  it("formatMiB and parseSize round-trip every size", () => {
    fc.assert(fc.property(mib, (n) => expect(parseSize(formatMiB(n))).toEqual({ ok: true, size: { kind: "fixed", mib: n } })));
  });

  it("formatMiB picks the largest unit that is exact", () => {
    fc.assert(
      fc.property(mib, (n) => {
        const text = formatMiB(n);
        const [, digits, u] = /^(\d+)([MGT])$/.exec(text)!;
        // The number is not a whole multiple of 1024 unless it already is in T.
        if (u !== "T") expect(Number(digits) % 1024 !== 0 || Number(digits) < 1024).toBe(true);
        if (u === "T") expect(n % TIB_MIB).toBe(0);
        if (u === "G") expect(n % 1024).toBe(0);
      }),
    );
  });

  it("parseSize reads <n><unit> as n times the unit, and formatMiB never spells it longer", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65536 }), unit, (n, u) => {
        const parsed = parseSize(`${n}${u}`);
        const factor = { M: 1, G: 1024, T: TIB_MIB }[u];
        expect(parsed).toEqual({ ok: true, size: { kind: "fixed", mib: n * factor } });
        expect(formatMiB(n * factor).length).toBeLessThanOrEqual(`${n}${u}`.length);
      }),
    );
  });

  it("parseSize refuses a bare number, and its suggested spelling parses to the MiB it meant", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000 }), (n) => {
        const result = parseSize(String(n));
        expect(result.ok).toBe(false);
        const suggestion = /e\.g\. "([^"]+)"/.exec((result as { reason: string }).reason)![1];
        expect(parseSize(suggestion)).toEqual({ ok: true, size: { kind: "fixed", mib: n } });
      }),
    );
  });

  it("parseSize refuses a lower-case or IEC unit, and its suggested spelling parses", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 65536 }), fc.constantFrom("m", "g", "t", "MiB", "GiB", "TiB", "gb", "Tb"), (n, u) => {
        const result = parseSize(`${n}${u}`);
        expect(result.ok).toBe(false);
        const suggestion = /write it as "([^"]+)"/.exec((result as { reason: string }).reason)![1];
        expect(parseSize(suggestion)).toMatchObject({ ok: true });
      }),
    );
  });

  it("describeMiB names the largest unit not above the size, rounded to within 0.05 of it", () => {
    fc.assert(
      fc.property(mib, (n) => {
        const [, figure, u] = /^(\d+(?:\.\d)?) (MiB|GiB|TiB)$/.exec(describeMiB(n))!;
        const factor = { MiB: 1, GiB: 1024, TiB: TIB_MIB }[u]!;
        expect(n).toBeGreaterThanOrEqual(factor);
        if (u !== "TiB") expect(n).toBeLessThan(factor * 1024);
        expect(Math.abs(Number(figure) * factor - n)).toBeLessThanOrEqual(0.05 * factor + 1e-9);
      }),
    );
  });

  it("describeMiB is monotonic: a larger size never reads smaller", () => {
    const value = (text: string): number => {
      const [, figure, u] = /^(\d+(?:\.\d)?) (MiB|GiB|TiB)$/.exec(text)!;
      return Number(figure) * { MiB: 1, GiB: 1024, TiB: TIB_MIB }[u]!;
    };
    fc.assert(fc.property(mib, mib, (a, b) => expect(value(describeMiB(Math.min(a, b)))).toBeLessThanOrEqual(value(describeMiB(Math.max(a, b))))));
  });

  it("bytesToMiB rounds down to whole MiB and is monotonic", () => {
    fc.assert(
      fc.property(diskBytes, diskBytes, (a, b) => {
        const m = bytesToMiB(a);
        expect(m * MIB).toBeLessThanOrEqual(a);
        expect((m + 1) * MIB).toBeGreaterThan(a);
        if (a <= b) expect(m).toBeLessThanOrEqual(bytesToMiB(b));
      }),
    );
  });

  const array = level.chain((l) => fc.tuple(fc.constant(l), fc.array(diskBytes, { minLength: minDrivesFor(l), maxLength: 8 })));

  it("arrayCapacityMiB is the smallest member times the data disks, never more than the members hold", () => {
    fc.assert(
      fc.property(array, ([l, members]) => {
        const capacity = arrayCapacityMiB(l, members)!;
        const smallest = bytesToMiB(Math.min(...members));
        expect(capacity).toBe(smallest * raidDataDisks(l, members.length));
        expect(capacity).toBeGreaterThanOrEqual(smallest); // every level holds at least one member's worth
        expect(capacity).toBeLessThanOrEqual(members.reduce((sum, b) => sum + bytesToMiB(b), 0));
        // Redundancy costs what the level says: 1 keeps one copy, 5 one member, 6 two, 10 half.
        const redundant = { 0: 0, 1: members.length - 1, 5: 1, 6: 2, 10: Math.ceil(members.length / 2) }[l];
        expect(capacity).toBe(smallest * (members.length - redundant));
      }),
    );
  });

  it("arrayCapacityMiB ignores member order and never shrinks when a member grows or one is added", () => {
    fc.assert(
      fc.property(array, fc.nat(), fc.integer({ min: 0, max: 1024 * MIB }), ([l, members], pick, extra) => {
        const capacity = arrayCapacityMiB(l, members)!;
        expect(arrayCapacityMiB(l, [...members].reverse())).toBe(capacity);
        const grown = members.map((b, i) => (i === pick % members.length ? b + extra : b));
        expect(arrayCapacityMiB(l, grown)!).toBeGreaterThanOrEqual(capacity);
        expect(arrayCapacityMiB(l, [...members, Math.min(...members) + extra])!).toBeGreaterThanOrEqual(capacity);
      }),
    );
  });

  it("arrayCapacityMiB knows nothing when a member is unknown or too few are given, and a single disk is itself", () => {
    fc.assert(
      fc.property(array, fc.nat(), ([l, members], pick) => {
        const withUnknown: (number | undefined)[] = [...members];
        withUnknown[pick % members.length] = undefined;
        expect(arrayCapacityMiB(l, withUnknown)).toBeNull();
        expect(arrayCapacityMiB(l, members.slice(0, minDrivesFor(l) - 1))).toBeNull();
        expect(arrayCapacityMiB(null, [members[0]])).toBe(bytesToMiB(members[0]));
      }),
    );
  });
});

describe("storage/lvm extents", () => {
  const extentSize = fc.constantFrom(EXTENT_SIZE_BYTES, 1 * MIB, 32 * MIB);
  const bytes = fc.integer({ min: 1, max: 64 * TIB_MIB * MIB });

  it("extentsForBytes is the fewest whole extents that hold the bytes, and is monotonic", () => {
    fc.assert(
      fc.property(bytes, bytes, extentSize, (a, b, e) => {
        const n = extentsForBytes(a, e);
        expect(n * e).toBeGreaterThanOrEqual(a);
        expect((n - 1) * e).toBeLessThan(a);
        if (a <= b) expect(n).toBeLessThanOrEqual(extentsForBytes(b, e));
      }),
    );
  });

  it("a fixed LV size round-trips through parseLvSize into extents that hold it", () => {
    fc.assert(
      fc.property(mib, (n) => {
        const parsed = parseLvSize(formatMiB(n));
        expect(parsed).toEqual({ ok: true, size: { kind: "fixed", bytes: n * MIB } });
        const geometry = { extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: 1 };
        if (!parsed.ok) throw new Error(parsed.reason);
        const extents = targetExtents(parsed.size, geometry, 0, 0);
        expect(extents * EXTENT_SIZE_BYTES).toBeGreaterThanOrEqual(n * MIB);
        expect(extents * EXTENT_SIZE_BYTES - n * MIB).toBeLessThan(EXTENT_SIZE_BYTES);
      }),
    );
  });

  it("N%VG and N%FREE stay within the space they are taken of, and grow with N", () => {
    fc.assert(
      fc.property(percent, percent, fc.integer({ min: 1, max: 16_000_000 }), fc.nat(), fc.nat(), (p, q, count, freeSeed, ownSeed) => {
        const free = freeSeed % (count + 1);
        const own = ownSeed % (count - free + 1);
        const geometry = { extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: count };
        const [lo, hi] = [Math.min(p, q), Math.max(p, q)];
        for (const kind of ["percentVg", "percentFree"] as const) {
          const space = kind === "percentVg" ? count : free + own;
          const t = targetExtents({ kind, percent: hi }, geometry, free, own);
          expect(t).toBeGreaterThanOrEqual(0);
          expect(t).toBeLessThanOrEqual(space);
          expect(targetExtents({ kind, percent: lo }, geometry, free, own)).toBeLessThanOrEqual(t);
        }
        expect(targetExtents({ kind: "percentFree", percent: 100 }, geometry, free, own)).toBe(free + own);
      }),
    );
  });

  it("N%FREE converges: once the LV has its target, the same request yields the same target", () => {
    fc.assert(
      fc.property(percent, fc.integer({ min: 1, max: 16_000_000 }), fc.nat(), (p, available, ownSeed) => {
        const geometry = { extentSizeBytes: EXTENT_SIZE_BYTES, extentCount: available };
        const own = ownSeed % (available + 1);
        const size = { kind: "percentFree", percent: p } as const;
        const first = targetExtents(size, geometry, available - own, own);
        // Resized to `first`, the LV owns `first` and the rest of what it could have is free.
        const again = targetExtents(size, geometry, available - first, first);
        expect(again).toBe(first);
        expect(decideSize(first, again, size, false)).toBe("keep");
      }),
    );
  });

  it("decideSize never shrinks an unchanged %FREE request, and keeps within the tolerance", () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.nat({ max: 1_000_000 }), percent, (current, target, p) => {
        const free = { kind: "percentFree", percent: p } as const;
        expect(decideSize(current, target, free, false)).not.toBe("shrink");
        const fixed = { kind: "fixed", bytes: target * EXTENT_SIZE_BYTES } as const;
        const decision = decideSize(current, target, fixed, false);
        if (Math.abs(target - current) <= EXTENT_TOLERANCE) expect(decision).toBe("keep");
        else expect(decision).toBe(target > current ? "grow" : "shrink");
      }),
    );
  });

  it("estimateExtents is whole extents after the PV overhead: bounded, monotonic in bytes, falling with more PVs", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 64 * TIB_MIB * MIB }), fc.integer({ min: 1, max: 8 }), fc.nat({ max: 1024 * MIB }), (total, pvs, more) => {
        const n = estimateExtents(total, pvs);
        expect(n).toBeGreaterThanOrEqual(0);
        if (n > 0) expect(n * EXTENT_SIZE_BYTES + pvs * PV_OVERHEAD_BYTES).toBeLessThanOrEqual(total);
        expect((n + 1) * EXTENT_SIZE_BYTES + pvs * PV_OVERHEAD_BYTES).toBeGreaterThan(total);
        expect(estimateExtents(total + more, pvs)).toBeGreaterThanOrEqual(n);
        expect(estimateExtents(total, pvs + 1)).toBeLessThanOrEqual(n);
      }),
    );
  });

  it("isShrink agrees with the extents, is never true both ways, and a size does not shrink to itself", () => {
    const request = fc.oneof(
      mib.map((n) => formatMiB(n)),
      percent.map((p) => `${p}%VG`),
      percent.map((p) => `${p}%FREE`),
    );
    fc.assert(
      fc.property(request, request, (a, b) => {
        expect(isShrink(a, a)).toBe(false);
        expect(isShrink(a, b) && isShrink(b, a)).toBe(false);
        const pa = parseLvSize(a);
        const pb = parseLvSize(b);
        if (pa.ok && pb.ok && pa.size.kind === "fixed" && pb.size.kind === "fixed") {
          expect(isShrink(a, b)).toBe(extentsForBytes(pb.size.bytes, EXTENT_SIZE_BYTES) < extentsForBytes(pa.size.bytes, EXTENT_SIZE_BYTES));
        }
      }),
    );
  });

  it("sameSizeRequest: `all` is `100%FREE`, and every request is the same as its own re-spelling", () => {
    fc.assert(
      fc.property(mib, percent, (n, p) => {
        expect(sameSizeRequest("all", "100%FREE")).toBe(true);
        expect(sameSizeRequest(formatMiB(n), `${n}M`)).toBe(true);
        expect(sameSizeRequest(`${p}%VG`, `${p}%FREE`)).toBe(false);
        expect(sameSizeRequest(`${p}%FREE`, `${p}%FREE`)).toBe(true);
      }),
    );
  });
});
