import type * as tf from "@tensorflow/tfjs-core";
import type { LayersModel } from "@tensorflow/tfjs-layers";
import { container as globalContainer, type DependencyContainer, type InjectionToken } from "tsyringe";
import type { ObserverBus } from "./bus.js";
import type { Callback } from "./callback.js";
import type { Hyperparameters } from "./hyperparams.js";
import { consoleLogger, systemClock, type Clock, type Logger } from "./logger.js";
import type { TrainState } from "./state.js";

/**
 * Injection tokens. Inject with `@inject(TOKENS.Logger)` on every constructor parameter:
 * fitloop never relies on emitted decorator metadata (esbuild does not emit it).
 *
 * Root container (long-lived): Logger, Clock, and whatever services the app adds (filesystem,
 * checkpoint store). Run container (one per `fit()`, a child of the root): Model, Optimizer,
 * Hyperparameters, TrainState, Bus and every plugin under the multi-token `Plugin`.
 */
export const TOKENS = {
  Logger: Symbol.for("fitloop.Logger") as InjectionToken<Logger>,
  Clock: Symbol.for("fitloop.Clock") as InjectionToken<Clock>,
  Model: Symbol.for("fitloop.Model") as InjectionToken<LayersModel>,
  Optimizer: Symbol.for("fitloop.Optimizer") as InjectionToken<tf.Optimizer>,
  Hyperparameters: Symbol.for("fitloop.Hyperparameters") as InjectionToken<Hyperparameters>,
  TrainState: Symbol.for("fitloop.TrainState") as InjectionToken<TrainState>,
  Bus: Symbol.for("fitloop.Bus") as InjectionToken<ObserverBus>,
  Plugin: Symbol.for("fitloop.Plugin") as InjectionToken<Callback>,
} as const;

/** A plugin class that the run container constructs (its parameters injected by token). */
export type PluginClass = new (...args: never[]) => Callback;

export interface RootServices {
  logger?: Logger;
  clock?: Clock;
}

/**
 * A root container for an application. It is a child of tsyringe's global container, so nothing
 * is ever registered globally; register app-wide services (filesystem, stores) on it.
 */
export function createRootContainer(services: RootServices = {}): DependencyContainer {
  const root = globalContainer.createChildContainer();
  root.register(TOKENS.Logger, { useValue: services.logger ?? consoleLogger });
  root.register(TOKENS.Clock, { useValue: services.clock ?? systemClock });
  return root;
}

export function isPluginClass(p: Callback | PluginClass): p is PluginClass {
  return typeof p === "function";
}
