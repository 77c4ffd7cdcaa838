// Every setting fails in the project's own words: what was expected (with an example), what was
// found, and what to do. zod supplies the structure, never the sentence.
import { FIELD_HELP_KEYS, StackConfigSchema, validateStackConfig } from "../../infra/config";
import { Raw, validConfig } from "./config-fixtures";

type Def = { type: string; shape?: Record<string, unknown>; element?: unknown; valueType?: unknown; innerType?: unknown; in?: unknown };
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

function unwrap(schema: unknown): unknown {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (["optional", "default", "prefault", "nullable", "readonly"].includes(def.type) && def.innerType) current = def.innerType;
    else if (def.type === "pipe" && def.in) current = def.in;
    else return current;
  }
}

/** Every path the schema accepts, list entries and record values as "*". */
function settingPaths(schema: unknown, prefix: string[] = []): string[] {
  const def = defOf(unwrap(schema));
  const here = prefix.length > 0 ? [prefix.join(".")] : [];
  if (def.type === "object") return [...here, ...Object.entries(def.shape ?? {}).flatMap(([key, child]) => settingPaths(child, [...prefix, key]))];
  if (def.type === "array") return [...here, ...settingPaths(def.element, [...prefix, "*"])];
  if (def.type === "record") return [...here, ...settingPaths(def.valueType, [...prefix, "*"])];
  return here;
}

describe("config messages", () => {
  it("has the project's own help (what, example, what to do) for every setting", () => {
    const paths = settingPaths(StackConfigSchema);
    expect(paths).toEqual(expect.arrayContaining(["hosts.*.drives.*.path", "hosts.*.target.robot.serverNumber", "luksPassphrases.*"]));
    expect(paths.filter((p) => !FIELD_HELP_KEYS.includes(p))).toEqual([]);
  });

  // Each required setting removed in turn: the message says it is required, what it is, and what to do.
  const required: [string, (c: Raw) => void][] = [
    ["hosts[0].name", (c) => delete c.hosts[0].name],
    ["hosts[0].target", (c) => delete c.hosts[0].target],
    ["hosts[0].drives", (c) => delete c.hosts[0].drives],
    ["hosts[0].drives[0].path", (c) => delete c.hosts[0].drives[0].path],
    ["hosts[0].partitions[0].size", (c) => delete c.hosts[0].partitions[0].size],
    ["hosts[0].volumes[0].name", (c) => delete c.hosts[0].volumes[0].name],
    ["hosts[0].dropbear", (c) => delete c.hosts[0].dropbear],
    ["hosts[0].dropbear.authorizedKeys", (c) => delete c.hosts[0].dropbear.authorizedKeys],
    ["hosts[1].dropbear.network.ipv4.gateway", (c) => delete c.hosts[1].dropbear.network.ipv4.gateway],
    ["hosts[1].mirror.drive", (c) => delete c.hosts[1].mirror.drive],
  ];
  it.each(required)("%s missing: required, what it is with an example, found nothing, what to do", (path, mutate) => {
    const config = validConfig();
    mutate(config);
    const result = validateStackConfig(config);
    const messages = result.ok ? [] : result.errors.filter((e) => e.path === path).map((e) => e.message);
    expect(messages).toEqual([expect.stringMatching(/^is required: expected .+, found nothing; .+/)]);
    expect(messages[0]).not.toMatch(/expected (a string|an object|a list)(,|$)/);
  });

  it.each([
    ["an empty drive list", (c: Raw) => (c.hosts[0].drives = []), "hosts[0].drives", /^expected at least 1 drive, found an empty list; list every disk .*lsblk/],
    ["no authorized keys", (c: Raw) => (c.hosts[0].dropbear.authorizedKeys = []), "hosts[0].dropbear.authorizedKeys", /^expected at least 1 key, found an empty list; add the public key/],
    ["a server number of 0", (c: Raw) => (c.hosts[0].target.robot.serverNumber = 0), "hosts[0].target.robot.serverNumber", /^expected the server number shown in Robot \(a positive integer\), found 0; copy it from Robot/],
    ["a server number as text", (c: Raw) => (c.hosts[0].target.robot.serverNumber = "2345678"), "hosts[0].target.robot.serverNumber", /^expected the server number shown in Robot \(a positive integer\), found "2345678"/],
    ["a negative disk size", (c: Raw) => (c.hosts[0].drives[0].sizeBytes = -1), "hosts[0].drives[0].sizeBytes", /^expected the disk's size in bytes .* \(more than 0\), found -1; copy it from `lsblk -b/],
    ["a port as text", (c: Raw) => (c.hosts[0].dropbear.port = "2222"), "hosts[0].dropbear.port", /^expected a TCP port number 1\.\.65535, found "2222"; give dropbear's port/],
  ])("%s is said in the project's words", (_title, mutate, path, message) => {
    const config = validConfig();
    mutate(config);
    const result = validateStackConfig(config);
    expect(result.ok ? [] : result.errors.filter((e) => e.path === path).map((e) => e.message)).toEqual([expect.stringMatching(message)]);
  });
});
