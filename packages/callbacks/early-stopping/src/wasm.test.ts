import { beforeAll, describe, expect, it } from "vitest";
import "@tensorflow/tfjs-backend-wasm";
import * as tf from "@tensorflow/tfjs-core";
import { useBackend } from "@fitloop/core";
import { tinyFixture } from "@fitloop/core/testing";
import { EarlyStopping } from "./index.js";
import { probe, scripted, trainer, weightsOf } from "./helpers.fixture.js";

describe("restoreBestWeights on the wasm backend (a restored variable shares its copy's buffer, reference-counted)", () => {
  beforeAll(async () => {
    await useBackend("wasm");
  });

  it("restores every weight of the best epoch; the model trains on after dispose()", async () => {
    expect(tf.getBackend()).toBe("wasm");
    const fx = tinyFixture({ samples: 16, withBatchNormAndDropout: true });
    const es = new EarlyStopping({ monitor: "score", mode: "min", patience: 2, restoreBestWeights: true });
    const p = probe();
    await trainer(fx, [es, p, scripted([1, 0.5, 0.7, 0.8, 0.9])]).fit({ epochs: 5, train: fx.data(8) });
    expect(weightsOf(fx.model)).toEqual(p.at.get(1));
    es.dispose();
    const restored = weightsOf(fx.model);
    await trainer(fx, []).fit({ epochs: 2, train: fx.data(8) });
    const after = weightsOf(fx.model);
    expect(after).not.toEqual(restored);
    expect(after.flat().every(Number.isFinite)).toBe(true);
    fx.dispose();
  });
});
