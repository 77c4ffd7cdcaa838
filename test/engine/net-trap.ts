// Preloaded with `NODE_OPTIONS=--require …/net-trap.js` into the engine AND (through the inherited
// environment) into the dynamic-provider host it starts. Every outbound TCP connection and DNS
// lookup is recorded in $HFDE_NET_TRAP_FILE and fails, except a loopback connection to a port a
// trapped process itself listens on: the engine's gRPC channel to its own provider host.
import * as fs from "fs";
import * as net from "net";

// The module object itself, not TypeScript's import-star copy (whose properties cannot be redefined).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const dns = require("dns") as typeof import("dns");
const file = process.env.HFDE_NET_TRAP_FILE;
if (file) {
  const note = (line: string): void => fs.appendFileSync(file, `${line} pid=${process.pid}\n`);
  const listened = (): string[] => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "").split("\n").filter((l) => l.startsWith("listen ")).map((l) => l.split(" ")[1]);

  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    this.once("listening", () => {
      const address = this.address();
      if (address && typeof address === "object") note(`listen ${address.port}`);
    });
    return (listen as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof listen;

  const connect = net.Socket.prototype.connect;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const first = (Array.isArray(args[0]) ? args[0][0] : args[0]) as unknown;
    const opts = (typeof first === "object" && first !== null ? first : { port: first, host: args[1] }) as { port?: unknown; host?: unknown; path?: unknown };
    if (opts.path !== undefined) return (connect as (...a: unknown[]) => net.Socket).apply(this, args); // a unix socket
    const host = typeof opts.host === "string" ? opts.host : "localhost";
    const port = String(opts.port);
    const loopback = ["127.0.0.1", "localhost", "::1"].includes(host);
    if (loopback && listened().includes(port)) return (connect as (...a: unknown[]) => net.Socket).apply(this, args);
    note(`connect ${host}:${port}`);
    process.nextTick(() => this.destroy(Object.assign(new Error(`connect ${host}:${port} blocked by the test's network trap`), { code: "ECONNREFUSED" })));
    return this;
  } as typeof connect;

  // A literal address or localhost needs no resolver (grpc-js "looks up" its own bind address).
  const refuse = (name: string, original: (...a: unknown[]) => unknown) =>
    function (hostname: unknown, ...rest: unknown[]) {
      if (typeof hostname === "string" && (net.isIP(hostname) !== 0 || hostname === "localhost")) return original(hostname, ...rest);
      note(`dns ${name} ${String(hostname)}`);
      const cb = rest.find((r) => typeof r === "function") as ((err: Error) => void) | undefined;
      const err = Object.assign(new Error(`dns ${name} ${String(hostname)} blocked by the test's network trap`), { code: "ENOTFOUND" });
      if (!cb) return Promise.reject(err);
      process.nextTick(() => cb(err));
      return undefined;
    };
  for (const name of ["lookup", "resolve", "resolve4", "resolve6"] as const) {
    // dns's own properties are getters on some Node versions: define, do not assign.
    const plain = (dns as unknown as Record<string, (...a: unknown[]) => unknown>)[name].bind(dns);
    const promised = (dns.promises as unknown as Record<string, (...a: unknown[]) => unknown>)[name].bind(dns.promises);
    Object.defineProperty(dns, name, { value: refuse(name, plain), configurable: true, writable: true });
    Object.defineProperty(dns.promises, name, { value: refuse(name, promised), configurable: true, writable: true });
  }
}
