// /etc/os-release, the one file every supported release has that says which release it is
// (os-release(5)): shell-style KEY=value lines, values optionally quoted.

export interface OsRelease {
  /** `ID`: "debian", "ubuntu". */
  readonly id: string;
  /** `VERSION_ID`: "12", "24.04"; empty on Debian testing/sid, which has none. */
  readonly versionId: string;
  /** `VERSION_CODENAME`: "bookworm", "noble"; empty when absent. */
  readonly codename: string;
  /** `PRETTY_NAME`, for messages. */
  readonly prettyName: string;
}

/** Parses os-release text; unknown keys are ignored, missing ones are "". */
export function parseOsRelease(text: string): OsRelease {
  const fields: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^\s*([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!match) continue;
    fields[match[1]] = unquote(match[2].trim());
  }
  return {
    id: (fields.ID ?? "").toLowerCase(),
    versionId: fields.VERSION_ID ?? "",
    codename: fields.VERSION_CODENAME ?? "",
    prettyName: fields.PRETTY_NAME ?? fields.NAME ?? "",
  };
}

function unquote(value: string): string {
  const quoted = /^"(.*)"$/.exec(value) ?? /^'(.*)'$/.exec(value);
  if (!quoted) return value;
  // Inside double quotes os-release allows the shell escapes \" \\ \$ \`.
  return value.startsWith('"') ? quoted[1].replace(/\\(["\\$`])/g, "$1") : quoted[1];
}
