// The one way to build shell text that runs on a host. Every interpolated value is quoted, so
// device names, paths and labels can never turn into shell syntax; a Secret refuses to be
// interpolated at all, because anything in the command text ends up in the remote argv (`ps`).
// Secrets travel on stdin instead: exec(sh`cryptsetup open --key-file=- ${dev} ${name}`, { stdin }).

// The brand that tells a command built here from a look-alike `{ text }`. It is looked up on each
// use rather than kept in a module constant: Pulumi's closure serializer cannot capture a Symbol
// value, and Symbol.for returns the same symbol to every copy of this module a provider may hold.
declare const SHELL_COMMAND: unique symbol;
const shellBrand = (): typeof SHELL_COMMAND => Symbol.for("hetzner-fde/ShellCommand") as typeof SHELL_COMMAND;

/** Shell text whose every interpolation was quoted by `sh`. Only `sh` and `joinShell` make one. */
export interface ShellCommand {
  readonly text: string;
  readonly [SHELL_COMMAND]: true;
}

/** What `sh` accepts in `${…}`: text and numbers become one quoted word, arrays several words. */
export type ShellValue = string | number | bigint | ShellCommand | readonly ShellValue[];

// Words made only of these characters mean the same quoted or not, so they stay readable in logs.
const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX single-quoting: `it's` → `'it'\''s'`; safe words stay bare; the empty string is `''`. */
export function quote(word: string): string {
  if (word.includes("\0")) {
    throw new Error("cannot quote a string containing a NUL byte: no argv word or shell text can hold one");
  }
  if (SAFE_WORD.test(word)) return word;
  return "'" + word.replace(/'/g, "'\\''") + "'";
}

export function isShellCommand(value: unknown): value is ShellCommand {
  return typeof value === "object" && value !== null && (value as ShellCommand)[shellBrand()] === true;
}

function shellCommand(text: string): ShellCommand {
  return { text, [shellBrand()]: true } as ShellCommand;
}

// Duck-typed rather than `instanceof Secret` for the same reason as the Symbol.for brand above.
function looksLikeSecret(value: unknown): boolean {
  return typeof value === "object" && value !== null && typeof (value as { reveal?: unknown }).reveal === "function";
}

function renderValue(value: unknown, position: number): string {
  if (looksLikeSecret(value)) {
    throw new Error(
      `sh: interpolation #${position} is a Secret. Secrets must not be part of a command (it would show in the ` +
        "remote process list); pass it as exec's `stdin` option and read it with e.g. `--key-file=-`.",
    );
  }
  if (isShellCommand(value)) return value.text;
  if (Array.isArray(value)) return value.map((item) => renderValue(item, position)).filter((w) => w !== "").join(" ");
  if (typeof value === "string") return quote(value);
  if (typeof value === "bigint") return String(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new Error(`sh: interpolation #${position} is the number ${value}; expected a finite number`);
    return String(value);
  }
  const found = value === null ? "null" : typeof value;
  throw new Error(
    `sh: interpolation #${position} is ${found}; expected a string, number, array or sh\`…\` command. ` +
      "Convert it explicitly so the command says what it means.",
  );
}

// In a JS template `\.` silently becomes `.`, which breaks sed/grep patterns without a trace.
// Only escapes that mean the same to JS and to the author of a shell line are let through.
// An array, not a Set: Pulumi's closure serializer copies a module-level Set as a plain object,
// and `.has` then fails inside the dynamic-provider host ("incompatible receiver").
const ALLOWED_TEMPLATE_ESCAPES = ["\\", "`", "$", "n", "t", "\n"];

function checkTemplateEscapes(raw: readonly string[]): void {
  raw.forEach((piece, index) => {
    for (let i = piece.indexOf("\\"); i !== -1; i = piece.indexOf("\\", i + 2)) {
      const next = piece[i + 1];
      if (!ALLOWED_TEMPLATE_ESCAPES.includes(next)) {
        throw new Error(
          `sh: template text part ${index} has "\\${next}", which JavaScript turns into "${next}" without the ` +
            `backslash. Write "\\\\${next}" to send a backslash to the shell.`,
        );
      }
    }
  });
}

/**
 * Tagged template for shell text: sh`mount ${device} ${dir}`. Strings and numbers are quoted as one
 * word each, arrays as space-separated words, a nested ShellCommand is inserted as is (it was quoted
 * when it was built). A Secret, undefined, null, a boolean or a plain object throws.
 */
export function sh(strings: TemplateStringsArray, ...values: readonly unknown[]): ShellCommand {
  checkTemplateEscapes(strings.raw);
  let text = strings[0];
  values.forEach((value, index) => {
    text += renderValue(value, index + 1) + strings[index + 1];
  });
  return shellCommand(text);
}

export type ShellOperator = "&&" | "||" | ";" | "|";

/**
 * Joins commands with an operator: joinShell([a, b], "&&") → `a && b`. A part that contains its own
 * list or pipe operators is wrapped in `{ …\n}` so the join cannot regroup it (`a; b && c` would
 * otherwise run `a` unconditionally). The check is textual, so a quoted `;` only adds braces.
 */
export function joinShell(commands: readonly ShellCommand[], operator: ShellOperator): ShellCommand {
  if (commands.length === 0) throw new Error("joinShell: expected at least one command, found none");
  for (const [index, command] of commands.entries()) {
    if (!isShellCommand(command)) throw new Error(`joinShell: commands[${index}] is not an sh\`…\` command`);
  }
  const parts = commands.map((command) => (commands.length > 1 && /[;&|\n]/.test(command.text) ? `{ ${command.text}\n}` : command.text));
  return shellCommand(parts.join(` ${operator} `));
}
