// Minimal QMP (QEMU Machine Protocol) client over a unix socket: capabilities handshake,
// commands with replies in order, and events (SHUTDOWN carries why the guest went away).

import { EventEmitter } from "events";
import * as net from "net";

export interface QmpEvent {
  readonly event: string;
  readonly data?: Record<string, unknown>;
}

export class QmpClient extends EventEmitter {
  private buffer = "";
  private readonly pending: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void; command: string }> = [];
  private closed = false;

  private constructor(private readonly socket: net.Socket) {
    super();
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("close", () => this.onClose());
    socket.on("error", () => undefined); // surfaced through "close" and pending rejections
  }

  /** Connects, retrying while QEMU has not created the socket yet, and negotiates capabilities. */
  static async connect(socketPath: string, opts: { timeoutMs?: number; isAlive?: () => boolean } = {}): Promise<QmpClient> {
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    let lastError: Error | undefined;
    while (Date.now() < deadline) {
      if (opts.isAlive && !opts.isAlive()) throw new Error(`QEMU exited before its QMP socket ${socketPath} accepted a connection`);
      try {
        const socket = await dial(socketPath);
        const client = new QmpClient(socket);
        await client.greeting();
        await client.execute("qmp_capabilities");
        return client;
      } catch (err) {
        lastError = err as Error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`QMP socket ${socketPath} did not answer within ${opts.timeoutMs ?? 15_000} ms: ${lastError?.message}`);
  }

  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error(`QMP ${command}: connection closed`));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject, command });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + "\n");
    });
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private greeting(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve: () => resolve(), reject, command: "(greeting)" });
    });
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline).trim();
      this.buffer = this.buffer.slice(newline + 1);
      if (line) this.onMessage(JSON.parse(line) as Record<string, unknown>);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg.event === "string") {
      this.emit("event", { event: msg.event, data: msg.data as Record<string, unknown> | undefined } satisfies QmpEvent);
      return;
    }
    const waiter = this.pending.shift();
    if (!waiter) return;
    if ("error" in msg) {
      const error = msg.error as { class?: string; desc?: string };
      waiter.reject(new Error(`QMP ${waiter.command} failed: ${error.class}: ${error.desc}`));
    } else {
      waiter.resolve(msg.return ?? msg.QMP);
    }
  }

  private onClose(): void {
    this.closed = true;
    for (const waiter of this.pending.splice(0)) waiter.reject(new Error(`QMP ${waiter.command}: connection closed by QEMU`));
    this.emit("close");
  }
}

function dial(socketPath: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection(socketPath);
    socket.once("connect", () => {
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", reject);
  });
}
