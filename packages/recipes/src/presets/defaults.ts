/**
 * Each preset's defaults and where each comes from. The wiring (wiring.ts) reads these; describe()
 * and the READMEs print the sources, so a number is never a mystery.
 */

export type PresetName = "classification" | "regression" | "fineTune";
export type OptimizerFamily = "adam" | "sgd";
export type ScheduleKind = "warmup-cosine" | "1cycle";

/** A default value and its origin. */
export interface Sourced<T> {
  readonly value: T;
  readonly source: string;
}

export interface PresetDefaults {
  readonly maxLr: Readonly<Record<OptimizerFamily, Sourced<number>>>;
  readonly schedule: Sourced<ScheduleKind>;
  /** Warmup-cosine: the share of all steps spent warming up. */
  readonly warmup: Sourced<number>;
  readonly weightDecay: Readonly<Record<OptimizerFamily, Sourced<number>>>;
  readonly clip: Sourced<number>;
  /** A fixed patience, or `undefined` for the rule by dataset size (`patienceFor`). */
  readonly patience: Sourced<number> | undefined;
}

export const OPTIMIZER_SOURCE: Readonly<Record<OptimizerFamily, string>> = {
  adam: "Adam (Kingma & Ba 2015) betas 0.9/0.999; epsilon 1e-8 as PyTorch (tfjs's own is 1e-7)",
  sgd: "SGD with momentum 0.9, as ResNet (He et al. 2016) and the lectures' SGD baseline",
};

const WD_ADAM_SOURCE =
  "PyTorch AdamW's default. The lectures' 1e-4..5e-4 are L2 coefficients for SGD; decoupled decay is multiplied by the learning rate, so 5e-4 x 3e-4 = 1.5e-7 per step would do nothing";
const WD_SGD_SOURCE = "the lectures' 1e-4..5e-4 (5e-4 as for CIFAR ResNets); for plain SGD decoupled decay equals that L2 term";

const FROM_SCRATCH: PresetDefaults = {
  maxLr: {
    adam: { value: 3e-4, source: "the lectures' Adam 3e-4; with 1cycle it is the peak" },
    sgd: { value: 0.1, source: "ResNet's SGD rate 0.1 (He et al. 2016)" },
  },
  schedule: { value: "warmup-cosine", source: "the lectures' warmup, then cosine to 0 (Loshchilov & Hutter 2017; HF get_cosine_schedule_with_warmup)" },
  warmup: { value: 0.05, source: "the lectures' 5-10 % (the low end: longer at the peak)" },
  weightDecay: { adam: { value: 0.01, source: WD_ADAM_SOURCE }, sgd: { value: 5e-4, source: WD_SGD_SOURCE } },
  clip: { value: 1, source: "the lectures' clip 1.0 (global norm, PyTorch clip_grad_norm_)" },
  patience: undefined,
};

/** Fine-tuning pretrained weights: BERT's recipe (Devlin et al. 2019), the usual reference. */
const FINE_TUNE: PresetDefaults = {
  maxLr: {
    adam: { value: 3e-5, source: "BERT's fine-tuning grid 2e-5..5e-5 (Keras' fine-tuning guide uses 1e-5): pretrained features must not be destroyed" },
    sgd: { value: 0.01, source: "a tenth of the from-scratch 0.1 (cs231n transfer learning: a smaller rate for pretrained weights)" },
  },
  schedule: { value: "warmup-cosine", source: "warmup then decay as BERT (which decays linearly; cosine is the common equivalent)" },
  warmup: { value: 0.1, source: "BERT's 10 % warmup (the lectures' 5-10 %)" },
  weightDecay: { adam: { value: 0.01, source: "BERT's 0.01 (= PyTorch AdamW's default)" }, sgd: { value: 5e-4, source: WD_SGD_SOURCE } },
  clip: { value: 1, source: "BERT's and the lectures' clip 1.0 (global norm)" },
  patience: { value: 3, source: "fine-tuning runs are a few epochs (BERT: 2-4); a fixed 3 rather than the size rule" },
};

export const PRESET_DEFAULTS: Readonly<Record<PresetName, PresetDefaults>> = {
  classification: FROM_SCRATCH,
  regression: FROM_SCRATCH,
  fineTune: FINE_TUNE,
};

/** The 1cycle parameters: PyTorch `OneCycleLR`'s defaults (Smith & Topin 2019; fastai's fit_one_cycle). */
export const ONE_CYCLE = { pctStart: 0.3, divFactor: 25, finalDivFactor: 1e4 } as const;

/**
 * The rule for patience by dataset size (the lectures: patience by dataset size). A small set's
 * validation loss is noisy and its epochs are short, so it waits longer; a large set's epoch is many
 * steps and its validation loss is smooth, so a few epochs without progress mean a plateau.
 */
export const PATIENCE_RULE: readonly { readonly below: number; readonly patience: number }[] = [
  { below: 10_000, patience: 10 },
  { below: 100_000, patience: 5 },
  { below: Number.POSITIVE_INFINITY, patience: 3 },
];
/** Without a dataset size: 10, Keras' ReduceLROnPlateau and PyTorch's default patience, the small-data value. */
export const PATIENCE_UNKNOWN = 10;

export function patienceFor(samples: number | undefined): Sourced<number> {
  if (samples === undefined) return { value: PATIENCE_UNKNOWN, source: "rule by dataset size; size unknown (give data or samples): 10" };
  const rule = PATIENCE_RULE.find((r) => samples < r.below)!;
  const bound = Number.isFinite(rule.below) ? `< ${rule.below.toLocaleString("en-US")}` : `>= ${PATIENCE_RULE[PATIENCE_RULE.length - 2]!.below.toLocaleString("en-US")}`;
  return { value: rule.patience, source: `rule by dataset size: ${samples.toLocaleString("en-US")} samples (${bound}) -> ${rule.patience}` };
}

export const DROPOUT_ADVICE: Sourced<string> = { value: "not wired (a model choice): 0.2-0.5 where the model overfits", source: "the lectures' dropout 0.2-0.5" };
