// An open, host-key-verified SSH connection and the one way to run commands over it.
import type { Client, ClientChannel } from "ssh2";
import { Logger } from "../log";
import { redact, Secret } from "../secret";
import { ShellCommand, isShellCommand } from "../shell";
import { CommandResult, RemoteCommandError, commandHeadline } from "./errors";
import { ObservedHostKey, SshTarget, targetAddress } from "./target";

export interface ExecOptions {
  /** Written to the command's stdin, then stdin is closed (so `--key-file=-` readers see EOF). */
  readonly stdin?: Secret | string;
  /** Kill the command after this long. Defaults to the session's commandTimeoutMs. */
  readonly timeoutMs?: number;
  /** Exit codes that count as success. Default [0]. */
  readonly okExitCodes?: readonly number[];
  /** More values to redact from errors and logs (a stdin Secret and the private key always are). */
  readonly secrets?: readonly (Secret | string)[];
}

// Every command is prefixed with this. The C locale makes tools print the output our probes
// parse, whatever the host's language (set in the text: sshd drops client env without AcceptEnv).
// The marker reports the shell's pid on stderr. sshd makes it a session and process-group leader,
// so on a timeout we can kill the whole group from a second channel: an SSH "signal" request is
// refused for root logins ("session signalling requires privilege separation") and closing the
// channel leaves the command running.
const COMMAND_PREFIX = "export LC_ALL=C; printf '\\036fde-pgid:%s\\036' \"$$\" >&2; ";
const PGID_MARKER = new RegExp(String.fromCharCode(0x1e) + "fde-pgid:(\\d+)" + String.fromCharCode(0x1e));

// How much output an error keeps: enough for the tool's complaint, small enough for a log line.
const TAIL_CHARS = 4000;

// After a timeout a server that never confirms the kill or the close must not hang the caller.
const KILL_GRACE_MS = 2000;

export class SshSession {
  readonly target: SshTarget;
  /** The key the server proved it holds; record it when the target used `acceptNew`. */
  readonly observedHostKey: ObservedHostKey;
  /** `host:port` */
  readonly address: string;
  private readonly client: Client;
  private readonly logger: Logger;
  private readonly commandTimeoutMs: number;
  private closed = false;
  private commands = 0;

  constructor(client: Client, target: SshTarget, observedHostKey: ObservedHostKey, logger: Logger, commandTimeoutMs: number) {
    this.client = client;
    this.target = target;
    this.observedHostKey = observedHostKey;
    this.address = targetAddress(target);
    this.logger = logger;
    this.commandTimeoutMs = commandTimeoutMs;
    // Without an error listener a dropped connection would crash the whole provider host; the
    // command running at that moment reports the loss through its channel instead.
    client.on("error", (error: Error) => this.logger.debug(`connection error on ${this.address}: ${error.message}`));
    client.on("close", () => {
      this.closed = true;
    });
  }

  /**
   * Runs one command. Resolves when it exits with an ok code; otherwise throws RemoteCommandError
   * (non-ok exit, timeout, signal, lost connection). Never retried: the command may have acted.
   */
  /** Commands run on this connection so far: each is one round trip (refresh cost is reported in these). */
  get commandsRun(): number {
    return this.commands;
  }

  async exec(command: ShellCommand, options: ExecOptions = {}): Promise<CommandResult> {
    if (!isShellCommand(command)) {
      throw new Error(`exec on ${this.address}: expected a command built with sh\`…\`, found ${typeof command}`);
    }
    this.commands++;
    const stdinSecret = typeof options.stdin === "object" ? [options.stdin] : [];
    const secrets = [this.target.privateKey, ...stdinSecret, ...(options.secrets ?? [])];
    const shown = redact(command.text, secrets);
    const timeoutMs = options.timeoutMs ?? this.commandTimeoutMs;
    this.logger.debug(`run: ${commandHeadline(shown)}`);

    const outcome = await this.runChannel(COMMAND_PREFIX + command.text, options.stdin, timeoutMs);
    const okExitCodes = options.okExitCodes ?? [0];
    const { exitCode, durationMs } = outcome;
    this.logger.debug(`${outcome.timedOut ? "timed out" : `exit ${exitCode ?? outcome.signal ?? "?"}`} after ${durationMs} ms: ${commandHeadline(shown)}`);

    if (exitCode !== null && okExitCodes.includes(exitCode) && !outcome.timedOut) {
      return { exitCode, stdout: outcome.stdout, stderr: outcome.stderr, durationMs };
    }
    throw new RemoteCommandError({
      host: this.target.host,
      address: this.address,
      command: shown,
      exitCode,
      signal: outcome.signal,
      timedOut: outcome.timedOut,
      timeoutMs: outcome.timedOut ? timeoutMs : undefined,
      stdout: tail(redact(outcome.stdout, secrets)),
      stderr: tail(redact(outcome.stderr, secrets)),
      durationMs,
    });
  }

  /** Closes the connection; safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => {
      const done = setTimeout(resolve, KILL_GRACE_MS);
      this.client.once("close", () => {
        clearTimeout(done);
        resolve();
      });
      this.client.end();
    });
  }

  private openChannel(text: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new Error(`exec on ${this.address}: the session is already closed`));
        return;
      }
      this.client.exec(text, (err, channel) => (err ? reject(new Error(`exec on ${this.address}: could not open a channel: ${err.message}`)) : resolve(channel)));
    });
  }

  private async runChannel(text: string, stdin: Secret | string | undefined, timeoutMs: number): Promise<ChannelOutcome> {
    const started = Date.now();
    const channel = await this.openChannel(text);
    return new Promise((resolve) => {
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let exitCode: number | null = null;
      let signal: string | null = null;
      let timedOut = false;
      let finished = false;
      // Declared before use: Pulumi's closure serializer cannot resolve a const referenced by a
      // function written above its declaration ("missing variable in closure environment").
      let grace: NodeJS.Timeout | undefined;
      let timer: NodeJS.Timeout | undefined = undefined;

      const finish = (): void => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        clearTimeout(grace);
        resolve({
          exitCode,
          signal,
          timedOut,
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8").replace(PGID_MARKER, ""),
          durationMs: Date.now() - started,
        });
      };
      timer = setTimeout(() => {
        timedOut = true;
        grace = setTimeout(finish, KILL_GRACE_MS * 2);
        // The signal request works for non-root OpenSSH logins; the group kill covers root.
        signalChannel(channel, "KILL");
        void this.killProcessGroup(readPgid(stderr)).finally(() => channel.close());
      }, timeoutMs);

      channel.on("data", (chunk: Buffer) => stdout.push(chunk));
      channel.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      channel.on("exit", (code: number | null, signalName?: string) => {
        exitCode = typeof code === "number" ? code : null;
        signal = signalName ?? null;
      });
      channel.on("close", finish);
      // A channel error (e.g. EPIPE on stdin of a command that exited early) is followed by close.
      channel.on("error", () => undefined);

      if (stdin !== undefined) channel.write(typeof stdin === "string" ? stdin : stdin.reveal());
      channel.end();
    });
  }

  /** Best effort, bounded: the connection itself may be what hung. */
  private async killProcessGroup(pgid: number | null): Promise<void> {
    if (pgid === null) return;
    const kill = this.openChannel(`kill -s KILL -- -${pgid} 2>/dev/null`).then(
      (channel) =>
        new Promise<void>((resolve) => {
          channel.on("close", () => resolve());
          channel.on("error", () => undefined);
          channel.resume();
          channel.end();
        }),
    );
    await Promise.race([kill.catch(() => undefined), new Promise<void>((resolve) => setTimeout(resolve, KILL_GRACE_MS).unref())]);
  }
}

function readPgid(stderr: readonly Buffer[]): number | null {
  const match = PGID_MARKER.exec(Buffer.concat(stderr).subarray(0, 4096).toString("latin1"));
  return match ? Number(match[1]) : null;
}

interface ChannelOutcome {
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly timedOut: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly durationMs: number;
}

// ssh2's channel.signal() sends nothing once the channel is no longer writable, and ours never is
// after stdin was ended (readers need that EOF). SSH allows the request after EOF, so send it one
// level down; fall back to the public call if ssh2's internals ever change shape.
function signalChannel(channel: ClientChannel, name: string): void {
  const inner = channel as unknown as {
    outgoing?: { id?: unknown; state?: unknown };
    _client?: { _protocol?: { signal?: (id: number, name: string) => void } };
  };
  const protocol = inner._client?._protocol;
  const { id, state } = inner.outgoing ?? {};
  if ((state === "open" || state === "eof") && typeof id === "number" && typeof protocol?.signal === "function") {
    protocol.signal(id, name);
  } else {
    channel.signal(name);
  }
}

function tail(text: string): string {
  return text.length <= TAIL_CHARS ? text : "…" + text.slice(-TAIL_CHARS);
}
