// The one place that talks HTTP to Robot: auth, form bodies, error envelopes and the retry
// policy. Retries are bounded, reported, and limited to what is safe:
// - RATE_LIMIT_EXCEEDED (403) for any method: Robot refused before executing, so repeating is safe;
// - network failures for GET only: a POST /reset whose answer was lost may have been executed;
// - never 401: three failed logins lock the caller's IP out for 10 minutes; and after one 401,
//   no call of this process sends the same credentials again (login-gate.ts).
// Response bodies are never quoted in errors: a Robot answer can carry a root password.
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
import { LoginOutcome, LoginRejection, enterLoginGate, gateKey } from "./login-gate";
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
      const gate = await enterLoginGate(gateKey(this.baseUrl, this.options.user));
      if ("rejected" in gate) throw this.latchedError(request, gate.rejected, attempt - 1);
      let response: { status: number; text: string; contentType: string | null };
      try {
        response = await this.send(method, path, body);
        gate.ticket.leave(loginOutcome(response.status), describeRequest(request));
      } catch (err) {
        gate.ticket.leave("unknown");
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
      const fields = errorFields(response.status, parsed, response.contentType);
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

  private async send(method: HttpMethod, path: string, body: string | undefined): Promise<{ status: number; text: string; contentType: string | null }> {
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
    return { status: response.status, text: await response.text(), contentType: response.headers.get("content-type") };
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

  /** A call refused without a request: these credentials already got a 401 in this process. */
  private latchedError(request: RobotRequestDescription, rejection: LoginRejection, attempts: number): RobotApiError {
    const fields: RobotApiErrorFields = { status: 401, code: "UNAUTHORIZED", message: "Unauthorized", missing: null, invalid: null, maxRequest: null, interval: null };
    const message =
      `Robot ${describeRequest(request)} was not sent: ${rejection.request} got 401 UNAUTHORIZED from ${this.baseUrl} ` +
      `for webservice user ${JSON.stringify(this.options.user)} earlier in this run, and three failed logins block this IP for 10 minutes, ` +
      "so no Robot call of this process sends these credentials again. " +
      "Check robotUser and robotPassword (Robot → Settings → Web service and app settings; it is not the Robot login), then run again.";
    return new RobotApiError(fields, request, attempts, this.redact(message));
  }

  private apiError(fields: RobotApiErrorFields, request: RobotRequestDescription, attempts: number): RobotApiError {
    // Every text Robot sent, not only its message: field names come back in missing/invalid.
    const clean: RobotApiErrorFields = {
      ...fields,
      message: this.redact(fields.message),
      missing: fields.missing?.map((name) => this.redact(name)) ?? null,
      invalid: fields.invalid?.map((name) => this.redact(name)) ?? null,
    };
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
   * echoes something. A short password is redacted where it stands as a whole token (secret.ts).
   */
  private redact(text: string): string {
    return redact(text, [this.options.password]);
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

/**
 * What a request's answer says about the credentials: any Robot answer but 401 means they were
 * accepted (Robot checks them before anything else); a 5xx may come from a proxy in front.
 */
function loginOutcome(status: number): LoginOutcome {
  if (status === 401) return "rejected";
  return status < 500 ? "accepted" : "unknown";
}

function errorFields(status: number, parsed: ParsedBody, contentType: string | null): RobotApiErrorFields {
  const envelope = parsed.ok ? parseErrorEnvelope(parsed.value, status) : null;
  if (envelope) return { ...envelope, message: redact(envelope.message, passwordsIn(parsed.ok ? parsed.value : null)) };
  // A 401 usually comes from the web server before Robot's code runs: no envelope, same meaning.
  if (status === 401) {
    return { status, code: "UNAUTHORIZED", message: "Unauthorized", missing: null, invalid: null, maxRequest: null, interval: null };
  }
  return {
    status,
    code: "UNEXPECTED_RESPONSE",
    message: `not a Robot error envelope: ${describeBody(parsed, contentType)}`,
    missing: null,
    invalid: null,
    maxRequest: null,
    interval: null,
  };
}

/**
 * The shape of an answer, never its text: an unparseable answer to POST /boot/{n}/rescue holds
 * the rescue root password, and an error message ends up in the Pulumi log.
 */
function describeBody(parsed: ParsedBody, contentType: string | null): string {
  const type = contentType ? `, Content-Type ${contentType.split(";")[0].trim()}` : "";
  if (!parsed.ok) return `${Buffer.byteLength(parsed.text)} bytes that are not JSON${type} (not shown: a Robot answer can hold a password)`;
  const value = parsed.value;
  const shape =
    value !== null && typeof value === "object" && !Array.isArray(value)
      ? `a JSON object with the keys ${Object.keys(value).slice(0, 10).join(", ") || "(none)"}`
      : `JSON of type ${Array.isArray(value) ? "array" : value === null ? "null" : typeof value}`;
  return `${shape}${type} (values not shown: a Robot answer can hold a password)`;
}

/** Every string under a key named like "password" in a parsed answer, at any depth: the rescue root password. */
export function passwordsIn(value: unknown): string[] {
  const found: string[] = [];
  const walk = (node: unknown, key: string): void => {
    if (typeof node === "string") {
      if (/pass(word|wd)?$/i.test(key)) found.push(node);
    } else if (Array.isArray(node)) {
      node.forEach((item) => walk(item, key));
    } else if (node !== null && typeof node === "object") {
      for (const [name, child] of Object.entries(node)) walk(child, name);
    }
  };
  walk(value, "");
  return found;
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
