import { escapeHtml } from "./html.js";

/**
 * The dashboard's client: an EventSource on /events and small SVG line plots drawn with DOM calls
 * (text goes in through textContent only: log keys are user data). No library, no CDN. Kept as
 * plain ES2020 in a string (no backticks inside), served with a per-server CSP nonce.
 */
const CLIENT = String.raw`
"use strict";
var NS = "http://www.w3.org/2000/svg";
var COLORS = { batch: "#9ecae9", train: "#1f77b4", val: "#ff7f0e", other: "#2ca02c" };
var S = { steps: {}, epochs: [], metrics: [], bpe: null, outcome: null };
var MAX = 4000;
function reset() { S = { steps: {}, epochs: [], metrics: [], bpe: null, outcome: null }; }
function pushStep(k, x, y) {
  if (typeof y !== "number") return;
  var a = S.steps[k] || (S.steps[k] = []);
  a.push([x, y]);
  if (a.length > MAX) S.steps[k] = a.filter(function (_, i) { return i % 2 === 0; });
}
function setStatus(text) { document.getElementById("status").textContent = text; }
var es = new EventSource("/events");
es.addEventListener("history", function (e) {
  var h = JSON.parse(e.data);
  reset();
  S.metrics = h.metrics; S.bpe = h.batchesPerEpoch; S.epochs = h.epochs; S.outcome = h.outcome;
  Object.keys(h.steps).forEach(function (k) { var s = h.steps[k]; s.x.forEach(function (x, i) { pushStep(k, x, s.y[i]); }); });
  setStatus(h.outcome ? "run " + h.outcome.status : "training");
  draw();
});
es.addEventListener("start", function (e) { var d = JSON.parse(e.data); reset(); S.metrics = d.metrics; setStatus("training"); draw(); });
es.addEventListener("steps", function (e) {
  JSON.parse(e.data).forEach(function (p) { Object.keys(p.logs).forEach(function (k) { pushStep(k, p.x, p.logs[k]); }); });
  draw();
});
es.addEventListener("epoch", function (e) {
  var d = JSON.parse(e.data);
  S.metrics = d.metrics; if (d.batchesPerEpoch) S.bpe = d.batchesPerEpoch;
  S.epochs = S.epochs.filter(function (r) { return r.epoch !== d.record.epoch; }).concat([d.record]);
  draw();
});
es.addEventListener("end", function (e) {
  var d = JSON.parse(e.data);
  S.outcome = d.outcome;
  setStatus("run " + d.outcome.status + (d.outcome.reason ? ": " + d.outcome.reason : ""));
  if (d.closing) es.close();
  draw();
});
es.onerror = function () { if (!S.outcome) setStatus("disconnected; retrying"); };

var pending = false;
function draw() { if (!pending) { pending = true; requestAnimationFrame(function () { pending = false; render(); }); } }
function el(name, attrs, parent) {
  var n = document.createElementNS(NS, name);
  Object.keys(attrs).forEach(function (k) { n.setAttribute(k, String(attrs[k])); });
  if (parent) parent.appendChild(n);
  return n;
}
function fmt(v) { var a = Math.abs(v); return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(1) : String(Number(v.toPrecision(3))); }
function trainVal(key) {
  var bpe = S.bpe, out = [];
  if (S.steps[key]) out.push({ name: "training (per batch)", color: COLORS.batch, width: 1, pts: S.steps[key].map(function (p) { return [bpe ? p[0] / bpe : p[0], p[1]]; }) });
  var tr = [], va = [];
  S.epochs.forEach(function (r) {
    if (typeof r.logs[key] === "number") tr.push([r.epoch + (bpe ? 0.5 : 1), r.logs[key]]);
    if (typeof r.logs["val_" + key] === "number") va.push([r.epoch + 1, r.logs["val_" + key]]);
  });
  if (tr.length) out.push({ name: "training (epoch mean)", color: COLORS.train, width: 2.5, pts: tr, dots: true });
  if (va.length) out.push({ name: "validation", color: COLORS.val, width: 2.5, pts: va, dots: true });
  return { series: out, x: bpe ? "epoch" : "batch" };
}
function steps(key, color) { return { series: S.steps[key] ? [{ name: key, color: color, width: 1.5, pts: S.steps[key] }] : [], x: "step (batch)" }; }
function panels() {
  var metric = (S.metrics || []).filter(function (m) { return m !== "loss"; })[0];
  var list = [["loss", "Loss", trainVal("loss")]];
  if (metric) list.push(["metric", metric === "acc" || metric === "accuracy" ? "Accuracy" : metric, trainVal(metric)]);
  list.push(["lr", "Learning rate", steps("lr", COLORS.train)], ["momentum", "Momentum (or beta1)", steps("momentum", COLORS.val)], ["grad_norm", "Gradient norm", steps("grad_norm", COLORS.other)]);
  return list;
}
function render() {
  var root = document.getElementById("plots"), total = 0;
  panels().forEach(function (p) {
    var id = "plot-" + p[0], data = p[2], box = document.getElementById(id);
    var n = data.series.reduce(function (s, d) { return s + d.pts.length; }, 0);
    if (!n) { if (box) box.remove(); return; }
    if (!box) { box = document.createElement("figure"); box.id = id; }
    root.appendChild(box); // in panel order, also for a panel whose data came late (the metric)
    box.replaceChildren();
    var h = document.createElement("figcaption"); h.textContent = p[1]; box.appendChild(h);
    box.appendChild(plot(data));
    total += n;
  });
  document.body.dataset.points = String(total);
}
/** About five round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten), as d3 picks them. */
function ticks(lo, hi) {
  var raw = (hi - lo) / 5, mag = Math.pow(10, Math.floor(Math.log10(raw))), r = raw / mag;
  var step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag, out = [];
  for (var v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}
function plot(data) {
  var W = 460, H = 240, L = 58, R = 12, T = 10, B = 58;
  var svg = el("svg", { width: W, height: H, viewBox: "0 0 " + W + " " + H });
  var xs = [], ys = [];
  data.series.forEach(function (s) { s.pts.forEach(function (p) { if (isFinite(p[1])) { xs.push(p[0]); ys.push(p[1]); } }); });
  var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs), y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
  if (data.x === "epoch") x0 = 0;
  if (x1 === x0) x1 = x0 + 1; if (y1 === y0) { y1 += Math.abs(y1) * 0.05 || 1; y0 -= Math.abs(y0) * 0.05 || 1; }
  var xt = ticks(x0, x1), yt = ticks(y0, y1);
  x0 = Math.min(x0, xt[0]); x1 = Math.max(x1, xt[xt.length - 1]); y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]);
  var sx = function (x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  var sy = function (y) { return T + (1 - (y - y0) / (y1 - y0)) * (H - T - B); };
  el("rect", { x: L, y: T, width: W - L - R, height: H - T - B, fill: "#fff", stroke: "#ccc" }, svg);
  yt.forEach(function (y) {
    el("line", { x1: L, x2: W - R, y1: sy(y), y2: sy(y), stroke: "#eee" }, svg);
    el("text", { x: L - 6, y: sy(y) + 4, "text-anchor": "end", "font-size": 11 }, svg).textContent = fmt(y);
  });
  xt.forEach(function (x) {
    el("line", { x1: sx(x), x2: sx(x), y1: T, y2: H - B, stroke: "#f2f2f2" }, svg);
    el("text", { x: sx(x), y: H - B + 16, "text-anchor": "middle", "font-size": 11 }, svg).textContent = fmt(x);
  });
  el("text", { x: (L + W - R) / 2, y: H - B + 32, "text-anchor": "middle", "font-size": 12 }, svg).textContent = data.x;
  var lx = L;
  data.series.forEach(function (s) {
    var pts = s.pts.filter(function (p) { return isFinite(p[1]); }).map(function (p) { return sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1); });
    el("polyline", { points: pts.join(" "), fill: "none", stroke: s.color, "stroke-width": s.width, "data-series": s.name, "data-points": pts.length }, svg);
    if (s.dots) s.pts.forEach(function (p) { el("circle", { cx: sx(p[0]), cy: sy(p[1]), r: 3, fill: s.color }, svg); });
    el("rect", { x: lx, y: H - 14, width: 14, height: 4, fill: s.color }, svg);
    var t = el("text", { x: lx + 18, y: H - 9, "font-size": 11 }, svg); t.textContent = s.name;
    lx += 30 + s.name.length * 6.2;
  });
  return svg;
}
`;

export function dashboardPage(title: string, nonce: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:"DejaVu Sans","Liberation Sans",Helvetica,Arial,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{padding:12px 20px;background:#fff;border-bottom:1px solid #ddd}h1{font-size:20px;margin:0}
#status{color:#555;font-size:14px}
#plots{display:flex;flex-wrap:wrap;gap:14px;padding:16px}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px}figcaption{font-weight:bold;font-size:14px;padding:2px 4px}
svg{display:block;font-family:inherit}
</style>
</head>
<body data-points="0">
<header><h1>${escapeHtml(title)}</h1><div id="status">connecting</div></header>
<div id="plots"></div>
<script nonce="${nonce}">${CLIENT}</script>
</body>
</html>
`;
}
