import { OptionsError } from "@fitloop/core";

/**
 * Prefetching over any (sync or async) iterator. After item i is handed out, item i+1 is
 * requested on a timer: if the consumer awaits something that yields to the event loop (a GPU
 * read-back, file I/O, a worker), the next batch is prepared during that wait. If the consumer
 * asks first, the item is produced on demand, so prefetching never adds latency. JavaScript runs
 * one thread: on the synchronous cpu/wasm backends there is nothing to overlap with, and this
 * costs nothing.
 *
 * Items prepared but never handed out (the consumer stopped early: `break`, an error, a stop
 * request) are disposed by `return()`, which `for await` calls.
 */
export function prefetch<T>(source: Iterator<T> | AsyncIterator<T>, depth: number, dispose: (item: T) => void): AsyncIterableIterator<T> {
  const issues = [
    ...(typeof source === "object" && source !== null && typeof source.next === "function" ? [] : [{ path: "source", message: "must be an iterator (an object with next())" }]),
    ...(Number.isSafeInteger(depth) && depth >= 0 ? [] : [{ path: "depth", message: `must be an integer >= 0, got ${String(depth)}` }]),
    ...(typeof dispose === "function" ? [] : [{ path: "dispose", message: "must be a function (item) => void" }]),
  ];
  if (issues.length) throw new OptionsError("prefetch", issues);
  const queue: Promise<IteratorResult<T>>[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  let finished = false;

  const pull = (): Promise<IteratorResult<T>> => {
    let p: Promise<IteratorResult<T>>;
    try {
      p = Promise.resolve(source.next());
    } catch (e) {
      p = Promise.reject(e);
    }
    // Surface errors on the consumer's next(), not as an unhandled rejection of a prefetch.
    p.catch(() => undefined);
    return p;
  };

  const cancelTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const schedule = () => {
    if (finished || depth <= 0 || queue.length >= depth || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      if (finished || queue.length >= depth) return;
      queue.push(pull());
      schedule();
    }, 0);
  };

  const it: AsyncIterableIterator<T> = {
    async next(): Promise<IteratorResult<T>> {
      if (finished) return { done: true, value: undefined };
      cancelTimer();
      const head = queue.shift() ?? pull();
      let r: IteratorResult<T>;
      try {
        r = await head;
      } catch (e) {
        await it.return!();
        throw e;
      }
      if (r.done) {
        finished = true;
        return r;
      }
      schedule();
      return r;
    },
    async return(): Promise<IteratorResult<T>> {
      finished = true;
      cancelTimer();
      const pending = queue.splice(0);
      for (const p of pending) {
        const r = await p.catch(() => undefined);
        if (r && !r.done) dispose(r.value);
      }
      await source.return?.();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it;
}
