// A probe is one read-only round trip: a script that prints a single JSON document describing what
// is on the host, parsed into typed facts. One round trip per resource keeps refresh cheap.
import { redact } from "../secret";
import { ShellCommand } from "../shell";
import { ProbeOutputError } from "./errors";
import { ExecOptions, SshSession } from "./session";

// Enough of a bad output to recognise it (a shell error, a banner, a half-written document).
const HEAD_CHARS = 300;

/**
 * Runs `script`, parses its stdout as JSON and hands it to `parse` (e.g. a zod schema's parse).
 * Throws ProbeOutputError when stdout is not JSON or `parse` rejects it; RemoteCommandError when the
 * script fails.
 */
export async function probe<T>(session: SshSession, script: ShellCommand, parse: (json: unknown) => T, options: ExecOptions = {}): Promise<T> {
  const result = await session.exec(script, options);
  const stdinSecret = typeof options.stdin === "object" ? [options.stdin] : [];
  const secrets = [session.target.privateKey, ...stdinSecret, ...(options.secrets ?? [])];
  const shown = redact(script.text, secrets);
  let json: unknown;
  try {
    json = JSON.parse(result.stdout);
  } catch (error) {
    const head = redact(result.stdout.slice(0, HEAD_CHARS), secrets);
    const more = result.stdout.length > HEAD_CHARS ? "…" : "";
    const why = error instanceof Error ? error.message : String(error);
    const what = result.stdout.trim() === "" ? "printed nothing" : `printed output that is not JSON (${why}); it began with: ${JSON.stringify(head + more)}`;
    throw new ProbeOutputError(session.address, shown, what);
  }
  try {
    return parse(json);
  } catch (error) {
    const why = redact(error instanceof Error ? error.message : String(error), secrets);
    throw new ProbeOutputError(session.address, shown, `printed JSON of an unexpected shape: ${why}`);
  }
}
