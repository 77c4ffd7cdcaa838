// Decisions for retrying connection establishment, kept pure so they are unit-tested without a
// network. Only dialing is ever retried: a command may have changed the host before it failed.

export interface BackoffPolicy {
  /** Delay after the first failed attempt. Default 500 ms. */
  readonly initialMs: number;
  /** Ceiling for one delay. Default 15 s: a host coming back from a reboot is noticed within that. */
  readonly maxMs: number;
  /** Growth per attempt. Default 2. */
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 15_000, factor: 2 };

/**
 * Delay before attempt `failedAttempts + 1`: exponential, capped, with "equal jitter" (between half
 * and all of the step) so parallel resources waiting on one rebooting host do not dial in lockstep.
 */
export function backoffDelayMs(failedAttempts: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const step = Math.min(policy.maxMs, policy.initialMs * Math.pow(policy.factor, Math.max(0, failedAttempts - 1)));
  return Math.round(step / 2 + (step / 2) * random());
}

// Socket-level codes that mean "nobody is answering yet": a host rebooting, sshd not started, a
// port forward (QEMU user networking) accepting before the guest listens.
// An array, not a Set: the closure serializer copies a module-level Set as a plain object whose
// `.has` then throws "incompatible receiver" inside the dynamic-provider host.
const RETRYABLE_CODES: readonly string[] = [
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EHOSTDOWN",
  "ENETUNREACH",
  "ENETDOWN",
  "EPIPE",
  "EAI_AGAIN",
];

interface ErrorLike {
  readonly code?: unknown;
  readonly level?: unknown;
  readonly message?: unknown;
}

/**
 * True only for failures that say the server is not (yet) there. Authentication failures, host key
 * mismatches, key parsing and protocol errors are answers from a live server, or mistakes of ours;
 * retrying them would only delay a clear error.
 */
export function isRetryableConnectError(error: unknown): boolean {
  const e = (error ?? {}) as ErrorLike;
  if (typeof e.code === "string" && RETRYABLE_CODES.includes(e.code)) return true;
  if (e.level === "client-timeout") return true; // ssh2: "Timed out while waiting for handshake"
  const message = typeof e.message === "string" ? e.message : "";
  return /before handshake|Connection lost before|socket hang up|kex_exchange_identification|Connection closed by remote host/i.test(message);
}

/** A short cause for progress lines: the socket code when there is one, else the message. */
export function describeConnectError(error: unknown): string {
  const e = (error ?? {}) as ErrorLike;
  if (typeof e.code === "string" && RETRYABLE_CODES.includes(e.code)) return e.code;
  if (e.level === "client-timeout") return "timed out waiting for the SSH handshake";
  return typeof e.message === "string" && e.message !== "" ? e.message : String(error);
}
