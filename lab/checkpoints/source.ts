// The source files whose content a prepared state depends on, hashed for its cache key.
// Whole trees, not a hand-kept list: the resources are being split into many files, and a file
// left off a list would let a checkpoint from old code pass for new.

import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { SourceFile, sourceDigest } from "./plan";

/** What produces a prepared host: the resources, the lab (emulator, supervisor, installimage, images), the test support that drives them, and the locked dependencies. */
export const PREPARED_STATE_SOURCES = ["providers", "lab", "test/support", "test/harness", "package-lock.json", "tsconfig.json"];

const SKIP = new Set(["node_modules", "dist", ".git"]);

/**
 * Every regular file under `entries` (relative to `root`), with its content hash; a missing entry is
 * listed as missing. `excluded` (paths relative to `root`) leaves out trees a recipe provably does not
 * run — an exclusion, not an inclusion list, so a new tree is hashed until someone says otherwise.
 */
export function sourceFiles(root: string, entries: readonly string[] = PREPARED_STATE_SOURCES, excluded: readonly string[] = []): SourceFile[] {
  const files: SourceFile[] = [];
  const skipped = new Set(excluded.map((e) => path.normalize(e)));
  const walk = (rel: string) => {
    if (skipped.has(path.normalize(rel))) return;
    const full = path.join(root, rel);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(full);
    } catch {
      files.push({ path: rel, sha256: "missing" });
      return;
    }
    if (stat.isDirectory()) {
      for (const name of fs.readdirSync(full).sort()) if (!SKIP.has(name)) walk(path.join(rel, name));
    } else if (stat.isFile()) {
      files.push({ path: rel.split(path.sep).join("/"), sha256: createHash("sha256").update(fs.readFileSync(full)).digest("hex") });
    }
  };
  for (const entry of entries) walk(entry);
  return files;
}

export function sourceHash(root: string, entries: readonly string[] = PREPARED_STATE_SOURCES, excluded: readonly string[] = []): string {
  return sourceDigest(sourceFiles(root, entries, excluded));
}
