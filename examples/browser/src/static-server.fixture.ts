/**
 * A tiny static file server for the browser test: the built example on 127.0.0.1, a free port, the
 * right MIME types (tfjs streams .wasm only when served as application/wasm), and a log of every
 * request, so the test can tell what the page fetched.
 */
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";
import type { AddressInfo } from "node:net";

const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".svg": "image/svg+xml",
};

export interface ServedRequest {
  readonly path: string;
  readonly status: number;
  readonly type: string | undefined;
}

export interface StaticServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly requests: ServedRequest[];
  close(): Promise<void>;
}

export async function serveStatic(root: string): Promise<StaticServer> {
  const requests: ServedRequest[] = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://127.0.0.1").pathname);
    const file = normalize(join(root, path.endsWith("/") ? `${path}index.html` : path));
    const reply = (status: number, type: string | undefined, body: Buffer | string) => {
      requests.push({ path, status, type });
      res.writeHead(status, { "content-type": type ?? "text/plain; charset=utf-8", "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return reply(405, undefined, "method not allowed");
    if (!file.startsWith(root + sep)) return reply(403, undefined, "outside the served directory");
    readFile(file).then(
      (body) => reply(200, MIME[extname(file)] ?? "application/octet-stream", body),
      () => reply(404, undefined, "not found"),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
