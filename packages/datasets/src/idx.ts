import { DataError, OptionsError } from "@fitloop/core";

/**
 * The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian
 * header `0x00 0x00 <type> <ndims>`, one uint32 per dimension, then the values. Parsing bytes is
 * browser-safe; reading files (and gunzip) is in `@fitloop/datasets/node`.
 */

/** IDX type codes and the typed array each one decodes to. */
export const IDX_TYPES = {
  0x08: "uint8",
  0x09: "int8",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
} as const;
export type IdxCode = keyof typeof IDX_TYPES;
export type IdxDtype = (typeof IDX_TYPES)[IdxCode];

const BYTES: Record<IdxDtype, number> = { uint8: 1, int8: 1, int16: 2, int32: 4, float32: 4, float64: 8 };

export interface IdxArray {
  readonly dtype: IdxDtype;
  readonly dims: readonly number[];
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** Stable codes of `IdxError`. */
export type IdxErrorCode =
  | "IDX_MISSING"
  | "IDX_NOT_A_FILE"
  | "IDX_NOT_A_DIRECTORY"
  | "IDX_UNREADABLE"
  | "IDX_MALFORMED"
  | "IDX_EMPTY"
  | "IDX_TOO_LARGE"
  | "IDX_MISMATCH";

/** A malformed, empty, oversized or missing IDX file; names the file (`file`) and, where it helps, the names expected. */
export class IdxError extends DataError {
  readonly file: string;
  constructor(code: IdxErrorCode, file: string, message: string, options?: { cause?: unknown }) {
    super(code, message);
    this.file = file;
    if (options?.cause !== undefined) Object.defineProperty(this, "cause", { value: options.cause, configurable: true, writable: true });
  }
}

/** `0x00000803`: the magic of an image file (uint8, 3 dims); `0x00000801`: a label file. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

/**
 * The largest IDX file (header + values, uncompressed) read by default: 1 GiB. Full MNIST training
 * images are 47 MB, EMNIST ByClass 549 MB. A header that declares more is refused before anything is
 * decompressed or allocated; raise it with the `maxBytes` option (at most `IDX_MAX_BYTES_LIMIT`).
 */
export const IDX_MAX_BYTES = 2 ** 30;
/** The largest `maxBytes` accepted: 4 GiB, the largest buffer Node allocates. */
export const IDX_MAX_BYTES_LIMIT = 2 ** 32;
/** The longest IDX header: 4 bytes of magic and 255 dimensions of 4 bytes. */
export const IDX_MAX_HEADER_BYTES = 4 + 4 * 255;

export interface IdxReadOptions {
  /** Refuse a file whose header declares more bytes than this. Default `IDX_MAX_BYTES` (1 GiB). */
  maxBytes?: number;
}

/** `maxBytes`, checked: an integer in `[1, IDX_MAX_BYTES_LIMIT]`. */
export function idxMaxBytes(owner: string, options: IdxReadOptions | undefined, limit = IDX_MAX_BYTES_LIMIT): number {
  const m = options?.maxBytes ?? IDX_MAX_BYTES;
  if (typeof m !== "number" || !Number.isSafeInteger(m) || m < 1 || m > limit) {
    throw new OptionsError(owner, [{ path: "maxBytes", message: `must be an integer in [1, ${limit}] (bytes), got ${String(m)}` }]);
  }
  return m;
}

/**
 * Parses IDX bytes. `expectMagic` checks the header (e.g. `IDX_IMAGES_MAGIC`); the byte count must
 * be exactly header + prod(dims) * element size (a truncated download fails here, not in training).
 * Empty files (a dimension of 0) and headers that declare more than `maxBytes` are refused.
 */
export function parseIdx(bytes: Uint8Array, file: string, expectMagic?: number, options?: IdxReadOptions): IdxArray {
  const { dtype, dims, headerBytes, count, totalBytes } = parseIdxHeader(bytes, file, expectMagic, options);
  if (bytes.length !== totalBytes) {
    const why = bytes.length < totalBytes ? "truncated" : "has trailing bytes";
    throw new IdxError("IDX_MALFORMED", file, `${file}: ${why}: dims [${dims.join(", ")}] of ${dtype} need ${totalBytes} bytes, the file has ${bytes.length}`);
  }
  return { dtype, dims, data: decode(bytes, headerBytes, count, dtype) };
}

export interface IdxHeader {
  readonly dtype: IdxDtype;
  readonly dims: readonly number[];
  readonly headerBytes: number;
  /** Bytes per value. */
  readonly elementBytes: number;
  /** Number of values, `prod(dims)`. */
  readonly count: number;
  /** Bytes of the whole file: header + values. */
  readonly totalBytes: number;
}

/**
 * Parses and checks the header only (`bytes` may hold just the start of a file): the magic number,
 * that no dimension is 0 (`IDX_EMPTY` for 0 items), and that the size it declares is at most
 * `maxBytes` (`IDX_TOO_LARGE`; computed without overflow).
 */
export function parseIdxHeader(bytes: Uint8Array, file: string, expectMagic?: number, options?: IdxReadOptions): IdxHeader {
  // Only what is read into memory is bounded by IDX_MAX_BYTES_LIMIT; a streamed header may declare more.
  const maxBytes = idxMaxBytes("parseIdxHeader", options, Number.MAX_SAFE_INTEGER);
  if (bytes.length === 0) throw new IdxError("IDX_EMPTY", file, `${file}: the file is empty (0 bytes); expected an IDX file`);
  if (bytes.length < 4) throw new IdxError("IDX_MALFORMED", file, `${file}: ${bytes.length} bytes is too short for an IDX header (4 bytes of magic number)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const code = bytes[2]! as IdxCode;
  const ndims = bytes[3]!;
  const hex = (m: number) => `0x${m.toString(16).padStart(8, "0")}`;
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(code in IDX_TYPES) || ndims === 0) {
    const gz = bytes[0] === 0x1f && bytes[1] === 0x8b ? " (it is gzip data: decompress it, or read it with @fitloop/datasets/node)" : "";
    const why = bytes[0] !== 0 || bytes[1] !== 0 ? "" : !(code in IDX_TYPES) ? ` (type code 0x${code.toString(16).padStart(2, "0")} is not one of 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e)` : " (0 dimensions)";
    throw new IdxError("IDX_MALFORMED", file, `${file}: bad IDX magic number ${hex(magic)}${why}${gz}; expected ${expectMagic === undefined ? "0x0000<type><ndims>" : hex(expectMagic)}`);
  }
  if (expectMagic !== undefined && magic !== expectMagic) {
    throw new IdxError("IDX_MALFORMED", file, `${file}: IDX magic number is ${hex(magic)}, expected ${hex(expectMagic)} (${describeMagic(expectMagic)}); is this the right file?`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) throw new IdxError("IDX_MALFORMED", file, `${file}: truncated header: ${ndims} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`);
  const dims = Array.from({ length: ndims }, (_, d) => view.getUint32(4 + 4 * d, false));
  const dtype = IDX_TYPES[code];
  const zero = dims.indexOf(0);
  if (zero === 0) throw new IdxError("IDX_EMPTY", file, `${file}: holds 0 items (dims [${dims.join(", ")}]); an empty data set cannot be trained on`);
  if (zero > 0) throw new IdxError("IDX_EMPTY", file, `${file}: dimension ${zero} is 0 (dims [${dims.join(", ")}]): every item would have 0 values`);
  // Multiplied step by step: a product past maxBytes stops here (no overflow past 2^53 matters).
  let bodyBytes = BYTES[dtype];
  for (const d of dims) {
    bodyBytes *= d;
    if (headerBytes + bodyBytes > maxBytes) {
      throw new IdxError(
        "IDX_TOO_LARGE",
        file,
        `${file}: the header declares dims [${dims.join(", ")}] of ${dtype}, more than the limit of ${maxBytes} bytes (maxBytes); is the header corrupt? If the file really is that large, raise maxBytes`,
      );
    }
  }
  return { dtype, dims, headerBytes, elementBytes: BYTES[dtype], count: bodyBytes / BYTES[dtype], totalBytes: headerBytes + bodyBytes };
}

function describeMagic(m: number): string {
  return m === IDX_IMAGES_MAGIC ? "uint8 images, 3 dims" : m === IDX_LABELS_MAGIC ? "uint8 labels, 1 dim" : "IDX";
}

function decode(bytes: Uint8Array, offset: number, count: number, dtype: IdxDtype): IdxArray["data"] {
  if (dtype === "uint8") return bytes.slice(offset, offset + count);
  if (dtype === "int8") return new Int8Array(bytes.slice(offset, offset + count).buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, count * BYTES[dtype]);
  const out = dtype === "int16" ? new Int16Array(count) : dtype === "int32" ? new Int32Array(count) : dtype === "float32" ? new Float32Array(count) : new Float64Array(count);
  const size = BYTES[dtype];
  for (let i = 0; i < count; i++) {
    const at = i * size;
    out[i] = dtype === "int16" ? view.getInt16(at) : dtype === "int32" ? view.getInt32(at) : dtype === "float32" ? view.getFloat32(at) : view.getFloat64(at);
  }
  return out;
}

/** Encodes values as IDX bytes (big-endian), e.g. to write test fixtures or export a data set. */
export function encodeIdx(array: IdxArray): Uint8Array {
  const entry = Object.entries(IDX_TYPES).find(([, d]) => d === array.dtype);
  if (!entry) throw new OptionsError("encodeIdx", [{ path: "dtype", message: `must be one of ${Object.values(IDX_TYPES).join(", ")}, got ${String(array.dtype)}` }]);
  const badDim = array.dims.findIndex((d) => !Number.isInteger(d) || d < 0 || d > 0xffffffff);
  if (array.dims.length < 1 || array.dims.length > 255 || badDim >= 0) {
    const why = badDim >= 0 ? `dims[${badDim}] is ${String(array.dims[badDim])}, not an integer in [0, 2^32)` : `has ${array.dims.length} entries, IDX allows 1 to 255`;
    throw new OptionsError("encodeIdx", [{ path: "dims", message: why }]);
  }
  const code = Number(entry[0]);
  const count = array.dims.reduce((a, b) => a * b, 1);
  if (array.data.length !== count) throw new DataError("LENGTH_MISMATCH", `encodeIdx: dims [${array.dims.join(", ")}] need ${count} values, got ${array.data.length}`);
  const header = 4 + 4 * array.dims.length;
  const size = BYTES[array.dtype];
  const out = new Uint8Array(header + count * size);
  const view = new DataView(out.buffer);
  out[2] = code;
  out[3] = array.dims.length;
  array.dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < count; i++) {
    const v = array.data[i]!;
    const at = header + i * size;
    if (array.dtype === "uint8") view.setUint8(at, v);
    else if (array.dtype === "int8") view.setInt8(at, v);
    else if (array.dtype === "int16") view.setInt16(at, v);
    else if (array.dtype === "int32") view.setInt32(at, v);
    else if (array.dtype === "float32") view.setFloat32(at, v);
    else view.setFloat64(at, v);
  }
  return out;
}
