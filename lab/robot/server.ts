// The emulator's HTTP front: Basic auth with lockout, routing, rate limits, PHP form parsing and
// the error envelope. Everything that goes wrong is answered with Robot's `{"error": {…}}`
// envelope: a bug in the emulator becomes 500 INTERNAL_ERROR, never a stack trace on the wire.
import { randomBytes, timingSafeEqual } from "crypto";
import { createServer, IncomingMessage, ServerResponse } from "http";
import { AddressInfo } from "net";
import { InternalError, InvalidInput, MethodNotAllowed, NotFound, RobotError, Unauthorized } from "./errors";
import { parsePhpForm } from "./form";
import { RobotModel, RobotModelOptions } from "./model";
import { matchRoute } from "./routes";

export type { ServerSpec, RateLimitOptions, LockoutOptions, RateGroup } from "./model";

export interface RobotEmulatorOptions extends Omit<RobotModelOptions, "servers"> {
  /** 0 (default) picks a free port. */
  readonly port?: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly servers?: RobotModelOptions["servers"];
  /** Where unexpected emulator failures are reported (they answer 500 INTERNAL_ERROR). Default console.error. */
  readonly onInternalError?: (err: unknown) => void;
}

export interface RobotEmulator {
  /** e.g. http://127.0.0.1:40123 — pass as the client's baseUrl. */
  readonly url: string;
  readonly port: number;
  readonly model: RobotModel;
  /**
   * Random per start; the `/__emulator/` hooks answer only requests that carry it in the
   * `X-Emulator-Token` header. The lab guests reach the host's loopback through slirp, so
   * "only local callers" is no protection; the token stays in the process that started the
   * emulator (and whatever it hands it to, such as a test's support code).
   */
  readonly hookToken: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;
export const EMULATOR_RESET_PATH = "/__emulator/reset";
const HOOK_PREFIX = "/__emulator/";
export const HOOK_TOKEN_HEADER = "x-emulator-token";
/** Robot's realm; standard HTTP clients send credentials only after a challenge names one. */
const BASIC_CHALLENGE = 'Basic realm="Robot Webservice"';

export async function startRobotEmulator(options: RobotEmulatorOptions): Promise<RobotEmulator> {
  const model = new RobotModel({ ...options, servers: options.servers ?? [] });
  const onInternalError = options.onInternalError ?? ((err: unknown) => console.error("Robot emulator internal error:", err));
  const hookToken = randomBytes(24).toString("hex");
  const server = createServer((req, res) => {
    // Last line of defence: whatever escapes handleRequest is reported, answered 500 and never
    // becomes an unhandled rejection, which would end the lab daemon with every VM in it.
    handleRequest(model, req, res, onInternalError, hookToken).catch((err: unknown) => {
      onInternalError(err);
      send(res, 500, new InternalError().toJSON());
    });
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    model,
    hookToken,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handleRequest(model: RobotModel, req: IncomingMessage, res: ServerResponse, onInternalError: (err: unknown) => void, hookToken: string): Promise<void> {
  const method = req.method ?? "GET";
  const source = req.socket.remoteAddress ?? "unknown";
  let path = req.url ?? "/";
  let status = 500;
  let code: string | null = null;
  try {
    // Inside the try: a target URL() rejects (`GET //a:999999`) is the client's mistake, a 404.
    const url = parseTarget(req.url);
    path = url.pathname;
    const body = await readBody(req);
    const result = await dispatch(model, method, url, source, req.headers, body, hookToken);
    status = result.status;
    send(res, result.status, result.body);
  } catch (err) {
    const error = err instanceof RobotError ? err : new InternalError();
    if (!(err instanceof RobotError)) onInternalError(err);
    status = error.status;
    code = error.code;
    send(res, error.status, error.toJSON(), error instanceof Unauthorized ? { "WWW-Authenticate": BASIC_CHALLENGE } : {});
  }
  model.requests.push({ method, path, status, source, code });
}

function parseTarget(target: string | undefined): URL {
  try {
    return new URL(target ?? "/", "http://emulator");
  } catch {
    throw new NotFound("Not found");
  }
}

async function dispatch(
  model: RobotModel,
  method: string,
  url: URL,
  source: string,
  headers: IncomingMessage["headers"],
  body: string,
  hookToken: string,
): Promise<{ status: number; body: unknown }> {
  if (url.pathname.startsWith(HOOK_PREFIX)) return hook(model, method, url.pathname, headers[HOOK_TOKEN_HEADER], hookToken);
  const authorization = headers.authorization;
  // 401 comes before any lookup: a 404 always implies valid credentials (measured on Robot).
  const credentials = basicCredentials(authorization);
  model.authenticate(source, credentials.user, credentials.password);
  if (url.pathname.endsWith(".yaml")) throw new NotFound("YAML output is not emulated");
  const path = url.pathname.replace(/\.json$/, "").replace(/\/+$/, "") || "/";
  const match = matchRoute(method, path);
  if (match.kind === "not-found") throw new NotFound("Not found");
  if (match.kind === "wrong-method") throw new MethodNotAllowed(match.allowed);
  model.countRequest(match.route.rateGroup);
  // As PHP's $_GET and $_POST: a GET or DELETE reads the query string, a POST only its body.
  const form = parsePhpForm(method === "POST" ? body : url.search.slice(1));
  return match.route.handler({ model, params: match.params, form });
}

/** Test hooks: without the start's token they do not exist (404, like any unknown path). */
function hook(model: RobotModel, method: string, path: string, given: string | string[] | undefined, hookToken: string): { status: number; body: unknown } {
  if (typeof given !== "string" || !sameToken(given, hookToken)) throw new NotFound("Not found");
  if (path === EMULATOR_RESET_PATH && method === "POST") {
    model.resetState();
    return { status: 200, body: { emulator: "reset" } };
  }
  throw new NotFound("Not found");
}

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

function basicCredentials(header: string | undefined): { user: string | null; password: string | null } {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? "");
  if (!match) return { user: null, password: null };
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return { user: null, password: null };
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    // An oversized body is drained, not cut off, so the client still gets the error envelope.
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => (size > MAX_BODY_BYTES ? reject(new InvalidInput({ invalid: ["body"] })) : resolve(Buffer.concat(chunks).toString("utf8"))));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = body === null ? "" : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...extraHeaders });
  res.end(text);
}
