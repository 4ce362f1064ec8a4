import { parseOptions } from "@fitloop/core";
import { z } from "zod";
import { imageDims, imageShapeSchema, type ImageDims } from "../augment/shape.js";
import { sampleX, type ArrayDataset } from "../dataset.js";
import { sizeOf } from "../validate.js";
import { crossSplitDuplicates, findDuplicates, type CrossSplitDuplicates, type Duplicates } from "./duplicates.js";
import { renderAscii } from "./render.js";
import { classBalance, featureStats, nonFinite, type ClassBalance, type FeatureStats, type NonFiniteCounts } from "./stats.js";

/** One sample drawn as text (image data only). */
export interface RenderedSample {
  readonly index: number;
  readonly label: string;
  readonly lines: readonly string[];
}

export interface SplitReport {
  readonly name: string;
  readonly size: number;
  readonly sampleShape: readonly number[];
  /** Class data: counts and imbalance. */
  readonly classes: ClassBalance | undefined;
  /** Regression data: statistics of the targets. */
  readonly targets: FeatureStats | undefined;
  readonly features: FeatureStats;
  readonly nonFinite: NonFiniteCounts;
  readonly duplicates: Duplicates;
  readonly samples: readonly RenderedSample[];
}

/** What to read before training: per split, then across splits, then the warnings that follow. */
export interface DataReport {
  readonly splits: readonly SplitReport[];
  readonly crossSplit: readonly CrossSplitDuplicates[];
  readonly warnings: readonly string[];
}

export interface DataReportOptions {
  /** Samples rendered per split (image data). Default 4 (one per class, in class order). */
  samples?: number;
  /** Read flat samples as images of this shape, e.g. `[28, 28, 1]`. */
  imageShape?: number[];
  /** Duplicate groups / pairs listed. Default 5. */
  maxExamples?: number;
}

const schema = z.strictObject({ samples: z.number().int().min(0).optional(), imageShape: imageShapeSchema, maxExamples: z.number().int().min(0).optional() });

/**
 * Looks at the data before training ("become one with the data"): class counts and imbalance,
 * per-feature mean/std/min/max, NaN/Inf, exact duplicates within a split and across splits
 * (leakage), and a few samples drawn as text. `formatReport` prints it.
 */
export function dataReport(data: ArrayDataset | Readonly<Record<string, ArrayDataset>>, options: DataReportOptions = {}): DataReport {
  const o = parseOptions("dataReport", schema, options);
  const splits = isDataset(data) ? { data } : data;
  const maxExamples = o.maxExamples ?? 5;
  const reports = Object.entries(splits).map(([name, ds]) => splitReport(name, ds, o.samples ?? 4, o.imageShape, maxExamples));
  const entries = Object.entries(splits);
  const crossSplit: CrossSplitDuplicates[] = [];
  for (let a = 0; a < entries.length; a++) {
    for (let b = a + 1; b < entries.length; b++) crossSplit.push(crossSplitDuplicates(entries[a]![0], entries[a]![1], entries[b]![0], entries[b]![1], maxExamples));
  }
  return { splits: reports, crossSplit, warnings: warningsFor(reports, crossSplit) };
}

function isDataset(v: unknown): v is ArrayDataset {
  return typeof v === "object" && v !== null && (v as ArrayDataset).x instanceof Float32Array;
}

function splitReport(name: string, ds: ArrayDataset, samples: number, imageShape: readonly number[] | undefined, maxExamples: number): SplitReport {
  const f = sizeOf(ds.sampleShape);
  const classes = ds.numClasses === undefined ? undefined : classBalance(ds);
  const targets = ds.numClasses === undefined ? featureStats(ds.y as Float32Array, Math.max(1, sizeOf(ds.labelShape))) : undefined;
  return {
    name,
    size: ds.size,
    sampleShape: ds.sampleShape,
    classes,
    targets,
    features: featureStats(ds.x, f),
    nonFinite: nonFinite(ds.x, f),
    duplicates: findDuplicates(ds, maxExamples),
    samples: renderSamples(ds, samples, imageShape),
  };
}

function tryDims(ds: ArrayDataset, imageShape: readonly number[] | undefined): ImageDims | undefined {
  try {
    const d = imageDims("dataReport", ds.sampleShape, imageShape);
    return d.h > 1 && d.w > 1 && (d.c === 1 || d.c === 3) ? d : undefined;
  } catch {
    return undefined; // not image data: nothing to draw
  }
}

/** The first sample of class 0, 1, 2, ... (or the first samples, without classes). */
function renderSamples(ds: ArrayDataset, count: number, imageShape: readonly number[] | undefined): RenderedSample[] {
  const dims = tryDims(ds, imageShape);
  if (!dims || count === 0) return [];
  const picks: number[] = [];
  if (ds.numClasses !== undefined) {
    for (let c = 0; c < ds.numClasses && picks.length < count; c++) {
      const i = ds.y.indexOf(c);
      if (i >= 0) picks.push(i);
    }
  } else for (let i = 0; i < Math.min(count, ds.size); i++) picks.push(i);
  return picks.map((i) => ({
    index: i,
    label: ds.numClasses !== undefined ? (ds.classNames?.[ds.y[i]!] ?? String(ds.y[i])) : String(ds.y[i]),
    lines: renderAscii(sampleX(ds, i), dims, { rowsPerLine: 2 }),
  }));
}

function warningsFor(splits: readonly SplitReport[], cross: readonly CrossSplitDuplicates[]): string[] {
  const w: string[] = [];
  for (const s of splits) {
    if (s.size === 0) w.push(`${s.name}: empty`);
    if (s.nonFinite.samples > 0) w.push(`${s.name}: ${s.nonFinite.samples} samples contain NaN/Inf (${s.nonFinite.nan} NaN, ${s.nonFinite.inf} Inf), first at sample ${s.nonFinite.firstIndex}`);
    if (s.classes?.missing.length) w.push(`${s.name}: no samples of class ${s.classes.missing.map((c) => s.classes!.names[c]).join(", ")}`);
    else if (s.classes && s.classes.imbalance >= 2) w.push(`${s.name}: classes are imbalanced (largest / smallest = ${s.classes.imbalance.toFixed(1)}); consider stratified splits, class weights or resampling`);
    if (s.duplicates.groups > 0) w.push(`${s.name}: ${s.duplicates.extraCopies} exact duplicate samples in ${s.duplicates.groups} groups`);
    if (s.duplicates.conflicting > 0) w.push(`${s.name}: ${s.duplicates.conflicting} duplicate groups have conflicting labels (mislabelled data)`);
    if (s.features.constant > 0) w.push(`${s.name}: ${s.features.constant} of ${s.features.mean.length} features are constant (they carry no information)`);
    const o = s.features.overall;
    if (Math.abs(o.mean) > 10 || o.max - o.min > 100) w.push(`${s.name}: features are not normalised (mean ${fmt(o.mean)}, range [${fmt(o.min)}, ${fmt(o.max)}]); scale them or use fitNormalizer(train)`);
  }
  for (const c of cross) if (c.count > 0) w.push(`${c.b}: ${c.count} samples also occur in ${c.a} (leakage: the model is evaluated on data it trained on)`);
  return w;
}

const fmt = (v: number) => (Math.abs(v) >= 1000 || (Math.abs(v) < 0.01 && v !== 0) ? v.toExponential(2) : v.toFixed(3));
