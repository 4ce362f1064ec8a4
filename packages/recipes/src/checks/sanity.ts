import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { FitloopError, OptionsError, parseOptions, permutation, Rng, ShapeMismatchError } from "@fitloop/core";
import { dataReport, formatReport, subset, type ArrayDataset, type DataReport, type DataReportOptions } from "@fitloop/datasets";
import { z } from "zod";
import { inputIndependentBaseline, inputIndependentBaselineSchema, type InputIndependentBaselineOptions } from "./baseline.js";
import { checkInputs, checkModel, hasNonFinite, lossSchema, outputWidth, seedSchema, type CheckData, type CheckLoss } from "./common.js";
import { checkGradients, checkGradientsSchema, type CheckGradientsOptions } from "./gradients.js";
import { checkBatchIndependence, checkBatchIndependenceSchema, type CheckBatchIndependenceOptions } from "./independence.js";
import { verifyInitLoss, verifyInitLossSchema, type VerifyInitLossOptions } from "./init-loss.js";
import { overfitOneBatch, overfitOneBatchSchema, type OverfitOneBatchOptions } from "./overfit.js";
import { reportVerdict } from "./report-verdict.js";
import { formatVerdicts, worstStatus, type AnyVerdict, type VerdictStatus } from "./verdict.js";

export const CHECK_NAMES = ["dataReport", "verifyInitLoss", "overfitOneBatch", "inputIndependentBaseline", "checkBatchIndependence", "checkGradients"] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

type Without<T, K extends keyof T> = Omit<T, K>;
export interface SanityCheckOptions {
  loss: CheckLoss;
  /** Samples drawn (seeded) from the training split for the checks. Default 1024. */
  samples?: number;
  /** Seeds the draw and every check. Default 0. */
  seed?: number;
  /** Checks to leave out. */
  skip?: readonly CheckName[];
  /** Where the verdict table goes: `true` (default) console.log, `false` nowhere, or a function. */
  print?: boolean | ((text: string) => void);
  /** Print the full data report (class counts, feature statistics, drawn samples) before the table. Default false. */
  printReport?: boolean;
  report?: DataReportOptions;
  initLoss?: Without<VerifyInitLossOptions, "loss">;
  overfit?: Without<OverfitOneBatchOptions, "loss">;
  baseline?: Without<InputIndependentBaselineOptions, "loss" | "seed">;
  independence?: Without<CheckBatchIndependenceOptions, "seed">;
  gradients?: Without<CheckGradientsOptions, "loss" | "seed">;
}

export interface SanityResult {
  /** One verdict per check that ran, in order: the data report first. */
  readonly verdicts: readonly AnyVerdict[];
  readonly report: DataReport | undefined;
  /** The worst status. */
  readonly status: VerdictStatus;
  /** The printed table. */
  readonly text: string;
}

const schema = z.strictObject({
  loss: lossSchema,
  samples: z.number().int({ message: "must be an integer >= 8" }).min(8, { message: "must be >= 8" }).default(1024),
  seed: seedSchema,
  skip: z.array(z.enum(CHECK_NAMES, { message: `must name checks: ${CHECK_NAMES.join(", ")}` })).default([]),
  print: z.union([z.boolean(), z.custom<(text: string) => void>((v) => typeof v === "function")], { message: "must be a boolean or a function (text) => void" }).default(true),
  printReport: z.boolean().default(false),
  // the checks' own options, checked here so a typo fails before anything runs
  report: z.record(z.string(), z.unknown()).optional(),
  initLoss: verifyInitLossSchema.omit({ loss: true }).optional(),
  overfit: overfitOneBatchSchema.omit({ loss: true }).optional(),
  baseline: inputIndependentBaselineSchema.omit({ loss: true, seed: true }).optional(),
  independence: checkBatchIndependenceSchema.omit({ seed: true }).optional(),
  gradients: checkGradientsSchema.omit({ loss: true, seed: true }).optional(),
});

/**
 * Karpathy's recipe before training, in one call: the data report (step one: look at the data), then
 * init loss, overfit one batch, input-independent baseline, batch independence and a gradient check,
 * on `samples` samples drawn (seeded) from the training split, with small budgets (an MLP on MNIST
 * takes a few seconds on wasm). Prints a table and returns the verdicts with their numbers. The model
 * is used in place and put back bit for bit after every check; nothing is trained for real.
 * `data` is one data set or splits (`{ train, validation, test }`: all are reported, the checks use `train`).
 */
export async function sanityCheck(model: tfl.LayersModel, data: ArrayDataset | Readonly<Record<string, ArrayDataset>>, options: SanityCheckOptions): Promise<SanityResult> {
  const o = parseOptions("sanityCheck", schema, options);
  const splits: Readonly<Record<string, ArrayDataset>> = isDataset(data) ? { data } : typeof data === "object" && data !== null ? data : {};
  const trainName = splits["train"] ? "train" : Object.keys(splits)[0];
  const train = trainName === undefined ? undefined : splits[trainName];
  const notData = Object.keys(splits).filter((k) => !isDataset(splits[k]));
  if (notData.length && train && isDataset(train)) throw new OptionsError("sanityCheck", notData.map((k) => ({ path: `data.${k}`, message: "must be an ArrayDataset" })));
  if (!train || !isDataset(train)) throw new OptionsError("sanityCheck", [{ path: "data", message: "must be an ArrayDataset or splits of ArrayDatasets such as { train, validation }" }]);
  // the model before any work (the data report can take a while): a typed error naming it
  checkModel("sanityCheck", model);
  const skip = new Set<CheckName>(o.skip);
  const verdicts: AnyVerdict[] = [];
  let report: DataReport | undefined;
  if (!skip.has("dataReport")) {
    report = dataReport(splits, options.report ?? {});
    verdicts.push(reportVerdict(report));
  }
  const batch = drawTensors(model, train, o.loss, Math.min(o.samples, train.size), o.seed);
  try {
    checkInputs("sanityCheck", model, batch, true, o.loss);
    const seed = o.seed;
    // NaN/Inf in the data make every check's verdict about the NaN, each with its own wrong cause
    // ("ignores its inputs", "shuffled labels"): the checks are skipped with the reason instead
    const bad = [hasNonFinite(batch.xs) ? "inputs" : "", hasNonFinite(batch.ys) ? "labels" : ""].filter(Boolean);
    const nonFinite = bad.length > 0 || (report?.splits.find((s) => s.name === trainName)?.nonFinite.samples ?? 0) > 0;
    if (nonFinite) {
      const what = bad.length ? `the drawn samples' ${bad.join(" and ")} contain NaN/Inf` : "the training split contains NaN/Inf";
      if (!report) verdicts.push({ check: "nonFiniteData", status: "fail", summary: `${what}: fix the data before training`, numbers: {} });
      for (const name of CHECK_NAMES) if (name !== "dataReport" && !skip.has(name)) verdicts.push({ check: name, status: "warn", summary: `skipped: ${what} (see ${report ? "dataReport" : "nonFiniteData"}); fix the data first`, numbers: {} });
    }
    const run = async (name: CheckName, fn: () => AnyVerdict) => {
      if (skip.has(name)) return;
      await new Promise((r) => setTimeout(r, 0)); // lets timers and output run between checks; the model is whole here
      try {
        verdicts.push(fn());
      } catch (e) {
        if (e instanceof FitloopError) throw e; // bad options or data: the caller's to fix
        verdicts.push({ check: name, status: "fail", summary: `threw: ${(e as Error).message ?? String(e)}`, numbers: {} });
      }
    };
    if (!nonFinite) await run("verifyInitLoss", () => verifyInitLoss(model, batch, { ...(options.initLoss ?? {}), loss: o.loss }));
    if (!nonFinite) await run("overfitOneBatch", () => overfitOneBatch(model, batch, { ...(options.overfit ?? {}), loss: o.loss }));
    if (!nonFinite) await run("inputIndependentBaseline", () => inputIndependentBaseline(model, batch, { ...(options.baseline ?? {}), loss: o.loss, seed }));
    if (!nonFinite) await run("checkBatchIndependence", () => checkBatchIndependence(model, batch, { ...(options.independence ?? {}), seed }));
    if (!nonFinite) await run("checkGradients", () => checkGradients(model, batch, { ...(options.gradients ?? {}), loss: o.loss, seed }));
  } finally {
    tf.dispose([batch.xs, batch.ys]);
  }
  const text = formatVerdicts(verdicts);
  const print = o.print === true ? (t: string) => console.log(t) : o.print === false ? undefined : o.print;
  if (print) {
    if (o.printReport && report) print(formatReport(report));
    print(text);
  }
  return { verdicts, report, status: worstStatus(verdicts), text };
}

function isDataset(v: unknown): v is ArrayDataset {
  return typeof v === "object" && v !== null && (v as ArrayDataset).x instanceof Float32Array;
}

/**
 * `count` samples drawn at random (seeded: the data may be ordered by class) as tensors the model
 * takes: inputs reshaped to its input shape (flat `[784]` for an MLP on `[28, 28, 1]` images), labels
 * as the loss wants them (class indices, one-hot rows, or targets in the output's shape).
 */
export function drawTensors(model: tfl.LayersModel, ds: ArrayDataset, loss: CheckLoss, count: number, seed: number): CheckData {
  const picked = subset(ds, Array.from(permutation(new Rng(seed), ds.size).subarray(0, count)));
  const modelShape = model.inputs[0]!.shape.slice(1);
  const size = (s: readonly (number | null)[]) => s.reduce<number>((a, b) => a * (b ?? 1), 1);
  const inputShape = modelShape.every((d) => d !== null) && size(modelShape) === size(ds.sampleShape) ? (modelShape as number[]) : [...ds.sampleShape];
  const outShape = model.outputs[0]!.shape.slice(1);
  const width = outputWidth(model);
  let ys: tf.Tensor;
  if (ds.numClasses !== undefined) {
    const labels = Float32Array.from(picked.y);
    if (loss === "categoricalCrossentropy") ys = tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(picked.y as Int32Array, "int32"), width), "float32"));
    else if (loss === "binaryCrossentropy" || loss === "meanSquaredError" || loss === "meanAbsoluteError") ys = tf.tensor(labels, [count, 1]);
    else ys = tf.tensor1d(labels);
  } else {
    const labelSize = Math.max(1, size(ds.labelShape));
    const target = outShape.every((d) => d !== null) && size(outShape) === labelSize ? (outShape as number[]) : labelSize === 1 ? [1] : [...ds.labelShape];
    ys = tf.tensor(picked.y, [count, ...target], "float32");
  }
  if (ds.numClasses !== undefined && loss === "sparseCategoricalCrossentropy" && width < ds.numClasses) {
    ys.dispose();
    throw new ShapeMismatchError(`sanityCheck: the data has ${ds.numClasses} classes but the model outputs ${width} values`);
  }
  return { xs: tf.tensor(picked.x, [count, ...inputShape], "float32"), ys };
}
