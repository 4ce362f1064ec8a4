/**
 * Adversarial suite, class "data" (files): IDX files that are empty, truncated, lying about their
 * size, not files at all, or built to exhaust memory. Every one is refused with an `IdxError` (a
 * `DataError` with a stable code and the `file`) or an `OptionsError`, naming the path or option.
 */
import { afterAll, describe, expect, it } from "vitest";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzipSync } from "node:zlib";
import { DataError, OptionsError } from "@fitloop/core";
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, IdxError, MNIST_FILES, encodeIdx, type IdxArray } from "../index.js";
import { expectRefused, expectRejected, type Culprit } from "../adversarial/harness.fixture.js";
import { loadFashionMnist, loadMnist, openIdxStream, readIdxFile } from "./index.js";

const root = mkdtempSync(join(tmpdir(), "fitloop-idx-adv-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** Writes `bytes` to a fresh file and returns its path. */
const file = (bytes: Uint8Array | string, name = `f${n++}`) => {
  const p = join(root, name);
  writeFileSync(p, bytes);
  return p;
};
/** An IDX header (big-endian) with any type code and dims, and `body` bytes after it. */
function idx(code: number, dims: number[], body = 0): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + body);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  return out;
}
const cut = (b: Uint8Array, k: number) => b.subarray(0, b.length - k);
const labels = (k: number): IdxArray => ({ dtype: "uint8", dims: [k], data: Uint8Array.from({ length: k }, (_, i) => i % 10) });
const images = (k: number): IdxArray => ({ dtype: "uint8", dims: [k, 4, 4], data: new Uint8Array(k * 16) });
/** A gzip file of many members: `header` then `mib` MiB of zeros, about 1 KiB of gzip per MiB. */
const bomb = (header: Uint8Array, mib: number) => {
  const zeros = gzipSync(new Uint8Array(1 << 20), { level: 9 });
  return Buffer.concat([gzipSync(header), ...Array.from({ length: mib }, () => zeros)]);
};
/** A valid gzip file with a 70 KiB file name in its header (the header probe must look past it). */
function gzipWithLongName(data: Uint8Array): Uint8Array {
  const gz = gzipSync(data);
  const flagged = Buffer.from(gz);
  flagged[3] = 0x08; // FNAME
  return Buffer.concat([flagged.subarray(0, 10), Buffer.alloc(70_000, 0x61), Buffer.from([0]), flagged.subarray(10)]);
}

const dir = join(root, "a-directory");
mkdirSync(dir);
const fifo = join(root, "a-fifo");
execFileSync("mkfifo", [fifo]);

/** [case, path to read, expectMagic, error code, culprit (besides the path)]. */
const files: [string, () => string, number | undefined, string, Culprit][] = [
  ["a directory where a file is expected", () => dir, undefined, "IDX_NOT_A_FILE", "is a directory"],
  ["a FIFO (would block a plain read forever)", () => fifo, undefined, "IDX_NOT_A_FILE", "not a regular file"],
  ["an empty file", () => file(new Uint8Array(0)), undefined, "IDX_EMPTY", "0 bytes"],
  ["an empty gzip file", () => file(gzipSync(new Uint8Array(0))), undefined, "IDX_EMPTY", "0 bytes"],
  ["zero items (plain)", () => file(idx(0x08, [0, 28, 28])), IDX_IMAGES_MAGIC, "IDX_EMPTY", "holds 0 items"],
  ["zero items (gzip)", () => file(gzipSync(idx(0x08, [0]))), IDX_LABELS_MAGIC, "IDX_EMPTY", "holds 0 items"],
  ["a dimension of 0 after the count", () => file(idx(0x08, [5, 0, 28])), undefined, "IDX_EMPTY", "dimension 1 is 0"],
  ["3 bytes", () => file(Uint8Array.from([0, 0, 8])), undefined, "IDX_MALFORMED", "too short"],
  ["a header cut inside the dimensions", () => file(idx(0x08, [5, 28, 28]).subarray(0, 10)), IDX_IMAGES_MAGIC, "IDX_MALFORMED", "truncated header"],
  ["0 dimensions", () => file(Uint8Array.from([0, 0, 8, 0])), undefined, "IDX_MALFORMED", "0 dimensions"],
  ["an unknown type code", () => file(idx(0x0a, [2], 2)), undefined, "IDX_MALFORMED", "type code 0x0a"],
  ["non-zero leading magic bytes", () => file(Uint8Array.from([1, 0, 8, 1, 0, 0, 0, 1, 7])), undefined, "IDX_MALFORMED", "bad IDX magic"],
  ["labels where images are expected", () => file(encodeIdx(labels(3))), IDX_IMAGES_MAGIC, "IDX_MALFORMED", "expected 0x00000803"],
  ["float32 labels (type 0x0d)", () => file(idx(0x0d, [2], 8)), IDX_LABELS_MAGIC, "IDX_MALFORMED", "0x00000d01"],
  ["images with 4 dimensions", () => file(idx(0x08, [1, 2, 2, 1], 4)), IDX_IMAGES_MAGIC, "IDX_MALFORMED", "0x00000804"],
  ["a header declaring 4 TiB (plain, tiny file)", () => file(idx(0x08, [65536, 65536, 1024], 16)), undefined, "IDX_TOO_LARGE", "maxBytes"],
  ["a header declaring 4 TiB (gzip)", () => file(gzipSync(idx(0x08, [65536, 65536, 1024], 16))), undefined, "IDX_TOO_LARGE", "maxBytes"],
  ["dims whose product overflows 2^64", () => file(idx(0x0e, [0xffffffff, 0xffffffff, 0xffffffff])), undefined, "IDX_TOO_LARGE", "[4294967295, 4294967295, 4294967295]"],
  ["trailing bytes (plain)", () => file(Buffer.concat([encodeIdx(labels(4)), Buffer.from([9])])), IDX_LABELS_MAGIC, "IDX_MALFORMED", "has trailing bytes"],
  ["a truncated body (plain)", () => file(encodeIdx(images(3)).subarray(0, 40)), IDX_IMAGES_MAGIC, "IDX_MALFORMED", "truncated"],
  ["trailing bytes (gzip)", () => file(gzipSync(Buffer.concat([encodeIdx(labels(4)), Buffer.alloc(100)]))), IDX_LABELS_MAGIC, "IDX_MALFORMED", "decompresses to more than the 12 bytes"],
  ["a short body (gzip)", () => file(gzipSync(encodeIdx(images(3)).subarray(0, 40))), IDX_IMAGES_MAGIC, "IDX_MALFORMED", "truncated"],
  ["a gzip stream cut short", () => file(cut(gzipSync(encodeIdx(images(50))), 6)), IDX_IMAGES_MAGIC, "IDX_MALFORMED", "corrupt gzip"],
  ["garbage after the gzip member", () => file(Buffer.concat([gzipSync(encodeIdx(labels(4))), Buffer.from("junk")])), IDX_LABELS_MAGIC, "IDX_MALFORMED", "corrupt gzip"],
  ["random bytes behind a gzip magic", () => file(Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff])), undefined, "IDX_MALFORMED", "corrupt gzip"],
  ["a gzip bomb: 16 KiB declaring 12 bytes, expanding to 16 MiB", () => file(bomb(encodeIdx(labels(4)), 16)), IDX_LABELS_MAGIC, "IDX_MALFORMED", "decompresses to more than the 12 bytes its header declares"],
];

describe("adversarial / data: IDX files (readIdxFile)", () => {
  it.each(files)("%s", (_, path, magic, code, culprit) => {
    const p = path();
    const err = expectRefused(() => readIdxFile(p, magic), IdxError, code, [p, ...(Array.isArray(culprit) ? culprit : [culprit])]);
    expect(err).toBeInstanceOf(DataError);
    expect(err.file).toBe(p);
  });

  it("a gzip header with a 70 KiB file name is still read (the header probe grows past it)", () => {
    expect(readIdxFile(file(gzipWithLongName(encodeIdx(labels(7)))), IDX_LABELS_MAGIC).dims).toEqual([7]);
  });

  it("maxBytes: a file above it is refused by name, raising it reads the file; invalid values are option errors", () => {
    const p = file(encodeIdx(images(10))); // 16 + 160 bytes
    expectRefused(() => readIdxFile(p, undefined, { maxBytes: 100 }), IdxError, "IDX_TOO_LARGE", [p, "100 bytes (maxBytes)"]);
    expect(readIdxFile(p, undefined, { maxBytes: 176 }).dims).toEqual([10, 4, 4]);
    for (const maxBytes of [0, -1, 1.5, NaN, 2 ** 33]) expectRefused(() => readIdxFile(p, undefined, { maxBytes }), OptionsError, "INVALID_OPTIONS", "maxBytes");
  });

  it.each([["", "path"], [undefined, "path"]] as const)("readIdxFile(%j): an option error, not a TypeError", (p, culprit) => {
    expectRefused(() => readIdxFile(p as unknown as string), OptionsError, "INVALID_OPTIONS", culprit);
  });
});

/** Writes a train split (images, labels) into a fresh directory. */
function split(name: string, img: Uint8Array | "dir", lab: Uint8Array): string {
  const d = join(root, name);
  mkdirSync(d);
  if (img === "dir") mkdirSync(join(d, MNIST_FILES.train.images));
  else writeFileSync(join(d, MNIST_FILES.train.images), img);
  writeFileSync(join(d, MNIST_FILES.train.labels), lab);
  return d;
}

describe("adversarial / data: MNIST directories (loadMnist, openIdxStream)", () => {
  const ok = encodeIdx(images(6));
  let dirs = 0;
  /** [case, image and label contents, code, culprit for loadMnist, culprit for openIdxStream]. */
  const cases: [string, () => [Uint8Array | "dir", Uint8Array], string, string, string][] = [
    ["the images file is a directory", () => ["dir", encodeIdx(labels(6))], "IDX_NOT_A_FILE", MNIST_FILES.train.images, "is a directory"],
    ["a label file whose count differs from the image file's", () => [ok, encodeIdx(labels(5))], "IDX_MISMATCH", "6 images but train-labels-idx1-ubyte has 5 labels", "has 5 labels"],
    ["an empty label file", () => [ok, new Uint8Array(0)], "IDX_EMPTY", MNIST_FILES.train.labels, MNIST_FILES.train.labels],
    ["a gzip bomb as the label file", () => [ok, bomb(encodeIdx(labels(6)), 8)], "IDX_MALFORMED", "decompresses to more", "has trailing bytes"],
    ["a label file with trailing bytes", () => [ok, Buffer.concat([encodeIdx(labels(6)), Buffer.alloc(3)])], "IDX_MALFORMED", "has trailing bytes", "has trailing bytes"],
  ];
  it.each(cases)("loadMnist: %s", (_, contents, code, culprit) => {
    const d = split(`m${dirs++}`, ...contents());
    expectRefused(() => loadMnist({ dir: d }), IdxError, code, culprit);
  });
  it.each(cases)("openIdxStream: %s, refused at open (not after an epoch)", async (_, contents, code, __, culprit) => {
    const d = split(`s${dirs++}`, ...contents());
    await expectRejected(() => openIdxStream({ dir: d }), IdxError, code, culprit);
  });

  it("a label out of range is named by sample", () => {
    const d = split(`m${dirs++}`, ok, encodeIdx({ dtype: "uint8", dims: [6], data: Uint8Array.from([0, 1, 2, 3, 10, 5]) }));
    expectRefused(() => loadMnist({ dir: d }), DataError, "LABEL_OUT_OF_RANGE", ["train-labels-idx1-ubyte", "sample 4"]);
  });

  const options: [string, () => unknown, string][] = [
    ["loadMnist: dir is a file", () => loadMnist({ dir: file(ok) }), "is a file"],
    ["loadMnist: split 'validation'", () => loadMnist({ dir: root, split: "validation" as never }), "split"],
    ["loadMnist: no dir", () => loadMnist({} as never), "dir"],
    ["loadMnist: kind 'emnist'", () => loadMnist({ dir: root, kind: "emnist" as never }), "kind"],
    ["loadMnist: typo scaled", () => loadMnist({ dir: root, scaled: false } as never), "scaled"],
    ["loadFashionMnist: kind given", () => loadFashionMnist({ dir: root, kind: "mnist" } as never), "kind"],
  ];
  it.each(options)("%s", (_, fn, culprit) => {
    if (culprit === "is a file") expectRefused(fn, IdxError, "IDX_NOT_A_DIRECTORY", culprit);
    else expectRefused(fn, OptionsError, "INVALID_OPTIONS", culprit);
  });

  it.each([
    ["chunkBytes 0", { chunkBytes: 0 }, "chunkBytes"],
    ["split 'val'", { split: "val" }, "split"],
    ["typo image", { image: "x" }, "image"],
  ] as const)("openIdxStream option %s: OptionsError", async (_, o, culprit) => {
    await expectRejected(() => openIdxStream({ dir: root, ...o } as never), OptionsError, "INVALID_OPTIONS", culprit);
  });
});

const run = promisify(execFile);
async function inChild(mode: "read" | "stream", path: string, labelsPath = ""): Promise<{ code?: string; message?: string; grewMiB: number }> {
  const tsx = createRequire(import.meta.url).resolve("tsx/cli");
  const script = fileURLToPath(new URL("./idx-memory.fixture.ts", import.meta.url));
  const { stdout } = await run(process.execPath, [tsx, "--conditions=@fitloop/source", script, mode, path, labelsPath], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1)!) as { code?: string; message?: string; grewMiB: number };
}

describe("adversarial / data: a gzip bomb is refused without being decompressed", () => {
  // 512 KiB of gzip declaring 12 bytes of labels and expanding to 512 MiB (the case: 255 KiB took 512 MiB)
  const big = file(bomb(encodeIdx(labels(4)), 512), "bomb-labels.gz");
  const imagesFile = file(encodeIdx(images(4)), "bomb-images");

  it("readIdxFile: IDX_MALFORMED, peak memory grows by less than 64 MiB", async () => {
    const r = await inChild("read", big);
    expect(r.code).toBe("IDX_MALFORMED");
    expect(r.message).toContain("decompresses to more than the 12 bytes");
    expect(r.grewMiB).toBeLessThan(64);
  });

  it("openIdxStream: refused at open, peak memory grows by less than 64 MiB", async () => {
    const r = await inChild("stream", imagesFile, big);
    expect(r.code).toBe("IDX_MALFORMED");
    expect(r.message).toContain("bomb-labels.gz");
    expect(r.grewMiB).toBeLessThan(64);
  });
});
