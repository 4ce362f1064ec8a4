import { Writable } from "node:stream";
import * as tf from "@tensorflow/tfjs-core";
import { ORDER, Trainer, silentLogger, type Callback, type DataSource, type Logger, type Logs } from "@fitloop/core";
import type { TinyFixture } from "@fitloop/core/testing";

/** A stream that keeps what is written to it; `isTTY` makes it claim to be a terminal (for bar mode in-process). */
export class Collect extends Writable {
  readonly chunks: string[] = [];
  constructor(
    readonly isTTY = false,
    readonly columns = 200,
  ) {
    super({ decodeStrings: false });
  }
  override _write(chunk: unknown, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.chunks.push(String(chunk));
    done();
  }
  get text(): string {
    return this.chunks.join("");
  }
  /** The non-empty lines that stay on the screen (see `screenLines`). */
  get lines(): string[] {
    return screenLines(this.text).filter((l) => l.length > 0);
  }
}

/** A clock that moves only when told to. */
export function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 5000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** Simulated work on a manual clock: each training batch takes `batchMs`, each validation pass `valMs`. */
export function work(clock: { advance: (ms: number) => void }, o: { batchMs: number; valMs?: number }): Callback {
  return { name: "Work", order: ORDER.DEFAULT, beforeBatch: () => clock.advance(o.batchMs), beforeValidate: () => clock.advance(o.valMs ?? 0) };
}

/** Every training batch's logs and size (what the running means are made of). */
export function batches(): Callback & { seen: { epoch: number; size: number; logs: Logs }[] } {
  const seen: { epoch: number; size: number; logs: Logs }[] = [];
  return { name: "Batches", seen, afterBatch: (ctx) => void seen.push({ epoch: ctx.state.epoch, size: ctx.batchSize, logs: { ...ctx.logs } }) };
}

export const streaming = (source: DataSource): DataSource => ({ batches: (cursor) => source.batches(cursor) });

export function trainer(fx: TinyFixture, callbacks: Callback[], logger: Logger = silentLogger, optimizer?: tf.Optimizer): Trainer {
  return new Trainer({ model: fx.model, optimizer: optimizer ?? tf.train.adam(0.05), loss: "sparseCategoricalCrossentropy", metrics: ["acc"], callbacks, logger, seed: 1 });
}

/** A logger that keeps warnings. */
export function warnings(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return { ...silentLogger, lines, warn: (m: string) => void lines.push(m) };
}

/** Control sequences (CSI and the two-byte ESC forms cli-progress writes). */
export const ANSI = /\x1b(\[[0-9;?]*[A-Za-z]|[78])/;

/**
 * What a terminal shows for `text`, for the escape codes cli-progress writes: ESC[1G, "\r" and
 * ESC 8 (restore, to the bar's line start) move to column 0, ESC[2K clears the line, ESC[0K / ESC[K
 * clears right of the cursor, text overwrites from the cursor, "\n" ends the line.
 */
export function screenLines(text: string): string[] {
  const lines: string[] = [];
  let line = "";
  let col = 0;
  const token = /\x1b\[([0-9;?]*)([A-Za-z])|\x1b([78])|(\r)|(\n)|([^\x1b\r\n]+)/g;
  for (const m of text.matchAll(token)) {
    if (m[5]) {
      lines.push(line);
      line = "";
      col = 0;
    } else if (m[4] || m[3] === "8" || (m[2] === "G" && (m[1] === "1" || m[1] === ""))) {
      col = 0;
    } else if (m[2] === "K") {
      if (m[1] === "2") line = "";
      else line = line.slice(0, col);
    } else if (m[6]) {
      line = line.slice(0, col).padEnd(col) + m[6] + line.slice(col + m[6].length);
      col += m[6].length;
    }
  }
  if (line) lines.push(line);
  return lines;
}
