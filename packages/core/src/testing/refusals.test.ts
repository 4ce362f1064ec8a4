import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { DataError, OptionsError } from "../errors.js";
import { smallModel } from "../adversarial/harness.fixture.js";
import { expectRefused, expectRejected, RefusalCheckError } from "./refusals.js";

/** The refusal assertions must be able to fail: each broken expectation is caught. */
describe("expectRefused / expectRejected", () => {
  const refuse = () => {
    throw new DataError("EMPTY_DATA", "train data is empty (0 samples)");
  };
  it("pass on the expected refusal and return the error", () => {
    expect(expectRefused(refuse, DataError, "EMPTY_DATA", ["train", /0 samples/]).code).toBe("EMPTY_DATA");
  });
  const leaked: tf.Tensor[] = [];
  const failing: [string, () => unknown, RegExp][] = [
    ["nothing thrown", () => expectRefused(() => undefined, DataError, "EMPTY_DATA", "x"), /nothing was thrown/],
    ["another class", () => expectRefused(refuse, OptionsError, "EMPTY_DATA", "train"), /expected a OptionsError/],
    ["another code", () => expectRefused(refuse, DataError, "NON_FINITE_INPUT", "train"), /expected code NON_FINITE_INPUT/],
    ["the culprit not named", () => expectRefused(refuse, DataError, "EMPTY_DATA", ["train", "validation"]), /does not name "validation"/],
    ["a leak", () => expectRefused(() => { leaked.push(tf.scalar(1)); refuse(); }, DataError, "EMPTY_DATA", "train"), /tensors left behind/],
  ];
  for (const [name, run, message] of failing) {
    it(`fail on ${name}`, () => {
      expect(run).toThrow(RefusalCheckError);
      expect(run).toThrow(message);
      tf.dispose(leaked.splice(0));
    });
  }
  it("fail when the weights changed, also for a rejection", async () => {
    const model = smallModel();
    const err = await expectRejected(
      async () => {
        tf.tidy(() => model.setWeights(model.getWeights().map((w) => tf.add(w, 1))));
        refuse();
      },
      DataError,
      "EMPTY_DATA",
      "train",
      { model },
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusalCheckError);
    expect((err as Error).message).toMatch(/weights changed/);
    model.dispose();
  });
});
