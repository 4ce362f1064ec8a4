// tsyringe (inside @fitloop/core) needs the Reflect metadata API before it loads.
import "reflect-metadata";
import { BackendUnavailableError, requestedBackend, startBackend, webglRenderer } from "./backend.js";
import { curvePlot, liveCurves } from "./curves.js";
import { publish, type PageState } from "./page-state.js";
import { MAX_EPOCHS } from "./config.js";
import { trainSpirals } from "./train.js";

async function main(): Promise<void> {
  const state: PageState = { status: "running", requestedBackend: new URLSearchParams(location.search).get("backend") ?? "cpu", maxEpochs: MAX_EPOCHS, epochs: 0, history: [] };
  publish(state);
  try {
    state.backend = await startBackend(requestedBackend(location.search));
    if (state.backend === "webgl") state.renderer = webglRenderer();
    publish(state);

    const svg = document.querySelector<SVGSVGElement>("svg#curves");
    if (!svg) throw new Error("the page has no <svg id=curves>");
    const plot = curvePlot(svg, 40);
    const curves = liveCurves(plot, (history) => {
      state.history = history.map((r) => ({ epoch: r.epoch, logs: { ...r.logs } }));
      state.epochs = history.length;
      publish(state);
    });

    const started = performance.now();
    const run = await trainSpirals([curves]);
    const early = run.earlyStopping;
    Object.assign(state, {
      status: "done",
      trainMs: Math.round(performance.now() - started),
      history: [...run.history],
      epochs: run.history.length,
      outcomeStatus: run.outcome.status,
      stopRequests: run.outcome.stopRequests,
      stopReason: run.outcome.reason,
      stoppedEpoch: early.stoppedEpoch,
      bestEpoch: early.bestEpoch,
      bestValue: early.bestValue,
      stopKind: early.kind,
      restoredValLoss: run.restoredValLoss,
    } satisfies Partial<PageState>);
    plot.draw(run.history);
    if (early.bestEpoch !== undefined) plot.markBest(early.bestEpoch);
    publish(state);
  } catch (e) {
    state.status = "error";
    state.error = e instanceof BackendUnavailableError ? e.message : `${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
    publish(state);
    if (!(e instanceof BackendUnavailableError)) throw e; // an unexpected failure also goes to the console
  }
}

void main();
