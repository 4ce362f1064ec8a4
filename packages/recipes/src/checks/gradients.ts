import * as tf from "@tensorflow/tfjs-core";
import type * as tfl from "@tensorflow/tfjs-layers";
import { parseOptions, permutation, resolveLoss, Rng } from "@fitloop/core";
import { z } from "zod";
import { checkInputs, forward, lossSchema, onModel, positiveInt, rows, seedSchema, taped, trainables, type CheckData } from "./common.js";
import { fmt, grade, type Verdict, type VerdictStatus } from "./verdict.js";

export const checkGradientsSchema = z.strictObject({
  loss: lossSchema,
  /** Samples (the first rows of the data). */
  batchSize: positiveInt("samples").default(8),
  /** Coordinates checked per variable: half where the analytic gradient is largest, half at random. */
  coordinates: positiveInt("coordinates per variable").default(10),
  /** Finite-difference step. In float32 on MNIST MLPs 1e-3 gives relative errors ~1e-4; larger steps cross more ReLU kinks. */
  epsilon: z.number().gt(0, { message: "must be > 0" }).default(1e-3),
  /** Relative error (per variable) that passes. */
  passBelow: z.number().gt(0, { message: "must be > 0" }).default(1e-2),
  /** Relative error from which the check fails (between the two: warn). */
  failAbove: z.number().gt(0, { message: "must be > 0" }).default(5e-2),
  /**
   * A coordinate is skipped as a kink when its forward and backward slopes differ by more than this
   * fraction of their sum: a kink's error in the central difference is about that difference, while
   * smooth coordinates stay below ~1e-2 at epsilon 1e-3 (measured on MNIST MLPs).
   */
  kinkTolerance: z.number().gt(0, { message: "must be > 0" }).default(0.03),
  /**
   * Absolute floor: a variable whose analytic and numeric gradient norms are both below this fraction
   * of the largest norm among the variables has a zero gradient on both sides and passes (reported as
   * such). A Dense bias followed by BatchNorm in training mode has true gradient 0 (the batch mean
   * cancels it): backprop gives rounding noise (~1e-8), the differences 0 or float32 noise (~1e-5),
   * and their relative error is 1 however healthy the model.
   */
  zeroBelow: z.number().gt(0, { message: "must be in (0, 1)" }).lt(1, { message: "must be in (0, 1)" }).default(1e-3),
  /** Seeds the random coordinates. */
  seed: seedSchema,
});
export type CheckGradientsOptions = z.input<typeof checkGradientsSchema>;

export interface VariableGradientCheck {
  readonly name: string;
  /** ||analytic - numeric|| / (||analytic|| + ||numeric||) over the checked coordinates (0 when both are 0). */
  readonly relativeError: number;
  /** The norms over the checked coordinates, for context. */
  readonly analyticNorm: number;
  readonly numericNorm: number;
  /** Coordinates compared. */
  readonly coordinates: number;
  /** Coordinates left out because a kink lay within the step (one-sided slopes disagree). */
  readonly skipped: number;
  /** Both norms below the absolute floor (`zeroBelow` x the largest norm): a zero gradient on both sides, passed whatever `relativeError` says. */
  readonly zero: boolean;
  /** A perturbed loss was NaN or infinite (then `relativeError` is NaN and the check fails). */
  readonly nonFinite: boolean;
}
export interface GradientDetails {
  readonly variables: readonly VariableGradientCheck[];
}
export type GradientVerdict = Verdict<GradientDetails>;

/**
 * Finite-difference gradient check: for a few coordinates of every trainable variable, the central
 * difference (L(w + e) - L(w - e)) / 2e against the backpropagated gradient (`tf.variableGrads`),
 * as a relative error per variable. tfjs's cpu and wasm backends are float32 only, so the loss is
 * read per sample and the differences are summed in float64 on the host, and the thresholds are set
 * for float32. Catches a wrong hand-written gradient (`tf.customGrad`, a custom kernel): the
 * variables before the faulty op get a large error. Training mode with dropout off (deterministic);
 * the model's weights are put back bit for bit. A ReLU kink crossed by the step can inflate one
 * coordinate's error: the per-variable norm keeps that from failing a healthy model.
 */
export function checkGradients(model: tfl.LayersModel, data: CheckData, options: CheckGradientsOptions): GradientVerdict {
  const o = parseOptions("checkGradients", checkGradientsSchema, options);
  checkInputs("checkGradients", model, data, true, o.loss);
  const lossFn = resolveLoss(o.loss);
  const n = Math.min(o.batchSize, data.xs.shape[0]!);
  const rng = new Rng(o.seed);
  const variables = onModel(model, { noiseOff: true }, () => {
    const xs = tf.keep(rows(data.xs, 0, n));
    const ys = tf.keep(rows(data.ys, 0, n));
    // per-sample losses summed on the host in float64: less rounding than a float32 mean
    const lossAt = (): number => {
      const per = tf.tidy(() => lossFn(ys, forward(model, xs, true)).dataSync());
      let s = 0;
      for (const v of per) s += v;
      return s / per.length;
    };
    try {
      const vars = trainables(model);
      const analytic = tf.tidy(() => {
        const { grads } = taped(() => tf.mean(lossFn(ys, forward(model, xs, true))), (f) => tf.variableGrads(f as () => tf.Scalar, vars));
        return vars.map((v) => Float32Array.from(grads[v.name]!.dataSync()));
      });
      const f0 = lossAt();
      if (!Number.isFinite(f0) || analytic.some((g) => g.some((x) => !Number.isFinite(x)))) return { nonFinite: Number.isFinite(f0) ? "the backpropagated gradient" : `the loss (${f0})` } as const;
      const measured = vars.map((v, k) => {
        const g = analytic[k]!;
        const original = Float32Array.from(v.dataSync());
        const picked = pickCoordinates(g, Math.min(o.coordinates, g.length), rng);
        let [diff, an, nu, used, bad] = [0, 0, 0, 0, false];
        for (const c of picked) {
          const w = original[c]!;
          // the float32 steps actually taken, not e: w + e rounds
          const plus = Math.fround(w + o.epsilon);
          const minus = Math.fround(w - o.epsilon);
          const at = (value: number) => {
            const copy = original.slice();
            copy[c] = value;
            setTo(v, copy);
            return lossAt();
          };
          const [fPlus, fMinus] = [at(plus), at(minus)];
          if (!Number.isFinite(fPlus) || !Number.isFinite(fMinus)) {
            bad = true;
            continue;
          }
          const forwardSlope = (fPlus - f0) / (plus - w);
          const backwardSlope = (f0 - fMinus) / (w - minus);
          // a kink (ReLU at 0, max) inside the step: the one-sided slopes disagree and the central
          // difference is meaningless there; a wrong analytic gradient leaves them in agreement
          if (Math.abs(forwardSlope - backwardSlope) > o.kinkTolerance * (Math.abs(forwardSlope) + Math.abs(backwardSlope))) continue;
          const numeric = (fPlus - fMinus) / (plus - minus);
          diff += (numeric - g[c]!) ** 2;
          an += g[c]! ** 2;
          nu += numeric ** 2;
          used++;
        }
        setTo(v, original);
        const denom = Math.sqrt(an) + Math.sqrt(nu);
        const relativeError = bad ? NaN : denom > 0 ? Math.sqrt(diff) / denom : 0;
        return { name: v.name, relativeError, analyticNorm: Math.sqrt(an), numericNorm: Math.sqrt(nu), coordinates: used, skipped: picked.length - used, nonFinite: bad };
      });
      // the absolute floor, relative to the scale of the gradients of the whole model
      const scale = Math.max(0, ...measured.map((m) => Math.max(m.analyticNorm, m.numericNorm)));
      return measured.map((m) => ({ ...m, zero: !m.nonFinite && m.coordinates > 0 && scale > 0 && Math.max(m.analyticNorm, m.numericNorm) <= o.zeroBelow * scale }));
    } finally {
      tf.dispose([xs, ys]);
    }
  });
  const check = "checkGradients";
  if (!Array.isArray(variables)) {
    const what = (variables as { nonFinite: string }).nonFinite;
    return { check, status: "fail", summary: `${what} is not finite at the current weights: NaN/Inf in the inputs or labels, or the model already diverged; nothing to compare`, numbers: { batchSize: n, nonFinite: 1 }, details: { variables: [] } };
  }
  const broken = variables.filter((v) => v.nonFinite).map((v) => v.name);
  if (broken.length) {
    return { check, status: "fail", summary: `the loss is not finite one step of ${o.epsilon} away from the weights of ${broken.slice(0, 3).join(", ")}${broken.length > 3 ? ", ..." : ""}: a loss or layer that overflows (log of 0, exp of a large value)`, numbers: { batchSize: n, nonFinite: broken.length }, details: { variables } };
  }
  const zeros = variables.filter((v) => v.zero);
  const graded = variables.filter((v) => !v.zero);
  const worst = graded.reduce<VariableGradientCheck | undefined>((w, v) => (!w || !(v.relativeError <= w.relativeError) ? v : w), undefined);
  const compared = variables.reduce((s, v) => s + v.coordinates, 0);
  const skipped = variables.reduce((s, v) => s + v.skipped, 0);
  const numbers: Record<string, number> = { maxRelativeError: worst?.relativeError ?? 0, variables: variables.length, coordinates: compared, kinksSkipped: skipped, zeroGradients: zeros.length, batchSize: n };
  for (const v of variables) numbers[`relErr:${v.name}`] = v.relativeError;
  const status: VerdictStatus = compared === 0 ? "warn" : !worst ? "pass" : grade(worst.relativeError, o.passBelow, o.failAbove);
  const bad = graded.filter((v) => !(v.relativeError <= o.passBelow)).map((v) => v.name);
  const zeroNote = zeros.length ? `; ${zeros.length} with a zero gradient on both sides (${zeros.slice(0, 3).map((v) => v.name).join(", ")}${zeros.length > 3 ? ", ..." : ""}: norms below ${fmt(o.zeroBelow)} of the largest, e.g. a bias before BatchNorm)` : "";
  const kinks = (skipped ? `; ${skipped} coordinate${skipped === 1 ? "" : "s"} at a kink skipped` : "") + zeroNote;
  const summary =
    compared === 0
      ? "nothing to compare: no trainable variables, or every coordinate sat at a kink"
      : status === "pass"
        ? `analytic and numeric gradients agree on ${variables.length} variables, ${compared} coordinates (largest relative error ${worst ? `${fmt(worst.relativeError)}, ${worst.name}` : "-"}${kinks})`
        : `relative error up to ${fmt(worst!.relativeError)} on ${bad.length} of ${variables.length} variables (${bad.slice(0, 3).join(", ")}${bad.length > 3 ? ", ..." : ""}): ${status === "fail" ? "a wrong gradient (custom gradient or kernel) at or after these weights" : "borderline for float32; try another epsilon"}${kinks}`;
  return { check, status, summary, numbers, details: { variables } };
}

/** Assigns host values to a variable; the variable takes the buffer, the temporary tensor is released. */
function setTo(v: tf.Variable, values: Float32Array): void {
  const t = tf.tensor(values, v.shape, "float32");
  v.assign(t);
  t.dispose();
}

/** Half the coordinates with the largest |gradient| (where a wrong gradient shows), half at random (where a missing one hides). */
function pickCoordinates(g: Float32Array, count: number, rng: Rng): number[] {
  const top = Math.ceil(count / 2);
  const byMagnitude = Array.from(g.keys()).sort((a, b) => Math.abs(g[b]!) - Math.abs(g[a]!));
  const chosen = new Set(byMagnitude.slice(0, top));
  for (const c of permutation(rng, g.length)) {
    if (chosen.size >= count) break;
    chosen.add(c);
  }
  return [...chosen];
}
