// lab/host-tools.txt is the one list of host tools: scripts/setup.sh installs exactly its
// packages, and every command the project runs on the host (TypeScript spawn sites, the image
// and mirror build scripts, the benches) is either listed there or comes from a package every
// Debian system has (Priority: required, what `debootstrap --variant=minbase` installs). A tool
// used but not listed (depmod, from kmod, was) fails here instead of on a fresh machine.
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { hostTools, isAvailable, parseHostTools } from "../../lab/prereqs";

const ROOT = path.resolve(__dirname, "../../..");

/** Scripts that run on the host. Guest scripts (*.guest.sh, lab/installimage, lab/rescue) run in the lab servers. */
const HOST_SCRIPTS = [
  "scripts/setup.sh",
  "lab/images/lib.sh",
  "lab/images/build-os-image.sh",
  "lab/images/build-rescue.sh",
  "lab/images/bench-rescue-boot.sh",
  "lab/mirror/build-mirror.sh",
  "lab/mirror/check-offline-install.sh",
];
const TS_DIRS = ["lab", "test", "bench", "infra", "scripts"];

const SHELL_WORDS = new Set(
  (
    "if then else elif fi do done while until for in case esac function select time ! [[ ]] { } " +
    "[ test echo printf read cd pwd set shift source . local export readonly declare typeset unset trap exit return " +
    "break continue eval exec command type hash wait kill true false mapfile readarray let getopts umask ulimit builtin : alias"
  ).split(" "),
);
/** Commands that run another command: the next word is what runs. */
const WRAPPERS = new Set(["xargs", "exec", "command", "env", "nice", "timeout", "nohup", "sudo"]);

/** Removes comments, single-quoted text, heredoc bodies and arithmetic; keeps `$(…)` inside double quotes. */
function codeOf(script: string): string {
  const lines = script.replace(/\\\n/g, " ").split("\n");
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    kept.push(stripLine(line));
    const heredoc = /<<-?\s*['"]?(\w+)['"]?/.exec(line);
    if (heredoc) while (i + 1 < lines.length && lines[i + 1].trim() !== heredoc[1]) i++;
  }
  return kept.join("\n").replace(/\$?\(\([^)]*\)\)/g, " ");
}

function stripLine(line: string): string {
  let out = "";
  // Contexts: code (the line itself, or a `$(…)` with its open parentheses) or a double-quoted string.
  const stack: ({ kind: "code"; parens: number } | { kind: "dq" })[] = [{ kind: "code", parens: 0 }];
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    const top = stack[stack.length - 1];
    if (c === "\\") {
      i++;
      continue;
    }
    if (top.kind === "dq") {
      if (c === '"') {
        stack.pop();
        out += " Q ";
      } else if (c === "$" && line[i + 1] === "(") {
        stack.push({ kind: "code", parens: 0 });
        out += "; ";
        i++;
      }
      continue;
    }
    if (c === "#" && (i === 0 || /\s/.test(line[i - 1]))) break;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      i = end < 0 ? line.length : end;
      out += " Q ";
    } else if (c === '"') {
      stack.push({ kind: "dq" });
    } else if (c === "(") {
      top.parens++;
      out += c;
    } else if (c === ")" && top.parens === 0 && stack.length > 1) {
      stack.pop();
      out += " ;";
    } else {
      if (c === ")") top.parens--;
      out += c;
    }
  }
  return out;
}

/** The words in command position of a shell script (first word of each simple command). */
export function shellCommands(script: string, sourced = ""): string[] {
  const functions = new Set([...(script + "\n" + sourced).matchAll(/^\s*([A-Za-z_][\w-]*)\s*\(\)\s*\{/gm)].map((m) => m[1]));
  const found = new Set<string>();
  for (const segment of codeOf(script).split(/[;&|(){}\n`]|\bthen\b|\bdo\b|\belse\b/)) {
    const words = segment.trim().split(/\s+/).filter((w) => w !== "");
    let i = 0;
    while (i < words.length && (/^[A-Za-z_]\w*(\[[^\]]*\])?\+?=/.test(words[i]) || ["if", "elif", "while", "until", "!", "time"].includes(words[i]))) i++;
    if (["for", "case", "in", "select", "function", "esac", "fi", "done"].includes(words[i])) continue;
    while (i < words.length && WRAPPERS.has(words[i])) {
      i++;
      while (i < words.length && words[i].startsWith("-")) i++;
    }
    const word = words[i];
    if (word === undefined || !/^[a-z][\w.+-]*$/.test(word) || SHELL_WORDS.has(word) || functions.has(word)) continue;
    found.add(word);
  }
  return [...found].sort();
}

function tsFiles(dir: string): string[] {
  const full = path.join(ROOT, dir);
  if (!fs.existsSync(full)) return [];
  return fs.readdirSync(full, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts")).map((f) => path.join(full, f));
}

/** First arguments of spawn/execFile/run calls that are string literals. */
export function tsCommands(source: string): string[] {
  const found = new Set<string>();
  for (const m of source.matchAll(/(?<![.\w])(?:spawn|spawnSync|execFile|execFileSync|execFileAsync|run)\(\s*["'`]([^"'`$]+)["'`]/g)) found.add(m[1]);
  return [...found];
}

function resolveOnHost(command: string): string | undefined {
  if (path.isAbsolute(command)) return isAvailable(command) ? command : undefined;
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"]) {
    if (dir === "") continue;
    const candidate = path.join(dir, command);
    if (isAvailable(candidate)) return candidate;
  }
  return undefined;
}

/** dpkg's owner of a file, trying the path as given, its real path and both sides of merged /usr. */
function owningPackage(file: string): string | undefined {
  const real = fs.realpathSync(file);
  const candidates = new Set([file, real, ...[file, real].map((p) => (p.startsWith("/usr/") ? p.slice(4) : `/usr${p}`))]);
  for (const candidate of candidates) {
    const result = spawnSync("dpkg", ["-S", candidate], { encoding: "utf8" });
    const owner = result.stdout.split("\n").find((line) => line !== "" && !line.startsWith("diversion by "));
    if (result.status === 0 && owner) return owner.split(":")[0].split(",")[0].trim();
  }
  return undefined;
}

function priorityOf(pkg: string): string {
  // dpkg -S also prints diversions ("diversion by dash from: /bin/sh"); owningPackage skips those.
  return execFileSync("dpkg-query", ["-W", "-f", "${Priority}", pkg], { encoding: "utf8" }).trim();
}

const listed = new Map(hostTools().map((t) => [t.file, t]));

describe("lab/host-tools.txt", () => {
  it("parses, and a malformed line is refused with its number", () => {
    expect(hostTools().length).toBeGreaterThan(10);
    expect(() => parseHostTools("depmod kmod images why\ncpio cpio\n")).toThrow(/line 2: expected "tool package group why"/);
  });

  it("is what scripts/setup.sh installs: exactly the listed Debian packages", () => {
    const printed = execFileSync("bash", [path.join(ROOT, "scripts/setup.sh"), "--print-packages"], { encoding: "utf8" }).trim().split("\n");
    const expected = [...new Set(hostTools().map((t) => t.debianPackage).filter((p) => p !== "-"))].sort();
    expect(printed).toEqual(expected);
  });

  it("finds the commands in shell text: command position only, not arguments, quotes, comments or heredocs", () => {
    const script = [
      "f() { depmod -b \"$1\"; }  # mdadm in a comment",
      "X=1 LC_ALL=C sort -u <(grep -v x file) | xargs -r rm -f",
      "echo \"$(basename \"$(ls -d /x)\") (full log: y)\"",
      "cat <<'EOF'",
      "mdadm --create",
      "EOF",
      "if [ -n \"$a\" ]; then tar -xzf a; fi",
      "for ((i = 0; i < 3; i++)); do in_chroot \"$r\" update-initramfs; done",
      "printf '%s; cryptsetup\\n' x",
    ].join("\n");
    expect(shellCommands(script)).toEqual(["basename", "cat", "depmod", "grep", "in_chroot", "ls", "rm", "sort", "tar"]);
    expect(shellCommands(script, "in_chroot() {\n  chroot \"$@\"\n}")).not.toContain("in_chroot");
  });

  it("lists every host command that is not part of every Debian system", () => {
    const used = new Map<string, string>();
    const lib = fs.readFileSync(path.join(ROOT, "lab/images/lib.sh"), "utf8"); // sourced by the build scripts
    for (const rel of HOST_SCRIPTS) for (const command of shellCommands(fs.readFileSync(path.join(ROOT, rel), "utf8"), lib)) used.set(command, rel);
    for (const file of TS_DIRS.flatMap(tsFiles)) {
      for (const command of tsCommands(fs.readFileSync(file, "utf8"))) used.set(command, path.relative(ROOT, file));
    }
    // Spawned through a variable: the lab's QEMU and sshd.
    used.set("qemu-system-x86_64", "lab/supervisor/supervisor.ts");
    used.set("sshd", "test/support/sshd.ts");
    expect(used.has("depmod")).toBe(true);

    const problems: string[] = [];
    for (const [command, where] of used) {
      if (path.isAbsolute(command) && command.startsWith(ROOT)) continue; // the project's own scripts
      if (listed.has(command)) continue;
      const file = resolveOnHost(command);
      if (!file) {
        problems.push(`${command} (run by ${where}) is not in lab/host-tools.txt and not on this machine`);
        continue;
      }
      const pkg = owningPackage(file);
      const priority = pkg ? priorityOf(pkg) : "unknown";
      if (priority !== "required") problems.push(`${command} (run by ${where}) comes from package ${pkg ?? "?"} (Priority ${priority}): add it to lab/host-tools.txt`);
    }
    expect(problems).toEqual([]);
  });

  it("names the package that provides each tool on this machine (dpkg -S)", () => {
    const wrong: string[] = [];
    for (const tool of hostTools()) {
      if (tool.debianPackage === "-") continue;
      const file = path.isAbsolute(tool.file) ? tool.file : resolveOnHost(tool.file);
      if (!file || !fs.existsSync(file)) {
        wrong.push(`${tool.file}: not on this machine (run scripts/setup.sh)`);
        continue;
      }
      const pkg = owningPackage(file);
      if (pkg !== tool.debianPackage) wrong.push(`${tool.file}: listed as ${tool.debianPackage}, dpkg -S says ${pkg ?? "no package"}`);
    }
    expect(wrong).toEqual([]);
  });
});
