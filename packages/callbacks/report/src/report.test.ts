import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as tf from "@tensorflow/tfjs-core";
import { CancelFit, OptionsError, PluginError, Trainer, accuracyFor, resolveLoss, silentLogger, type Callback } from "@fitloop/core";
import { expectNoLeaks, expectRefused, failingPlugins, tinyFixture } from "@fitloop/core/testing";
import { chromium, type Browser } from "playwright-core";
import { systemTool } from "../../../../scripts/system-tools.js";
import { Report, RunHistory, pngSize, renderHtml, escapeHtml, writeReport } from "./index.js";
import { inlineSvg } from "./html.js";
import { pointsOf, recordingLogger, shortRun } from "./helpers.fixture.js";

const dirs: string[] = [];
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "fitloop-report-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const read = (dir: string, file: string) => readFileSync(join(dir, file), "utf8");
/** Text of the page without tags, whitespace collapsed: what a reader sees. */
const text = (html: string) => html.replace(/<style>[\s\S]*?<\/style>/, "").replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");

// Log keys and strings an attacker controls (a plugin, a data set's class names, a config file).
const XSS_KEY = `<script>window.__xss=1</script>`;
const XSS_IMG = `"><img src=x onerror="window.__xss=2">`;
const hostile: Callback = {
  name: `Hostile<b>`,
  afterGradients: (ctx) => ctx.log(XSS_KEY, tf.scalar(1)),
  afterEpoch: (ctx) => ctx.log(XSS_IMG, 2),
};

describe("Report", () => {
  it("writes every plot as SVG and PNG and one HTML report when the run completes", async () => {
    const dir = tempDir();
    const report = new Report({ dir, config: { plugins: "Schedule, Norm, Report", data: "tiny blobs" } });
    const r = await shortRun([report]);
    const files = ["loss", "metric", "lr", "grad-norm"].flatMap((f) => [`${f}.svg`, `${f}.png`]).concat("report.html");
    expect(report.written.map((p) => p.slice(dir.length + 1)).sort()).toEqual(files.sort());
    for (const f of files) expect(existsSync(join(dir, f)), f).toBe(true);
    expect(pngSize(readFileSync(join(dir, "loss.png"))).width).toBeGreaterThan(1000);
    const html = read(dir, "report.html");
    const seen = text(html);
    expect(seen).toContain("completed");
    expect(seen).toMatch(/5 of 5 epochs in [\d.]+ s/);
    // the final metrics table has the last epoch's numbers
    const last = r.state.history.at(-1)!.logs;
    expect(html).toContain(`<td>loss</td><td></td><td class="num">${String(Number(last["loss"]!.toPrecision(4)))}</td><td class="num">${String(Number(last["val_loss"]!.toPrecision(4)))}</td>`);
    expect(html).toMatch(/<td>acc<\/td><td>accuracy<\/td>/);
    // the configuration: layers, optimizer, training, the user's extra facts
    expect(seen).toMatch(/dense_Dense\d+ Dense \[None,8\] 40/);
    expect(seen).toContain("kind adam");
    expect(seen).toContain("learning rate at the start 0.05");
    expect(seen).toContain("batch size 16");
    expect(seen).toContain("plugins Schedule, Norm, Report");
    // the four plots inline, with their clip-path ids kept apart
    expect(html.match(/<figure id="plot-/g)).toHaveLength(4);
    const ids = [...html.matchAll(/\bid="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    // self-contained: no URL of any kind, no script
    expect(html).not.toMatch(/https?:|\/\/|<script|\bsrc=|\bhref=/i);
  });

  it("also when the run fails, is stopped or cancelled: the status and the reason are in the report", async () => {
    const cases: [string, Callback, RegExp][] = [
      ["failed", { name: "Boom", afterEpoch: (ctx) => void (ctx.state.epoch === 1 && (() => { throw new Error("the disk is full <now>"); })()) }, /the disk is full &#60;now&#62;/],
      ["stopped", { name: "Stopper", afterBatch: (ctx) => void (ctx.state.globalBatch === 6 && ctx.requestStop("val_loss did not improve")) }, /Stopper: val_loss did not improve/],
      ["cancelled", { name: "Cancel", afterBatch: (ctx) => void (ctx.state.globalBatch === 3 && (() => { throw new CancelFit("user pressed Ctrl-C"); })()) }, /user pressed Ctrl-C/],
    ];
    for (const [status, plugin, reason] of cases) {
      const dir = tempDir();
      const report = new Report({ dir, formats: ["html"] });
      const outcome = await shortRun([report, plugin]).then((r) => r.outcome.status, (e: unknown) => (e instanceof PluginError ? "failed" : String(e)));
      expect(outcome).toBe(status);
      const html = read(dir, "report.html");
      expect(html).toContain(`<span class="status ${status}">${status}</span>`);
      expect(html).toMatch(new RegExp(`<pre id="stop-reason">[^<]*${reason.source}`));
    }
  });

  it("every: N writes during the run too, in the background, and once more at the end", async () => {
    const dir = tempDir();
    const report = new Report({ dir, formats: ["svg"], plots: ["loss"], every: 1 });
    const seen: boolean[] = [];
    const peek: Callback = { name: "Peek", beforeEpoch: async (ctx) => void (ctx.state.epoch === 3 && (await new Promise((r) => setTimeout(r, 300)), seen.push(existsSync(join(dir, "loss.svg"))))) };
    await shortRun([report, peek], { epochs: 4 });
    expect(seen).toEqual([true]); // written before the run ended
    expect(report.errors).toBe(0);
  });

  it('lossScale: "log" with a loss <= 0: one warning naming why, and the loss plot on a linear scale (all 7 files), its subtitle saying so', async () => {
    const dir = tempDir();
    const log = recordingLogger();
    const fx = tinyFixture({ samples: 64 });
    // a loss with an offset (as a negative log-likelihood can be): below zero from the first step
    const ce = resolveLoss("sparseCategoricalCrossentropy");
    const shifted = (ys: tf.Tensor, preds: tf.Tensor) => tf.sub(ce(ys, preds), 5);
    const report = new Report({ dir, lossScale: "log", every: 1, plots: ["loss", "metric", "lr"] });
    const r = await new Trainer({ model: fx.model, optimizer: tf.train.adam(0.05), loss: shifted, metrics: [{ acc: accuracyFor("sparseCategoricalCrossentropy") }], callbacks: [report], logger: log }).fit({ epochs: 3, train: fx.data(16), validation: fx.data(32) });
    fx.dispose();
    expect(r.outcome.status).toBe("completed");
    expect(r.state.history.every((e) => e.logs["loss"]! < 0 && e.logs["val_loss"]! < 0)).toBe(true);
    expect(report.written.map((p) => p.slice(dir.length + 1)).sort()).toEqual(["loss.png", "loss.svg", "lr.png", "lr.svg", "metric.png", "metric.svg", "report.html"]);
    // once, though it wrote four times (every epoch and at the end)
    const warned = log.lines.filter((l) => l.level === "warn").map((l) => l.message);
    expect(warned).toEqual([expect.stringMatching(/^Report: lossScale "log": the loss plot uses a linear scale instead, because the loss has values <= 0 \(\d+ of its \d+ values are <= 0 \(the lowest -[\d.]+\), which a log scale cannot show\)$/)]);
    const svg = read(dir, "loss.svg");
    expect(svg).toContain("Linear scale: ");
    expect(svg).not.toContain("(log scale)");
    expect(pointsOf(svg, "training (per batch)")).toBe(12); // every batch drawn, none dropped
    expect(pointsOf(svg, "validation")).toBe(3);
    // a positive loss keeps its log scale, without a word
    const dir2 = tempDir();
    const log2 = recordingLogger();
    await shortRun([new Report({ dir: dir2, lossScale: "log", formats: ["svg"], plots: ["loss"] })], { epochs: 2, logger: log2 });
    expect(read(dir2, "loss.svg")).toContain("loss (log scale)");
    expect(log2.lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  it("a write error is reported once, and training and fit() go on", async () => {
    const parent = tempDir();
    writeFileSync(join(parent, "file"), "");
    const log = recordingLogger();
    const report = new Report({ dir: join(parent, "file", "report"), every: 1, formats: ["svg"], plots: ["loss"] });
    const r = await shortRun([report], { epochs: 4, logger: log });
    expect(r.outcome.status).toBe("completed");
    expect(report.errors).toBeGreaterThanOrEqual(2); // periodic writes and the final one all failed
    const errors = log.lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toMatch(/Report: could not write the report to .*file\/report; training goes on/);
    expect(String((report.firstError as Error).message)).toMatch(/ENOTDIR|EEXIST/);
  });

  it("log keys, plugin names and config values are escaped: nothing from the logs becomes markup", async () => {
    const dir = tempDir();
    await shortRun([new Report({ dir, config: { [XSS_KEY]: XSS_IMG } }), hostile], { epochs: 2 });
    const html = read(dir, "report.html");
    expect(html).not.toMatch(/<script|<img|onerror="/i);
    expect(html).toContain(escapeHtml(XSS_KEY));
    expect(html).toContain(escapeHtml(XSS_IMG));
  });

  it("writeReport renders a history it is given (e.g. after the run) and checks its options", async () => {
    const history = new RunHistory();
    await shortRun([history], { epochs: 2 });
    const dir = tempDir();
    expect((await writeReport(history, { dir, formats: ["png"], plots: ["lr"] })).map((p) => p.slice(dir.length + 1))).toEqual(["lr.png"]);
    expectRefused(() => new Report({ dir: "", formats: ["pdf"], every: -1, plots: ["roc"], lrFinder: { curve: 1 }, typo: true } as never), OptionsError, "INVALID_OPTIONS", ["dir", "formats", "every", "plots", "lrFinder", "typo"]);
  });

  it("inlineSvg refuses script and prefixes ids; escapeHtml covers quotes and backticks", () => {
    expect(() => inlineSvg(`<svg><script>alert(1)</script></svg>`, "p")).toThrow(/script/);
    expect(() => inlineSvg(`<svg><rect onload="x()"/></svg>`, "p")).toThrow(/script/);
    expect(inlineSvg(`<svg xmlns="http://www.w3.org/2000/svg"><clipPath id="clip1"/><g clip-path="url(#clip1)"/></svg>`, "loss")).toBe(`<svg><clipPath id="loss-clip1"/><g clip-path="url(#loss-clip1)"/></svg>`);
    expect(escapeHtml(`<a href='x' title="\`">&`)).toBe("&#60;a href=&#39;x&#39; title=&#34;&#96;&#34;&#62;&#38;");
  });

  it("no tensor growth with a Report: a run, and every failure path (a throw in each hook, CancelFit)", async () => {
    const fx = tinyFixture({ samples: 16 });
    const opt = tf.train.adam(0.01);
    const dir = tempDir();
    const fitWith = (extra: Callback[]) => new Trainer({ model: fx.model, optimizer: opt, loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks: [new Report({ dir, formats: ["svg"], plots: ["loss"] }), ...extra], logger: silentLogger }).fit({ epochs: 2, train: fx.data(8), validation: fx.data(16) });
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

describe.skipIf(!browserTool.path)(`the HTML report in a real browser${browserTool.note}`, () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: browserTool.path!, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"] });
  });
  afterAll(async () => browser?.close());

  it("renders with no console error and no request beyond the file; the plots are drawn; hostile keys stay text", async () => {
    const dir = tempDir();
    await shortRun([new Report({ dir, formats: ["html"], config: { [XSS_KEY]: XSS_IMG } }), hostile], { epochs: 3 });
    const page = await browser.newPage();
    const problems: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => void (m.type() === "error" || m.type() === "warning" ? problems.push(`${m.type()}: ${m.text()}`) : undefined));
    page.on("pageerror", (e) => void problems.push(`pageerror: ${e.message}`));
    page.on("request", (r) => void requests.push(r.url()));
    const url = pathToFileURL(join(dir, "report.html")).href;
    await page.goto(url);
    const state = await page.evaluate(() => ({
      xss: (window as unknown as { __xss?: number }).__xss,
      plots: Array.from(document.querySelectorAll("figure svg")).map((s) => {
        const r = s.getBoundingClientRect();
        return { w: Math.round(r.width), h: Math.round(r.height), lines: s.querySelectorAll('path[aria-roledescription="line mark"]').length };
      }),
      title: document.title,
      stop: document.querySelector(".status")?.textContent,
      keys: Array.from(document.querySelectorAll("td")).map((td) => td.textContent),
    }));
    expect(problems).toEqual([]);
    expect(requests).toEqual([url]);
    expect(state.xss).toBeUndefined();
    expect(state.stop).toBe("completed");
    expect(state.plots).toHaveLength(4);
    for (const p of state.plots) {
      expect(p.w).toBeGreaterThan(500);
      expect(p.h).toBeGreaterThan(250);
      expect(p.lines).toBeGreaterThan(0);
    }
    expect(state.keys).toContain(XSS_KEY); // shown as the text it is
    expect(state.keys).toContain(XSS_IMG);
    await page.close();
  });

  it("renderHtml of an empty history (a run that failed before its first batch) is still a valid page", async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("console", (m) => void (m.type() === "error" ? problems.push(m.text()) : undefined));
    await page.setContent(renderHtml({ steps: {}, epochs: [], metrics: [], batchesPerEpoch: undefined, config: undefined, outcome: undefined, startedAt: undefined }));
    expect(await page.textContent("main")).toContain("No epoch completed.");
    expect(problems).toEqual([]);
    await page.close();
  });
});
