// Every error the SSH layer throws names the host, what happened and what to do. Fields hold
// only redacted text, so logging or serializing an error cannot leak a secret.
import { keepErrorMessage } from "../errors";
import { ObservedHostKey } from "./target";

/** What a finished remote command produced. `RemoteCommandError` is the same shape, thrown. */
export interface CommandResult {
  /** null when the command never reported an exit status (killed, timed out, connection lost). */
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

/**
 * The one shape of the SSH layer's connection and probe errors: a name to tell them apart by (also
 * across the closure serializer, where `instanceof` does not hold), the host's `address`, the
 * message, and the facts as readonly fields of the subclass.
 */
export abstract class SshError extends Error {
  readonly address: string;

  protected constructor(name: string, address: string, message: string) {
    super(message);
    this.name = name;
    this.address = address;
    keepErrorMessage(this, message);
  }
}

export class HostKeyMismatchError extends SshError {
  constructor(address: string, readonly expected: readonly string[], readonly observed: ObservedHostKey) {
    super(
      "HostKeyMismatchError",
      address,
      `host key mismatch for ${address}: expected ${expected.join(" or ")}, the server presented ` +
        `${observed.type} ${observed.fingerprint}. Nothing was run on it. If the host was reinstalled or its keys ` +
        `were regenerated on purpose, check ${observed.fingerprint} out of band (console, ssh-keygen -lf on the host) ` +
        `and update the pinned hostKey.expect; otherwise treat this as a possible man-in-the-middle.`,
    );
  }
}

export class SshAuthError extends SshError {
  constructor(address: string, readonly user: string, cause: string) {
    super(
      "SshAuthError",
      address,
      `ssh to ${address} as ${user}: the server accepted none of our credentials (${cause}). Check that the ` +
        `public half of privateKey is in ${user}'s authorized_keys on that host (for rescue: the key passed to Robot).`,
    );
  }
}

export class SshUnreachableError extends SshError {
  constructor(address: string, readonly attempts: number, readonly elapsedMs: number, readonly lastCause: string) {
    super("SshUnreachableError", address, `ssh to ${address} not reachable after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${formatSeconds(elapsedMs)}: ${lastCause}`);
  }
}

export interface RemoteCommandFailure extends CommandResult {
  readonly host: string;
  /** `host:port` */
  readonly address: string;
  /** The full command text, redacted. */
  readonly command: string;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly timeoutMs?: number;
}

/** A remote command that exited outside okExitCodes, was killed, timed out or lost its connection. */
export class RemoteCommandError extends Error implements RemoteCommandFailure {
  readonly host: string;
  readonly address: string;
  readonly command: string;
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly timeoutMs?: number;
  /** Redacted tail of stdout. */
  readonly stdout: string;
  /** Redacted tail of stderr. */
  readonly stderr: string;
  readonly durationMs: number;

  constructor(failure: RemoteCommandFailure) {
    const message = describeFailure(failure);
    super(message);
    this.name = "RemoteCommandError";
    this.host = failure.host;
    this.address = failure.address;
    this.command = failure.command;
    this.exitCode = failure.exitCode;
    this.signal = failure.signal;
    this.timedOut = failure.timedOut;
    this.timeoutMs = failure.timeoutMs;
    this.stdout = failure.stdout;
    this.stderr = failure.stderr;
    this.durationMs = failure.durationMs;
    keepErrorMessage(this, message);
  }
}

function describeFailure(f: RemoteCommandFailure): string {
  const what = `\`${commandHeadline(f.command)}\` on ${f.address}`;
  const output = lastLines(f.stderr.trim() !== "" ? f.stderr : f.stdout, 5);
  const detail = output === "" ? "" : `: ${output}`;
  if (f.timedOut) return `${what} timed out after ${formatSeconds(f.timeoutMs ?? f.durationMs)} and was killed${detail}`;
  if (f.exitCode !== null) return `${what} failed (exit ${f.exitCode})${detail}`;
  if (f.signal !== null) return `${what} was killed by signal ${f.signal}${detail}`;
  return `${what} ended without an exit status (the connection was lost)${detail}`;
}

/** The output of a probe was not the JSON (or not the shape) the probe promised. */
export class ProbeOutputError extends SshError {
  constructor(address: string, readonly command: string, problem: string) {
    super("ProbeOutputError", address, `probe \`${commandHeadline(command)}\` on ${address} ${problem}`);
  }
}

/** First line of a command, shortened: error messages name the command, the field holds all of it. */
export function commandHeadline(command: string, max = 120): string {
  const lines = command.trim().split("\n");
  const first = lines[0];
  const more = lines.length > 1 ? " …" : "";
  return first.length > max ? first.slice(0, max - 1) + "…" : first + more;
}

export function lastLines(text: string, count: number): string {
  return text.trimEnd().split("\n").slice(-count).join("\n");
}

/** `0.4 s`, `12.5 s`, `600 s`: one decimal below 100 s, so short budgets in tests stay meaningful. */
export function formatSeconds(ms: number): string {
  const seconds = ms / 1000;
  return seconds < 100 ? `${Number(seconds.toFixed(1))} s` : `${Math.round(seconds)} s`;
}
