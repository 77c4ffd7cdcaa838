import { createLogger, memorySink, pulumiSink } from "../../providers/plumbing/log";
import { Secret } from "../../providers/plumbing/secret";

describe("createLogger", () => {
  it("prefixes lines with the context and keeps the level", () => {
    const { sink, lines } = memorySink();
    const log = createLogger({ context: "LuksVolume 127.0.0.1:2201", sink });
    log.info("step 1/3 luksFormat");
    log.warn("slow");
    expect(lines).toEqual([
      { level: "info", line: "[LuksVolume 127.0.0.1:2201] step 1/3 luksFormat" },
      { level: "warn", line: "[LuksVolume 127.0.0.1:2201] slow" },
    ]);
  });

  it("redacts secrets given at creation and registered later, in children too", () => {
    const { sink, lines } = memorySink();
    const log = createLogger({ context: "X", secrets: [new Secret("first-pass")], sink });
    const child = log.child("10.0.0.2:22");
    child.registerSecrets(new Secret("second-pass"));
    log.error("saw first-pass and second-pass");
    child.debug("again first-pass/second-pass");
    expect(lines.map((l) => l.line)).toEqual(["[X] saw [secret] and [secret]", "[X 10.0.0.2:22] again [secret]/[secret]"]);
  });

  it("has no prefix without a context", () => {
    const { sink, lines } = memorySink();
    createLogger({ sink }).info("plain");
    expect(lines[0].line).toBe("plain");
  });
});

describe("pulumiSink", () => {
  it("falls back to the console when no engine is attached, without throwing", () => {
    const spy = jest.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      expect(() => pulumiSink("info", "[ctx] hello")).not.toThrow();
      expect(spy.mock.calls.flat().join("\n")).toContain("[ctx] hello");
    } finally {
      spy.mockRestore();
    }
  });
});
