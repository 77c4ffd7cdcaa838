// The emulator's HTTP front: Basic auth with lockout, routing, rate limits, PHP form parsing and
// the error envelope. Everything that goes wrong is answered with Robot's `{"error": {…}}`
// envelope: a bug in the emulator becomes 500 INTERNAL_ERROR, never a stack trace on the wire.
import { createServer, IncomingMessage, ServerResponse } from "http";
import { AddressInfo } from "net";
import { InternalError, InvalidInput, MethodNotAllowed, NotFound, RobotError } from "./errors";
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
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;
export const EMULATOR_RESET_PATH = "/__emulator/reset";

export async function startRobotEmulator(options: RobotEmulatorOptions): Promise<RobotEmulator> {
  const model = new RobotModel({ ...options, servers: options.servers ?? [] });
  const onInternalError = options.onInternalError ?? ((err: unknown) => console.error("Robot emulator internal error:", err));
  const server = createServer((req, res) => {
    void handleRequest(model, req, res, onInternalError);
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function handleRequest(model: RobotModel, req: IncomingMessage, res: ServerResponse, onInternalError: (err: unknown) => void): Promise<void> {
  const method = req.method ?? "GET";
  const source = req.socket.remoteAddress ?? "unknown";
  const url = new URL(req.url ?? "/", "http://emulator");
  let status = 500;
  let code: string | null = null;
  try {
    const body = await readBody(req);
    const result = await dispatch(model, method, url, source, req.headers.authorization, body);
    status = result.status;
    send(res, result.status, result.body);
  } catch (err) {
    const error = err instanceof RobotError ? err : new InternalError();
    if (!(err instanceof RobotError)) onInternalError(err);
    status = error.status;
    code = error.code;
    send(res, error.status, error.toJSON());
  }
  model.requests.push({ method, path: url.pathname, status, source, code });
}

async function dispatch(model: RobotModel, method: string, url: URL, source: string, authorization: string | undefined, body: string): Promise<{ status: number; body: unknown }> {
  if (url.pathname === EMULATOR_RESET_PATH && method === "POST") {
    model.resetState();
    return { status: 200, body: { emulator: "reset" } };
  }
  // 401 comes before any lookup: a 404 always implies valid credentials (measured on Robot).
  const credentials = basicCredentials(authorization);
  model.authenticate(source, credentials.user, credentials.password);
  if (url.pathname.endsWith(".yaml")) throw new NotFound("YAML output is not emulated");
  const path = url.pathname.replace(/\.json$/, "").replace(/\/+$/, "") || "/";
  const match = matchRoute(method, path);
  if (match.kind === "not-found") throw new NotFound("Not found");
  if (match.kind === "wrong-method") throw new MethodNotAllowed(match.allowed);
  model.countRequest(match.route.rateGroup);
  const form = { ...Object.fromEntries(url.searchParams), ...parsePhpForm(body) };
  return match.route.handler({ model, params: match.params, form });
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

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = body === null ? "" : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}
