import { DataError } from "@fitloop/core";

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

/** A malformed or missing IDX file; names the file and the names expected. */
export class IdxError extends DataError {
  readonly file: string;
  constructor(code: "IDX_MISSING" | "IDX_MALFORMED" | "IDX_MISMATCH", file: string, message: string) {
    super(code, message);
    this.file = file;
  }
}

/** `0x00000803`: the magic of an image file (uint8, 3 dims); `0x00000801`: a label file. */
export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

/**
 * Parses IDX bytes. `expectMagic` checks the header (e.g. `IDX_IMAGES_MAGIC`); the byte count must
 * be exactly header + prod(dims) * element size (a truncated download fails here, not in training).
 */
export function parseIdx(bytes: Uint8Array, file: string, expectMagic?: number): IdxArray {
  const { dtype, dims, headerBytes } = parseIdxHeader(bytes, file, expectMagic);
  const count = dims.reduce((a, b) => a * b, 1);
  const expected = headerBytes + count * BYTES[dtype];
  if (bytes.length !== expected) {
    const why = bytes.length < expected ? "truncated" : "has trailing bytes";
    throw new IdxError("IDX_MALFORMED", file, `${file}: ${why}: dims [${dims.join(", ")}] of ${dtype} need ${expected} bytes, the file has ${bytes.length}`);
  }
  return { dtype, dims, data: decode(bytes, headerBytes, count, dtype) };
}

export interface IdxHeader {
  readonly dtype: IdxDtype;
  readonly dims: readonly number[];
  readonly headerBytes: number;
  /** Bytes per value. */
  readonly elementBytes: number;
}

/** Parses and checks the header only (`bytes` may hold just the start of a file). */
export function parseIdxHeader(bytes: Uint8Array, file: string, expectMagic?: number): IdxHeader {
  if (bytes.length < 4) throw new IdxError("IDX_MALFORMED", file, `${file}: ${bytes.length} bytes is too short for an IDX header (4 bytes of magic number)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  const code = bytes[2]! as IdxCode;
  const ndims = bytes[3]!;
  const hex = (m: number) => `0x${m.toString(16).padStart(8, "0")}`;
  if (bytes[0] !== 0 || bytes[1] !== 0 || !(code in IDX_TYPES) || ndims === 0) {
    const gz = bytes[0] === 0x1f && bytes[1] === 0x8b ? " (it is gzip data: decompress it, or read it with @fitloop/datasets/node)" : "";
    throw new IdxError("IDX_MALFORMED", file, `${file}: bad IDX magic number ${hex(magic)}${gz}; expected ${expectMagic === undefined ? "0x0000<type><ndims>" : hex(expectMagic)}`);
  }
  if (expectMagic !== undefined && magic !== expectMagic) {
    throw new IdxError("IDX_MALFORMED", file, `${file}: IDX magic number is ${hex(magic)}, expected ${hex(expectMagic)} (${describeMagic(expectMagic)}); is this the right file?`);
  }
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) throw new IdxError("IDX_MALFORMED", file, `${file}: truncated header: ${ndims} dimensions need ${headerBytes} bytes, the file has ${bytes.length}`);
  const dims = Array.from({ length: ndims }, (_, d) => view.getUint32(4 + 4 * d, false));
  const dtype = IDX_TYPES[code];
  return { dtype, dims, headerBytes, elementBytes: BYTES[dtype] };
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
  const code = Number(Object.entries(IDX_TYPES).find(([, d]) => d === array.dtype)![0]);
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
