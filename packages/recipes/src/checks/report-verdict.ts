import type { DataReport } from "@fitloop/datasets";
import { fmt, type Verdict, type VerdictStatus } from "./verdict.js";

export type ReportVerdict = Verdict<{ readonly warnings: readonly string[] }>;

/**
 * The data report as a verdict. Fails on NaN/Inf inputs (training would refuse them); warns on what
 * breaks learning or evaluation: a class with no sample, duplicates with conflicting labels (mislabelled
 * data), samples shared between splits (leakage), unnormalised features, imbalance. Constant features
 * and exact duplicates with the same label are counted but do not warn: MNIST's border pixels are
 * constant, and that is fine.
 */
export function reportVerdict(report: DataReport): ReportVerdict {
  const fails: string[] = [];
  const warns: string[] = [];
  for (const s of report.splits) {
    if (s.nonFinite.samples > 0) fails.push(`${s.name}: ${s.nonFinite.samples} samples contain NaN/Inf (first at ${s.nonFinite.firstIndex})`);
    if (s.classes?.missing.length) warns.push(`${s.name}: no samples of class ${s.classes.missing.map((c) => s.classes!.names[c]).join(", ")}`);
    else if (s.classes && s.classes.imbalance >= 2) warns.push(`${s.name}: classes imbalanced ${fmt(s.classes.imbalance)}:1`);
    if (s.duplicates.conflicting > 0) warns.push(`${s.name}: ${s.duplicates.conflicting} duplicate groups with conflicting labels`);
    const f = s.features.overall;
    if (Math.abs(f.mean) > 10 || f.max - f.min > 100) warns.push(`${s.name}: features not normalised (range [${fmt(f.min)}, ${fmt(f.max)}])`);
  }
  for (const c of report.crossSplit) if (c.count > 0) warns.push(`${c.b}: ${c.count} samples also in ${c.a} (leakage)`);
  const first = report.splits[0];
  const samples = report.splits.reduce((n, s) => n + s.size, 0);
  const numbers: Record<string, number> = {
    samples,
    splits: report.splits.length,
    nonFinite: report.splits.reduce((n, s) => n + s.nonFinite.samples, 0),
    duplicates: report.splits.reduce((n, s) => n + s.duplicates.extraCopies, 0),
    constantFeatures: first?.features.constant ?? 0,
    leaked: report.crossSplit.reduce((n, c) => n + c.count, 0),
    reportWarnings: report.warnings.length,
  };
  if (first?.classes) {
    numbers["classes"] = first.classes.counts.length;
    numbers["imbalance"] = first.classes.imbalance;
  }
  const status: VerdictStatus = fails.length ? "fail" : warns.length ? "warn" : "pass";
  const what = first?.classes ? `${first.classes.counts.length} classes (largest/smallest ${fmt(first.classes.imbalance)})` : "regression targets";
  const range = first ? `, inputs in [${fmt(first.features.overall.min)}, ${fmt(first.features.overall.max)}]` : "";
  const issues = [...fails, ...warns];
  const summary = `${samples} samples in ${report.splits.length} split${report.splits.length > 1 ? "s" : ""}, ${what}${range}${issues.length ? `; ${issues.slice(0, 2).join("; ")}${issues.length > 2 ? `; +${issues.length - 2} more` : ""}` : ""}`;
  return { check: "dataReport", status, summary, numbers, details: { warnings: report.warnings } };
}
