// The logger every provider and the SSH layer write through. Lines go to `pulumi.log`; inside the
// dynamic-provider host no engine is attached (pulumi#6065), and pulumi.log then prints to the
// console, which the CLI shows as info diagnostics without a resource URN. That is why each line
// carries its own context prefix such as `[LuksVolume 127.0.0.1:2201]`.
import * as pulumiLog from "@pulumi/pulumi/log";
import { redact, Secret } from "./secret";

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Where finished (prefixed, redacted) lines go. */
export type LogSink = (level: LogLevel, line: string) => void;

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Adds secrets to redact from every later line of this logger and of its children. */
  registerSecrets(...secrets: readonly (Secret | string)[]): void;
  /** A logger whose prefix extends this one's (`[LuksVolume data]` → `[LuksVolume data 10.0.0.2:22]`). */
  child(context: string): Logger;
}

/** Writes through pulumi.log. A failed delivery must never fail the step that logged. */
export const pulumiSink: LogSink = (level, line) => {
  try {
    void Promise.resolve(pulumiLog[level](line)).catch(() => undefined);
  } catch {
    // pulumi.log has no engine and nowhere to write: logging is best effort by design.
  }
};

/** A sink that keeps lines in memory, for tests and for attaching recent output to errors. */
export function memorySink(): { sink: LogSink; lines: { level: LogLevel; line: string }[] } {
  const lines: { level: LogLevel; line: string }[] = [];
  return { sink: (level, line) => lines.push({ level, line }), lines };
}

export interface LoggerOptions {
  /** Prefix shown in brackets, e.g. `LuksVolume 127.0.0.1:2201`. */
  readonly context?: string;
  readonly secrets?: readonly (Secret | string)[];
  /** Defaults to pulumiSink. */
  readonly sink?: LogSink;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  // Shared by reference with every child, so a secret registered anywhere is redacted everywhere.
  const secrets: (Secret | string)[] = [...(options.secrets ?? [])];
  return buildLogger(options.context ?? "", secrets, options.sink ?? pulumiSink);
}

function buildLogger(context: string, secrets: (Secret | string)[], sink: LogSink): Logger {
  const write = (level: LogLevel, message: string): void => {
    const line = context === "" ? message : `[${context}] ${message}`;
    sink(level, redact(line, secrets));
  };
  return {
    debug: (message) => write("debug", message),
    info: (message) => write("info", message),
    warn: (message) => write("warn", message),
    error: (message) => write("error", message),
    registerSecrets: (...more) => {
      secrets.push(...more);
    },
    child: (more) => buildLogger(context === "" ? more : `${context} ${more}`, secrets, sink),
  };
}
