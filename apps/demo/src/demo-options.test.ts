// The demo's options that demo.test.ts does not cover, run as a user runs them (the CLI in a child
// process): --data with real IDX files (and --dataset fashion, and a directory that lacks a file),
// --backend tensorflow where tfjs-node is not installed (what docs/gpu.md quotes), --dashboard
// fetched while it trains, and Ctrl-C (SIGINT) in the middle of an epoch, then resume.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { MNIST_FILES, expectedMnistFiles, splitDataset, type ArrayDataset } from "@fitloop/datasets";
import { loadEmbeddedMnist, writeIdxFile } from "@fitloop/datasets/node";

const here = dirname(fileURLToPath(import.meta.url));
const demoDir = join(here, "..");
const tsx = join(demoDir, "node_modules", ".bin", "tsx");
const work = mkdtempSync(join(tmpdir(), "fitloop-demo-options-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// Each child runs in its own directory (the demo writes runs/.last-run relative to it); tsx looks
// for a tsconfig from there, so point it at the demo's.
const childEnv = { ...process.env, CI: "true", TSX_TSCONFIG_PATH: join(demoDir, "tsconfig.json") };
const cliArgs = (args: string[]) => ["--conditions=@fitloop/source", join(here, "cli.ts"), "--", ...args];

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI to its end in a fresh working directory; never rejects (failures are asserted). */
function demo(args: string[], cwd = mkdtempSync(join(work, "cwd-"))): Promise<Finished & { cwd: string }> {
  return new Promise((resolve) => {
    execFile(tsx, cliArgs(args), { cwd, env: childEnv, timeout: 90_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout, stderr, cwd });
    });
  });
}

/**
 * Starts the CLI and calls `onLine` with each stdout line as it is printed (while the run goes on);
 * resolves when the process ends. `launcher: "node"` runs it in one process (`node --import tsx`)
 * instead of the tsx CLI, which runs the program in a child process and relays signals to it.
 */
function demoStreaming(args: string[], onLine: (line: string, child: ChildProcess) => void, launcher: "tsx" | "node" = "tsx"): Promise<Finished> {
  const command = launcher === "tsx" ? [tsx, cliArgs(args)] as const : [process.execPath, ["--import", pathToFileURL(createRequire(join(demoDir, "package.json")).resolve("tsx")).href, ...cliArgs(args)]] as const;
  // its own process group, as a terminal runs a command (Ctrl-C signals the whole group)
  const child = spawn(command[0], command[1], { cwd: mkdtempSync(join(work, "cwd-")), env: childEnv, detached: true });
  const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
  let stdout = "";
  let stderr = "";
  let partial = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    const lines = (partial + chunk).split("\n");
    partial = lines.pop()!;
    for (const line of lines) onLine(line, child);
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => void (stderr += chunk));
  return new Promise((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const number = (text: string, re: RegExp) => Number(re.exec(text)?.[1]);

/** Real digits (a stratified subset of the embedded ones) as uint8 IDX arrays. */
function idxArrays(ds: ArrayDataset) {
  const pixels = Uint8Array.from(ds.x, (v) => Math.round(v * 255));
  return { images: { dtype: "uint8" as const, dims: [ds.size, 28, 28], data: pixels }, labels: { dtype: "uint8" as const, dims: [ds.size], data: Uint8Array.from(ds.y) } };
}

describe("demo --data, --backend tensorflow", () => {
  it("trains on IDX files (gzipped train split, plain test split; MNIST and Fashion class names); a directory without the test files and a missing tfjs-node fail before anything is written", async () => {
    // 1,000 train and 300 test digits, stratified, from the 10,000 embedded ones
    const split = splitDataset(loadEmbeddedMnist(), { fractions: { train: 0.1, validation: 0.03, test: 0.87 }, seed: 7 });
    const idx = join(work, "idx");
    const onlyTrain = join(work, "idx-train-only");
    mkdirSync(idx);
    mkdirSync(onlyTrain);
    for (const [split_, ds, gzip] of [["train", split.train, true], ["test", split.validation, false]] as const) {
      const { images, labels } = idxArrays(ds);
      const names = MNIST_FILES[split_];
      for (const dir of split_ === "train" ? [idx, onlyTrain] : [idx]) {
        writeIdxFile(join(dir, names.images + (gzip ? ".gz" : "")), images, { gzip });
        writeIdxFile(join(dir, names.labels + (gzip ? ".gz" : "")), labels, { gzip });
      }
    }
    const quick = ["--model", "mlp", "--epochs", "1"];
    const [mnist, fashion, missing, tensorflow] = await Promise.all([
      demo(["train", ...quick, "--data", idx, "--out", join(work, "run-mnist")]),
      demo(["train", ...quick, "--data", idx, "--dataset", "fashion", "--out", join(work, "run-fashion")]),
      demo(["train", ...quick, "--data", onlyTrain, "--out", join(work, "run-missing")]),
      demo(["train", ...quick, "--backend", "tensorflow", "--out", join(work, "run-tensorflow")]),
    ]);

    expect(mnist.code, mnist.stderr).toBe(0);
    expect(mnist.stdout).toContain(`fitloop demo: MNIST IDX files in ${idx} (1000 train / 300 test held out); backend wasm, model mlp`);
    expect(mnist.stdout).toMatch(/overall: PASS/); // the sanity checks ran on the IDX data
    expect(mnist.stdout).toMatch(/^completed after 1 of 1 epochs$/m);
    expect(number(mnist.stdout, /held-out accuracy ([\d.]+) % on 300 digits/)).toBeGreaterThan(50); // 16 steps on real digits: far above the 10 % of guessing
    expect(mnist.stdout).toMatch(/per-class accuracy 0: [\d.]+%, 1: /);

    expect(fashion.code, fashion.stderr).toBe(0);
    expect(fashion.stdout).toContain(`fitloop demo: Fashion-MNIST IDX files in ${idx} (1000 train / 300 test held out)`);
    expect(fashion.stdout).toMatch(/^completed after 1 of 1 epochs$/m);
    expect(fashion.stdout).toMatch(/per-class accuracy T-shirt\/top: [\d.]+%, Trouser: [\d.]+%, .*Ankle boot: [\d.]+%/);
    expect(fashion.stdout).toMatch(/held-out accuracy [\d.]+ % on 300 images/);

    // the missing file is named, with what the directory holds and the four names expected
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`error: mnist file missing: ${MNIST_FILES.test.images}[.gz] in ${onlyTrain} (it contains: ${MNIST_FILES.train.images}.gz, ${MNIST_FILES.train.labels}.gz)`);
    for (const name of expectedMnistFiles()) expect(missing.stderr).toContain(name);
    expect(missing.stdout).toBe(""); // before the data report, the sanity checks or any training
    expect(existsSync(join(work, "run-missing"))).toBe(false);
    expect(existsSync(join(missing.cwd, "runs", ".last-run"))).toBe(false); // `resume` still finds the previous run

    // docs/gpu.md quotes the error; the demo stops with it before anything is written
    const quoted = /`(the tensorflow backend is not installed: [^`]+)`/.exec(readFileSync(join(demoDir, "..", "..", "docs", "gpu.md"), "utf8"))![1]!;
    expect(tensorflow.code).toBe(1);
    expect(tensorflow.stderr).toContain(`error: ${quoted}\n`);
    expect(tensorflow.stdout).toBe("");
    expect(existsSync(join(work, "run-tensorflow"))).toBe(false);
  }, 120_000);
});

/** Server-sent events from a stream: `{ event, data }` per message. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: unknown }> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event && data) yield { event, data: JSON.parse(data) as unknown };
    }
  }
}

describe("demo --dashboard", () => {
  it("serves the page and a live stream of the run (history on connect, steps and epochs as they happen, the end) while it trains", async () => {
    let url: string | undefined;
    let page: Promise<{ status: number; type: string | null; html: string }> | undefined;
    let stream: Promise<{ event: string; data: unknown }[]> | undefined;
    const run = demoStreaming(["train", "--model", "mlp", "--epochs", "3", "--batch", "16", "--dashboard", "--out", join(work, "run-dashboard")], (line) => {
      const m = /^LiveDashboard: live plots at (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(line);
      if (!m || url) return;
      // printed when training starts; the dashboard closes when the run ends, so fetch now
      url = m[1]!;
      page = fetch(url).then(async (r) => ({ status: r.status, type: r.headers.get("content-type"), html: await r.text() }));
      stream = fetch(`${url}events`).then(async (r) => {
        const events: { event: string; data: unknown }[] = [];
        for await (const e of sseEvents(r.body!)) events.push(e);
        return events;
      });
    });
    const finished = await run;
    expect(finished.code, finished.stderr).toBe(0);
    expect(url, finished.stdout).toBeDefined();
    expect(finished.stdout).toMatch(/^completed after 3 of 3 epochs$/m);

    const served = await page!;
    expect(served.status).toBe(200);
    expect(served.type).toBe("text/html; charset=utf-8");
    expect(served.html).toContain("<title>fitloop demo</title>");

    const events = await stream!; // ends when the dashboard closes at the end of the run
    const kinds = events.map((e) => e.event);
    expect(kinds[0]).toBe("history"); // what happened before this client connected
    const config = (events[0]!.data as { config: { epochs: number; backend: string; extra: { data: string } } }).config; // the run the demo described
    expect(config.extra.data).toMatch(/^10000 embedded MNIST digits/);
    expect([config.epochs, config.backend]).toEqual([3, "wasm"]);
    expect(kinds.filter((k) => k === "steps").length, kinds.join(" ")).toBeGreaterThan(0); // live, while training
    const epochs = events.filter((e) => e.event === "epoch").map((e) => (e.data as { record: { epoch: number; logs: Record<string, number> } }).record);
    const replayed = (events[0]!.data as { epochs?: { epoch: number }[] }).epochs ?? [];
    expect([...replayed.map((r) => r.epoch), ...epochs.map((r) => r.epoch)]).toEqual([0, 1, 2]); // every epoch, replayed or live
    for (const r of epochs) expect(r.logs["val_loss"]).toBeGreaterThan(0);
    expect(kinds.at(-1)).toBe("end");
    expect((events.at(-1)!.data as { outcome: { status: string } }).outcome.status).toBe("completed");
  }, 120_000);
});

describe("demo: Ctrl-C in the middle of an epoch", () => {
  it("saves where it is and says which epoch it stopped in and how many batches of it ran; resume continues at the next batch and completes", async () => {
    const runDir = join(work, "run-sigint");
    let signalled = false;
    // In one process: the tsx CLI (what `pnpm start` runs) relays a signal to its child and SIGKILLs
    // the child unless it acknowledges within 30 ms, which a training step that holds the event loop
    // longer cannot do; `node --import tsx` has no such relay.
    const first = await demoStreaming(["train", "--model", "mlp", "--epochs", "2", "--batch", "16", "--out", runDir], (line, child) => {
      // printed in beforeFit after the checkpoint plugin installed its SIGINT handler: training starts now
      if (!signalled && line.startsWith("TensorBoard: writing")) {
        signalled = true;
        process.kill(-child.pid!, "SIGINT"); // Ctrl-C: the whole process group
      }
    }, "node");
    expect(first.code, first.stderr).toBe(0);
    expect(signalled).toBe(true);
    const stop = /^stopped in epoch 1 of 2 after (\d+) of 500 batches \(0 full epochs\) \(Checkpoint: SIGINT: saved a checkpoint and stopped\)$/m.exec(first.stdout);
    expect(stop, first.stdout).not.toBeNull();
    const batches = Number(stop![1]);
    expect(batches).toBeGreaterThan(0);
    expect(batches).toBeLessThan(500);
    expect(first.stdout).toContain(`Checkpoint: saved "epoch=0-step=${batches}" (on SIGINT)`);
    expect(first.stdout).toMatch(/interrupted: continue with `resume /);

    const resumed = await demo(["resume", runDir]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`resuming .* at epoch 1/2 batch ${batches + 1} \\(step ${batches}\\)`));
    expect(resumed.stdout).toMatch(/^completed after 2 of 2 epochs$/m);
  }, 120_000);
});
