import { CheckpointFormatError } from "./errors.js";

/**
 * The safetensors format (huggingface/safetensors), which Python's `safetensors` reads: an 8-byte
 * little-endian header length N, N bytes of JSON header (`{name: {dtype, shape, data_offsets}}` and
 * an optional `__metadata__` of strings), then the tensor bytes, little-endian, row-major.
 * Reading checks everything a forged file could lie about before allocating or slicing anything.
 */

export type SafetensorsDtype = "F32" | "I32" | "U8";
export type TensorData = Float32Array | Int32Array | Uint8Array;

export interface SafeTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

const ITEM_SIZE: Record<SafetensorsDtype, number> = { F32: 4, I32: 4, U8: 1 };
/** A header larger than this is refused before it is read (ours are a few KB; this bounds a forged length). */
export const MAX_HEADER_BYTES = 16 * 1024 * 1024;
/** Tensor names: what we write (layer/variable names; no control characters, no ".." segments, bounded length). */
const NAME_CHARS = /^[A-Za-z0-9_.:\-/[\]]{1,512}$/;
const NAME = { test: (name: string) => NAME_CHARS.test(name) && !name.startsWith("/") && !name.split("/").some((seg) => seg === ".." || seg === ".") };

export function dtypeOf(data: TensorData): SafetensorsDtype {
  if (data instanceof Float32Array) return "F32";
  if (data instanceof Int32Array) return "I32";
  return "U8";
}

/** Encodes tensors (in the given order) and string metadata as one safetensors file. */
export function encodeSafetensors(tensors: ReadonlyMap<string, SafeTensor>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  assertLittleEndian();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header["__metadata__"] = metadata;
  let offset = 0;
  for (const [name, t] of tensors) {
    if (!NAME.test(name)) throw new CheckpointFormatError(`cannot write a tensor named ${JSON.stringify(name)}`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length || dtypeOf(t.data) !== t.dtype) throw new CheckpointFormatError(`tensor "${name}": ${t.data.length} ${dtypeOf(t.data)} values for ${t.dtype} shape [${t.shape.join(", ")}]`);
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + byteLength(json)) % 8)) % 8); // the tensor bytes start 8-aligned
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let at = 8 + head.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at); // host order is little-endian (checked below)
    at += t.data.byteLength;
  }
  return out;
}

function byteLength(s: string): number {
  return new TextEncoder().encode(s).length;
}

/** Decodes and validates a safetensors file: every entry's dtype, shape, offsets and size; no overlaps, no gaps. */
export function decodeSafetensors(file: Uint8Array, what = "safetensors file"): { tensors: Map<string, SafeTensor>; metadata: Record<string, string> } {
  assertLittleEndian();
  const fail = (m: string) => new CheckpointFormatError(`${what}: ${m}`);
  if (file.length < 8) throw fail(`${file.length} bytes is too short for a header`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const n = view.getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES) || n > BigInt(file.length - 8)) throw fail(`header length ${n} is larger than the file (${file.length} bytes) or the ${MAX_HEADER_BYTES}-byte limit`);
  const headerEnd = 8 + Number(n);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(file.subarray(8, headerEnd)));
  } catch (e) {
    throw fail(`the header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) throw fail("the header is not a JSON object");
  const dataLength = file.length - headerEnd;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === "string")) throw fail("__metadata__ must map strings to strings");
      Object.assign(metadata, raw);
      continue;
    }
    if (!NAME.test(name)) throw fail(`tensor name ${JSON.stringify(name).slice(0, 80)} is not allowed`);
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) throw fail(`"${name}" is not an entry`);
    if (e.dtype !== "F32" && e.dtype !== "I32" && e.dtype !== "U8") throw fail(`"${name}" has dtype ${JSON.stringify(e.dtype)}; fitloop reads F32, I32 and U8`);
    if (!Array.isArray(e.shape) || e.shape.length > 8 || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail(`"${name}" has a bad shape ${JSON.stringify(e.shape)}`);
    const offsets = e.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) throw fail(`"${name}" has bad data_offsets ${JSON.stringify(offsets)}`);
    const [begin, end] = offsets as [number, number];
    const count = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (begin > end || end > dataLength) throw fail(`"${name}" spans bytes ${begin}..${end} of ${dataLength}`);
    if (end - begin !== count * ITEM_SIZE[e.dtype]) throw fail(`"${name}" has ${end - begin} bytes for ${e.dtype} shape [${(e.shape as number[]).join(", ")}]`);
    entries.push({ name, dtype: e.dtype, shape: e.shape as number[], begin, end });
  }
  // the data section is covered exactly once, in order (the format's rule)
  entries.sort((a, b) => a.begin - b.begin);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) throw fail(`tensor "${e.name}" starts at byte ${e.begin}, expected ${expected} (overlap or gap)`);
    expected = e.end;
  }
  if (expected !== dataLength) throw fail(`${dataLength - expected} bytes after the last tensor`);
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const bytes = file.slice(headerEnd + e.begin, headerEnd + e.end); // a copy: aligned, and independent of the file buffer
    const data = e.dtype === "F32" ? new Float32Array(bytes.buffer) : e.dtype === "I32" ? new Int32Array(bytes.buffer) : bytes;
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** safetensors is little-endian and typed arrays use the host's order (every platform tfjs runs on is little-endian). */
function assertLittleEndian(): void {
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new CheckpointFormatError("@fitloop/checkpoint needs a little-endian host");
}
