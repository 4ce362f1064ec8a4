/** Shared by this package's tests: temp dirs, a tiny trainer, a logger that keeps warnings. */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, silentLogger, type Callback, type Logger } from "@fitloop/core";
import { tinyFixture, type TinyFixture } from "@fitloop/core/testing";

const dirs: string[] = [];
/** A fresh directory, removed after the test. */
export function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "fitloop-csv-"));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** 40 samples: 5 batches of 8 per epoch. */
export const fixture = (): TinyFixture => tinyFixture({ samples: 40 });

/** Adam at 0.05, seeded; pass one optimizer for leak checks (a new one allocates its slots). */
export const trainer = (fx: TinyFixture, callbacks: Callback[], logger: Logger = silentLogger, optimizer: tf.Optimizer = tf.train.adam(0.05)): Trainer =>
  new Trainer({ model: fx.model, optimizer, loss: "sparseCategoricalCrossentropy", metrics: ["acc"], seed: 5, callbacks, logger });

/** A logger that keeps what was warned. */
export function recording(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  return { logger: { ...silentLogger, warn: (m: string) => void warnings.push(m) }, warnings };
}

export const read = (path: string): string => readFileSync(path, "utf8");

/** Waits (real time, so background writes can land) until `check()` holds or `ms` pass; returns whether it held. */
export async function eventually(check: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; !check() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  return check();
}

/** Files under `dir` this process holds open now (Linux: /proc/self/fd); [] elsewhere. */
export function openFilesUnder(dir: string): string[] {
  let fds: string[];
  try {
    fds = readdirSync("/proc/self/fd");
  } catch {
    return [];
  }
  return fds.flatMap((fd) => {
    try {
      const target = readlinkSync(join("/proc/self/fd", fd));
      return target.startsWith(realpathSync(dir)) ? [target] : [];
    } catch {
      return [];
    }
  });
}
