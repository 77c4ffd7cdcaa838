// Unit tests for the shared resource plumbing (providers/kernel/resource.ts). The same code running inside
// the real host is covered by test/harness/harness.test.ts.

import {
  PartialCreateError,
  StepContext,
  StepError,
  checkResult,
  isUnknown,
  jsonSafe,
  keepErrorMessage,
  partialCreateError,
  providerVersionChanged,
  runPlan,
  runStep,
  UNKNOWN,
} from "../../providers/kernel/resource";
import { Secret } from "../../providers/plumbing/secret";

const PASSPHRASE = "correct horse battery staple";

function collectingLog(): { info: string[]; warn: string[]; log: StepContext["log"] } {
  const info: string[] = [];
  const warn: string[] = [];
  return { info, warn, log: { info: (m) => info.push(m), warn: (m) => warn.push(m) } };
}

function context(log: StepContext["log"]): StepContext {
  return { resource: "LuksVolume", host: "203.0.113.7", secrets: [new Secret(PASSPHRASE)], log };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("jsonSafe", () => {
  it("drops undefined properties at every depth and keeps everything else", () => {
    const input = { a: 1, b: undefined, c: { d: undefined, e: [1, "x", null, { f: undefined, g: false }] }, h: null };
    expect(jsonSafe(input)).toEqual({ a: 1, c: { e: [1, "x", null, { g: false }] }, h: null });
    expect(Object.keys(jsonSafe(input).c)).toEqual(["e"]);
  });

  it("accepts null-prototype objects", () => {
    const bare = Object.assign(Object.create(null) as object, { k: "v" });
    expect(jsonSafe(bare)).toEqual({ k: "v" });
  });

  it.each([
    ["a Buffer", { disk: { header: Buffer.from("LUKS") } }, "outs.disk.header is a Buffer"],
    ["a bigint", { size: 10n }, "outs.size is a bigint"],
    ["a Date", { at: new Date(0) }, "outs.at is a Date"],
    ["undefined in an array", { devices: ["/dev/sda", undefined] }, "outs.devices[1] is undefined"],
    ["NaN", { ratio: NaN }, "outs.ratio is the number NaN"],
    ["a class instance", { key: new Secret("k") }, "outs.key is an instance of Secret"],
    ["a function", { f: () => 1 }, "outs.f is a function"],
  ])("rejects %s, naming the path", (_what, value, message) => {
    expect(() => jsonSafe(value, "outs")).toThrow(message);
    expect(() => jsonSafe(value, "outs")).toThrow(/gRPC Struct conversion; .+/);
  });
});

describe("runStep", () => {
  it("logs the step with resource, host and position, then its duration", async () => {
    const sink = collectingLog();
    const result = await runStep({ ...context(sink.log), position: { index: 2, total: 4 } }, "luksOpen", async () => {
      await sleep(20);
      return "opened";
    });
    expect(result).toBe("opened");
    expect(sink.info[0]).toBe("[LuksVolume 203.0.113.7] step 2/4 luksOpen");
    expect(sink.info[1]).toMatch(/^\[LuksVolume 203\.0\.113\.7\] step 2\/4 luksOpen done in \d+ms$/);
    expect(Number(/in (\d+)ms/.exec(sink.info[1])?.[1])).toBeGreaterThanOrEqual(15);
    expect(sink.warn).toEqual([]);
  });

  it("attaches resource, host, step and elapsed time to a failure and redacts the secret", async () => {
    const sink = collectingLog();
    const cause = new Error(`cryptsetup: bad key '${PASSPHRASE}'`);
    const err = await runStep(context(sink.log), "luksFormat", async () => {
      await sleep(10);
      throw cause;
    }).catch((e: unknown) => e);

    expect(err).toBeInstanceOf(StepError);
    const stepError = err as StepError;
    expect(stepError).toMatchObject({ resource: "LuksVolume", host: "203.0.113.7", step: "luksFormat" });
    expect(stepError.elapsedMs).toBeGreaterThanOrEqual(5);
    expect(stepError.message).toMatch(/^LuksVolume step luksFormat on 203\.0\.113\.7 failed after \d+ms: cryptsetup: bad key '\[secret\]'$/);
    expect(stepError.cause).toBe(cause);
    expect(cause.message).not.toContain(PASSPHRASE);
    expect(cause.stack).not.toContain(PASSPHRASE);
    expect(sink.warn).toEqual([stepError.message]);
    expect([...sink.info, ...sink.warn].join("\n")).not.toContain(PASSPHRASE);
  });

  it("redacts secrets from the logged step name too", async () => {
    const sink = collectingLog();
    await runStep(context(sink.log), `echo ${PASSPHRASE}`, async () => undefined);
    expect(sink.info[0]).toBe("[LuksVolume 203.0.113.7] step echo [secret]");
  });

  it("does not wrap an error already attributed by an inner step", async () => {
    const sink = collectingLog();
    const err = await runStep(context(sink.log), "outer", () =>
      runStep({ ...context(sink.log), host: "inner-host" }, "inner", async () => {
        throw new Error("boom");
      }),
    ).catch((e: unknown) => e);
    expect((err as StepError).step).toBe("inner");
    expect((err as StepError).host).toBe("inner-host");
  });

  it("reports non-Error throws by their string form", async () => {
    const sink = collectingLog();
    const err = await runStep(context(sink.log), "probe", () => Promise.reject(`exit 5 ${PASSPHRASE}`)).catch((e: unknown) => e);
    expect((err as StepError).message).toMatch(/failed after \d+ms: exit 5 \[secret\]$/);
  });
});

describe("runPlan", () => {
  type Step = { kind: "format"; device: string } | { kind: "open"; name: string };

  it("runs each step with its own variant, numbered, and stops at the first failure", async () => {
    const sink = collectingLog();
    const ran: string[] = [];
    const steps = {
      format: async (_ctx: StepContext, s: Extract<Step, { kind: "format" }>) => {
        ran.push(`format ${s.device}`);
      },
      open: async (_ctx: StepContext, s: Extract<Step, { kind: "open" }>) => {
        ran.push(`open ${s.name}`);
        if (s.name === "bad") throw new Error("device busy");
      },
    };
    const plan: Step[] = [
      { kind: "format", device: "/dev/md1" },
      { kind: "open", name: "bad" },
      { kind: "open", name: "never" },
    ];
    await expect(runPlan(context(sink.log), plan, steps)).rejects.toThrow(/step open on 203\.0\.113\.7 failed .*device busy/);
    expect(ran).toEqual(["format /dev/md1", "open bad"]);
    expect(sink.info.filter((l) => !l.includes("done in"))).toEqual([
      "[LuksVolume 203.0.113.7] step 1/3 format",
      "[LuksVolume 203.0.113.7] step 2/3 open",
    ]);
  });
});

describe("check helpers", () => {
  it("omits failures when there are none, and keeps them otherwise", () => {
    expect(checkResult({ a: 1 }, [])).toEqual({ inputs: { a: 1 } });
    expect(checkResult({ a: 1 }, [{ property: "a", reason: "must be 2" }])).toEqual({ inputs: { a: 1 }, failures: [{ property: "a", reason: "must be 2" }] });
  });

  it("recognises the preview sentinel only", () => {
    expect(isUnknown(UNKNOWN)).toBe(true);
    expect(isUnknown("04da6b54")).toBe(false);
    expect(isUnknown(undefined)).toBe(false);
  });

  it("treats a different provider version as a change", () => {
    expect(providerVersionChanged({ providerVersion: "1" }, { providerVersion: "1" })).toBe(false);
    expect(providerVersionChanged({ providerVersion: "1" }, { providerVersion: "2" })).toBe(true);
    expect(providerVersionChanged({}, { providerVersion: "1" })).toBe(true); // state from before the pattern
  });
});

describe("partialCreateError", () => {
  it("carries id, reasons and JSON-safe outputs plus the inputs' __provider", () => {
    const err = partialCreateError({
      id: "srv1:md1",
      outputs: { device: "/dev/md1", uuid: undefined },
      reasons: ["luksOpen failed after luksFormat"],
      inputs: { device: "/dev/md1", __provider: "exports.handler = …" },
    });
    expect(err).toBeInstanceOf(PartialCreateError);
    expect(err).toMatchObject({ id: "srv1:md1", reasons: ["luksOpen failed after luksFormat"] });
    expect(err.properties).toEqual({ device: "/dev/md1", __provider: "exports.handler = …" });
    expect(err.message).toBe("created srv1:md1 only partially: luksOpen failed after luksFormat");
  });
});

describe("keepErrorMessage", () => {
  it("restores message and stack when super() was rewritten as Error.call, as the closure serializer does", () => {
    // What serialized `class E extends Error { constructor(m) { super(m); ... } }` turns into.
    function Rewritten(this: Error, message: string): void {
      Error.call(this, message);
      this.name = "Rewritten";
      keepErrorMessage(this, message);
    }
    Object.setPrototypeOf(Rewritten.prototype, Error.prototype);
    const err = new (Rewritten as unknown as new (m: string) => Error)("disk /dev/sdb is not empty");
    expect(err.message).toBe("disk /dev/sdb is not empty");
    expect(err.stack).toContain("Rewritten: disk /dev/sdb is not empty");
  });
});
