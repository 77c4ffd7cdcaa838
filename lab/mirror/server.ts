// Static HTTP server for the lab's local Debian mirror. Guests reach it through QEMU's
// user-network gateway (http://10.0.2.2:40081/debian); apt needs nothing beyond GET/HEAD of
// plain files, so this is a few lines of node:http with no dependencies.

import * as fs from "fs";
import * as http from "http";
import { AddressInfo } from "net";
import * as path from "path";

export interface MirrorServerOptions {
  /** Directory served at "/": a lab mirror directory, whose apt repository is `debian/`. */
  dir: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Listen address; default 127.0.0.1 (QEMU's user network forwards 10.0.2.2 to it). */
  host?: string;
}

export interface MirrorServer {
  /** Server root, e.g. `http://127.0.0.1:40081`; the Debian repository is at `${url}/debian`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

const CONTENT_TYPES: Record<string, string> = {
  ".deb": "application/vnd.debian.binary-package",
  ".gz": "application/gzip",
  ".xz": "application/x-xz",
};

/** Maps a request path onto a file below `root`, or null when it would escape `root`. */
export function resolveRequestPath(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath.split("?")[0]);
  } catch {
    return null;
  }
  if (decoded.includes("\0")) return null;
  const resolved = path.resolve(root, "." + path.posix.normalize("/" + decoded));
  return resolved === root || resolved.startsWith(root + path.sep) ? resolved : null;
}

function serveFile(req: http.IncomingMessage, res: http.ServerResponse, root: string): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.writeHead(405, { Allow: "GET, HEAD" }).end();
    return;
  }
  const file = resolveRequestPath(root, req.url ?? "/");
  if (!file) {
    res.writeHead(400).end("bad path\n");
    return;
  }
  fs.stat(file, (err, stat) => {
    if (err || !stat.isFile()) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    res.writeHead(200, {
      "Content-Type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream",
      "Content-Length": stat.size,
      "Last-Modified": stat.mtime.toUTCString(),
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    const stream = fs.createReadStream(file);
    stream.on("error", () => res.destroy());
    stream.pipe(res);
  });
}

export function startMirrorServer(opts: MirrorServerOptions): Promise<MirrorServer> {
  const root = path.resolve(opts.dir);
  if (!fs.existsSync(path.join(root, "debian", "dists"))) {
    return Promise.reject(
      new Error(`mirror server: dir ${root} holds no apt repository (expected ${path.join(root, "debian", "dists")}); pass LabImages.mirrorDir`),
    );
  }
  const host = opts.host ?? "127.0.0.1";
  const server = http.createServer((req, res) => serveFile(req, res, root));
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, host, () => {
      server.off("error", reject);
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${host}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
