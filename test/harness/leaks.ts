// Secret-leak checks for serialized provider text, recorded state and logs.

import { builtinModules } from "module";
import { Secret } from "../../providers/plumbing/secret";

/** Packages the serialized provider code may `require` besides Node built-ins. */
export const DEFAULT_ALLOWED_MODULES: readonly string[] = ["@pulumi/pulumi", "ssh2", "cpu-features", "zod", "cron-parser", "ipaddr.js"];

export interface SecretHit {
  /** Index of the secret in the list given (the secret itself is never echoed). */
  readonly secretIndex: number;
  readonly offset: number;
  /** Up to 20 characters before the hit, to locate it without printing it. */
  readonly before: string;
}

/** Every occurrence of every (non-empty) secret in `text`. */
export function findSecrets(text: string, secrets: readonly (Secret | string)[]): SecretHit[] {
  const hits: SecretHit[] = [];
  secrets.forEach((secret, secretIndex) => {
    const plain = typeof secret === "string" ? secret : secret.reveal();
    if (plain.length === 0) return;
    for (let offset = text.indexOf(plain); offset !== -1; offset = text.indexOf(plain, offset + 1)) {
      hits.push({ secretIndex, offset, before: text.slice(Math.max(0, offset - 20), offset) });
    }
  });
  return hits;
}

/** Throws, naming `label` and where, when any secret occurs in `text`. */
export function assertNoSecrets(label: string, text: string, secrets: readonly (Secret | string)[]): void {
  const hits = findSecrets(text, secrets);
  if (hits.length === 0) return;
  const where = hits.slice(0, 5).map((h) => `secret #${h.secretIndex} at offset ${h.offset} after ${JSON.stringify(h.before)}`);
  throw new Error(`${label} contains a secret ${hits.length} time(s): ${where.join("; ")}`);
}

/** The specifiers of every literal `require("…")` in serialized provider text, sorted, unique. */
export function requiredModules(text: string): string[] {
  const found = new Set<string>();
  for (const match of text.matchAll(/\brequire\(\s*(["'])([^"']+)\1\s*\)/g)) found.add(match[2]);
  return [...found].sort();
}

/** "ssh2/lib/client.js" -> "ssh2", "@pulumi/pulumi/log/index.js" -> "@pulumi/pulumi", "node:fs" -> "fs". */
export function packageOf(specifier: string): string {
  const bare = specifier.startsWith("node:") ? specifier.slice("node:".length) : specifier;
  const parts = bare.split("/");
  return bare.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * Asserts the serialized `__provider` text holds no secret and only requires Node built-ins or
 * allowed packages (local modules must be serialized by value, never required by path).
 * Returns the required module specifiers.
 */
export function checkSerializedProvider(
  text: string,
  opts: { secrets: readonly (Secret | string)[]; allowedModules?: readonly string[] },
): string[] {
  assertNoSecrets("serialized provider text", text, opts.secrets);
  const allowed = new Set([...builtinModules, ...(opts.allowedModules ?? DEFAULT_ALLOWED_MODULES)]);
  const modules = requiredModules(text);
  const disallowed = modules.filter((m) => !allowed.has(packageOf(m)));
  if (disallowed.length > 0) {
    throw new Error(
      `serialized provider text requires modules outside the allowed list: ${disallowed.join(", ")}; ` +
        `require them inside a method, or add the package to allowedModules if the host really needs it`,
    );
  }
  return modules;
}
