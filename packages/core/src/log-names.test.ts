import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { FitloopError, OptionsError, silentLogger, tensorData, Trainer, type Callback } from "./index.js";
import { smallData, smallModel } from "./adversarial/harness.fixture.js";

/** Log records are plain objects: names they already have are refused, never silently lost or written onto Object.prototype. */
describe("log names that plain objects already have", () => {
  for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype"]) {
    it(`ctx.log("${name}") is an INVALID_LOG error naming it; Object.prototype is untouched`, async () => {
      const model = smallModel();
      const { xs, ys } = smallData();
      const logger: Callback = { name: "Odd", afterStep: (ctx) => ctx.log(name, 1) };
      const trainer = new Trainer({ model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", logger: silentLogger, callbacks: [logger] });
      const err = await trainer.fit({ epochs: 1, train: tensorData(xs, ys, { batchSize: 8 }) }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(FitloopError);
      expect((err as FitloopError).code).toBe("INVALID_LOG");
      expect((err as Error).message).toContain(`"${name}" is a name every JavaScript object already has`);
      expect(Object.keys(Object.prototype)).toEqual([]);
      model.dispose();
      tf.dispose([xs, ys]);
    });
  }

  it("a metric named constructor is an OptionsError before any work", () => {
    expect(() => new Trainer({ model: smallModel(), optimizer: tf.train.sgd(0.1), loss: "meanSquaredError", metrics: [{ constructor: () => tf.scalar(0) }] })).toThrow(OptionsError);
  });
});
