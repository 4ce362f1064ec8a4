import { describe, expect, it } from "vitest";
import { prefetch } from "./index.js";

const tick = () => new Promise((r) => setTimeout(r, 2));

/** A source that records when each item is produced and which items were disposed. */
function source(n: number, failAt = -1) {
  const log: string[] = [];
  const disposed: number[] = [];
  function* gen() {
    for (let i = 0; i < n; i++) {
      if (i === failAt) throw new Error(`boom at ${i}`);
      log.push(`make ${i}`);
      yield i;
    }
  }
  return { it: gen(), log, disposed, dispose: (i: number) => void disposed.push(i) };
}

describe("prefetch", () => {
  it("prepares the next item while the consumer awaits, up to `depth` ahead", async () => {
    const s = source(6);
    const it = prefetch(s.it, 2, s.dispose);
    expect((await it.next()).value).toBe(0);
    expect(s.log).toEqual(["make 0"]);
    await tick(); // the consumer's step yields to the event loop
    await tick();
    expect(s.log).toEqual(["make 0", "make 1", "make 2"]);
    const rest: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
    expect(rest).toEqual([1, 2, 3, 4, 5]);
    expect(s.disposed).toEqual([]);
  });

  it("produces on demand when the consumer never yields (no added latency)", async () => {
    const s = source(3);
    const it = prefetch(s.it, 1, s.dispose);
    const got = [(await it.next()).value, (await it.next()).value, (await it.next()).value];
    expect(got).toEqual([0, 1, 2]);
    expect((await it.next()).done).toBe(true);
  });

  it("return() disposes items prepared but never handed out", async () => {
    const s = source(10);
    const it = prefetch(s.it, 3, s.dispose);
    await it.next();
    for (let i = 0; i < 5; i++) await tick();
    expect(s.log.length).toBe(4);
    await it.return!();
    expect(s.disposed).toEqual([1, 2, 3]);
    expect((await it.next()).done).toBe(true);
  });

  it("an error in a prefetched item surfaces on the consumer's next()", async () => {
    const s = source(5, 2);
    const it = prefetch(s.it, 2, s.dispose);
    expect((await it.next()).value).toBe(0);
    await tick();
    await tick();
    expect((await it.next()).value).toBe(1);
    await expect(it.next()).rejects.toThrow("boom at 2");
  });

  it("works over async sources", async () => {
    async function* gen() {
      for (let i = 0; i < 4; i++) {
        await tick();
        yield i;
      }
    }
    const out: number[] = [];
    for await (const v of prefetch(gen(), 2, () => undefined)) out.push(v);
    expect(out).toEqual([0, 1, 2, 3]);
  });
});
