// The one shape every pure rule reports in: a path relative to what the rule was given, and a
// sentence that says what was expected, what was found and, where it helps, what to do.
// Callers prefix the path; `formatPath` renders it the way users write it in YAML: `hosts[1].raid.level`.

export type PathSegment = string | number;

export interface RuleIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
}

export function issueAt(path: readonly PathSegment[], message: string): RuleIssue {
  return { path, message };
}

export function prefixIssues(prefix: readonly PathSegment[], issues: readonly RuleIssue[]): RuleIssue[] {
  return issues.map((issue) => ({ path: [...prefix, ...issue.path], message: issue.message }));
}

/** `["hosts", 1, "raid", "level"]` → `hosts[1].raid.level`; an empty path is the whole config. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? segment : `.${segment}`;
  }
  return out === "" ? "(config)" : out;
}

/** Quotes a user value for a message; long values are shortened so one typo does not flood the output. */
export function quote(value: unknown): string {
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
