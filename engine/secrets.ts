// Where the engine gets the values of `secure:` config entries. `pulumi` decrypts them with the
// stack's secrets provider; this engine has none, so a resolver supplies each value by its config
// path (`robotPassword`, `luksPassphrases.fsn1-app1`), in this order:
//   1. the environment: HFDE_SECRET_<PATH>, the path upper-cased with every other character as `_`
//      (HFDE_SECRET_LUKSPASSPHRASES_FSN1_APP1);
//   2. for the `lab` stack, the lab's fixed values (lab/secrets.ts);
//   3. a prompt on the terminal, without echo, when stdin is one.
// A value is never put in argv, a log line or an error message.
import { labSecretFor } from "../lab/secrets";

export type SecretResolver = (path: string) => Promise<string>;

export function secretEnvName(path: string): string {
  return `HFDE_SECRET_${path.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

export interface ResolverOptions {
  readonly stack: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Default: ask on the terminal when stdin is a TTY. */
  readonly prompt?: ((question: string) => Promise<string>) | false;
}

export function secretResolver(opts: ResolverOptions): SecretResolver {
  const env = opts.env ?? process.env;
  const prompt = opts.prompt ?? (process.stdin.isTTY ? promptHidden : false);
  return async (path) => {
    const fromEnv = env[secretEnvName(path)];
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    if (opts.stack === "lab") return labSecretFor(path);
    if (prompt) return prompt(`Value of secret ${path} for stack ${opts.stack}: `);
    throw new Error(
      `Pulumi.${opts.stack}.yaml has a secret at ${path} and nothing supplies its value: ` +
        `set the environment variable ${secretEnvName(path)}, or run in a terminal to be asked for it`,
    );
  };
}

/** Reads one line from the terminal with echo off. */
async function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(question);
  stdin.setRawMode?.(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = "";
      const onData = (chunk: Buffer): void => {
        for (const ch of chunk.toString("utf8")) {
          if (ch === "\r" || ch === "\n") {
            stdin.off("data", onData);
            process.stderr.write("\n");
            return resolve(value);
          }
          if (ch === "\u0003") {
            stdin.off("data", onData);
            return reject(new Error("interrupted"));
          }
          value = ch === "\u007f" ? value.slice(0, -1) : value + ch;
        }
      };
      stdin.on("data", onData);
    });
  } finally {
    stdin.setRawMode?.(false);
    stdin.pause();
  }
}
