import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunHistory, gradNormPlot, logScaleProblem, lossPlot, lrFinderPlot, lrPlot, metricPlot, pngSize, toPng, toSvg, writeReport, type HistoryData, type LrFinderResultLike } from "./index.js";
import { withoutShapeOpacity } from "./render.js";
import { axisLabels, axisValues, darkPixels, decodePng, lineMarks, pointsOf, shortRun } from "./helpers.fixture.js";

/** One real run shared by the tests: 5 epochs of 4 batches, with lr/momentum/grad_norm logged per step. */
const history = new RunHistory();
const run = shortRun([history]);

/** A boolean, so a failure prints the text looked for rather than the whole SVG. */
const has = (svg: string, text: string) => svg.includes(text) || (console.error(`not in the SVG: ${text}`), false);
const range = (values: readonly number[]) => [Math.min(...values), Math.max(...values)] as const;

describe("plots of a real run (vega-lite, rendered in Node)", () => {
  it("loss: training per batch, training epoch means and validation in ONE plot, with the values logged", async () => {
    const r = await run;
    const h = history.data();
    expect(h.steps["loss"]!.x).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const svg = await toSvg(lossPlot(h)!);
    expect(pointsOf(svg, "training (per batch)")).toBe(20);
    expect(pointsOf(svg, "training (epoch mean)")).toBe(5);
    expect(pointsOf(svg, "validation")).toBe(5);
    // the first vertex of each line is the first value logged (vega's aria label carries it)
    const byName = new Map(lineMarks(svg).map((l) => [l.series, l.label]));
    expect(Number(/loss: ([\d.e-]+)/.exec(byName.get("training (per batch)")!)![1])).toBeCloseTo(h.steps["loss"]!.y[0]!, 6);
    expect(Number(/loss: ([\d.e-]+)/.exec(byName.get("validation")!)![1])).toBeCloseTo(r.state.history[0]!.logs["val_loss"]!, 6);
    // the axes span the data: epochs 0..5, and the loss range
    const [xLabels, yLabels] = axisLabels(svg);
    expect(axisValues(xLabels!)).toEqual([0, 1, 2, 3, 4, 5]);
    const [lo, hi] = range([...h.steps["loss"]!.y, ...r.state.history.map((e) => e.logs["val_loss"]!)]);
    const ys = axisValues(yLabels!);
    expect(Math.min(...ys)).toBeLessThanOrEqual(lo + (hi - lo) * 0.25);
    expect(Math.max(...ys)).toBeGreaterThanOrEqual(hi - (hi - lo) * 0.25);
    expect(has(svg, ">Loss</text>")).toBe(true);
  });

  it("loss on a log scale: the same series, a log axis", async () => {
    await run;
    const svg = await toSvg(lossPlot(history, { scale: "log" })!);
    expect(pointsOf(svg, "training (per batch)")).toBe(20);
    expect(has(svg, "loss (log scale)")).toBe(true);
  });

  it("a log scale with some values <= 0 falls back to linear, every point drawn, and says why in the subtitle (logScaleProblem)", async () => {
    await run;
    const h = history.data();
    const loss = h.steps["loss"]!;
    // the same run with its loss shifted so that part of it is below zero
    const shift = loss.y[10]!;
    const shifted: HistoryData = { ...h, steps: { ...h.steps, loss: { ...loss, y: loss.y.map((y) => y - shift) } }, epochs: h.epochs.map((e) => ({ epoch: e.epoch, logs: { ...e.logs, loss: e.logs["loss"]! - shift, val_loss: e.logs["val_loss"]! - shift } })) };
    expect(logScaleProblem(h, "loss")).toBeUndefined();
    const problem = logScaleProblem(shifted, "loss")!;
    expect(problem).toMatch(/^\d+ of its 30 values are <= 0 \(the lowest -[\d.]+\), which a log scale cannot show$/);
    const svg = await toSvg(lossPlot(shifted, { scale: "log" })!);
    expect(has(svg, "loss (log scale)")).toBe(false);
    expect(has(svg, `Linear scale: ${problem.replace("<", "&lt;")}.`)).toBe(true);
    expect(pointsOf(svg, "training (per batch)")).toBe(20); // none dropped
    expect(pointsOf(svg, "validation")).toBe(5);
    // the standalone writer warns through the logger it is given
    const warned: string[] = [];
    const dir = mkdtempSync(join(tmpdir(), "fitloop-report-scale-"));
    try {
      const written = await writeReport(shifted, { dir, formats: ["svg"], lossScale: "log", logger: { warn: (m: string) => void warned.push(m) } });
      expect(written.map((p) => p.slice(dir.length + 1))).toContain("loss.svg");
      expect(warned).toEqual([`writeReport: lossScale "log": the loss plot uses a linear scale instead, because the loss has values <= 0 (${problem})`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("metric: accuracy (the first metric) for training and validation, in [0, 1]", async () => {
    const r = await run;
    const svg = await toSvg(metricPlot(history)!);
    expect(has(svg, ">Accuracy</text>")).toBe(true);
    expect(pointsOf(svg, "training (per batch)")).toBe(20);
    expect(pointsOf(svg, "validation")).toBe(5);
    const ys = axisValues(axisLabels(svg)[1]!);
    expect(Math.max(...ys)).toBeLessThanOrEqual(1.2);
    expect(Math.max(...ys)).toBeGreaterThanOrEqual(r.state.history.at(-1)!.logs["val_acc"]! - 0.1);
    expect(metricPlot(history, "no_such_key")).toBeUndefined();
  });

  it("learning rate and momentum: two panels, one vertex per step, the scheduled values", async () => {
    await run;
    const h = history.data();
    const svg = await toSvg(lrPlot(h)!);
    const lines = lineMarks(svg);
    expect(lines.map((l) => l.label.replace(/: [\d.]+$/, ""))).toEqual(["step (batch): 1; learning rate", "step (batch): 1; momentum (Adam's beta1)"]);
    expect(lines.map((l) => l.points)).toEqual([20, 20]);
    expect(h.steps["lr"]!.y[0]).toBeCloseTo(0.051, 9); // the cosine's start: 0.001 + 0.05
    expect(range(h.steps["momentum"]!.y)[0]).toBeCloseTo(0.85, 1);
  });

  it("gradient norm: every step's value and a moving average", async () => {
    await run;
    const svg = await toSvg(gradNormPlot(history)!);
    expect(pointsOf(svg, "per batch")).toBe(20);
    expect(pointsOf(svg, "moving average (0.9)")).toBe(20);
  });

  it("no data, no plot: an empty history gives undefined, not an empty chart", () => {
    const empty: HistoryData = { steps: {}, epochs: [], metrics: [], batchesPerEpoch: undefined, config: undefined, outcome: undefined, startedAt: undefined };
    expect([lossPlot(empty), metricPlot(empty), lrPlot(empty), gradNormPlot(empty)]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

/** A range-test curve shaped like fastai's: flat, a fall, a minimum, divergence; smoothed as fastai does. */
function finderCurve(verdict: string): LrFinderResultLike {
  const lr = Array.from({ length: 100 }, (_, i) => 1e-4 * 1e5 ** (i / 100));
  const loss = lr.map((l, i) => 2.3 - 1.6 / (1 + Math.exp(-3 * (Math.log10(l) + 2.5))) + (i > 88 ? Math.exp((i - 88) / 2) : 0) + 0.05 * Math.sin(i * 1.7));
  let avg = 0;
  const smoothed = loss.map((v, i) => (avg = 0.9 * avg + 0.1 * v) / (1 - 0.9 ** (i + 1)));
  const index = 40;
  return {
    curve: { lr, loss, smoothed },
    lr: lr[index],
    suggestions: { valley: { lr: lr[index]!, index, loss: smoothed[index]! }, minimum: { lr: lr[80]! / 10, index: 80, loss: smoothed[80]! } },
    confidence: { verdict, reasons: verdict === "ok" ? [] : ["the noise left in the smoothed curve is 14 % of its fall (more than 10 %)"] },
    stopMessage: "the smoothed loss diverged at step 99",
  };
}

describe("the LR-finder plot", () => {
  it("loss against a log learning rate, the smoothed curve, the suggestion marked with its confidence", async () => {
    const f = finderCurve("ok");
    const svg = await toSvg(lrFinderPlot(f)!);
    expect(pointsOf(svg, "smoothed loss")).toBe(100);
    expect(has(svg, 'aria-roledescription="rule mark"')).toBe(true);
    expect(has(svg, "valley 1.0e-2 (confidence: ok)")).toBe(true);
    expect(has(svg, "the smoothed loss diverged at step 99")).toBe(true);
    // decades on the x axis from 1e-4 to 1 (the sweep's range)
    const x = axisLabels(svg)[0]!.filter(Boolean);
    expect(x[0]).toBe("1e-4");
    expect(x).toContain("1");
  });

  it("a suggestion that is not to be trusted says so, with the reason", async () => {
    const svg = await toSvg(lrFinderPlot(finderCurve("noisy"))!);
    expect(has(svg, "valley 1.0e-2 (confidence: noisy)")).toBe(true);
    expect(has(svg, "14 % of its fall")).toBe(true);
    expect(has(svg, 'fill="#d62728"')).toBe(true); // red, not green
  });

  it("a curve of one point cannot be plotted", () => {
    expect(lrFinderPlot({ curve: { lr: [1e-3], loss: [1], smoothed: [1] }, lr: undefined })).toBeUndefined();
  });
});

describe("PNG (resvg)", () => {
  it("a real PNG of the SVG's size times the scale, whose axis labels and title are drawn (a font was found)", async () => {
    await run;
    const svg = await toSvg(lossPlot(history)!);
    const [w, h] = [Number(/width="(\d+)"/.exec(svg)![1]), Number(/height="(\d+)"/.exec(svg)![1])];
    const png = await toPng(svg, { scale: 2 });
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(pngSize(png)).toEqual({ width: 2 * w, height: 2 * h });
    // the title "Loss" sits in the top-left corner: dark glyph pixels there with fonts, none without
    const withFonts = decodePng(png);
    const noFonts = decodePng(await toPng(svg, { scale: 2, loadSystemFonts: false }));
    expect(darkPixels(withFonts, 0, 0, 200, 70)).toBeGreaterThan(200);
    expect(darkPixels(noFonts, 0, 0, 200, 70)).toBe(0);
  });

  it("survives what aborts resvg 2.6.2: shapes with their own opacity entirely off the canvas", async () => {
    const bad = `<svg xmlns="http://www.w3.org/2000/svg" width="100" height="50"><defs><clipPath id="c"><rect width="100" height="50"/></clipPath></defs><g clip-path="url(#c)"><path transform="translate(10,-900)" d="M1,0A1,1,0,1,1,-1,0A1,1,0,1,1,1,0" fill="#888" opacity="0.45"/><path d="M0,0L100,50" stroke="#000" opacity="1"/></g></svg>`;
    expect(withoutShapeOpacity(bad)).toContain('fill-opacity="0.45" stroke-opacity="0.45"/>');
    expect(withoutShapeOpacity(bad)).not.toMatch(/\sopacity=/);
    expect(pngSize(await toPng(bad))).toEqual({ width: 200, height: 100 });
  });

  it("pngSize refuses what is not a PNG", () => {
    expect(() => pngSize(readFileSync(new URL(import.meta.url)))).toThrow(/not a PNG/);
  });
});
