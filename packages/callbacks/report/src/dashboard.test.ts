import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request, type IncomingHttpHeaders } from "node:http";
import { connect } from "node:net";
import * as tf from "@tensorflow/tfjs-core";
import { OptionsError, Trainer, silentLogger, type Callback } from "@fitloop/core";
import { expectNoLeaks, expectRefused, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { chromium, type Browser } from "playwright-core";
import { systemTool } from "../../../../scripts/system-tools.js";
import { LiveDashboard, type HistoryData } from "./index.js";
import { recordingLogger, shortRun } from "./helpers.fixture.js";

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request to the dashboard with the given headers (Host defaults to the server's own). */
function get(url: string, path: string, headers: Record<string, string> = {}, method = "GET"): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: u.port, path, method, agent: false, headers: { host: u.host, ...headers } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

interface SseEvent {
  event: string;
  data: unknown;
}

/** A server-sent-event client: every event it got, and whether the server ended the stream. */
function listen(url: string): { events: SseEvent[]; ended: Promise<void>; close(): void } {
  const u = new URL(url);
  const events: SseEvent[] = [];
  let buffer = "";
  let close = () => undefined as void;
  const ended = new Promise<void>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port: u.port, path: "/events", headers: { host: u.host } }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let at: number;
        while ((at = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, at);
          buffer = buffer.slice(at + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) as unknown });
        }
      });
      res.on("end", () => resolve());
      res.on("close", () => resolve());
    });
    req.on("error", reject);
    req.end();
    close = () => void req.destroy();
  });
  return { events, ended, close: () => close() };
}

const until = async (what: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("LiveDashboard: the server", () => {
  it("listens on 127.0.0.1 only: another host is an options error that says why", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.10"]) expectRefused(() => new LiveDashboard({ host }), OptionsError, "INVALID_OPTIONS", ["host", '"127.0.0.1"', "no authentication"]);
    expectRefused(() => new LiveDashboard({ port: 70_000, intervalMs: 1, prot: 1 } as never), OptionsError, "INVALID_OPTIONS", ["port", "intervalMs", "prot"]);
  });

  it("serves the page with a strict CSP and answers only its own Host and Origin (DNS rebinding gets a 403)", async () => {
    const dash = new LiveDashboard({ keepOpen: true });
    const url = await dash.start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await get(url, "/");
    expect(page.status).toBe(200);
    const nonce = /script-src 'nonce-([^']+)'/.exec(String(page.headers["content-security-policy"]))![1]!;
    expect(page.headers["content-security-policy"]).toMatch(/default-src 'none'.*connect-src 'self'/);
    expect(page.body).toContain(`<script nonce="${nonce}">`);
    expect(page.body).not.toMatch(/\bsrc=|https?:\/\/(?!www\.w3\.org\/2000\/svg)/); // nothing loaded from anywhere (the SVG namespace is a name, not a fetch)
    const port = new URL(url).port;
    expect((await get(url, "/", { host: `localhost:${port}` })).status).toBe(200);
    expect((await get(url, "/", { host: `evil.example:${port}` })).status).toBe(403);
    expect((await get(url, "/events", { host: `127.0.0.1:${port}`, origin: "http://evil.example" })).status).toBe(403);
    expect((await get(url, "/", { host: "127.0.0.1:1" })).status).toBe(403);
    expect((await get(url, "/", {}, "POST")).status).toBe(405);
    expect((await get(url, "/nope")).status).toBe(404);
    expect(dash.stats.refused).toBe(3);
    await dash.close();
    await expect(get(url, "/")).rejects.toThrow(/ECONNREFUSED/);
  });

  it("streams a real run: the history on connect, every step's logs, the epochs with val_*, the end; then closes", async () => {
    const dash = new LiveDashboard({ intervalMs: 20 });
    const url = await dash.start();
    const client = listen(url);
    await until(() => client.events.length > 0);
    const log = recordingLogger();
    const r = await shortRun([dash], { epochs: 5, logger: log });
    await client.ended; // the server closed at afterFit
    const names = client.events.map((e) => e.event);
    expect(names[0]).toBe("history");
    expect(names.filter((n) => n === "start")).toHaveLength(1);
    expect(names.at(-1)).toBe("end");
    const steps = client.events.filter((e) => e.event === "steps").flatMap((e) => e.data as { x: number; logs: Record<string, number> }[]);
    expect(steps.map((s) => s.x)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(Object.keys(steps[0]!.logs).sort()).toEqual(["acc", "grad_norm", "loss", "lr", "momentum"]);
    const epochs = client.events.filter((e) => e.event === "epoch").map((e) => (e.data as { record: { epoch: number; logs: Record<string, number> } }).record);
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2, 3, 4]);
    expect(epochs[4]!.logs["val_loss"]).toBe(r.state.history[4]!.logs["val_loss"]);
    expect((client.events.at(-1)!.data as { outcome: { status: string }; closing: boolean })).toMatchObject({ outcome: { status: "completed" }, closing: true });
    expect(log.lines).toContainEqual({ level: "info", message: `LiveDashboard: live plots at ${url}` });
    expect(dash.url).toBeUndefined();
  });

  it("replays the whole history to a client that connects later (keepOpen)", async () => {
    const dash = new LiveDashboard({ keepOpen: true });
    await shortRun([dash], { epochs: 3 });
    const client = listen(dash.url!);
    await until(() => client.events.length > 0);
    const h = client.events[0]!.data as HistoryData;
    expect(h.steps["loss"]!.x).toHaveLength(12);
    expect(h.epochs).toHaveLength(3);
    expect(h.outcome!.status).toBe("completed");
    await dash.close();
    await client.ended;
  });

  it("a client that never reads cannot hold the step: its messages queue up to maxQueued, then the oldest are dropped", async () => {
    const dash = new LiveDashboard({ keepOpen: true, intervalMs: 10, maxQueued: 2 });
    const url = new URL(await dash.start());
    const socket = connect(Number(url.port), "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    socket.write(`GET /events HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    socket.pause(); // never reads: the kernel buffers fill, then the server's writes stop draining
    await until(() => dash.stats.clients === 1);
    const bulky = Array.from({ length: 200 }, (_, i) => `a_rather_long_log_key_so_that_the_stream_is_big_${"x".repeat(60)}_${i}`);
    const noisy: Callback = { name: "Noisy", afterStep: (ctx) => bulky.forEach((k) => ctx.log(k, ctx.state.step)) };
    const fx = tinyFixture({ samples: 64 });
    const t0 = performance.now();
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [noisy, dash], logger: silentLogger }).fit({ epochs: 60, train: fx.data(4) });
    const seconds = (performance.now() - t0) / 1000;
    expect(r.outcome.status).toBe("completed");
    expect(dash.stats.dropped).toBeGreaterThan(0);
    expect(seconds).toBeLessThan(30);
    socket.destroy();
    await dash.close();
    fx.dispose();
  });

  it("a busy port does not stop training: a warning, and the run goes on without the dashboard", async () => {
    const first = new LiveDashboard({ keepOpen: true });
    const port = Number(new URL(await first.start()).port);
    const log = recordingLogger();
    const r = await shortRun([new LiveDashboard({ port })], { epochs: 1, logger: log });
    expect(r.outcome.status).toBe("completed");
    expect(log.lines.filter((l) => l.level === "warn").map((l) => l.message)).toEqual([`LiveDashboard: could not listen on 127.0.0.1:${port}; training goes on without the dashboard`]);
    await first.close();
  });

  it("no tensor growth with a dashboard: a run, and every failure path (a throw in each hook, CancelFit)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const opt = tf.train.adam(0.01);
    const fitWith = (extra: Callback[]) => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", callbacks: [new LiveDashboard(), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
    await expectNoLeaks(() => fitWith([]), { warmup: 1, iterations: 2 });
    for (const { where, plugin } of failingPlugins()) {
      await expectNoLeaks(() => fitWith([plugin]).catch(() => undefined), { warmup: 1, iterations: 1 }).catch((e: unknown) => {
        throw new Error(`failure in ${where}: ${String(e)}`);
      });
    }
    fx.dispose();
  });
});

const browserTool = systemTool("chromium");

describe.skipIf(!browserTool.path)(`the dashboard page in a real browser${browserTool.note}`, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: browserTool.path!, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  });
  afterAll(async () => browser?.close());

  it("receives and plots live points while a real run trains, with no console error", async () => {
    const dash = new LiveDashboard({ intervalMs: 50 });
    const url = await dash.start();
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("console", (m) => void (m.type() === "error" || m.type() === "warning" ? problems.push(`${m.type()}: ${m.text()}`) : undefined));
    page.on("pageerror", (e) => void problems.push(`pageerror: ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "training");
    // a real run, slowed to a pace a person could watch (~15 ms a batch): 15 epochs of 4 batches
    const pace: Callback = { name: "Pace", afterBatch: () => new Promise((r) => setTimeout(r, 15)) };
    let done = false;
    const run = shortRun([dash, pace], { epochs: 15 }).finally(() => (done = true));
    const seen: number[] = [];
    while (!done) {
      seen.push(Number(await page.evaluate(() => document.body.dataset.points)));
      await new Promise((r) => setTimeout(r, 60));
    }
    const r = await run;
    expect(r.outcome.status).toBe("completed");
    const growing = [...new Set(seen)];
    expect(growing.length).toBeGreaterThanOrEqual(4); // the count rose several times while training ran
    expect(growing).toEqual([...growing].sort((a, b) => a - b));
    await page.waitForFunction(() => document.getElementById("status")?.textContent?.startsWith("run completed"));
    const final = await page.evaluate(() => ({
      panels: Array.from(document.querySelectorAll("figure")).map((f) => f.id),
      batchLoss: document.querySelector('#plot-loss polyline[data-series="training (per batch)"]')?.getAttribute("data-points"),
      validation: document.querySelector('#plot-loss polyline[data-series="validation"]')?.getAttribute("data-points"),
      lr: document.querySelector("#plot-lr polyline")?.getAttribute("data-points"),
      width: document.querySelector("#plot-loss svg")?.getBoundingClientRect().width,
    }));
    expect(final.panels).toEqual(["plot-loss", "plot-metric", "plot-lr", "plot-momentum", "plot-grad_norm"]);
    expect(final).toMatchObject({ batchLoss: "60", validation: "15", lr: "60" });
    expect(final.width).toBeGreaterThan(400);
    expect(problems).toEqual([]);
    await page.close();
  });
});
