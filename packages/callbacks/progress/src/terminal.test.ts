import { execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemTool } from "../../../../scripts/system-tools.js";

/**
 * The progress output as a user sees it: a real terminal (tmux, read back with capture-pane while
 * the run goes on), CI=true in that terminal, and stderr redirected to a file. The runs are started
 * together (a few seconds each) and each test waits for its own.
 */
const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (args: string) => `${join(pkg, "node_modules", ".bin", "tsx")} --conditions=@fitloop/source src/fixtures/progress-run.fixture.ts ${args}`;
const ANSI = /\x1b/;
/** The lines a run printed, without tfjs's "use tfjs-node" banner. */
const ours = (text: string) =>
  text
    .split("\n")
    .map((l) => l.replace(/\r$/, "").trimEnd())
    .filter((l) => l && !/^=+$|looks like you are running TensorFlow\.js in Node\.js/.test(l));
const epochLine = (k: number, of: number, done: number, total: number, val: boolean, bar: boolean) =>
  new RegExp(`^Epoch ${k}/${of} - +${done}/${total}${bar ? " \\[[=>.]{30}\\]" : ""} - [\\d.]+s [\\d.]+ms/step - [\\d.]+ samples/s - loss: \\S+ - acc: \\S+${val ? " - lr: \\S+ - val_loss: \\S+ - val_acc: \\S+" : ""}$`);

async function until<T>(what: string, probe: () => T | undefined, show: () => string, ms = 25_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${show()}`);
    await sleep(50);
  }
}

const tmux = systemTool("tmux");

describe.skipIf(!tmux.path)(`in a real terminal${tmux.note}`, () => {
  const dir = mkdtempSync(join(tmpdir(), "fitloop-progress-"));
  const socket = join(dir, "tmux.sock"); // our own tmux server: nobody else's sessions are touched, and its socket goes with dir
  const t = (...args: string[]) => execFileSync(tmux.path!, ["-S", socket, "-f", "/dev/null", ...args], { encoding: "utf8" });
  const screen = (win: string) => t("capture-pane", "-p", "-J", "-t", `main:${win}`);
  let piped: Promise<number | null>;

  beforeAll(() => {
    t("new-session", "-d", "-s", "main", "-x", "200", "-y", "40", "-c", pkg, "sleep 120");
    const window = (name: string, command: string) => t("new-window", "-d", "-t", "main", "-n", name, "-c", pkg, `${command}; echo EXIT:$?; exec sleep 120`); // the pane stays (and its modes) after the run
    window("bar", `env -u CI ${run("--epochs 3 --batches 12 --delay 60")}`);
    window("fail", `env -u CI ${run("--epochs 2 --batches 12 --delay 20 --fail-at 1:5")}`);
    // another plugin logs a line mid-epoch every 5 batches, through progress.logger(consoleLogger);
    // started by its test (which watches it mid-run)
    window("log", `${tmux.path} -S ${socket} wait-for go-log; env -u CI ${run("--epochs 2 --batches 12 --delay 60 --log-every 5")}`);
    // CI=true in a terminal: the raw bytes the program writes, through pipe-pane (started before the run, which waits for it)
    window("ci", `${tmux.path} -S ${socket} wait-for go-ci; CI=true ${run("--epochs 2 --batches 6 --delay 5 --every 3")}`);
    t("pipe-pane", "-o", "-t", "main:ci", `cat > ${join(dir, "ci.raw")}`);
    t("wait-for", "-S", "go-ci");
    // stderr redirected to a file, CI unset
    const env = { ...process.env };
    delete env["CI"];
    const fd = openSync(join(dir, "stderr.txt"), "w");
    const child = spawn("sh", ["-c", run("--epochs 2 --batches 6 --delay 5 --every 2")], { cwd: pkg, env, stdio: ["ignore", "pipe", fd] });
    closeSync(fd);
    piped = new Promise((resolve) => child.on("exit", resolve));
  });

  afterAll(() => {
    try {
      t("kill-server");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a bar per epoch: mid-epoch the epoch, the bar, ETA, throughput and running loss; at the end one full line per epoch", async () => {
    const mid = await until(
      "a bar mid-epoch",
      () => ours(screen("bar")).find((l) => /^Epoch \d\/3 - +\d+\/12 \[=*>\.*\] - ETA [\d.]+s - [\d.]+ samples\/s - loss: \S+ - acc: \S+$/.test(l) && !l.includes("12/12")),
      () => screen("bar"),
    );
    expect(mid).toMatch(/^Epoch [123]\/3 - +([1-9]|1[01])\/12 \[/);
    const end = await until("the end of the run", () => (screen("bar").includes("EXIT:") ? ours(screen("bar")) : undefined), () => screen("bar"));
    expect(end).toHaveLength(5);
    [1, 2, 3].forEach((k) => expect(end[k - 1]).toMatch(epochLine(k, 3, 12, 12, true, true)));
    expect(end.slice(3)).toEqual(["DONE completed", "EXIT:0"]);
    expect(t("display-message", "-p", "-t", "main:bar", "#{cursor_flag} #{wrap_flag}")).toBe("1 1\n"); // cursor shown, line wrapping on
  });

  it("a failure mid-epoch: the bar's line ends where it was, the failure is printed on its own line, the terminal is as it was", async () => {
    const end = await until("the end of the failed run", () => (screen("fail").includes("EXIT:") ? ours(screen("fail")) : undefined), () => screen("fail"));
    expect(end).toHaveLength(5);
    expect(end[0]).toMatch(epochLine(1, 2, 12, 12, true, true));
    expect(end[1]).toMatch(epochLine(2, 2, 5, 12, false, true));
    expect(end[2]).toBe('Failed (epoch 2/2, batch 5/12): plugin "Slow" threw in afterStep: test failure at epoch 1 batch 5');
    expect(end.slice(3)).toEqual(["DONE failed", "EXIT:0"]);
    expect(t("display-message", "-p", "-t", "main:fail", "#{cursor_flag} #{wrap_flag}")).toBe("1 1\n");
  });

  it("a message another plugin logs mid-epoch through progress.logger(): on its own line(s), intact, with the bar intact below it and the finished epochs' lines in order", async () => {
    const saved = (epoch: number, step: number) => `Checkpoint: saved "epoch=${epoch}-step=${step}" (every 5 steps)`;
    t("wait-for", "-S", "go-log");
    // mid-epoch 2: the message of step 15 (epoch 2's third batch), then the bar, each whole
    const mid = await until(
      "a message and the bar below it",
      () => {
        const text = screen("log");
        const lines = ours(text);
        if (text.includes("EXIT:")) return lines; // over without it: the check below says what is there
        const at = lines.indexOf(saved(1, 15));
        const next = lines[at + 1];
        return at >= 0 && next !== undefined && /^Epoch 2\/2 - +\d+\/12 \[=*>\.*\] - ETA [\d.]+s - [\d.]+ samples\/s - loss: \S+ - acc: \S+$/.test(next) ? lines : undefined;
      },
      () => screen("log"),
    );
    expect(mid.slice(0, 4)).toEqual([saved(0, 5), saved(0, 10), expect.stringMatching(epochLine(1, 2, 12, 12, true, true)), saved(1, 15)]);
    const end = await until("the end of the run", () => (screen("log").includes("EXIT:") ? ours(screen("log")) : undefined), () => screen("log"));
    expect(end).toEqual([saved(0, 5), saved(0, 10), expect.stringMatching(epochLine(1, 2, 12, 12, true, true)), saved(1, 15), saved(1, 20), expect.stringMatching(epochLine(2, 2, 12, 12, true, true)), "DONE completed", "EXIT:0"]);
    expect(t("display-message", "-p", "-t", "main:log", "#{cursor_flag} #{wrap_flag}")).toBe("1 1\n");
  });

  it("CI=true in a terminal: plain lines (one every 3 batches, one per epoch), not a single escape code", async () => {
    await until("the end of the CI run", () => (screen("ci").includes("EXIT:") ? true : undefined), () => screen("ci"));
    const raw = readFileSync(join(dir, "ci.raw"), "utf8");
    expect(ANSI.test(raw)).toBe(false);
    const lines = ours(raw);
    expect(lines).toHaveLength(6);
    for (const e of [0, 1]) {
      expect(lines[2 * e]).toMatch(new RegExp(`^Epoch ${e + 1}/2 - 3/6 - ETA [\\d.]+s - [\\d.]+ samples/s - loss: \\S+ - acc: \\S+$`));
      expect(lines[2 * e + 1]).toMatch(epochLine(e + 1, 2, 6, 6, true, false));
    }
    expect(lines.slice(4)).toEqual(["DONE completed", "EXIT:0"]);
  });

  it("stderr redirected to a file: plain lines, no escape codes", async () => {
    expect(await piped).toBe(0);
    const text = readFileSync(join(dir, "stderr.txt"), "utf8");
    expect(ANSI.test(text)).toBe(false);
    const lines = ours(text);
    expect(lines).toHaveLength(6);
    for (const e of [0, 1]) {
      expect(lines.slice(3 * e, 3 * e + 2).map((l) => l.slice(0, 15))).toEqual([`Epoch ${e + 1}/2 - 2/6`, `Epoch ${e + 1}/2 - 4/6`]);
      expect(lines[3 * e + 2]).toMatch(epochLine(e + 1, 2, 6, 6, true, false));
    }
  });
});
