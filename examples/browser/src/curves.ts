/**
 * Live loss curves in plain SVG, and the user-written plugin that feeds them: any object with
 * hooks is a fitloop callback, so drawing at every epoch end takes one `afterEpoch`.
 */
import { ORDER, type Callback, type EpochRecord } from "@fitloop/core";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 320;
const PAD = { left: 48, right: 12, top: 12, bottom: 36 };
/** The series drawn: the log key, its legend and its colour. */
const SERIES = [
  { key: "loss", label: "training loss", color: "#1f77b4" },
  { key: "val_loss", label: "validation loss", color: "#d62728" },
] as const;

export interface CurvePlot {
  /** Redraws every series from the history (cheap: a few hundred points at most). */
  draw(history: readonly EpochRecord[]): void;
  /** Marks the epoch whose weights the run kept. */
  markBest(epoch: number): void;
}

/** Builds the plot inside `svg` (axes, one polyline per series, a legend). */
export function curvePlot(svg: SVGSVGElement, minEpochs: number): CurvePlot {
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.replaceChildren();
  const axes = add(svg, "g", { class: "axes", stroke: "#999", fill: "#555", "font-size": "11" });
  const lines = SERIES.map((s, i) => {
    add(svg, "text", { x: String(PAD.left + 10 + i * 140), y: String(PAD.top + 12), fill: s.color, "font-size": "12" }).textContent = s.label;
    return add(svg, "polyline", { fill: "none", stroke: s.color, "stroke-width": "1.5", "data-series": s.key, "data-points": "0" });
  });
  const best = add(svg, "line", { stroke: "#2ca02c", "stroke-dasharray": "4 3", visibility: "hidden", "data-role": "best-epoch" });
  const bestLabel = add(svg, "text", { fill: "#2ca02c", "font-size": "11", "text-anchor": "end", visibility: "hidden" });
  let scale = { x: (e: number) => e, y: (v: number) => v };

  return {
    draw(history) {
      const epochs = Math.max(minEpochs, history.length);
      const values = history.flatMap((r) => SERIES.map((s) => r.logs[s.key] ?? Number.NaN)).filter(Number.isFinite);
      const top = niceCeiling(Math.max(0.1, ...values));
      scale = {
        x: (e) => PAD.left + (e / Math.max(1, epochs - 1)) * (WIDTH - PAD.left - PAD.right),
        y: (v) => HEIGHT - PAD.bottom - (v / top) * (HEIGHT - PAD.top - PAD.bottom),
      };
      drawAxes(axes, epochs, top, scale);
      SERIES.forEach((s, i) => {
        const points = history.flatMap((r) => {
          const v = r.logs[s.key];
          return v !== undefined && Number.isFinite(v) ? [`${scale.x(r.epoch).toFixed(1)},${scale.y(v).toFixed(1)}`] : [];
        });
        lines[i]!.setAttribute("points", points.join(" "));
        lines[i]!.setAttribute("data-points", String(points.length));
      });
    },
    markBest(epoch) {
      const x = scale.x(epoch).toFixed(1);
      for (const [k, v] of Object.entries({ x1: x, x2: x, y1: String(PAD.top), y2: String(HEIGHT - PAD.bottom), visibility: "visible", "data-epoch": String(epoch) })) best.setAttribute(k, v);
      for (const [k, v] of Object.entries({ x: String(Number(x) - 4), y: String(PAD.top + 30), visibility: "visible" })) bestLabel.setAttribute(k, v);
      bestLabel.textContent = `best epoch ${epoch} (weights kept)`;
    },
  };
}

/** The plugin: redraw after every epoch, then let the browser paint before the next one. */
export function liveCurves(plot: CurvePlot, onEpoch: (history: readonly EpochRecord[]) => void): Callback {
  return {
    name: "LiveCurves",
    order: ORDER.LOG,
    afterEpoch: async (ctx) => {
      plot.draw(ctx.state.history);
      onEpoch(ctx.state.history);
      // one macrotask: the cpu and wasm backends never give the page a turn to paint otherwise
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
  };
}

function drawAxes(g: SVGGElement, epochs: number, top: number, scale: { x: (e: number) => number; y: (v: number) => number }): void {
  g.replaceChildren();
  const bottom = HEIGHT - PAD.bottom;
  add(g, "line", { x1: String(PAD.left), x2: String(WIDTH - PAD.right), y1: String(bottom), y2: String(bottom) });
  add(g, "line", { x1: String(PAD.left), x2: String(PAD.left), y1: String(PAD.top), y2: String(bottom) });
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    add(g, "text", { x: String(PAD.left - 6), y: String(scale.y(v) + 4), "text-anchor": "end", stroke: "none" }).textContent = v.toFixed(2);
  }
  const step = Math.max(1, Math.ceil(epochs / 8 / 5) * 5);
  for (let e = 0; e < epochs; e += step) {
    add(g, "text", { x: String(scale.x(e)), y: String(bottom + 14), "text-anchor": "middle", stroke: "none" }).textContent = String(e);
  }
  add(g, "text", { x: String((PAD.left + WIDTH - PAD.right) / 2), y: String(bottom + 30), "text-anchor": "middle", stroke: "none" }).textContent = "epoch";
}

/** 1, 2 or 5 times a power of ten, at or above `v`: round numbers on the y axis. */
function niceCeiling(v: number): number {
  const p = 10 ** Math.floor(Math.log10(v));
  return ([1, 2, 5, 10].find((m) => m * p >= v) ?? 10) * p;
}

function add<K extends keyof SVGElementTagNameMap>(parent: Element, tag: K, attrs: Record<string, string>): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  parent.appendChild(el);
  return el;
}
