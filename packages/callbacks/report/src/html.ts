import { historyData, type ConfigValues, type HistorySource, type RunConfig, type RunOutcome } from "./history.js";
import { label } from "./plots.js";

/** Escapes text for HTML content and attribute values: every string from logs and configuration goes through it. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A number as a person reads it: 4 significant digits, exponents for the very small and large. */
export function formatNumber(v: number | undefined): string {
  if (v === undefined) return "";
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? Number(v.toPrecision(4)).toExponential() : String(Number(v.toPrecision(4)));
}

/**
 * An SVG made safe to inline with others: vega numbers its clip paths from 1 in every SVG, so ids
 * are prefixed per plot (two plots would otherwise clip each other), and the namespace attributes
 * go (HTML does not need them, and the page then has no `http` string at all). Anything that can
 * run script is refused, though vega escapes every label: the page's CSP also forbids scripts.
 */
export function inlineSvg(svg: string, prefix: string): string {
  if (/<script|<foreignObject|\son[a-z]+\s*=|javascript:/i.test(svg)) throw new Error("refusing to inline an SVG with script content");
  const p = prefix.replace(/[^a-zA-Z0-9_-]/g, "_");
  return svg
    .replace(/^<svg\b[^>]*>/, (tag) => tag.replace(/\s+xmlns(:xlink)?="[^"]*"/g, ""))
    .replace(/\bid="([^"]+)"/g, `id="${p}-$1"`)
    .replace(/url\(#([^)]+)\)/g, `url(#${p}-$1)`)
    .replace(/href="#([^"]+)"/g, `href="#${p}-$1"`);
}

export interface HtmlPlot {
  /** File stem (`loss`) and anchor. */
  readonly name: string;
  readonly caption: string;
  readonly svg: string;
}

export interface HtmlReportOptions {
  readonly title?: string;
  readonly plots?: readonly HtmlPlot[];
}

const CSS = `
body{font-family:"DejaVu Sans","Liberation Sans",Helvetica,Arial,sans-serif;color:#222;margin:0;background:#f6f7f9;line-height:1.4}
main{max-width:1000px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #ddd;padding-bottom:4px}
.status{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:bold;color:#fff;background:#2a7d2a}
.status.stopped{background:#b7791f}.status.cancelled{background:#6b6b6b}.status.failed{background:#c0392b}
.meta{color:#555;font-size:14px}
table{border-collapse:collapse;background:#fff;font-size:14px;margin:6px 0}
th,td{border:1px solid #ddd;padding:4px 10px;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
th{background:#f0f2f5}
figure{background:#fff;border:1px solid #ddd;margin:0 0 16px;padding:8px}
figure svg{display:block;max-width:100%;height:auto}
figcaption{font-size:13px;color:#555}
pre{background:#fff;border:1px solid #ddd;padding:8px;white-space:pre-wrap;word-break:break-word}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:16px}
`;

function table(head: readonly string[], rows: readonly (readonly string[])[], numeric: ReadonlySet<number> = new Set()): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join("");
  const tr = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric.has(i) ? ' class="num"' : ""}>${c}</td>`).join("")}</tr>`).join("\n");
  return `<table><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

function keyValues(entries: readonly [string, string | number | boolean | undefined][]): string {
  const rows = entries.filter(([, v]) => v !== undefined).map(([k, v]) => [escapeHtml(k), escapeHtml(typeof v === "number" ? formatNumber(v) : v)]);
  return table(["", ""], rows).replace("<thead><tr><th></th><th></th></tr></thead>", "");
}

function outcomeSection(outcome: RunOutcome | undefined, epochsDone: number, config: RunConfig | undefined): string {
  if (!outcome) return `<p><span class="status cancelled">running</span> <span class="meta">the run had not ended when this report was written</span></p>`;
  const seconds = (outcome.durationMs / 1000).toFixed(1);
  const planned = config ? ` of ${config.epochs}` : "";
  const parts = [`<p><span class="status ${escapeHtml(outcome.status)}">${escapeHtml(outcome.status)}</span> <span class="meta">${epochsDone}${planned} epochs in ${seconds} s, finished ${escapeHtml(outcome.finishedAt)}</span></p>`];
  if (outcome.reason) parts.push(`<p><strong>Why it ended:</strong></p><pre id="stop-reason">${escapeHtml(outcome.reason)}</pre>`);
  if (outcome.stopRequests.length) {
    parts.push(table(["asked by", "reason", "epoch", "step"], outcome.stopRequests.map((r) => [escapeHtml(r.by), escapeHtml(r.reason), String(r.epoch + 1), String(r.step)]), new Set([2, 3])));
  }
  return parts.join("\n");
}

function metricsSection(source: HistorySource): string {
  const h = historyData(source);
  const last = h.epochs.at(-1);
  if (!last) return "<p>No epoch completed.</p>";
  const keys = Object.keys(last.logs).filter((k) => !k.startsWith("val_") || !(k.slice(4) in last.logs));
  const rows = keys.map((k) => [escapeHtml(k), escapeHtml(label(k) === k ? "" : label(k)), formatNumber(last.logs[k]), k.startsWith("val_") ? "" : formatNumber(last.logs[`val_${k}`])]);
  const out = [`<p class="meta">After epoch ${last.epoch + 1}.</p>`, table(["key", "", "training", "validation"], rows, new Set([2, 3]))];
  const withVal = h.epochs.filter((r) => Number.isFinite(r.logs["val_loss"]));
  if (withVal.length) {
    const best = withVal.reduce((a, b) => (b.logs["val_loss"]! < a.logs["val_loss"]! ? b : a));
    out.push(`<p class="meta">Lowest validation loss: ${formatNumber(best.logs["val_loss"])} after epoch ${best.epoch + 1}.</p>`);
  }
  return out.join("\n");
}

function configSection(config: RunConfig | undefined): string {
  if (!config) return "<p>Not recorded (the run did not start).</p>";
  const m = config.model;
  const layers = table(
    ["layer", "type", "output shape", "parameters"],
    m.layers.map((l) => [escapeHtml(l.name), escapeHtml(l.className), escapeHtml(l.outputShape), formatNumber(l.params)]),
    new Set([3]),
  );
  const o = config.optimizer;
  const optimizer = keyValues([
    ["kind", o.kind],
    ["class", o.className],
    ["learning rate at the start", o.learningRate],
    [o.momentumName ? `${o.momentumName} at the start` : "momentum", o.momentum ?? (o.momentumName ? undefined : "none")],
    ...Object.entries(o.config).filter(([k]) => k !== "learningRate" && k !== o.momentumName), // shown above
  ]);
  const training = keyValues([
    ["epochs", config.epochs],
    ["first epoch", config.initialEpoch > 0 ? config.initialEpoch + 1 : undefined],
    ["resumed", config.resumed ? "yes" : undefined],
    ["batch size", config.batchSize],
    ["batches per epoch", config.batchesPerEpoch],
    ["training samples", config.trainSize],
    ["validation samples", config.validation ? (config.validationSize ?? "yes") : "none"],
    ["backend", config.backend],
  ]);
  const extra = Object.keys(config.extra).length ? `<h3>More</h3>${keyValues(Object.entries(config.extra) as [string, ConfigValues[string]][])}` : "";
  return `<h3>Model: ${escapeHtml(m.name)}</h3>${layers}<p class="meta">${m.params.toLocaleString("en-US")} parameters, ${m.trainableParams.toLocaleString("en-US")} trainable.</p>
<div class="grid"><div><h3>Optimizer</h3>${optimizer}</div><div><h3>Training</h3>${training}</div></div>${extra}`;
}

/**
 * One self-contained HTML page: the outcome and stop reason, the final metrics, the plots (inline
 * SVG), the run configuration. No script and no external URL; a CSP that forbids scripts and any
 * fetch, so the file is safe to open whatever the logs contain.
 */
export function renderHtml(source: HistorySource, options: HtmlReportOptions = {}): string {
  const h = historyData(source);
  const title = options.title ?? "Training report";
  const plots = (options.plots ?? []).map((p) => `<figure id="plot-${escapeHtml(p.name)}">${inlineSvg(p.svg, p.name)}<figcaption>${escapeHtml(p.caption)}</figcaption></figure>`).join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${outcomeSection(h.outcome, h.epochs.length, h.config)}
<h2>Final metrics</h2>
${metricsSection(h)}
<h2>Plots</h2>
${plots || "<p>Nothing to plot yet.</p>"}
<h2>Run configuration</h2>
${configSection(h.config)}
<p class="meta">Started ${escapeHtml(h.startedAt ?? "?")}. Written by @fitloop/report.</p>
</main>
</body>
</html>
`;
}
