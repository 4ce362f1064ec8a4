/**
 * docs/events.md and docs/porting.md cannot go stale: they are parsed and checked against the source
 * (`EVENTS`, `ORDER`, `REVERSED_EVENTS`, `CHECKPOINT_EVENTS`, the hook types in callback.ts, the
 * `@fitloop/*` packages) and against real runs, which say where each `Cancel*`, `ctx.skipStep` and
 * `ctx.log` is accepted (cancel.ts does not export its scopes, so the trainer is asked).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import * as tf from "@tensorflow/tfjs-core";
import { CHECKPOINT_EVENTS, CancelBatch, CancelEpoch, CancelFit, CancelStep, EVENTS, FitloopError, ORDER, REVERSED_EVENTS, Trainer, silentLogger, type Callback, type CancellationClass, type EventName, type HookContext } from "./index.js";
import { tinyFixture, type TinyFixture } from "./testing/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const read = (...p: string[]) => readFileSync(join(root, ...p), "utf8");

// ---- markdown --------------------------------------------------------------------------------

/** The text outside fenced code blocks. */
function prose(md: string): string {
  return md.replace(/^```[^\n]*\n[\s\S]*?^```[ \t]*$/gm, "");
}

/** The fenced code blocks, in order. */
function fences(md: string): string[] {
  return [...md.matchAll(/^```[^\n]*\n([\s\S]*?)^```[ \t]*$/gm)].map((m) => m[1]!);
}

/** Every pipe table outside code: header cells and body rows (separator dropped). */
function tables(md: string): { header: string[]; rows: string[][] }[] {
  const out: { header: string[]; rows: string[][] }[] = [];
  let block: string[] = [];
  const flush = () => {
    if (block.length >= 2 && /^\|?\s*:?-{3,}/.test(block[1]!)) {
      const [header, , ...rows] = block.map(cells);
      out.push({ header: header!, rows });
    }
    block = [];
  };
  for (const line of prose(md).split("\n")) {
    if (line.trimStart().startsWith("|")) block.push(line.trim());
    else flush();
  }
  flush();
  return out;
}

function cells(line: string): string[] {
  return line.replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

const ticked = (s: string) => [...s.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
/** fitloop-style hook names: camelCase `beforeX` / `afterX`, and the two safe points. */
const HOOKISH = /^(?:(?:before|after)[A-Z][A-Za-z]*|batchCheckpoint|epochCheckpoint)$/;

function column(t: { header: string[] }, name: RegExp): number {
  const i = t.header.findIndex((h) => name.test(h));
  if (i < 0) throw new Error(`no column ${String(name)} in a table with header ${t.header.join(" | ")}`);
  return i;
}

/** ✓ or ✗ at the start of a cell. */
function mark(cell: string, where: string): boolean {
  if (cell.startsWith("✓")) return true;
  if (cell.startsWith("✗")) return false;
  throw new Error(`${where}: the cell "${cell}" must start with ✓ or ✗`);
}

// ---- what a real run accepts where ----------------------------------------------------------

type Probe = (ctx: HookContext) => void;

/** One trainer whose plugin hooks every event; `probe` decides what each hook does. */
function harness() {
  const fx: TinyFixture = tinyFixture({ samples: 4, hidden: 4 });
  let probe: Probe = () => {};
  const plugin: Record<string, unknown> = { name: "probe" };
  for (const e of EVENTS) plugin[e] = (ctx: HookContext) => void probe(ctx);
  const trainer = new Trainer({ model: fx.model, optimizer: tf.train.sgd(0.01), loss: "sparseCategoricalCrossentropy", logger: silentLogger, yieldEveryMs: false, callbacks: [plugin as Callback] });
  /** 1 epoch: 2 training batches and 1 validation batch, so every event fires. */
  const fit = async (p: Probe) => {
    probe = p;
    return trainer.fit({ epochs: 1, train: fx.data(2), validation: fx.data(4) });
  };
  return { fit, dispose: () => fx.dispose() };
}

const CANCELS: Record<string, CancellationClass> = { CancelBatch, CancelStep, CancelEpoch, CancelFit };

interface Accepted {
  cancel: Record<string, Record<EventName, boolean>>;
  skipStep: Record<EventName, boolean>;
  logNumber: Record<EventName, boolean>;
  logTensor: Record<EventName, boolean>;
}

async function probeRuns(): Promise<Accepted> {
  const h = harness();
  const codeOf = (e: unknown) => (e instanceof FitloopError ? e.code : `${String(e)}`);
  try {
    const cancel: Accepted["cancel"] = {};
    for (const [name, Cls] of Object.entries(CANCELS)) {
      cancel[name] = {} as Record<EventName, boolean>;
      for (const event of EVENTS) {
        let fired = false;
        let accepted = true;
        try {
          await h.fit((ctx) => {
            if (ctx.event !== event || fired) return;
            fired = true;
            throw new Cls("docs probe");
          });
        } catch (e) {
          if (codeOf(e) !== "CANCEL_OUT_OF_SCOPE") throw e;
          accepted = false;
        }
        expect(fired, `${name} probe in ${event}: the event fired`).toBe(true);
        cancel[name]![event] = accepted;
      }
    }
    // ctx.log (a number, a scalar tensor) and ctx.skipStep: each tried on the first firing of each event
    const logNumber = {} as Record<EventName, boolean>;
    const logTensor = {} as Record<EventName, boolean>;
    const r1 = await h.fit((ctx) => {
      if (ctx.event in logNumber) return;
      const attempt = (f: () => void) => {
        try {
          f();
          return true;
        } catch (e) {
          if (codeOf(e) !== "INVALID_LOG") throw e;
          return false;
        }
      };
      logNumber[ctx.event] = attempt(() => ctx.log(`n_${ctx.event}`, 1));
      logTensor[ctx.event] = attempt(() => ctx.log(`t_${ctx.event}`, tf.scalar(1)));
    });
    expect(r1.outcome.status).toBe("completed");
    const skipStep = {} as Record<EventName, boolean>;
    const r2 = await h.fit((ctx) => {
      if (ctx.event in skipStep) return;
      const skip = (ctx as Partial<{ skipStep(reason: string): void }>).skipStep;
      if (typeof skip !== "function") return void (skipStep[ctx.event] = false);
      try {
        skip.call(ctx, "docs probe");
        skipStep[ctx.event] = true;
      } catch (e) {
        if (codeOf(e) !== "SKIP_OUT_OF_SCOPE") throw e;
        skipStep[ctx.event] = false;
      }
    });
    expect(r2.outcome.status).toBe("completed");
    for (const e of EVENTS) expect([e in logNumber, e in skipStep], `${e} fired in the log and skip probes`).toEqual([true, true]);
    return { cancel, skipStep, logNumber, logTensor };
  } finally {
    h.dispose();
  }
}

// ---- docs/events.md --------------------------------------------------------------------------

describe("docs/events.md", () => {
  const md = read("docs", "events.md");
  const all = tables(md);
  const table = all.find((t) => t.header.some((h) => /^event$/i.test(h)))!;
  const col = (name: RegExp) => column(table, name);
  let accepted: Accepted;

  beforeAll(async () => {
    accepted = await probeRuns();
  });

  it("has one row per event, in EVENTS order, and names no other event", () => {
    expect(table, "a table with an `event` column").toBeDefined();
    const names = table.rows.map((r) => {
      const t = ticked(r[col(/^event$/i)]!);
      expect(t, `row ${r.join(" | ")} names one event`).toHaveLength(1);
      return t[0]!;
    });
    expect(names).toEqual([...EVENTS]);
    // hook-shaped names anywhere in the prose are real events
    for (const name of ticked(prose(md)).map((n) => n.replace(/\(.*$/, "").replace(/^ctx\./, ""))) {
      if (HOOKISH.test(name)) expect(EVENTS as readonly string[], `\`${name}\` in docs/events.md`).toContain(name);
    }
  });

  it("the loop pseudocode is the one documented in events.ts", () => {
    const source = read("packages", "core", "src", "events.ts");
    const block = /```\n([\s\S]*?)\n \* ```/.exec(source)![1]!.split("\n").map((l) => l.replace(/^ \* ?/, "")).join("\n");
    expect(fences(md)[0]!.trimEnd()).toBe(block.trimEnd());
  });

  it("the context type of each event is the one callback.ts declares", () => {
    const source = read("packages", "core", "src", "callback.ts");
    for (const row of table.rows) {
      const event = ticked(row[col(/^event$/i)]!)[0]!;
      const m = new RegExp(`^\\s*${event}\\?: (?:Hook(?:<(\\w+)>)?|\\(ctx: (\\w+)\\))`, "m").exec(source);
      expect(m, `callback.ts declares ${event}`).not.toBeNull();
      const declared = m![1] ?? m![2] ?? "HookContext";
      expect(ticked(row[col(/^context$/i)]!), `context of ${event}`).toEqual([declared]);
    }
  });

  it("hook order, snapshot, skipStep and ctx.log columns agree with the source and a real run", () => {
    for (const row of table.rows) {
      const event = ticked(row[col(/^event$/i)]!)[0]! as EventName;
      const order = row[col(/^hook order$/i)]!;
      expect(order, `hook order of ${event}`).toMatch(REVERSED_EVENTS.has(event) ? /^reversed/ : /^declared/);
      expect(mark(row[col(/snapshot/)]!, `${event} snapshot`), `ctx.snapshot() in ${event}`).toBe(CHECKPOINT_EVENTS.has(event));
      expect(mark(row[col(/skipStep/)]!, `${event} skipStep`), `ctx.skipStep in ${event}`).toBe(accepted.skipStep[event]);
      const log = row[col(/ctx\.log/)]!;
      expect(mark(log, `${event} ctx.log`), `ctx.log(number) in ${event}`).toBe(accepted.logNumber[event]);
      expect(/tensor/.test(log), `ctx.log(tensor) in ${event}: "${log}"`).toBe(accepted.logTensor[event]);
    }
  });

  it("the cancellation columns agree with where a real run accepts each Cancel*", () => {
    for (const name of Object.keys(CANCELS)) {
      const c = col(new RegExp(`^\`?${name}\`?$`));
      const documented = Object.fromEntries(table.rows.map((r) => [ticked(r[col(/^event$/i)]!)[0]!, mark(r[c]!, `${r[col(/^event$/i)]} ${name}`)]));
      expect(documented, `${name}: ✓ where it cancels something, ✗ where it is CANCEL_OUT_OF_SCOPE`).toEqual(accepted.cancel[name]);
    }
  });

  it("lists every ORDER constant with its value, and no other", () => {
    const rows = all.flatMap((t) => t.rows).filter((r) => /^`ORDER\.\w+`$/.test(r[0]!));
    const documented = Object.fromEntries(rows.map((r) => [r[0]!.slice(7, -1), Number(r[1]!.replace(/[`_,\s]/g, "").replace("−", "-"))]));
    expect(documented).toEqual({ ...ORDER });
  });
});

// ---- docs/porting.md -------------------------------------------------------------------------

/** `@fitloop/*` package name -> its directory. */
function packages(): Map<string, string> {
  const out = new Map<string, string>();
  const dirs = ["packages", join("packages", "callbacks")];
  for (const d of dirs) {
    for (const name of readdirSync(join(root, d))) {
      const pj = join(root, d, name, "package.json");
      if (existsSync(pj)) out.set((JSON.parse(readFileSync(pj, "utf8")) as { name: string }).name, join(root, d, name));
    }
  }
  return out;
}

describe("docs/porting.md", () => {
  const md = read("docs", "porting.md");
  const mapping = tables(md).filter((t) => t.header.some((h) => /fitloop/i.test(h)));

  it("every fitloop hook it maps to is a real event", () => {
    const named: string[] = [];
    for (const t of mapping) {
      const c = column(t, /fitloop/i);
      for (const r of t.rows) named.push(...ticked(r[c]!).map((n) => n.replace(/\(.*$/, "").replace(/^ctx\./, "")).filter((n) => HOOKISH.test(n)));
    }
    expect(named.length, "the mapping tables name fitloop hooks").toBeGreaterThan(15);
    for (const n of named) expect(EVENTS as readonly string[], `\`${n}\` in a fitloop column`).toContain(n);
    // and anywhere else in the prose
    for (const n of ticked(prose(md)).map((x) => x.replace(/\(.*$/, "").replace(/^ctx\./, ""))) {
      if (HOOKISH.test(n)) expect(EVENTS as readonly string[], `\`${n}\` in docs/porting.md`).toContain(n);
    }
  });

  it("maps Keras/tfjs/Lightning hook names as core's plugin check does (the event its error names)", () => {
    const source = read("packages", "core", "src", "plugin-check.ts");
    const block = /const FOREIGN[^{]*\{([\s\S]*?)\n\};/.exec(source)![1]!;
    const foreign = new Map([...block.matchAll(/^\s*(\w+): "(\w+)",/gm)].map((m) => [m[1]!, m[2]!]));
    expect(foreign.size).toBeGreaterThan(20);
    let checked = 0;
    for (const t of mapping) {
      const c = column(t, /fitloop/i);
      for (const r of t.rows) {
        const theirs = ticked(r[0]!).map((n) => n.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase());
        const meant = theirs.map((n) => foreign.get(n)).filter((x): x is string => x !== undefined);
        if (meant.length === 0) continue;
        const ours = ticked(r[c]!).map((n) => n.replace(/\(.*$/, ""))[0];
        for (const m of meant) expect(ours, `${r[0]} -> ${r[c]}`).toBe(m);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });

  it("every @fitloop package it names exists, and the plugins named with one are exported by it", () => {
    const pkgs = packages();
    const names = [...new Set([...md.matchAll(/@fitloop\/[a-z0-9-]+/g)].map((m) => m[0]))];
    expect(names.length).toBeGreaterThan(5);
    for (const n of names) expect(pkgs.has(n), `${n} is a package under packages/`).toBe(true);
    // rows of a table with a package column: `Class` in the plugin column is exported by that package
    for (const t of mapping) {
      const p = t.header.findIndex((h) => /package/i.test(h));
      const k = t.header.findIndex((h) => /plugin/i.test(h));
      if (p < 0 || k < 0) continue;
      for (const r of t.rows) {
        const pkg = /@fitloop\/[a-z0-9-]+/.exec(r[p]!)?.[0];
        if (!pkg) continue;
        const index = readFileSync(join(pkgs.get(pkg)!, "src", "index.ts"), "utf8");
        for (const cls of ticked(r[k]!).map((x) => /^(?:new )?([A-Z]\w*)/.exec(x)?.[1]).filter((x): x is string => !!x)) {
          expect(new RegExp(`\\b${cls}\\b`).test(index), `${cls} is exported by ${pkg}`).toBe(true);
        }
      }
    }
  });
});
