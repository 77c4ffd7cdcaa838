// Every host resource module has the same skeleton, in the same order (DESIGN.md "Layout"), so a
// reader who knows one knows all: types, validate, plan, probe, steps, the provider object, the
// Resource class. This test keeps new modules honest; add each new resource to RESOURCES.
import { readFileSync } from "fs";
import { join } from "path";
import type { ResourceModule } from "../../providers/kernel/resource";

const repo = join(__dirname, "..", "..", "..");

// LvmGroup and LuksVolume run on the kernel (providers/kernel) and are covered by its definition
// type instead; RescueBoot is split into the kernel's file set (providers/rescue-boot/); the
// contract suite replaces this test as the others move.
const RESOURCES = [
  { file: "install-image", className: "InstallImage" },
] as const;

/** The landmarks of the skeleton, in the order they must appear in the source. */
function landmarks(className: string): [string, RegExp][] {
  return [
    ["the Args type", new RegExp(`^export interface ${className}Args\\b`, "m")],
    ["validate", /^export function validate\(/m],
    ["plan", /^export function plan\(/m],
    ["probe", /^export async function probe\(/m],
    ["the step table", /^export const steps = /m],
    ["the module conformance line", /^export const module = \{[^}]*\} satisfies ResourceModule</m],
    ["the provider object", new RegExp(`^const provider = new ${className}Provider\\(\\)`, "m")],
    ["the Resource class", new RegExp(`^export class ${className} extends pulumi\\.dynamic\\.Resource\\b`, "m")],
  ];
}

describe.each(RESOURCES)("providers/$file/index.ts", ({ file, className }) => {
  const source = readFileSync(join(repo, "providers", file, "index.ts"), "utf8");

  it("reads top to bottom in the house order", () => {
    const positions = landmarks(className).map(([name, pattern]) => ({ name, at: source.search(pattern) }));
    expect(positions.filter((p) => p.at < 0).map((p) => p.name)).toEqual([]);
    const order = [...positions].sort((a, b) => a.at - b.at).map((p) => p.name);
    expect(order).toEqual(positions.map((p) => p.name));
  });

  it("exports a module whose pure parts are callable and whose steps are functions", async () => {
    const loaded = (await import(`../../providers/${file}`)) as { module: ResourceModule<unknown, unknown, unknown, { kind: string }, unknown> } & Record<string, unknown>;
    expect(typeof loaded.module.validate).toBe("function");
    expect(typeof loaded.module.plan).toBe("function");
    expect(typeof loaded.module.probe).toBe("function");
    const steps = Object.entries(loaded.module.steps);
    expect(steps.length).toBeGreaterThan(0);
    for (const [, step] of steps) expect(typeof step).toBe("function");
    expect(typeof loaded[className]).toBe("function");
  });

  it("builds no shell by string concatenation: every remote command goes through sh``", () => {
    // exec(...) and probe(...) take a ShellCommand; a template literal or "+" there would bypass quoting.
    expect(source).not.toMatch(/\.exec\(\s*`/);
    expect(source).not.toMatch(/\.exec\(\s*["'][^"']*["']\s*\+/);
  });
});
