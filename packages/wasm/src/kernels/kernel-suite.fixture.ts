import { afterAll, beforeAll } from "vitest";
import { registerWasmKernels } from "./index.js";
import { setKernelThreadsEnabled } from "./kernel-threads.js";
import { setWinogradEnabled } from "./wasm-conv-winograd.js";
import { switchBackend, useTestBackend } from "../testing.fixture.js";

/**
 * Inside a `describe`: the wasm backend with fitloop's kernels for the suite, and afterwards the
 * kernel threads on again (the suite may turn them off) on a fresh wasm backend. A file of its own
 * (not testing.fixture.ts): child-process fixtures import that one outside vitest.
 */
export function wasmKernelSuite(): void {
  beforeAll(async () => {
    await useTestBackend("wasm");
    registerWasmKernels();
  });
  afterAll(async () => {
    setKernelThreadsEnabled(true);
    await switchBackend("wasm");
  });
}

/**
 * Inside a `describe` that tests the direct convolution kernels: Winograd off for the suite (its 3x3
 * stride-1 shapes would otherwise run by Winograd, tested in wasm-conv-winograd.test.ts), on afterwards.
 */
export function directConvolutions(): void {
  beforeAll(() => setWinogradEnabled(false));
  afterAll(() => setWinogradEnabled(true));
}
