import { execFileSync } from "child_process";
import { existsSync, mkdtempSync, rmSync } from "fs";
import { tmpdir } from "os";
import { join } from "path";
import { Secret } from "../../providers/plumbing/secret";
import { isShellCommand, joinShell, quote, sh } from "../../providers/plumbing/shell";

function runLocal(text: string): string {
  return execFileSync("/bin/sh", ["-c", text], { encoding: "utf8" });
}

const TRICKY = [
  "",
  " ",
  "two words",
  "it's",
  "'",
  "''",
  '"double"',
  "$(id)",
  "`id`",
  "${HOME}",
  "$HOME",
  "a\nb",
  "\n",
  "tab\there",
  "back\\slash",
  "*",
  "~",
  "-n",
  "--key-file=-",
  "; rm -rf / #",
  "x' ; echo pwned ; '",
  "ünïcödé 🔑 шифр",
  "!event",
  "a&b|c>d<e",
];

describe("quote", () => {
  it.each([
    ["/dev/md1", "/dev/md1"],
    ["vg0/root", "vg0/root"],
    ["key=value,x:y@z%1+2", "key=value,x:y@z%1+2"],
    ["", "''"],
    ["two words", "'two words'"],
    ["it's", "'it'\\''s'"],
    ["$(id)", "'$(id)'"],
  ])("quote(%j) is %s", (input, expected) => {
    expect(quote(input)).toBe(expected);
  });

  it("refuses a NUL byte, which no argv word can carry", () => {
    expect(() => quote("a\0b")).toThrow(/NUL byte/);
  });
});

describe("sh", () => {
  it.each(TRICKY.map((s) => [s]))("round-trips %j through /bin/sh unchanged", (value) => {
    expect(runLocal(sh`printf %s ${value}`.text)).toBe(value);
  });

  it("turns an array into one word per element, each quoted", () => {
    const out = runLocal(sh`printf '%s|' ${TRICKY}`.text);
    expect(out).toBe(TRICKY.map((s) => s + "|").join(""));
  });

  it("inserts nothing for an empty array", () => {
    expect(sh`ls ${[]} -d /`.text).toBe("ls  -d /");
  });

  it("never executes command substitution from a value", () => {
    const dir = mkdtempSync(join(tmpdir(), "sh-test-"));
    try {
      const marker = join(dir, "pwned");
      for (const attack of [`$(touch ${marker})`, `\`touch ${marker}\``, `'; touch ${marker}; '`, `\ntouch ${marker}\n`]) {
        runLocal(sh`printf %s ${attack} >/dev/null`.text);
      }
      expect(existsSync(marker)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("inserts a nested command verbatim, since it was quoted when built", () => {
    const inner = sh`printf %s ${"a b"}`;
    expect(sh`${inner} && echo ${"c d"}`.text).toBe("printf %s 'a b' && echo 'c d'");
    expect(runLocal(sh`${inner}; printf %s ${"|"}`.text)).toBe("a b|");
  });

  it("renders numbers and bigints as words", () => {
    expect(sh`head -c ${4096} ${10n}`.text).toBe("head -c 4096 10");
  });

  it("throws on a Secret, pointing at stdin", () => {
    const secret = new Secret("hunter2");
    expect(() => sh`cryptsetup open ${secret}`).toThrow(/interpolation #1 is a Secret.*stdin/);
  });

  it("throws on a Secret hidden inside an array", () => {
    expect(() => sh`echo ${["a", new Secret("x")]}`).toThrow(/Secret/);
  });

  it.each([
    [undefined, "undefined"],
    [null, "null"],
    [true, "boolean"],
    [{ text: "rm -rf /" }, "object"],
    [NaN, "NaN"],
  ])("throws on %p, naming what it found", (value, found) => {
    expect(() => sh`echo ${"ok"} ${value}`).toThrow(new RegExp(`interpolation #2 is .*${found}`));
  });

  it("does not accept a look-alike { text } object as a command", () => {
    expect(isShellCommand({ text: "id" })).toBe(false);
    expect(isShellCommand(sh`id`)).toBe(true);
  });

  it("refuses template escapes that JavaScript would silently drop", () => {
    expect(() => sh`sed 's/\.$//'`).toThrow(/"\\\."/);
    expect(sh`printf '%s\\n' ${"x"}`.text).toBe("printf '%s\\n' x");
    expect(runLocal(sh`v=1; printf %s "\${v}"`.text)).toBe("1");
  });
});

describe("joinShell", () => {
  it("joins with the operator", () => {
    expect(joinShell([sh`true`, sh`echo ${"a b"}`], "&&").text).toBe("true && echo 'a b'");
  });

  it("groups a part that has its own operators so the join cannot regroup it", () => {
    const joined = joinShell([sh`false; true`, sh`printf %s ran`], "&&");
    expect(runLocal(joined.text)).toBe("ran");
    const guarded = joinShell([sh`true; false`, sh`printf %s ran`], "&&");
    expect(runLocal(guarded.text + " || true")).toBe("");
  });

  it("rejects an empty list and non-commands", () => {
    expect(() => joinShell([], ";")).toThrow(/at least one/);
    expect(() => joinShell([{ text: "id" } as never], ";")).toThrow(/commands\[0\]/);
  });
});
