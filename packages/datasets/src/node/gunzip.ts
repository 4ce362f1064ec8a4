import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { constants, gunzipSync } from "node:zlib";
import { IdxError } from "../idx.js";

/** Output of one probe of a gzip prefix: at most this many bytes are ever decompressed to find a header. */
const PROBE_MAX_OUTPUT = 1 << 20;

export const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

const corrupt = (file: string, e: unknown) =>
  new IdxError("IDX_MALFORMED", file, `${file}: corrupt gzip data (${(e as Error).message}); download the file again`, { cause: e });

const tooLarge = (e: unknown) => (e as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE";

/**
 * The first (at least) `need` decompressed bytes of gzip data `gz`, decompressing as little as
 * possible: growing prefixes of the compressed bytes are inflated with a sync flush (zlib's way to
 * read a partial stream), each probe capped at 1 MiB of output; a prefix that expands past the cap
 * is bisected. Returns fewer than `need` bytes only when the whole stream is shorter.
 */
export function gunzipHead(gz: Uint8Array, file: string, need: number): Uint8Array {
  let lo = 0; // a prefix known to give fewer than `need` bytes
  let hi = Infinity; // a prefix known to give more than the cap
  let p = Math.min(gz.length, 256);
  for (;;) {
    let out: Uint8Array | undefined;
    try {
      out = gunzipSync(gz.subarray(0, p), { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength: PROBE_MAX_OUTPUT });
    } catch (e) {
      if (!tooLarge(e)) throw corrupt(file, e);
    }
    if (out && (out.length >= need || p === gz.length)) return out;
    if (out) lo = p;
    else hi = p;
    const next = hi === Infinity ? Math.min(gz.length, p * 4) : Math.floor((lo + hi) / 2);
    // one compressed byte expands to a few KiB at most: the bisection always ends above
    if (next <= lo || next === p) throw corrupt(file, new Error("no IDX header in the first bytes of the stream"));
    p = next;
  }
}

/**
 * Decompresses all of `gz`, refusing (without allocating more) a stream that expands to more than
 * `expected` bytes: zlib stops at `maxOutputLength`. A shorter stream is returned as is (the caller
 * reports it as truncated).
 */
export function gunzipBounded(gz: Uint8Array, file: string, expected: number, what: string): Uint8Array {
  try {
    return gunzipSync(gz, { maxOutputLength: expected });
  } catch (e) {
    if (tooLarge(e)) {
      throw new IdxError("IDX_MALFORMED", file, `${file}: decompresses to more than the ${expected} bytes its header declares (${what}); the file is corrupt or not what its header says`, { cause: e });
    }
    throw corrupt(file, e);
  }
}

/** Reads `length` bytes from the start of a file (fewer if it is shorter). */
export function readHead(path: string, length: number): Uint8Array {
  const fd = openSync(path, "r");
  try {
    const size = fstatSync(fd).size;
    const out = new Uint8Array(Math.min(length, size));
    let at = 0;
    while (at < out.length) {
      const n = readSync(fd, out, at, out.length - at, at);
      if (n === 0) break;
      at += n;
    }
    return out.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}
