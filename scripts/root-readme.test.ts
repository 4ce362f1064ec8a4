// The root README's claims, checked: its two examples run as written and do what the text says,
// every relative link leads somewhere, the package table is the workspace's public packages, and
// what it says CI runs is what .ci/run runs.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { markdownTsBlocks, runTsIn } from "./readme-example.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const readmePath = join(root, "README.md");
const readme = readFileSync(readmePath, "utf8");
// apps/demo depends on every plugin, so the examples' imports resolve there as in a user's project
const demoDir = join(root, "apps", "demo");
const [firstRun, customCallback] = markdownTsBlocks(readmePath);

/** The text of a `## heading` section, up to the next `## `. */
function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README has no "## ${heading}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchor = (heading: string) => heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");

describe("root README", () => {
  it("has the two examples, in order: a first run with three plugins, then a custom callback", () => {
    expect(firstRun).toBeDefined();
    expect(customCallback).toBeDefined();
    expect(readme.indexOf(firstRun!)).toBeGreaterThan(readme.indexOf("## A first run"));
    expect(readme.indexOf(customCallback!)).toBeGreaterThan(readme.indexOf("## Writing your own callback"));
    // "under twenty lines besides the imports": statements, not counting blank lines and comments
    const code = firstRun!.split("\n").filter((l) => l.trim() && !l.trim().startsWith("//") && !l.startsWith("import "));
    expect(code.length).toBeLessThan(20);
    for (const plugin of ["new Scheduler(", "new GradClip(", "new EarlyStopping("]) expect(firstRun).toContain(plugin);
  });

  it("both examples run as written and do what the text says (schedule, clipping and early stopping; the custom callback stops, logs and is saved)", async () => {
    const [out, custom] = await Promise.all([runTsIn(demoDir, firstRun!), runTsIn(demoDir, customCallback!)]);

    // every tenth epoch: the cosine schedule's learning rate, how often clipping engaged, val_acc
    const epochs = [...out.matchAll(/^epoch (\d+): lr ([\d.e+-]+), clipped on (\d+) % of steps, val_acc ([\d.]+)$/gm)].map((m) => ({ epoch: Number(m[1]), lr: Number(m[2]), clipped: Number(m[3]), valAcc: Number(m[4]) }));
    expect(epochs.length, out).toBeGreaterThanOrEqual(3);
    expect(epochs.map((e) => e.epoch)).toEqual(epochs.map((_, i) => 10 * i));
    expect(epochs[0]!.lr).toBe(0.01); // the schedule's baseLr at step 0
    for (let i = 1; i < epochs.length; i++) expect(epochs[i]!.lr, `lr at epoch ${epochs[i]!.epoch}`).toBeLessThan(epochs[i - 1]!.lr);
    // "often early on, then not at all"
    expect(Math.max(...epochs.map((e) => e.clipped))).toBeGreaterThan(0);
    expect(epochs.at(-1)!.clipped).toBe(0);
    expect(epochs.at(-1)!.valAcc).toBeGreaterThan(0.99);
    // "early stopping ended the run about halfway and [says] which epoch's weights it put back"
    const end = /^stopped after (\d+) of 100 epochs \(EarlyStopping: val_loss did not improve .* for 10 epochs; best [\d.]+ at epoch (\d+)\); weights of epoch (\d+) restored$/m.exec(out);
    expect(end, out).not.toBeNull();
    const [ran, best, restored] = [Number(end![1]), Number(end![2]), Number(end![3])];
    expect(ran).toBeGreaterThan(25);
    expect(ran).toBeLessThan(75);
    expect(restored).toBe(best);
    expect(ran - 1 - best).toBe(10); // patience 10: stopped ten epochs after the best one

    const stop = /^stopped after (\d+) epochs: StopAtAccuracy: val_acc ([\d.]+) >= 0\.97$/m.exec(custom);
    expect(stop, custom).not.toBeNull();
    const reached = Number(stop![2]);
    expect(reached).toBeGreaterThanOrEqual(0.97);
    const bests = /^best_val_acc by epoch: ([\d. ]+)$/m.exec(custom)![1]!.split(" ").map(Number);
    expect(bests).toHaveLength(Number(stop![1])); // logged in afterEpoch, it is in every epoch's record
    for (let i = 1; i < bests.length; i++) expect(bests[i]).toBeGreaterThanOrEqual(bests[i - 1]!); // the best so far
    expect(bests.at(-1)).toBe(reached);
    expect(bests.slice(0, -1).every((b) => b < 0.97)).toBe(true); // it stopped at the first epoch that reached the target
    const saved = JSON.parse(/^what a checkpoint stores of it: (.*)$/m.exec(custom)![1]!) as { best: number };
    expect(saved.best.toFixed(3)).toBe(reached.toFixed(3));
  }, 120_000);

  it("every relative link (of this README and the docs written beside it) leads to a file or directory that exists, and a #heading that exists in it", () => {
    const broken: string[] = [];
    let count = 0;
    for (const doc of ["README.md", "docs/README.md", "docs/checkpoint-format.md", "docs/gpu.md", "docs/scaling.md", "docs/publishing.md"]) {
      const text = readFileSync(join(root, doc), "utf8");
      const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:/.test(l));
      count += links.length;
      for (const link of links) {
        const [path, hash] = link.split("#") as [string, string | undefined];
        const target = path ? join(root, dirname(doc), path) : join(root, doc);
        if (!existsSync(target)) {
          broken.push(`${doc}: ${link}: no such file or directory`);
          continue;
        }
        if (hash !== undefined) {
          const headings = [...readFileSync(statSync(target).isDirectory() ? join(target, "README.md") : target, "utf8").matchAll(/^#+ (.+)$/gm)].map((m) => anchor(m[1]!));
          if (!headings.includes(hash)) broken.push(`${doc}: ${link}: no heading with the anchor #${hash}`);
        }
      }
    }
    expect(count).toBeGreaterThan(30);
    expect(broken).toEqual([]);
  });

  it("the package table lists exactly the workspace's public packages, each linked to its directory", () => {
    const rows = [...section("Packages").matchAll(/^\| \[`([^`]+)`\]\(([^)]+)\) \| (.+) \|$/gm)].map((m) => ({ name: m[1]!, dir: m[2]!, what: m[3]! }));
    const published: string[] = [];
    for (const parent of ["packages", join("packages", "callbacks")]) {
      for (const d of readdirSync(join(root, parent))) {
        const manifest = join(root, parent, d, "package.json");
        if (!existsSync(manifest)) continue;
        const pkg = JSON.parse(readFileSync(manifest, "utf8")) as { name: string; private?: boolean };
        if (!pkg.private) published.push(pkg.name);
      }
    }
    expect(rows.map((r) => r.name).filter((n) => n.startsWith("@")).sort()).toEqual(published.sort());
    for (const row of rows) {
      const pkg = JSON.parse(readFileSync(join(root, row.dir, "package.json"), "utf8")) as { name: string };
      expect(pkg.name, row.dir).toBe(row.name === "apps/demo" ? "@fitloop/demo" : row.name);
      expect(row.what.length, `${row.name}: one short line`).toBeLessThanOrEqual(140);
    }
  });

  it("says what .ci/run runs, in its order", () => {
    const ciRun = readFileSync(join(root, ".ci", "run"), "utf8");
    const steps = [...ciRun.matchAll(/^(npm test|node scripts\/pnpm\.mjs run \S+)$/gm)].map((m) => m[1]!.replace("node scripts/pnpm.mjs", "pnpm"));
    expect(steps.length).toBeGreaterThanOrEqual(3);
    const sentence = /CI runs `\.ci\/run`:([\s\S]*?)\n(?:-|\n|$)/.exec(section("Developing"))![1]!;
    const said = [...sentence.matchAll(/`(npm test|pnpm run [^`]+)`/g)].map((m) => m[1]!);
    expect(said).toEqual(steps);
  });
});
