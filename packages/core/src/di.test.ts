import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { container as globalContainer, inject, injectable } from "tsyringe";
import { TOKENS, Trainer, createRootContainer, type Callback, type HookContext, type Logger, type TrainState } from "./index.js";
import { tinyFixture } from "./testing/index.js";

const CLOCK_SERVICE = Symbol("test.Stopwatch");

function memoryLogger(lines: string[]): Logger {
  return { debug: () => {}, info: (m) => void lines.push(`info ${m}`), warn: (m) => void lines.push(`warn ${m}`), error: (m) => void lines.push(`error ${m}`) };
}

const disposed: string[] = [];

@injectable()
class EpochTimer implements Callback {
  readonly name = "EpochTimer";
  constructor(
    @inject(TOKENS.Logger) private readonly logger: Logger,
    @inject(TOKENS.TrainState) private readonly state: TrainState,
    @inject(CLOCK_SERVICE) private readonly stopwatch: { ticks: number },
  ) {}
  afterEpoch(_ctx: HookContext): void {
    this.stopwatch.ticks++;
    this.logger.info(`epoch ${this.state.epoch} done`);
  }
  dispose(): void {
    disposed.push(this.name);
  }
}

describe("dependency injection", () => {
  it("plugin classes get their services by token from the run container and are disposed at the end", async () => {
    const lines: string[] = [];
    const root = createRootContainer({ logger: memoryLogger(lines) });
    const stopwatch = { ticks: 0 };
    root.register(CLOCK_SERVICE, { useValue: stopwatch });
    const fx = tinyFixture({ samples: 8 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", container: root, callbacks: [EpochTimer] });
    disposed.length = 0;
    await t.fit({ epochs: 2, train: fx.data(4) });
    expect(lines).toEqual(["info epoch 0 done", "info epoch 1 done"]);
    expect(stopwatch.ticks).toBe(2);
    expect(disposed).toEqual(["EpochTimer"]);
    fx.dispose();
  });

  it("each run gets its own plugin instances; nothing is registered in the global container", async () => {
    const instances = new Set<Callback>();
    @injectable()
    class Probe implements Callback {
      constructor(@inject(TOKENS.Model) readonly model: unknown) {}
      beforeFit(): void {
        instances.add(this);
      }
    }
    const fx = tinyFixture({ samples: 8 });
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [Probe], logger: memoryLogger([]) });
    await t.fit({ epochs: 1, train: fx.data(4) });
    await t.fit({ epochs: 1, train: fx.data(4) });
    expect(instances.size).toBe(2);
    for (const p of instances) expect((p as Probe).model).toBe(fx.model);
    for (const token of Object.values(TOKENS) as symbol[]) expect(globalContainer.isRegistered(token, false)).toBe(false);
    fx.dispose();
  });

  it("plugins passed as instances work without DI and are not disposed by the run (the caller owns them)", async () => {
    let disposedCount = 0;
    const plain: Callback = { name: "plain", afterEpoch: () => {}, dispose: () => void disposedCount++ };
    const fx = tinyFixture({ samples: 8 });
    await new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [plain], logger: memoryLogger([]) }).fit({ epochs: 1, train: fx.data(4) });
    expect(disposedCount).toBe(0);
    fx.dispose();
  });

  it("a plugin can inject another plugin of the same run by its class", async () => {
    class BestTracker implements Callback {
      best = Number.POSITIVE_INFINITY;
      afterEpoch(ctx: HookContext): void {
        this.best = Math.min(this.best, ctx.logs["loss"]!);
      }
    }
    const reports: number[] = [];
    @injectable()
    class Reporter implements Callback {
      readonly runsAfter = ["BestTracker"];
      constructor(@inject(BestTracker) private readonly tracker: BestTracker) {}
      afterFit(): void {
        reports.push(this.tracker.best);
      }
    }
    const fx = tinyFixture({ samples: 8 });
    const tracker = new BestTracker();
    const t = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.1), loss: "sparseCategoricalCrossentropy", callbacks: [Reporter, tracker], logger: memoryLogger([]) });
    const r = await t.fit({ epochs: 3, train: fx.data(4) });
    expect(reports).toEqual([Math.min(...r.state.history.map((h) => h.logs["loss"]!))]);
    fx.dispose();
  });
});
