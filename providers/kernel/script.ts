// A resource's shell script (probe.sh), read once at module load so the closure serializer captures
// its text by value (the dynamic-provider host has no source tree).

/**
 * The text of `providers/<folder>/<name>`. `npm run build` copies every providers .sh file next to
 * the compiled .js (`dir` is the caller's __dirname); the source-tree path is the fallback when
 * running from an unbuilt checkout.
 */
export function readResourceScript(dir: string, folder: string, name: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const fs = require("fs") as typeof import("fs");
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const path = require("path") as typeof import("path");
  const candidates = [path.join(dir, name), path.join(dir, "..", "..", "..", "providers", folder, name)];
  const found = candidates.find((file) => fs.existsSync(file));
  if (!found) throw new Error(`${folder}: ${name} not found at ${candidates.join(" or ")}; run npm run build`);
  return fs.readFileSync(found, "utf8");
}
