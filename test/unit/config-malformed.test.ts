// Every malformed config names its path and says what was wrong. One row per distinct mistake;
// the table lives in config-fixtures.ts so the secrecy tests can replay it.
import { validateStackConfig, ValidationError } from "../../infra/config";
import { MALFORMED, Raw, validConfig } from "./config-fixtures";

function errorsOf(mutate: (c: Raw) => void): ValidationError[] {
  const config = validConfig();
  mutate(config);
  const result = validateStackConfig(config);
  if (result.ok) throw new Error("expected the config to be rejected, but it validated");
  return result.errors;
}

describe("validateStackConfig rejects malformed configs, naming path and problem", () => {
  it("accepts the base config the cases start from", () => {
    const result = validateStackConfig(validConfig());
    expect(result.ok ? [] : result.errors).toEqual([]);
  });

  it("has at least 40 distinct cases", () => {
    expect(new Set(MALFORMED.map(([title]) => title)).size).toBe(MALFORMED.length);
    expect(new Set(MALFORMED.map(([, , path, message]) => `${path} ${message}`)).size).toBe(MALFORMED.length);
    expect(MALFORMED.length).toBeGreaterThanOrEqual(40);
  });

  it.each(MALFORMED)("%s", (_title, mutate, path, message) => {
    const errors = errorsOf(mutate);
    const atPath = errors.filter((e) => e.path === path);
    expect({ path, messages: atPath.map((e) => e.message) }).toEqual({ path, messages: expect.arrayContaining([expect.stringMatching(message)]) });
  });
});
