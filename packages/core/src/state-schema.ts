import { z } from "zod";
import { StateError } from "./errors.js";
import type { TrainerStateDict } from "./trainer.js";

// Any JS number, NaN and Infinity included (a diverged epoch's loss is NaN, and is history).
const anyNumber = z.custom<number>((v) => typeof v === "number", { message: "must be a number" });
const count = z.number().int({ message: "must be an integer >= 0" }).min(0, { message: "must be an integer >= 0" });
const uint32 = z.number().int().min(0).max(0xffffffff);

const aggregate = z.strictObject({
  reduce: z.enum(["mean", "sum", "min", "max", "last"]),
  sum: anyNumber,
  count,
  min: anyNumber,
  max: anyNumber,
  last: anyNumber,
});

const schema = z.strictObject({
  train: z.strictObject({
    epoch: count,
    step: count,
    globalBatch: count,
    batchIndex: count,
    cursor: z.strictObject({ epoch: count, batchIndex: count }),
    history: z.array(z.strictObject({ epoch: count, logs: z.record(z.string(), anyNumber) })),
    epochProgress: z.strictObject({ samples: count, sums: z.record(z.string(), anyNumber), plugins: z.record(z.string(), aggregate) }).optional(),
  }),
  rng: z
    .tuple([uint32, uint32, uint32, uint32])
    .refine((s) => s.some((w) => w !== 0), { message: "the all-zero xoshiro state is invalid (the generator would only return 0)" })
    .nullable(),
  plugins: z.record(z.string(), z.custom<Record<string, unknown>>((v) => typeof v === "object" && v !== null && !Array.isArray(v), { message: "must be a plugin's state dict (an object)" })),
});

/** Checks a whole trainer state dict; one `StateError` lists every problem by key. */
export function parseTrainerStateDict(dict: unknown): TrainerStateDict {
  const r = schema.safeParse(dict);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.map(String).join(".") || "(state)"}: ${i.message}`);
    throw new StateError(`the saved trainer state is invalid:\n  - ${issues.join("\n  - ")}`);
  }
  return dict as TrainerStateDict;
}
