// Opening verified SSH sessions: host key pinning, bounded dial retry, and the session lifecycle.
// No connection or client lives at module scope: Pulumi serializes this module into provider
// text, and the dynamic-provider host runs many resources concurrently in one process.
import { Client } from "ssh2";
import { md5Fingerprint, sha256Fingerprint } from "../keys";
import { createLogger, Logger } from "../log";
import { redact } from "../secret";
import { HostKeyMismatchError, SshAuthError, SshUnreachableError, formatSeconds } from "./errors";
import { BackoffPolicy, DEFAULT_BACKOFF, backoffDelayMs, describeConnectError, isRetryableConnectError } from "./retry";
import { SshSession } from "./session";
import { ObservedHostKey, SshTarget, assertValidSshTarget, targetAddress } from "./target";

export interface ConnectProgress {
  readonly address: string;
  /** The attempt that just failed, from 1. */
  readonly attempt: number;
  readonly elapsedMs: number;
  readonly budgetMs: number;
  readonly cause: string;
  readonly nextDelayMs: number;
  /** `waiting for ssh on 127.0.0.1:2201 (attempt 5, 40 s of 600 s): ECONNREFUSED` */
  readonly message: string;
}

export interface ConnectOptions {
  /**
   * How long to keep dialing while the host is not answering. Default 60 s; a caller waiting for a
   * reboot passes more (a rescue boot takes ~45 s in the lab, minutes on real hardware).
   */
  readonly budgetMs?: number;
  /** Stop after this many attempts even with budget left. Default: no limit besides the budget. */
  readonly maxAttempts?: number;
  /** ssh2 readyTimeout for one attempt (TCP connect + handshake + auth). Default 20 s. */
  readonly attemptTimeoutMs?: number;
  readonly backoff?: Partial<BackoffPolicy>;
  /** Receives progress lines (info), the acceptNew notice (warn) and per-command debug lines. */
  readonly logger?: Logger;
  /** Called after each failed attempt that will be retried. */
  readonly onProgress?: (progress: ConnectProgress) => void;
  /** Default timeout for session.exec. Default 45 min: an initramfs build under emulation takes ~20. */
  readonly commandTimeoutMs?: number;
}

const DEFAULT_BUDGET_MS = 60_000;
const DEFAULT_ATTEMPT_TIMEOUT_MS = 20_000;
const DEFAULT_COMMAND_TIMEOUT_MS = 45 * 60_000;
// Even at the end of the budget an attempt gets this long, or a slow handshake could never win.
const MIN_ATTEMPT_TIMEOUT_MS = 1000;
// Keepalives turn a silently dead connection (host reset mid-command) into an error within a minute.
const KEEPALIVE_INTERVAL_MS = 15_000;
const KEEPALIVE_COUNT_MAX = 4;

/**
 * Opens a session to `target`, verifying its host key. Retries only while the host is not answering
 * (refused, reset, timed out, closed before the handshake), within `budgetMs`; a host key mismatch
 * or an authentication failure is thrown at once.
 */
export async function connect(target: SshTarget, options: ConnectOptions = {}): Promise<SshSession> {
  assertValidSshTarget(target);
  const address = targetAddress(target);
  const logger = options.logger ?? createLogger({ context: `ssh ${target.label ?? address}` });
  logger.registerSecrets(target.privateKey);
  const budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS;
  const maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
  const backoff: BackoffPolicy = { ...DEFAULT_BACKOFF, ...options.backoff };
  const started = Date.now();

  for (let attempt = 1; ; attempt++) {
    const remainingMs = budgetMs - (Date.now() - started);
    const attemptTimeoutMs = Math.max(MIN_ATTEMPT_TIMEOUT_MS, Math.min(options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS, remainingMs));
    try {
      const { client, observed } = await dialOnce(target, attemptTimeoutMs);
      if ("acceptNew" in target.hostKey) {
        logger.warn(`trusting host key ${observed.type} ${observed.fingerprint} of ${address} on first use (hostKey: acceptNew); record it`);
      }
      return new SshSession(client, target, observed, logger, options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS);
    } catch (error) {
      if (!isRetryableConnectError(error)) throw error;
      const elapsedMs = Date.now() - started;
      const cause = describeConnectError(error);
      const leftMs = budgetMs - elapsedMs;
      if (attempt >= maxAttempts || leftMs <= 0) throw new SshUnreachableError(address, attempt, elapsedMs, cause);
      const nextDelayMs = Math.min(backoffDelayMs(attempt, backoff), leftMs);
      const message = `waiting for ssh on ${address} (attempt ${attempt}, ${formatSeconds(elapsedMs)} of ${formatSeconds(budgetMs)}): ${cause}`;
      logger.info(message);
      options.onProgress?.({ address, attempt, elapsedMs, budgetMs, cause, nextDelayMs, message });
      await sleep(nextDelayMs);
    }
  }
}

/** Runs `fn` with a session and closes the session however `fn` ends. */
export async function withSession<T>(target: SshTarget, options: ConnectOptions, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await connect(target, options);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

interface Dialed {
  readonly client: Client;
  readonly observed: ObservedHostKey;
}

/** One connection attempt. Rejects with HostKeyMismatchError, SshAuthError or the raw cause. */
function dialOnce(target: SshTarget, readyTimeoutMs: number): Promise<Dialed> {
  const address = targetAddress(target);
  return new Promise((resolve, reject) => {
    const client = new Client();
    let observed: ObservedHostKey | undefined;
    let rejectedKey = false;
    let settled = false;

    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      client.destroy();
      reject(error);
    };
    client.on("ready", () => {
      if (settled) return;
      settled = true;
      resolve({ client, observed: observed! });
    });
    client.on("error", (error: Error & { level?: string }) => {
      if (rejectedKey && observed && "expect" in target.hostKey) {
        fail(new HostKeyMismatchError(address, target.hostKey.expect, observed));
      } else if (error.level === "client-authentication") {
        fail(new SshAuthError(address, target.user, error.message));
      } else {
        fail(error);
      }
    });
    // A server that drops us without an error event (sshd still starting, MaxStartups) is "not yet".
    client.on("close", () => fail(new Error("Connection closed before handshake")));

    try {
      client.connect({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKey: target.privateKey.reveal(),
        readyTimeout: readyTimeoutMs,
        keepaliveInterval: KEEPALIVE_INTERVAL_MS,
        keepaliveCountMax: KEEPALIVE_COUNT_MAX,
        hostVerifier: (key: Buffer) => {
          observed = observeHostKey(key);
          rejectedKey = !hostKeyAccepted(target, observed);
          return !rejectedKey;
        },
      });
    } catch (error) {
      // ssh2 parses the key synchronously; its message must not carry key material into logs.
      const reason = redact(error instanceof Error ? error.message : String(error), [target.privateKey]);
      fail(new Error(`privateKey for ${address} could not be used: ${reason}. Expected an unencrypted OpenSSH or PEM private key.`));
    }
  });
}

function hostKeyAccepted(target: SshTarget, observed: ObservedHostKey): boolean {
  if ("acceptNew" in target.hostKey) return true;
  const expected = target.hostKey.expect;
  return expected.includes(observed.fingerprint) || expected.includes(`MD5:${md5Fingerprint(Buffer.from(observed.base64, "base64"))}`);
}

/** The key type is the length-prefixed string at the start of the wire-format blob. */
export function observeHostKey(blob: Buffer): ObservedHostKey {
  const typeLength = blob.length >= 4 ? blob.readUInt32BE(0) : 0;
  const type = typeLength > 0 && 4 + typeLength <= blob.length ? blob.subarray(4, 4 + typeLength).toString("latin1") : "unknown";
  return { type, base64: blob.toString("base64"), fingerprint: sha256Fingerprint(blob) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
