import { describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { BackendError, useBackend, type BackendName } from "./index.js";

describe("useBackend", () => {
  it("activates wasm and cpu, checking that tfjs really switched", async () => {
    expect(await useBackend("wasm")).toBe("wasm");
    expect(tf.getBackend()).toBe("wasm");
    expect(tf.tidy(() => tf.sum(tf.tensor1d([1, 2, 3])).dataSync()[0])).toBe(6);
    // @fitloop/wasm is installed here (a dev dependency): useBackend went through its useWasm
    expect(tf.getKernel("Conv2DBackpropFilter", "wasm")).toBeDefined();
    expect(tf.getKernel("FitloopBatchCheck", "wasm")).toBeDefined();
    expect(await useBackend("cpu")).toBe("cpu");
    expect(tf.getBackend()).toBe("cpu");
  });

  it("passes fma to @fitloop/wasm: on by default where relaxed SIMD validates, off with fma: false", async () => {
    const wasm = (await import("@fitloop/wasm")) as { fmaEnabled(): boolean; fmaActive(): boolean; fmaSupported(): boolean | undefined };
    await useBackend("wasm", { fma: false });
    expect(wasm.fmaEnabled()).toBe(false);
    expect(wasm.fmaActive()).toBe(false);
    await useBackend("wasm");
    expect(wasm.fmaEnabled()).toBe(true);
    expect(wasm.fmaActive()).toBe(wasm.fmaSupported() === true);
    await useBackend("cpu");
  });

  it("names the packages to install when tfjs-node is missing", async () => {
    const err = await useBackend("tensorflow").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as Error).message).toBe("the tensorflow backend is not installed: npm install @tensorflow/tfjs-node-gpu or npm install @tensorflow/tfjs-node");
    expect(tf.getBackend()).toBe("cpu"); // nothing changed
  });

  it("rejects an unknown backend name", async () => {
    await expect(useBackend("webgpu" as BackendName)).rejects.toThrow(/unknown backend "webgpu"; use one of tensorflow, wasm, cpu/);
  });
});
