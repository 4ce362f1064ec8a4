import type { InitEntry, InitScheme } from "./initialize.js";

/** 4 significant digits; exponent notation below 1e-3. */
const num = (v: number): string => (v !== 0 && Math.abs(v) < 1e-3 ? v.toExponential(3) : String(Number(v.toPrecision(4))));

/** The report of `initialize` as a table: variable, shape, what it was set to, fans, std, why. */
export function formatInitReport(entries: readonly InitEntry[], scheme: InitScheme, seed: number): string {
  const rows = entries.map((e) => [
    e.variable,
    e.shape.join("x") || "scalar",
    e.init === "kept" || !e.distribution ? e.init : `${e.init} ${e.distribution}`,
    e.fanIn !== undefined ? `${e.fanIn}/${e.fanOut}` : "",
    e.std !== undefined ? num(e.std) : "",
    e.why,
  ]);
  const header = ["variable", "shape", "init", "fan in/out", "std", "why"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  const changed = entries.filter((e) => e.init !== "kept").length;
  const layers = new Set(entries.map((e) => e.layer)).size;
  return [`initialize: scheme ${scheme}, seed ${seed}: ${changed} of ${entries.length} variables set in ${layers} layer${layers === 1 ? "" : "s"}`, line(header), ...rows.map(line)].join("\n");
}
