import { crc32 as nodeCrc32, crc32c as nodeCrc32c } from "@node-rs/crc32";
import protobuf from "protobufjs";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { expectRefused } from "@fitloop/core/testing";
import { crc32c, decodeEvent, encodeEvent, EventFileError, exponentialBucketLimits, histogram, maskedCrc32c, readEventFile, tfRecord, type HistogramData, type TfEvent } from "./index.js";
import { decodeIndependently, mask } from "./testing/independent.fixture.js";

const ascii = (s: string) => new TextEncoder().encode(s);
const file = (events: TfEvent[]) => Buffer.concat(events.map((e) => tfRecord(encodeEvent(e))));
/** Deterministic bytes (an LCG), so failures reproduce. */
const bytesOf = (n: number, seed: number) => {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) out[i] = (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) >>> 24;
  return out;
};

describe("CRC-32C", () => {
  it("known vectors (the check value, RFC 3720's test patterns); a plain CRC-32 differs", () => {
    expect(crc32c(ascii("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
    expect(nodeCrc32(Buffer.from("123456789"))).toBe(0xcbf43926); // the IEEE polynomial: not what TFRecord uses
  });

  it("equals @node-rs/crc32 on 200 buffers of 0-4099 bytes, masked too, and continues like its initialState", () => {
    for (let k = 0; k < 200; k++) {
      const b = bytesOf((k * 97) % 4100, k + 1);
      const native = nodeCrc32c(Buffer.from(b));
      expect(crc32c(b), `buffer ${k}`).toBe(native);
      expect(maskedCrc32c(b)).toBe(mask(native));
      const cut = Math.floor(b.length / 3);
      expect(crc32c(b.subarray(cut), crc32c(b.subarray(0, cut)))).toBe(native);
    }
  });
});

const proto = protobuf.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "testing", "event.fixture.proto"), "utf8")).root;
const EventType = proto.lookupType("tensorflow.Event");

describe("Event encoding, decoded by protobufjs and by readEventFile", () => {
  const scalars = [0, -0, 1 / 3, 0.1, -2.5, 1e-40, 1e-46, 3.4e38, 1e39, -1e39, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 123456789];
  const steps = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, 2 ** 53 - 1, -1, -(2 ** 40)];

  it("scalars come back as float32 (Math.fround), zero included as a set oneof; steps as int64; wall time as a double", () => {
    const events: TfEvent[] = [
      { wallTime: 1_700_000_000.123456, fileVersion: "brain.Event:2" },
      ...steps.map((step, i) => ({ wallTime: 1_700_000_001.5 + i, step, summary: scalars.map((v, j) => ({ tag: `s/${j} ünï`, simpleValue: v })) })),
    ];
    const bytes = file(events);
    const { events: theirs, crcs } = decodeIndependently(bytes);
    const ours = readEventFile(bytes);
    expect(crcs).toBe(2 * events.length);
    expect(theirs[0]).toMatchObject({ wallTime: 1_700_000_000.123456, what: "fileVersion", fileVersion: "brain.Event:2", step: 0 });
    expect(ours[0]).toEqual({ wallTime: 1_700_000_000.123456, step: 0, fileVersion: "brain.Event:2" });
    steps.forEach((step, i) => {
      const t = theirs[i + 1]!;
      const o = ours[i + 1]!;
      expect(t.step).toBe(step);
      expect(o.step).toBe(step);
      expect(t.wallTime).toBe(1_700_000_001.5 + i);
      expect(t.what).toBe("summary");
      scalars.forEach((v, j) => {
        const tv = t.summary!.value[j]!;
        expect(tv.tag).toBe(`s/${j} ünï`);
        expect(tv.value, `oneof case of ${v}`).toBe("simpleValue");
        expect(tv.simpleValue).toBe(Math.fround(v));
        expect(o.summary![j]).toEqual({ tag: `s/${j} ünï`, simpleValue: Math.fround(v) });
      });
    });
    // float32: 1/3 is not kept exactly, a negative control that the comparison above is exact
    expect(Math.fround(1 / 3)).not.toBe(1 / 3);
  });

  it("histograms: every field and bucket exact", () => {
    const h: HistogramData = { min: -1.5, max: 7.25, num: 10, sum: 12.5, sumSquares: 80.125, bucketLimit: [-1, 0, 1e-12, 3.3, Number.MAX_VALUE], bucket: [1, 0, 4, 3, 2] };
    const empty = histogram([]);
    const bytes = file([{ wallTime: 1, step: 3, summary: [{ tag: "w/histogram", histo: h }, { tag: "e", histo: empty }, { tag: "x", simpleValue: 2 }] }]);
    const t = decodeIndependently(bytes).events[0]!;
    expect(t.summary!.value[0]).toMatchObject({ tag: "w/histogram", value: "histo", histo: h });
    expect(t.summary!.value[1]).toMatchObject({ value: "histo", histo: { num: 0, bucketLimit: [Number.MAX_VALUE], bucket: [0] } });
    expect(readEventFile(bytes)[0]!.summary).toEqual([{ tag: "w/histogram", histo: h }, { tag: "e", histo: empty }, { tag: "x", simpleValue: 2 }]);
  });

  it("decodes what protobufjs encodes (also unpacked repeated doubles and unknown fields)", () => {
    const msg = EventType.fromObject({
      wallTime: 5.5,
      step: 2 ** 40,
      summary: { value: [{ tag: "a", simpleValue: 0.25, nodeName: "ignored" }, { tag: "h", histo: { min: 1, max: 2, num: 2, sum: 3, sumSquares: 5, bucketLimit: [1.5, 2], bucket: [1, 1] } }] },
    });
    const data = EventType.encode(msg).finish();
    expect(decodeEvent(data)).toEqual({ wallTime: 5.5, step: 2 ** 40, summary: [{ tag: "a", simpleValue: 0.25 }, { tag: "h", histo: { min: 1, max: 2, num: 2, sum: 3, sumSquares: 5, bucketLimit: [1.5, 2], bucket: [1, 1] } }] });
    // bucket_limit as two unpacked fixed64 fields (field 6, wire type 1): a parser must accept them
    const unpacked = Uint8Array.from([0x31, ...new Uint8Array(new Float64Array([1]).buffer), 0x31, ...new Uint8Array(new Float64Array([2]).buffer)]);
    const histo = Uint8Array.from([0x0a, 1, 0x68, 0x2a, unpacked.length, ...unpacked]); // Value { tag: "h", histo }
    const event = Uint8Array.from([0x2a, histo.length + 2, 0x0a, histo.length, ...histo]);
    expect(decodeEvent(event).summary).toEqual([{ tag: "h", histo: { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [1, 2], bucket: [] } }]);
  });

  it("refuses what it cannot encode, with a typed error naming the field", () => {
    expectRefused(() => encodeEvent({ wallTime: Number.NaN }), EventFileError, "INVALID_EVENT", "wallTime");
    expectRefused(() => encodeEvent({ wallTime: 1, step: 1.5 }), EventFileError, "INVALID_EVENT", "step");
    expectRefused(() => encodeEvent({ wallTime: 1, step: 2 ** 53 }), EventFileError, "INVALID_EVENT", "step");
    expectRefused(() => encodeEvent({ wallTime: 1, summary: [{ tag: "", simpleValue: 1 }] }), EventFileError, "INVALID_EVENT", "tag");
    expectRefused(() => encodeEvent({ wallTime: 1, summary: [{ tag: "x" } as never] }), EventFileError, "INVALID_EVENT", '"x" has neither');
    expectRefused(() => encodeEvent({ wallTime: 1, summary: [{ tag: "h", histo: { ...histogram([1]), bucket: [] } }] }), EventFileError, "INVALID_EVENT", "bucket");
  });
});

describe("readEventFile finds corruption", () => {
  const bytes = file([{ wallTime: 1, fileVersion: "brain.Event:2" }, { wallTime: 2, step: 1, summary: [{ tag: "batch_loss", simpleValue: 0.5 }] }, { wallTime: 3, step: 2, summary: [{ tag: "batch_loss", simpleValue: 0.25 }] }]);
  const starts = [0];
  for (const e of [0, 1]) starts.push(starts[e]! + 16 + Number(Buffer.from(bytes).readBigUInt64LE(starts[e]!)));

  it("every single flipped byte, in every part of every record, is a CORRUPT_EVENT_FILE naming the record (and the independent reader agrees)", () => {
    expect(readEventFile(bytes)).toHaveLength(3);
    for (let i = 0; i < bytes.length; i++) {
      const bad = Buffer.from(bytes);
      bad[i] = bad[i]! ^ 0x5a;
      const record = starts.filter((s) => s <= i).length - 1;
      const err = expectRefused(() => readEventFile(bad), EventFileError, "CORRUPT_EVENT_FILE", `record ${record} (byte ${starts[record]})`);
      const inLength = i - starts[record]! < 12;
      expect(err.message, `byte ${i}`).toMatch(inLength ? /length CRC mismatch/ : /data CRC mismatch/);
      expect(err.record).toBe(record);
      expect(() => decodeIndependently(bad)).toThrow(/CRC mismatch/);
    }
  });

  it("a file cut anywhere inside a record is refused; cut at a record boundary it is the records before", () => {
    for (let n = 1; n < bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      const whole = starts.indexOf(n);
      if (whole > 0) expect(readEventFile(cut)).toHaveLength(whole);
      else expect(() => readEventFile(cut)).toThrow(/truncated/);
    }
  });

  it("a record whose CRCs are right but whose protobuf is not is refused too", () => {
    const garbage = Buffer.from(tfRecord(Uint8Array.from([0x2a, 0x05, 0x0a]))); // summary of 5 bytes, 1 present
    expectRefused(() => readEventFile(garbage), EventFileError, "CORRUPT_EVENT_FILE", /record 0 .*malformed Event protobuf: truncated/);
    expectRefused(() => readEventFile(tfRecord(Uint8Array.from([0x00]))), EventFileError, "CORRUPT_EVENT_FILE", "field number 0");
  });
});

describe("histogram", () => {
  it("equal-width buckets (TF2's tf.summary.histogram): hand-computed counts, edges and sums; non-finite values left out", () => {
    const h = histogram([0, 1, 2, 3, 4, Number.NaN, Number.POSITIVE_INFINITY], 2);
    expect(h).toEqual({ min: 0, max: 4, num: 5, sum: 10, sumSquares: 30, bucketLimit: [2, 4], bucket: [2, 3] });
    expect(histogram(new Float32Array([2, 2, 2]), 30)).toEqual({ min: 2, max: 2, num: 3, sum: 6, sumSquares: 12, bucketLimit: [2], bucket: [3] });
    expect(histogram([Number.NaN])).toEqual({ min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [Number.MAX_VALUE], bucket: [0] });
    const many = histogram(Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i)), 30);
    expect(many.bucket).toHaveLength(30);
    expect(many.bucket.reduce((a, b) => a + b, 0)).toBe(1000);
  });

  it("TensorFlow's exponential limits: ±1e-12·1.1^k, 0, ±DBL_MAX; each value inside the bucket TensorBoard draws for it; empty runs merged", () => {
    const limits = exponentialBucketLimits();
    expect(limits).toHaveLength(1551);
    expect(limits[775]).toBe(0);
    expect(limits[776]).toBe(1e-12);
    expect(limits[0]).toBe(-Number.MAX_VALUE);
    expect(limits.at(-1)).toBe(Number.MAX_VALUE);
    const values = [0.5, 0.5, -2, 100, 0, 1e-13, -3e-5];
    const h = histogram(values, "exponential");
    expect(h.num).toBe(7);
    expect(h.bucket.reduce((a, b) => a + b, 0)).toBe(7);
    for (let i = 1; i < h.bucket.length; i++) expect(h.bucket[i - 1]! > 0 || h.bucket[i]! > 0, `two empty buckets in a row at ${i}`).toBe(true);
    // TensorBoard's data_compat: lefts = [min, ...limits[:-1]], rights = [...limits[:-1], max]
    const lefts = [h.min, ...h.bucketLimit.slice(0, -1)];
    const rights = [...h.bucketLimit.slice(0, -1), h.max];
    for (const v of values) {
      const i = h.bucket.findIndex((c, k) => c > 0 && lefts[k]! <= v && v <= rights[k]!);
      expect(i, `value ${v}`).toBeGreaterThanOrEqual(0);
    }
  });

  it("explicit limits: bucket i holds limits[i-1] <= v < limits[i]; an overflow bucket only when needed; bad limits refused", () => {
    expect(histogram([-1, 0, 0.5, 1, 5], [0, 1, 2])).toMatchObject({ bucketLimit: [0, 1, 2, Number.MAX_VALUE], bucket: [1, 2, 1, 1] });
    expect(histogram([0.5], [0, 1, 2])).toMatchObject({ bucketLimit: [0, 1, 2], bucket: [0, 1, 0] });
    expectRefused(() => histogram([1], [1, 1]), EventFileError, "INVALID_EVENT", "strictly increasing");
    expectRefused(() => histogram([1], []), EventFileError, "INVALID_EVENT", "non-empty");
    expectRefused(() => histogram([1], 0), EventFileError, "INVALID_EVENT", "buckets must be an integer");
  });
});
