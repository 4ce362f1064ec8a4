import type { DataReport, SplitReport } from "./report.js";
import { sideBySide } from "./render.js";
import { extreme, type FeatureStats } from "./stats.js";

export interface FormatReportOptions {
  /** Features listed one by one before summarising. Default 8. */
  maxFeatures?: number;
  /** Draw the rendered samples. Default true. */
  samples?: boolean;
}

const num = (v: number) => (!Number.isFinite(v) ? String(v) : Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toFixed(3));

/** The report as text: the page to read before training. */
export function formatReport(report: DataReport, options: FormatReportOptions = {}): string {
  const out: string[] = ["DATA REPORT", ""];
  for (const s of report.splits) out.push(...splitSection(s, options), "");
  if (report.crossSplit.length) {
    out.push("Across splits (exact duplicate features):");
    for (const c of report.crossSplit) {
      const ex = c.examples.length ? `  e.g. ${c.examples.map(([i, j]) => `${c.a}[${i}] = ${c.b}[${j}]`).join(", ")}` : "";
      out.push(`  ${c.a} / ${c.b}: ${c.count}${ex}`);
    }
    out.push("");
  }
  out.push(report.warnings.length ? "Warnings:" : "Warnings: none");
  for (const w of report.warnings) out.push(`  ! ${w}`);
  return out.join("\n");
}

function splitSection(s: SplitReport, options: FormatReportOptions): string[] {
  const out = [`== ${s.name}: ${s.size} samples of shape [${s.sampleShape.join(", ")}]`];
  if (s.classes) {
    const total = s.classes.counts.reduce((a, b) => a + b, 0) || 1;
    out.push(`  classes (${s.classes.counts.length}), largest / smallest = ${num(s.classes.imbalance)}:`);
    const width = Math.max(...s.classes.names.map((n) => n.length));
    const top = Math.max(...s.classes.counts, 1);
    s.classes.counts.forEach((c, i) => {
      const bar = "#".repeat(Math.round((c / top) * 30));
      out.push(`    ${s.classes!.names[i]!.padEnd(width)}  ${String(c).padStart(7)}  ${((c / total) * 100).toFixed(1).padStart(5)}%  ${bar}`);
    });
  }
  if (s.targets) out.push(`  targets: mean ${num(s.targets.overall.mean)}, std ${num(s.targets.overall.std)}, min ${num(s.targets.overall.min)}, max ${num(s.targets.overall.max)}`);
  out.push(...featureSection(s.features, options.maxFeatures ?? 8));
  const nf = s.nonFinite;
  out.push(`  NaN: ${nf.nan}, Inf: ${nf.inf}${nf.samples ? ` (in ${nf.samples} samples, first: ${nf.firstIndex})` : ""}`);
  const d = s.duplicates;
  out.push(`  exact duplicates: ${d.extraCopies} extra copies in ${d.groups} groups${d.conflicting ? `, ${d.conflicting} with conflicting labels` : ""}`);
  for (const g of d.examples) out.push(`    samples ${g.indices.join(", ")}${g.conflictingLabels ? "  (labels differ)" : ""}`);
  if (options.samples !== false && s.samples.length) {
    out.push("  samples:");
    const lines = sideBySide(s.samples.map((p) => p.lines));
    // Rows blank in every image (the border) say nothing.
    const first = lines.findIndex((l) => l.trim() !== "");
    const last = lines.length - 1 - [...lines].reverse().findIndex((l) => l.trim() !== "");
    const width = Math.max(...s.samples.map((p) => p.lines[0]?.length ?? 0));
    out.push(`    ${s.samples.map((p) => `#${p.index} ${p.label}`.padEnd(width)).join("   ")}`.trimEnd());
    for (const line of first < 0 ? [] : lines.slice(first, last + 1)) out.push(`    ${line}`.trimEnd());
  }
  return out;
}

function featureSection(f: FeatureStats, max: number): string[] {
  const n = f.mean.length;
  const o = f.overall;
  const out = [`  features (${n}): overall mean ${num(o.mean)}, std ${num(o.std)}, min ${num(o.min)}, max ${num(o.max)}; ${f.constant} constant`];
  if (n > max) {
    // Too many to list (pixels): the spread of each statistic across features says more.
    const range = (a: ArrayLike<number>) => `${num(extreme(a, -1))} .. ${num(extreme(a, 1))}`;
    out.push(`    across features: mean ${range(f.mean)}, std ${range(f.std)}, min ${range(f.min)}, max ${range(f.max)}`);
    return out;
  }
  out.push(`${"    feature".padEnd(10)}${["mean", "std", "min", "max"].map((h) => h.padStart(11)).join("")}`);
  for (let j = 0; j < n; j++) out.push(`    [${j}]`.padEnd(10) + [f.mean[j]!, f.std[j]!, f.min[j]!, f.max[j]!].map((v) => num(v).padStart(11)).join(""));
  return out;
}
