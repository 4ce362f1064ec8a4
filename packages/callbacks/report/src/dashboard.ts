import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ORDER, parseOptions, type Callback, type FitEndContext, type HookContext, type Logger, type Logs } from "@fitloop/core";
import { z } from "zod";
import { dashboardPage } from "./dashboard-page.js";
import { RecordsHistory, RunHistory, type HistoryEvent } from "./history.js";

const optionsSchema = z.strictObject({
  port: z.number({ message: "must be an integer in [0, 65535] (0: any free port)" }).int({ message: "must be an integer in [0, 65535]" }).min(0, { message: "must be in [0, 65535]" }).max(65535, { message: "must be in [0, 65535]" }).default(0),
  host: z
    .string()
    .refine((h) => h === "127.0.0.1" || h === "localhost", {
      message: 'must be "127.0.0.1" (or "localhost"): the dashboard has no authentication, so it listens on the loopback interface only and is not reachable from other machines',
    })
    .default("127.0.0.1"),
  keepOpen: z.boolean({ message: "must be a boolean" }).default(false),
  intervalMs: z.number({ message: "must be an integer in [10, 10000]" }).int().min(10, { message: "must be >= 10" }).max(10_000, { message: "must be <= 10000" }).default(250),
  maxQueued: z.number({ message: "must be an integer >= 1" }).int().min(1, { message: "must be >= 1" }).default(256),
  title: z.string().default("fitloop: training"),
  history: z.custom<RunHistory>((v) => v instanceof RunHistory, { message: "must be a RunHistory (registered in the trainer's callbacks too)" }).optional(),
  maxPoints: z.number().int().min(2).default(1000),
  name: z.string().min(1).optional(),
});

export type LiveDashboardOptions = z.input<typeof optionsSchema>;

interface Client {
  readonly res: ServerResponse;
  /** Messages waiting for the socket to drain (bounded by `maxQueued`). */
  queue: string[];
  congested: boolean;
}

/** Counters for what the dashboard could not deliver at once. */
export interface DashboardStats {
  readonly clients: number;
  /** Messages dropped for slow clients (their queue was full). */
  readonly dropped: number;
  /** Requests refused by the Host/Origin check. */
  readonly refused: number;
}

const sse = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

/**
 * A live view of the run in the browser: an HTTP server on 127.0.0.1 (never another interface: it
 * has no authentication) serving one self-contained page and a server-sent-event stream of the logs
 * (`/events`: the history so far on connect, then the new points). The hooks only queue points; a
 * timer sends them every `intervalMs`, and a slow client's messages queue up to `maxQueued` and the
 * oldest are dropped beyond that, so no client can hold the step. Requests whose Host or Origin is
 * not this server's own (a DNS-rebinding page) are refused. Started by `start()` or at `beforeFit`;
 * closed at `afterFit` unless `keepOpen` (then `close()` it).
 */
export class LiveDashboard extends RecordsHistory implements Callback {
  readonly name: string;
  readonly order = ORDER.LOG;
  readonly options: Readonly<z.output<typeof optionsSchema>>;
  private server: Server | undefined;
  private starting: Promise<string> | undefined;
  private port = 0;
  private readonly clients = new Set<Client>();
  private pending: { x: number; logs: Readonly<Logs> }[] = [];
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly nonce = randomBytes(16).toString("base64");
  private dropped = 0;
  private refused = 0;
  private logger: Logger | undefined;

  constructor(options: LiveDashboardOptions = {}) {
    const parsed = parseOptions("LiveDashboard", optionsSchema, options);
    super(parsed.history, () => new RunHistory({ maxPoints: parsed.maxPoints }));
    this.options = parsed;
    this.name = this.options.name ?? "LiveDashboard";
    this.history.subscribe((e) => this.onHistory(e));
  }

  /** `http://127.0.0.1:<port>/` once started. */
  get url(): string | undefined {
    return this.server ? `http://127.0.0.1:${this.port}/` : undefined;
  }

  get stats(): DashboardStats {
    return { clients: this.clients.size, dropped: this.dropped, refused: this.refused };
  }

  /** Starts the server (idempotent) and resolves to its URL: open it before `fit` to watch from the first step. */
  start(): Promise<string> {
    this.starting ??= new Promise<string>((resolve, reject) => {
      const server = createServer((req, res) => this.handle(req, res));
      server.once("error", (e) => {
        this.starting = undefined;
        reject(e);
      });
      server.listen(this.options.port, "127.0.0.1", () => {
        this.server = server;
        this.port = (server.address() as AddressInfo).port;
        this.timer = setInterval(() => this.flush(), this.options.intervalMs);
        this.timer.unref(); // the dashboard must not keep a finished program alive
        resolve(this.url!);
      });
    });
    return this.starting;
  }

  /** Ends every stream and stops the server. */
  async close(): Promise<void> {
    this.flush();
    clearInterval(this.timer);
    this.timer = undefined;
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    const server = this.server;
    this.server = undefined;
    this.starting = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  override async beforeFit(ctx: HookContext): Promise<void> {
    this.logger = ctx.logger;
    await super.beforeFit(ctx);
    try {
      const url = await this.start();
      ctx.logger.info(`${this.name}: live plots at ${url}`);
    } catch (e) {
      // a busy port must not stop the training: it runs without the dashboard
      ctx.logger.warn(`${this.name}: could not listen on 127.0.0.1:${this.options.port}; training goes on without the dashboard`, e);
    }
  }


  async afterFit(ctx: FitEndContext): Promise<void> {
    this.history.finish(ctx); // sends "end" (idempotent)
    if (!this.options.keepOpen) await this.close();
  }

  private onHistory(e: HistoryEvent): void {
    if (!this.server) return;
    if (e.type === "step") {
      this.pending.push({ x: e.x, logs: e.logs });
      // steps far faster than the timer: thin the live stream (a reconnect replays the full history)
      if (this.pending.length > 4 * this.options.maxPoints) this.pending = this.pending.filter((_, i) => i % 2 === 1);
      return;
    }
    this.flush(); // keep the order: the steps before an epoch record go first
    if (e.type === "start") this.broadcast(sse("start", { config: e.config, metrics: e.metrics }));
    else if (e.type === "epoch") this.broadcast(sse("epoch", { record: e.record, metrics: e.metrics, batchesPerEpoch: e.batchesPerEpoch }));
    else this.broadcast(sse("end", { outcome: e.outcome, closing: !this.options.keepOpen }));
  }

  private flush(): void {
    if (!this.pending.length) return;
    const points = this.pending;
    this.pending = [];
    if (this.clients.size) this.broadcast(sse("steps", points));
  }

  private broadcast(message: string): void {
    for (const c of this.clients) this.send(c, message);
  }

  private send(c: Client, message: string): void {
    if (c.congested) {
      c.queue.push(message);
      if (c.queue.length > this.options.maxQueued) {
        c.queue.shift();
        this.dropped++;
      }
      return;
    }
    if (!c.res.write(message)) {
      c.congested = true;
      c.res.once("drain", () => this.drain(c));
    }
  }

  private drain(c: Client): void {
    c.congested = false;
    while (c.queue.length && !c.congested) this.send(c, c.queue.shift()!);
  }

  /** Only this server's own names: a page on another origin (DNS rebinding) gets a 403. */
  private allowed(req: IncomingMessage): boolean {
    const own = [`127.0.0.1:${this.port}`, `localhost:${this.port}`];
    const host = req.headers.host;
    if (!host || !own.includes(host.toLowerCase())) return false;
    const origin = req.headers.origin;
    return origin === undefined || own.some((h) => origin.toLowerCase() === `http://${h}`);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    try {
      res.setHeader("X-Content-Type-Options", "nosniff");
      res.setHeader("Cache-Control", "no-store");
      if (!this.allowed(req)) {
        this.refused++;
        res.writeHead(403, { "Content-Type": "text/plain; charset=utf-8" }).end("forbidden: this dashboard answers requests for 127.0.0.1 or localhost on its own port only\n");
        return;
      }
      if (req.method !== "GET") {
        res.writeHead(405, { Allow: "GET", "Content-Type": "text/plain; charset=utf-8" }).end("method not allowed\n");
        return;
      }
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/") {
        res.writeHead(200, {
          "Content-Type": "text/html; charset=utf-8",
          "Content-Security-Policy": `default-src 'none'; script-src 'nonce-${this.nonce}'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; frame-ancestors 'none'`,
          "X-Frame-Options": "DENY",
          "Referrer-Policy": "no-referrer",
        });
        res.end(dashboardPage(this.options.title, this.nonce));
      } else if (path === "/events") {
        this.connect(res);
      } else {
        res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("not found\n");
      }
    } catch (e) {
      this.logger?.warn(`${this.name}: a request failed`, e);
      if (!res.headersSent) res.writeHead(500).end();
    }
  }

  private connect(res: ServerResponse): void {
    res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", Connection: "keep-alive", "X-Accel-Buffering": "no" });
    // steps not yet sent go to the others first: this client's replay already holds them
    this.flush();
    const client: Client = { res, queue: [], congested: false };
    this.clients.add(client);
    res.on("close", () => this.clients.delete(client));
    res.on("error", () => this.clients.delete(client));
    const data = this.history.data();
    this.send(client, `retry: 2000\n\n${sse("history", data)}`);
  }
}
