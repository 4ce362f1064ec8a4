import { inject, injectable, type InjectionToken } from "tsyringe";
import { Checkpoint, type CheckpointOptions } from "./checkpoint.js";
import type { CheckpointStore } from "./store.js";

/** The checkpoint store service: register one on the root container (`createRootContainer()`). */
export const CHECKPOINT_STORE = Symbol.for("fitloop.CheckpointStore") as InjectionToken<CheckpointStore>;
/** Options for `InjectedCheckpoint` (everything but the store). */
export const CHECKPOINT_OPTIONS = Symbol.for("fitloop.CheckpointOptions") as InjectionToken<Omit<CheckpointOptions, "store">>;

/**
 * `Checkpoint` for the DI way: pass the class in `callbacks` and register `CHECKPOINT_STORE` (and,
 * optionally, `CHECKPOINT_OPTIONS`) on the root container; the run container constructs it.
 */
@injectable()
export class InjectedCheckpoint extends Checkpoint {
  constructor(@inject(CHECKPOINT_STORE) store: CheckpointStore, @inject(CHECKPOINT_OPTIONS, { isOptional: true }) options?: Omit<CheckpointOptions, "store">) {
    super({ ...(options ?? {}), store });
  }
}
