import { parseOptions, type BatchContext, type HookContext, type StateDict } from "@fitloop/core";
import { z } from "zod";
import { emaStep } from "./average.js";
import { AveragingPlugin, commonFields, countField, parseState, positiveInt, weightsField, type CommonOptions } from "./plugin.js";

/** timm's decay warmup: `decay_t = min(decay, 1 - (1 + t / gamma) ** -power)`. */
export interface EMAWarmup {
  /** Default 3/4 (timm's default; 2/3 suits runs of a million steps and more). */
  readonly power?: number;
  /** Default 1. */
  readonly gamma?: number;
}

export interface EMADecayOptions {
  /** The decay in (0, 1): `average <- decay * average + (1 - decay) * weights`. This or `halfLife`. */
  readonly decay?: number;
  /** Composer's form: the number of optimizer steps over which a weight's share halves; per update `decay = 2 ** (-every / halfLife)`. */
  readonly halfLife?: number;
  /** Update every this many applied optimizer steps. Default 1. */
  readonly every?: number;
  /** Warm the decay up from 0 (true: timm's power 3/4, gamma 1). Default false. */
  readonly warmup?: boolean | EMAWarmup;
}

export interface EMAOptions extends EMADecayOptions, CommonOptions {}

const warmupSchema = z.preprocess(
  (v) => (v === undefined || v === false ? null : v === true ? {} : v),
  z
    .strictObject(
      {
        power: z.number({ message: "must be a number > 0" }).gt(0, { message: "must be > 0 (timm uses 3/4, or 2/3 for long runs)" }).default(0.75),
        gamma: z.number({ message: "must be a number > 0" }).gt(0, { message: "must be > 0" }).default(1),
      },
      { error: (i) => (i.code === "invalid_type" ? "must be true, false or { power, gamma }" : undefined) },
    )
    .nullable(),
);

const decayFields = {
  decay: z.number({ message: "must be a number in (0, 1)" }).gt(0, { message: "must be in (0, 1), e.g. 0.999" }).lt(1, { message: "must be in (0, 1), e.g. 0.999" }).optional(),
  halfLife: z.number({ message: "must be a number of steps > 0" }).gt(0, { message: "must be a number of steps > 0" }).optional(),
  every: positiveInt.default(1),
  warmup: warmupSchema,
};

/**
 * decay xor halfLife. It runs also when other options failed (`when`), so one OptionsError lists
 * everything: the values may then be unparsed, hence the type checks.
 */
const oneDecay = (o: { decay?: unknown; halfLife?: unknown; every?: unknown }, ctx: z.RefinementCtx) => {
  if (o.decay === undefined && o.halfLife === undefined) ctx.addIssue({ code: "custom", path: ["decay"], message: "is required (or halfLife): e.g. decay: 0.999" });
  if (o.decay !== undefined && o.halfLife !== undefined) ctx.addIssue({ code: "custom", path: ["halfLife"], message: "give decay or halfLife, not both" });
  // 2^(-every/halfLife) rounds to 0 or 1 for extreme ratios: a decay that averages nothing, or never moves
  const every = typeof o.every === "number" && o.every >= 1 ? o.every : 1;
  if (typeof o.halfLife === "number" && o.halfLife > 0) {
    const d = 2 ** (-every / o.halfLife);
    if (!(d > 0 && d < 1)) ctx.addIssue({ code: "custom", path: ["halfLife"], message: `gives a decay of ${d} per update (every ${every} steps): it must be in (0, 1)` });
  }
};
const always = { when: (p: { value: unknown }) => typeof p.value === "object" && p.value !== null };

const decaySchema = z.strictObject(decayFields).superRefine(oneDecay, always);
const emaSchema = z.strictObject({ ...decayFields, ...commonFields({ buffers: true, updateBatchNorm: "never" }) }).superRefine(oneDecay, always);

type ResolvedDecay = { readonly base: number; readonly warmup: { readonly power: number; readonly gamma: number } | null };

function resolveDecay(o: z.output<typeof decaySchema>): ResolvedDecay {
  return { base: o.decay ?? 2 ** (-o.every / o.halfLife!), warmup: o.warmup };
}

function decayAt(step: number, d: ResolvedDecay): number {
  // the first update copies the weights (timm, PyTorch's AveragedModel, Keras' use_ema all do)
  if (step <= 0) return 0;
  if (!d.warmup) return d.base;
  return Math.min(d.base, 1 - (1 + step / d.warmup.gamma) ** -d.warmup.power);
}

/**
 * The decay of EMA update number `step` (0-based: the updates made before it). Update 0 is a copy
 * (decay 0). With `warmup`, `min(decay, 1 - (1 + step / gamma) ** -power)` as timm's `ModelEmaV3`
 * (whose step there is the optimizer update count minus one). With `halfLife`, the decay is
 * `2 ** (-every / halfLife)` (Composer's `EMA(half_life)`).
 */
export function emaDecayAt(step: number, options: EMADecayOptions): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`emaDecayAt: step must be an integer >= 0, got ${step}`);
  return decayAt(step, resolveDecay(parseOptions("emaDecayAt", decaySchema, options)));
}

/**
 * Exponential moving average of the weights (Polyak averaging; timm's `ModelEmaV3`, Keras'
 * `use_ema`, Composer's `EMA`). Updated in `afterStep` when the step was applied (never on a
 * skipped step or a gradient-accumulation micro-batch), every `every` applied steps, on the device:
 * plugin-owned variables assigned in one tidy, no device read. Validation runs on the average, and
 * the average is in the model at the end (see `CommonOptions`). BatchNorm moving statistics are
 * averaged with the rest unless `buffers: false`.
 */
export class EMA extends AveragingPlugin {
  readonly options: Readonly<z.output<typeof emaSchema>>;
  private readonly decay: ResolvedDecay;
  /** The decay of the last update (0 before the second). */
  lastDecay = 0;

  constructor(options: EMAOptions) {
    const o = parseOptions("EMA", emaSchema, options);
    super(o, "EMA", "ema");
    this.options = o;
    this.decay = resolveDecay(o);
  }

  /** The decay the next update will use. */
  get nextDecay(): number {
    return decayAt(this.count, this.decay);
  }

  protected setup(_ctx: HookContext, fresh: boolean): void {
    if (fresh) this.lastDecay = 0;
  }

  afterStep(ctx: BatchContext): void {
    if (ctx.stepSkipped || ctx.state.step % this.options.every !== 0) return;
    const decay = decayAt(this.count, this.decay);
    this.addToAverage((a, w) => emaStep(a, w, decay, true)); // donated: the averages are replaced by the result
    this.lastDecay = decay;
  }

  protected ownState(): StateDict {
    return { kind: "ema" };
  }

  protected loadOwnState(dict: StateDict): { count: number; weights: { name: string; shape: number[]; values: Float32Array }[] | null } {
    const s = parseState(this.name, z.strictObject({ kind: z.literal("ema", { message: 'must be "ema" (is this another plugin\'s state?)' }), count: countField, weights: weightsField }), dict);
    this.lastDecay = s.count > 1 ? decayAt(s.count - 1, this.decay) : 0;
    return s;
  }
}
