import { describe, expect, it } from "vitest";
import { CheckpointFormatError, MAX_HEADER_BYTES, decodeSafetensors, encodeSafetensors, type SafeTensor } from "./index.js";
import { StateError } from "@fitloop/core";
import { fromJsonTree, toJsonTree } from "./json.js";

/**
 * An independent reader of the safetensors layout, written from the format's description (not
 * from our decoder): u64 LE header size, JSON header, raw little-endian bytes at data_offsets.
 */
function independentRead(file: Uint8Array): Record<string, { dtype: string; shape: number[]; values: number[] }> {
  const n = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(file.subarray(8, 8 + n)).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const base = 8 + n;
  const out: Record<string, { dtype: string; shape: number[]; values: number[] }> = {};
  for (const [name, e] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const buf = Buffer.from(file.subarray(base + e.data_offsets[0], base + e.data_offsets[1]));
    const values: number[] = [];
    const step = e.dtype === "U8" ? 1 : 4;
    for (let i = 0; i < buf.length; i += step) values.push(e.dtype === "F32" ? buf.readFloatLE(i) : e.dtype === "I32" ? buf.readInt32LE(i) : buf.readUInt8(i));
    out[name] = { dtype: e.dtype, shape: e.shape, values };
  }
  return out;
}

const sample = (): Map<string, SafeTensor> =>
  new Map<string, SafeTensor>([
    ["dense/kernel", { dtype: "F32", shape: [2, 3], data: new Float32Array([1, -2.5, 3e-8, Number.NaN, Number.POSITIVE_INFINITY, -0]) }],
    ["steps", { dtype: "I32", shape: [2], data: new Int32Array([7, -1]) }],
    ["mask", { dtype: "U8", shape: [3], data: new Uint8Array([0, 1, 255]) }],
    ["empty", { dtype: "F32", shape: [0, 4], data: new Float32Array(0) }],
  ]);

/** A file with its header replaced (and the data kept). */
function withHeader(header: unknown, data: Uint8Array = new Uint8Array(8)): Uint8Array {
  const head = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + head.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(data, 8 + head.length);
  return out;
}

describe("safetensors", () => {
  it("round trip, and an independent reader sees the same tensors (dtypes, shapes, bytes, NaN, -0, empty)", () => {
    const file = encodeSafetensors(sample(), { producer: "fitloop" });
    const { tensors, metadata } = decodeSafetensors(file);
    expect(metadata).toEqual({ producer: "fitloop" });
    for (const [name, t] of sample()) {
      expect(tensors.get(name)!.shape).toEqual(t.shape);
      expect(Array.from(tensors.get(name)!.data)).toEqual(Array.from(t.data));
    }
    const other = independentRead(file);
    expect(other["dense/kernel"]!.values).toEqual([1, -2.5, Math.fround(3e-8), Number.NaN, Number.POSITIVE_INFINITY, -0]);
    expect(other["steps"]).toEqual({ dtype: "I32", shape: [2], values: [7, -1] });
    expect(other["mask"]!.values).toEqual([0, 1, 255]);
    expect((8 + Number(new DataView(file.buffer).getBigUint64(0, true))) % 8).toBe(0); // tensor data 8-aligned
  });

  it("forged or broken files are refused with a reason, before any large allocation", () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ["too short", new Uint8Array(3), /too short for a header/],
      ["header length beyond the file", (() => { const f = new Uint8Array(16); new DataView(f.buffer).setBigUint64(0, 2n ** 60n, true); return f; })(), /header length \d+ is larger than the file/],
      ["header over the limit", (() => { const f = new Uint8Array(16); new DataView(f.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true); return f; })(), /larger than the file|limit/],
      ["not JSON", (() => { const f = withHeader({}); f[8] = 0x7b; f[9] = 0xff; return f; })(), /not valid UTF-8 JSON/],
      ["an array", withHeader([1, 2]), /not a JSON object/],
      ["unknown dtype", withHeader({ a: { dtype: "F64", shape: [1], data_offsets: [0, 8] } }), /dtype "F64"/],
      ["negative dim", withHeader({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }), /bad shape/],
      ["offsets past the end", withHeader({ a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }), /spans bytes 0..16 of 8/],
      ["size mismatch", withHeader({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }), /8 bytes for F32 shape \[3\]/],
      ["overlap", withHeader({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }), /starts at byte 4, expected 8/],
      ["gap", withHeader({ a: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }), /starts at byte 4, expected 0/],
      ["trailing bytes", withHeader({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }), /4 bytes after the last tensor/],
      ["path-like name", withHeader({ "../../x": { dtype: "U8", shape: [8], data_offsets: [0, 8] } }), /tensor name .* is not allowed/],
      ["metadata not strings", withHeader({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__ must map strings to strings/],
    ];
    for (const [label, file, message] of cases) {
      expect(() => decodeSafetensors(file), label).toThrow(CheckpointFormatError);
      expect(() => decodeSafetensors(file), label).toThrow(message);
    }
    expect(() => encodeSafetensors(new Map([["a", { dtype: "F32", shape: [3], data: new Float32Array(2) }]]))).toThrow(/2 F32 values for F32 shape \[3\]/);
  });
});

describe("JSON with typed arrays and non-finite numbers", () => {
  it("typed arrays go to tensors, NaN/Infinity are tagged; the inverse restores them exactly", () => {
    const tensors = new Map<string, SafeTensor>();
    const value = { a: new Float32Array([1, 2]), b: [Number.NaN, Number.POSITIVE_INFINITY, -Number.MAX_VALUE], c: { d: new Uint8Array([3]), e: null, f: "x" } };
    const tree = toJsonTree(value, tensors);
    const text = JSON.stringify(tree);
    expect(text).toBe('{"a":{"$tensor":"t0"},"b":[{"$float":"NaN"},{"$float":"Infinity"},-1.7976931348623157e+308],"c":{"d":{"$tensor":"t1"},"e":null,"f":"x"}}');
    expect(fromJsonTree(JSON.parse(text), tensors)).toEqual(value);
  });

  it("bad tags are refused: unknown float, missing tensor, a tensor used twice, unstorable values", () => {
    const tensors = new Map<string, SafeTensor>([["t0", { dtype: "F32", shape: [1], data: new Float32Array(1) }]]);
    expect(() => fromJsonTree({ x: { $float: "1e999" } }, tensors)).toThrow(/\$\.x: \{"\$float": "1e999"\} is not NaN, Infinity, -Infinity or -0/);
    expect(() => fromJsonTree({ x: { $tensor: "t9" } }, tensors)).toThrow(/\$\.x: refers to array "t9", which is not among the stored arrays/);
    expect(() => fromJsonTree([{ $tensor: "t0" }, { $tensor: "t0" }], tensors)).toThrow(/\$\[1\]: array "t0" is referenced twice/);
    expect(() => fromJsonTree({ x: 1 }, tensors)).toThrow(/stored array "t0" is not referenced/);
    expect(() => toJsonTree({ f: () => 1 }, new Map())).toThrow(/\$\.f: a function cannot be stored/);
    // a corrupt file is a format error (the loader reports it as a corrupt checkpoint), with core's StateError as its cause
    const err = (() => {
      try {
        fromJsonTree({ x: { $float: "1e999" } }, new Map());
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CheckpointFormatError);
    expect((err as Error).cause).toBeInstanceOf(StateError);
  });

  it("__proto__ keys, -0 and tag look-alikes survive; state tensors must be 1-D", () => {
    const tensors = new Map<string, SafeTensor>();
    const value = JSON.parse('{"__proto__": {"x": 1}, "tag": {"$tensor": "t0"}, "z": 0}') as Record<string, unknown>;
    value["z"] = -0;
    const back = fromJsonTree(JSON.parse(JSON.stringify(toJsonTree(value, tensors))), tensors) as Record<string, unknown>;
    expect(Object.getPrototypeOf(back)).toBe(Object.prototype);
    expect(Object.prototype.hasOwnProperty.call(back, "__proto__")).toBe(true);
    expect(back["tag"]).toEqual({ $tensor: "t0" });
    expect(Object.is(back["z"], -0)).toBe(true);
    const twoD = new Map<string, SafeTensor>([["t0", { dtype: "F32", shape: [1, 1], data: new Float32Array(1) }]]);
    expect(() => fromJsonTree({ $tensor: "t0" }, twoD)).toThrow(CheckpointFormatError);
  });
});
