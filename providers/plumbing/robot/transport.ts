// The one place that talks HTTP to Robot: auth, form bodies, error envelopes and the retry
// policy. Retries are bounded, reported, and limited to what is safe:
// - RATE_LIMIT_EXCEEDED (403) for any method: Robot refused before executing, so repeating is safe;
// - network failures for GET only: a POST /reset whose answer was lost may have been executed;
// - never 401: three failed logins lock the caller's IP out for 10 minutes.
import { redact, Secret } from "../secret";
import {
  RobotApiError,
  RobotApiErrorFields,
  RobotErrorCode,
  RobotNetworkError,
  RobotRequestDescription,
  describeRequest,
  formatApiErrorMessage,
} from "./errors";
import { FormFields, encodeForm, formPairs, parseErrorEnvelope } from "./wire";

export const DEFAULT_ROBOT_URL = "https://robot-ws.your-server.de";

/** Reported before every wait, so a long rate-limit pause is never silent. */
export interface RobotWaitEvent {
  readonly reason: "rate-limit" | "network";
  readonly method: string;
  readonly path: string;
  readonly waitMs: number;
  /** 1-based number of the retry about to happen. */
  readonly retry: number;
  readonly maxRetries: number;
  /** e.g. "Robot rate limit on POST /reset/1001: waiting 12 s (retry 1 of 3)". */
  readonly message: string;
}

export interface RobotTransportOptions {
  /** Webservice user (Robot → Settings → Web service and app settings). */
  readonly user: string;
  readonly password: Secret;
  /** Defaults to https://robot-ws.your-server.de; the lab passes http://127.0.0.1:<port>. */
  readonly baseUrl?: string;
  /** Retries after RATE_LIMIT_EXCEEDED. Default 3. */
  readonly maxRateLimitRetries?: number;
  /** Upper bound on the total time spent waiting for rate limits in one call. Default 10 min. */
  readonly maxRateLimitWaitMs?: number;
  /** Retries of a GET whose request got no HTTP answer. Default 2. POST/DELETE are never retried. */
  readonly maxNetworkRetries?: number;
  /** Delay before a network retry, multiplied by the retry number. Default 1000 ms. */
  readonly networkRetryDelayMs?: number;
  /** Per-request timeout. Default 30 s. */
  readonly timeoutMs?: number;
  /** Called before each wait. */
  readonly onWait?: (event: RobotWaitEvent) => void;
  /** Injected in unit tests. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

export interface RobotCallOptions<C extends string> {
  readonly form?: FormFields;
  /** Codes returned as `{ ok: false }` instead of thrown (hrobot's accept_errors). */
  readonly accept?: readonly C[];
}

export type RobotResult<T, C extends string = RobotErrorCode> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: C; readonly error: RobotApiError };

export interface RobotRawResponse {
  readonly status: number;
  /** Parsed JSON, or null for an empty body (DELETE /key). */
  readonly body: unknown;
  readonly request: RobotRequestDescription;
}

type HttpMethod = "GET" | "POST" | "DELETE";

/** Rate-limit jitter: up to this fraction of the interval, so parallel callers do not collide again. */
const JITTER_FRACTION = 0.1;
const MIN_REDACTED_LENGTH = 6;

export class RobotTransport {
  private readonly options: RobotTransportOptions;
  private readonly baseUrl: string;

  constructor(options: RobotTransportOptions) {
    // Duck-typed: Pulumi's closure serializer may hand us a copy of the Secret class.
    if (typeof (options.password as Partial<Secret> | undefined)?.reveal !== "function") {
      throw new TypeError("RobotTransport: password must be a Secret (new Secret(value)), so it cannot leak into logs");
    }
    this.options = options;
    this.baseUrl = (options.baseUrl ?? DEFAULT_ROBOT_URL).replace(/\/+$/, "");
  }

  /**
   * Sends one logical request (with the retries allowed for it). Resolves with the raw answer, or
   * with an `{ ok: false }` result for accepted codes; throws RobotApiError / RobotNetworkError.
   */
  async call<C extends string>(method: HttpMethod, path: string, options: RobotCallOptions<C> = {}): Promise<RobotResult<RobotRawResponse, C>> {
    const request: RobotRequestDescription = {
      method,
      path,
      params: formPairs(options.form ?? {}).map(([name, value]) => `${name}=${value}`),
    };
    const body = options.form ? encodeForm(options.form) : undefined;
    let rateLimitRetries = 0;
    let networkRetries = 0;
    let waitedMs = 0;
    for (let attempt = 1; ; attempt++) {
      let response: { status: number; text: string };
      try {
        response = await this.send(method, path, body);
      } catch (err) {
        const retry = this.networkRetryDelay(method, networkRetries);
        if (retry === null) throw this.networkError(err, request, attempt);
        networkRetries++;
        this.report("network", request, retry, networkRetries, this.maxNetworkRetries(), `: ${causeText(err)}`);
        await this.sleep(retry);
        continue;
      }
      const parsed = parseBody(response.text);
      if (response.status >= 200 && response.status < 300 && parsed.ok) {
        return { ok: true, value: { status: response.status, body: parsed.value, request } };
      }
      const fields = errorFields(response.status, parsed);
      if (fields.code === "RATE_LIMIT_EXCEEDED" && rateLimitRetries < this.maxRateLimitRetries()) {
        const waitMs = this.rateLimitWait(fields);
        if (waitedMs + waitMs <= this.maxRateLimitWaitMs()) {
          rateLimitRetries++;
          waitedMs += waitMs;
          this.report("rate-limit", request, waitMs, rateLimitRetries, this.maxRateLimitRetries(), "");
          await this.sleep(waitMs);
          continue;
        }
      }
      const error = this.apiError(fields, request, attempt);
      if (options.accept?.includes(fields.code as C)) return { ok: false, code: fields.code as C, error };
      throw error;
    }
  }

  private async send(method: HttpMethod, path: string, body: string | undefined): Promise<{ status: number; text: string }> {
    const headers: Record<string, string> = {
      Authorization: "Basic " + Buffer.from(`${this.options.user}:${this.options.password.reveal()}`).toString("base64"),
      Accept: "application/json",
    };
    if (body !== undefined) headers["Content-Type"] = "application/x-www-form-urlencoded";
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body,
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
    });
    return { status: response.status, text: await response.text() };
  }

  private networkRetryDelay(method: HttpMethod, retriesSoFar: number): number | null {
    if (method !== "GET" || retriesSoFar >= this.maxNetworkRetries()) return null;
    return (this.options.networkRetryDelayMs ?? 1000) * (retriesSoFar + 1);
  }

  private rateLimitWait(fields: RobotApiErrorFields): number {
    // Robot's `interval` is the window of the limit; without one, fall back to hrobot's 5 s start.
    const intervalMs = (fields.interval ?? 5) * 1000;
    const random = this.options.random ?? Math.random;
    return Math.round(intervalMs + random() * JITTER_FRACTION * intervalMs);
  }

  private report(reason: RobotWaitEvent["reason"], request: RobotRequestDescription, waitMs: number, retry: number, maxRetries: number, cause: string): void {
    if (!this.options.onWait) return;
    const what = reason === "rate-limit" ? "rate limit" : "network error";
    const message = `Robot ${what} on ${request.method} ${request.path}${cause}: waiting ${formatSeconds(waitMs)} (retry ${retry} of ${maxRetries})`;
    this.options.onWait({ reason, method: request.method, path: request.path, waitMs, retry, maxRetries, message: this.redact(message) });
  }

  private apiError(fields: RobotApiErrorFields, request: RobotRequestDescription, attempts: number): RobotApiError {
    const clean: RobotApiErrorFields = { ...fields, message: this.redact(fields.message) };
    return new RobotApiError(clean, request, attempts, this.redact(formatApiErrorMessage(clean, request, attempts)));
  }

  private networkError(err: unknown, request: RobotRequestDescription, attempts: number): RobotNetworkError {
    const retried = attempts > 1 ? ` after ${attempts} attempts` : "";
    const advice =
      request.method === "GET"
        ? "Check network access to the base URL."
        : "Not retried because it changes state and may have been executed; check its effect in Robot before repeating it.";
    const message = `Robot ${describeRequest(request)} to ${this.baseUrl} got no answer${retried}: ${causeText(err)}. ${advice}`;
    return new RobotNetworkError(this.redact(message), request, attempts);
  }

  /**
   * Messages are built without the password; this is the second line of defence in case Robot
   * echoes something. A very short password is skipped: replacing every "p" would garble the
   * message while protecting nothing worth a lockout-guarded login.
   */
  private redact(text: string): string {
    return this.options.password.reveal().length >= MIN_REDACTED_LENGTH ? redact(text, [this.options.password]) : text;
  }

  private sleep(ms: number): Promise<void> {
    return (this.options.sleep ?? defaultSleep)(ms);
  }

  private maxRateLimitRetries(): number {
    return this.options.maxRateLimitRetries ?? 3;
  }

  private maxRateLimitWaitMs(): number {
    return this.options.maxRateLimitWaitMs ?? 10 * 60_000;
  }

  private maxNetworkRetries(): number {
    return this.options.maxNetworkRetries ?? 2;
  }
}

function defaultSleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

type ParsedBody = { ok: true; value: unknown } | { ok: false; text: string };

function parseBody(text: string): ParsedBody {
  if (text.trim() === "") return { ok: true, value: null };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false, text };
  }
}

function errorFields(status: number, parsed: ParsedBody): RobotApiErrorFields {
  const envelope = parsed.ok ? parseErrorEnvelope(parsed.value, status) : null;
  if (envelope) return envelope;
  // A 401 usually comes from the web server before Robot's code runs: no envelope, same meaning.
  if (status === 401) {
    return { status, code: "UNAUTHORIZED", message: "Unauthorized", missing: null, invalid: null, maxRequest: null, interval: null };
  }
  const snippet = parsed.ok ? JSON.stringify(parsed.value) : parsed.text;
  return {
    status,
    code: "UNEXPECTED_RESPONSE",
    message: `not a Robot error envelope: ${snippet.slice(0, 200)}`,
    missing: null,
    invalid: null,
    maxRequest: null,
    interval: null,
  };
}

function causeText(err: unknown): string {
  const error = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = error?.cause?.code ?? error?.cause?.message;
  return cause ? `${error.message ?? String(err)} (${cause})` : (error?.message ?? String(err));
}

export function formatSeconds(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  return seconds >= 10 ? `${Math.round(seconds)} s` : `${Number(seconds.toFixed(1))} s`;
}
