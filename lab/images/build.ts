// `node dist/lab/images/build.js [rescue]`: builds the lab images into the cache and prints
// the paths as JSON (what `ensureLabImages` returns). `rescue` builds only the rescue system.
import { ensureLabImages, ensureRescue } from ".";

async function main(): Promise<void> {
  const result = process.argv[2] === "rescue" ? await ensureRescue() : await ensureLabImages();
  process.stdout.write(JSON.stringify(result, null, 2) + "\n");
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
