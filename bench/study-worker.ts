/**
 * One worker of bench/study.ts: joins the study on the given storage, waits for "go" on stdin (so
 * process start-up is not measured), runs `tune` with an empty objective until the study has the
 * asked number of trials, prints `{"ran":N,"ms":T}`.
 *   tsx bench/study-worker.ts <redis-url | journal file> <prefix> <study> <trials>
 */
import { createInterface } from "node:readline";
import { Study, tune, uniform, type JournalStorage } from "../packages/recipes/src/index.js";
import { FileJournal } from "../packages/recipes/src/node.js";
import { RedisJournal } from "../packages/tuner-redis/src/index.js";

const [spec, prefix, name, trials] = process.argv.slice(2) as [string, string, string, string];
const storage: JournalStorage & { close?: () => Promise<void> } = spec.startsWith("redis://") ? await RedisJournal.connect({ url: spec, prefix }) : new FileJournal(spec);
const study = await Study.open({ storage, name });
process.stdout.write("ready\n");
const go = createInterface({ input: process.stdin });
await new Promise<void>((resolve) => go.once("line", () => resolve()));
go.close(); // stdin would keep the process alive
const t0 = performance.now();
const result = await tune({ study, space: { x: uniform(0, 1) }, trials: Number(trials), objective: ({ x }) => x });
const ms = performance.now() - t0;
process.stdout.write(`${JSON.stringify({ ran: result.ran.length, ms })}\n`);
await storage.close?.();
