/**
 * The browser example, built by Vite as a user would build it and trained in a real headless
 * Chromium: core, the plugins and the data sets run there unchanged, on the cpu, wasm and webgl
 * backends. The page's outcome is read from `window.__fitloop` and the SVG it drew.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { chromium, type Browser } from "playwright-core";
import { systemTool } from "../../../scripts/system-tools.js";
import { MAX_EPOCHS, MIN_DELTA, PATIENCE } from "./config.js";
import type { PageState } from "./page-state.js";
import { serveStatic, type StaticServer } from "./static-server.fixture.js";

const EXAMPLE_ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"];
// WebGL without a GPU: Chromium's software renderer (SwiftShader), which it no longer picks on its own.
const SOFTWARE_WEBGL_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader"];
// Chromium's note that a read from the GPU waits for it: fitloop reads each step's logs once, by design.
const READBACK_NOTE = /^console warning: \[\.WebGL-\w+\]GL Driver Message \(OpenGL, Performance, \w+, \w+\): GPU stall due to ReadPixels$/;
const chromiumTool = systemTool("chromium");

interface PageRun {
  state: PageState;
  /** Page errors, console errors and warnings, requests that left 127.0.0.1. */
  problems: string[];
  /** The SVG as drawn: points per series, and the epoch the best-epoch marker is at. */
  drawn: { loss: number; valLoss: number; bestMarker: string | null };
  statusText: string;
}

/** Keras' rule (what EarlyStopping documents), replayed on the recorded val_loss: where it stops and which epoch is best. */
function replayEarlyStopping(valLoss: readonly number[]): { stoppedEpoch: number | undefined; bestEpoch: number } {
  let best = Number.POSITIVE_INFINITY;
  let bestEpoch = -1;
  let wait = 0;
  for (const [epoch, value] of valLoss.entries()) {
    wait += 1;
    if (value < best - MIN_DELTA) [best, bestEpoch, wait] = [value, epoch, 0];
    else if (wait >= PATIENCE && epoch > 0) return { stoppedEpoch: epoch, bestEpoch };
  }
  return { stoppedEpoch: undefined, bestEpoch };
}

describe.skipIf(!chromiumTool.path)(`the browser example, built with Vite, in headless Chromium${chromiumTool.note}`, () => {
  let outDir: string;
  let server: StaticServer;
  let browser: Browser;

  beforeAll(async () => {
    outDir = mkdtempSync(join(tmpdir(), "fitloop-example-browser-"));
    await build({ root: EXAMPLE_ROOT, mode: "production", logLevel: "warn", build: { outDir, emptyOutDir: true } });
    server = await serveStatic(outDir);
    browser = await chromium.launch({ executablePath: chromiumTool.path!, args: [...CHROMIUM_ARGS, ...SOFTWARE_WEBGL_ARGS] });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  /** Opens the built page with `query`, waits for the run to end, and gathers what it shows. */
  async function openPage(query: string, on: Browser = browser): Promise<PageRun> {
    const context = await on.newContext({ serviceWorkers: "block" });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => void problems.push(`pageerror: ${e.message}`));
    page.on("console", (m) => void (m.type() === "error" || m.type() === "warning" ? problems.push(`console ${m.type()}: ${m.text()}`) : undefined));
    // Nothing may leave the host: every request elsewhere is refused and reported.
    await page.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${server.origin}/`)) return route.continue();
      problems.push(`request left the host: ${url}`);
      return route.abort();
    });
    try {
      await page.goto(`${server.origin}/${query}`);
      await page.waitForFunction(() => window.__fitloop?.status === "done" || window.__fitloop?.status === "error", null, { timeout: 45_000 });
      const shown = await page.evaluate(() => ({
        state: window.__fitloop!,
        drawn: {
          loss: Number(document.querySelector('polyline[data-series="loss"]')?.getAttribute("data-points")),
          valLoss: document.querySelector('polyline[data-series="val_loss"]')?.getAttribute("points")?.trim().split(/\s+/).filter(Boolean).length ?? 0,
          bestMarker: document.querySelector('line[data-role="best-epoch"]')?.getAttribute("data-epoch") ?? null,
        },
        statusText: document.getElementById("status")?.textContent ?? "",
      }));
      return { ...shown, problems: problems.filter((p) => !READBACK_NOTE.test(p)) };
    } finally {
      await context.close();
    }
  }

  it("builds to a self-contained bundle: no node: import, tfjs-wasm's binaries are assets of the build", () => {
    const assets = readdirSync(join(outDir, "assets"));
    const js = assets.filter((f) => f.endsWith(".js")).map((f) => readFileSync(join(outDir, "assets", f), "utf8"));
    expect(js.length).toBeGreaterThan(0);
    for (const code of js) expect(code).not.toMatch(/(?:from\s*|import\s*\(\s*)["'`]node:/);
    expect(assets.filter((f) => f.endsWith(".wasm")).map((f) => f.replace(/-[\w-]{8}\.wasm$/, ".wasm")).sort()).toEqual([
      "tfjs-backend-wasm-simd.wasm",
      "tfjs-backend-wasm-threaded-simd.wasm",
      "tfjs-backend-wasm.wasm",
    ]);
  });

  it.each(["cpu", "wasm", "webgl"])("trains on %s until early stopping stops it, draws the curves, restores the best weights", async (backend) => {
    const started = server.requests.length;
    const run = await openPage(`?backend=${backend}`);
    const { state } = run;
    expect(run.problems).toEqual([]);
    expect(state.error).toBeUndefined();
    expect(state).toMatchObject({ status: "done", requestedBackend: backend, backend, maxEpochs: MAX_EPOCHS });
    if (backend === "webgl") expect(state.renderer).toBeTruthy();

    // training ran: many epochs, and the loss went well down
    const history = state.history;
    const loss = history.map((r) => r.logs["loss"]!);
    const valLoss = history.map((r) => r.logs["val_loss"]!);
    expect(history.length).toBeGreaterThan(PATIENCE + 1);
    expect(state.epochs).toBe(history.length);
    expect(Math.min(...loss.slice(-5))).toBeLessThan(loss[0]! / 3);
    expect(Math.min(...valLoss)).toBeLessThan(valLoss[0]! / 3);
    expect(history.at(-1)!.logs["val_acc"]).toBeGreaterThan(0.85);

    // stopped by EarlyStopping, as configured, before the budget ran out
    expect(state.outcomeStatus).toBe("stopped");
    expect(state.stopRequests).toHaveLength(1);
    const request = state.stopRequests![0]!;
    expect(request).toMatchObject({ by: "EarlyStopping", epoch: history.length - 1, details: { kind: "patience", monitor: "val_loss", wait: PATIENCE } });
    expect(state.stopReason).toBe(`EarlyStopping: ${request.reason}`);
    expect(request.reason).toMatch(new RegExp(`^val_loss did not improve by more than ${MIN_DELTA} for ${PATIENCE} epochs; best`));
    expect(state).toMatchObject({ stopKind: "patience", stoppedEpoch: history.length - 1 });
    expect(state.stoppedEpoch!).toBeLessThan(MAX_EPOCHS - 1);
    // the rule replayed on the recorded val_loss stops at the same epoch, with the same best epoch
    const replay = replayEarlyStopping(valLoss);
    expect(replay).toEqual({ stoppedEpoch: state.stoppedEpoch, bestEpoch: state.bestEpoch });
    expect(state.bestValue).toBe(valLoss[state.bestEpoch!]);
    // restoreBestWeights: the model after the run scores the best epoch's val_loss, not the last one's
    expect(state.restoredValLoss).toBeCloseTo(state.bestValue!, backend === "webgl" ? 2 : 4);
    expect(Math.abs(state.restoredValLoss! - state.bestValue!)).toBeLessThan(Math.abs(valLoss.at(-1)! - state.bestValue!) + 1e-6);

    // the curves: one point per epoch in each series, the best epoch marked; the status line says why it stopped
    expect(run.drawn).toEqual({ loss: history.length, valLoss: history.length, bestMarker: String(state.bestEpoch) });
    expect(run.statusText).toContain(`stopped on backend ${backend}`);
    expect(run.statusText).toContain("EarlyStopping: val_loss did not improve");

    // what the page fetched: its own files only; on wasm a binary of this build, served as application/wasm
    const fetched = server.requests.slice(started);
    expect(fetched.filter((r) => r.status !== 200)).toEqual([]);
    const wasmFetched = fetched.filter((r) => r.path.endsWith(".wasm"));
    if (backend === "wasm") expect(wasmFetched.map((r) => r.type)).toEqual(["application/wasm"]);
    else expect(wasmFetched).toEqual([]);
  });

  it("says clearly when a backend cannot run: an unknown name, or WebGL in a browser without it", async () => {
    const unknown = await openPage("?backend=tpu");
    expect(unknown.state).toMatchObject({ status: "error", requestedBackend: "tpu", error: 'unknown backend "tpu" in ?backend=; use one of cpu, webgl, wasm' });
    expect(unknown.statusText).toContain('error on backend tpu: unknown backend "tpu"');
    expect(unknown.problems).toEqual([]);

    const noWebgl = await chromium.launch({ executablePath: chromiumTool.path!, args: [...CHROMIUM_ARGS, "--disable-webgl", "--disable-3d-apis"] });
    try {
      const run = await openPage("?backend=webgl", noWebgl);
      expect(run.state.status).toBe("error");
      expect(run.state.error).toMatch(/^WebGL is not available in this browser .*use \?backend=cpu or \?backend=wasm$/);
      expect(run.state.history).toEqual([]);
      expect(run.statusText).toContain("error on backend webgl: WebGL is not available");
      expect(run.problems).toEqual([]);
    } finally {
      await noWebgl.close();
    }
  });
});
