import { EventFileError } from "./errors.js";
import { ProtoError, ProtoReader, ProtoWriter, WIRE } from "./proto.js";

/**
 * `tensorflow.HistogramProto`: the bucket `i` counts values in `[bucketLimit[i-1], bucketLimit[i])`
 * (the first from `min`); TensorBoard takes `max` as the right edge of the last bucket.
 */
export interface HistogramData {
  readonly min: number;
  readonly max: number;
  readonly num: number;
  readonly sum: number;
  readonly sumSquares: number;
  readonly bucketLimit: readonly number[];
  readonly bucket: readonly number[];
}

/** One `Summary.Value`: a scalar (stored as a float32, as TensorFlow does) or a histogram. */
export type SummaryValue = { readonly tag: string; readonly simpleValue: number } | { readonly tag: string; readonly histo: HistogramData };

/** `tensorflow.Event`, the fields TensorBoard's scalars and histograms need. */
export interface TfEvent {
  /** Seconds since the Unix epoch (a double: sub-second precision). */
  readonly wallTime: number;
  /** Global step (int64; 0 when absent). */
  readonly step?: number;
  /** Only in a file's first event: `"brain.Event:2"`. */
  readonly fileVersion?: string;
  readonly summary?: readonly SummaryValue[];
}

/** What `decodeEvent` / `readEventFile` return: `step` always set (0 when absent, as in protobuf). */
export interface DecodedEvent extends TfEvent {
  readonly step: number;
}

// field numbers from tensorflow/core/util/event.proto and tensorflow/core/framework/summary.proto
const EVENT = { wallTime: 1, step: 2, fileVersion: 3, summary: 5 } as const;
const VALUE = { tag: 1, simpleValue: 2, histo: 5 } as const;
const HISTO = { min: 1, max: 2, num: 3, sum: 4, sumSquares: 5, bucketLimit: 6, bucket: 7 } as const;

const invalid = (message: string) => new EventFileError("INVALID_EVENT", `encodeEvent: ${message}`);

function encodeHistogram(h: HistogramData, tag: string): Uint8Array {
  if (h.bucketLimit.length !== h.bucket.length) throw invalid(`histogram "${tag}" has ${h.bucketLimit.length} bucket limits but ${h.bucket.length} counts`);
  const w = new ProtoWriter();
  // every field written (even zeros): a reader then sees the whole histogram whatever its defaults
  w.double(HISTO.min, h.min);
  w.double(HISTO.max, h.max);
  w.double(HISTO.num, h.num);
  w.double(HISTO.sum, h.sum);
  w.double(HISTO.sumSquares, h.sumSquares);
  w.packedDoubles(HISTO.bucketLimit, h.bucketLimit);
  w.packedDoubles(HISTO.bucket, h.bucket);
  return w.finish();
}

/** The protobuf bytes of an `Event` (without TFRecord framing; see `tfRecord`). */
export function encodeEvent(event: TfEvent): Uint8Array {
  if (typeof event.wallTime !== "number" || !Number.isFinite(event.wallTime)) throw invalid(`wallTime must be a finite number of seconds, got ${String(event.wallTime)}`);
  const step = event.step ?? 0;
  if (!Number.isSafeInteger(step)) throw invalid(`step must be a safe integer, got ${String(step)}`);
  const w = new ProtoWriter();
  w.double(EVENT.wallTime, event.wallTime);
  if (step !== 0) w.int64(EVENT.step, step); // proto3: a zero scalar is not written
  if (event.fileVersion !== undefined) w.string(EVENT.fileVersion, event.fileVersion);
  if (event.summary !== undefined) {
    const s = new ProtoWriter();
    for (const v of event.summary) {
      if (typeof v.tag !== "string" || v.tag.length === 0) throw invalid(`a summary value needs a non-empty tag, got ${JSON.stringify(v.tag)}`);
      const vw = new ProtoWriter();
      vw.string(VALUE.tag, v.tag);
      // simple_value and histo are members of a oneof: written even when 0, or TensorBoard sees no value
      if ("simpleValue" in v) {
        if (typeof v.simpleValue !== "number") throw invalid(`"${v.tag}": simpleValue must be a number`);
        vw.float(VALUE.simpleValue, v.simpleValue);
      } else if ("histo" in v) vw.bytes(VALUE.histo, encodeHistogram(v.histo, v.tag));
      else throw invalid(`"${String((v as { tag: unknown }).tag)}" has neither simpleValue nor histo`);
      s.bytes(1, vw.finish());
    }
    w.bytes(EVENT.summary, s.finish());
  }
  return w.finish();
}

function decodeHistogram(bytes: Uint8Array): HistogramData {
  const r = new ProtoReader(bytes);
  const h = { min: 0, max: 0, num: 0, sum: 0, sumSquares: 0, bucketLimit: [] as number[], bucket: [] as number[] };
  const names = ["", "min", "max", "num", "sum", "sumSquares"] as const;
  while (!r.done) {
    const { field, wire } = r.tag();
    if (field >= 1 && field <= 5) {
      r.expect(wire, WIRE.I64, `HistogramProto.${names[field]}`);
      h[names[field] as Exclude<(typeof names)[number], "">] = r.double();
    } else if (field === HISTO.bucketLimit) r.doubles(wire, h.bucketLimit);
    else if (field === HISTO.bucket) r.doubles(wire, h.bucket);
    else r.skip(wire);
  }
  return h;
}

function decodeValue(bytes: Uint8Array): SummaryValue | undefined {
  const r = new ProtoReader(bytes);
  let tag = "";
  let value: { simpleValue: number } | { histo: HistogramData } | undefined;
  while (!r.done) {
    const { field, wire } = r.tag();
    switch (field) {
      case VALUE.tag:
        r.expect(wire, WIRE.LEN, "Summary.Value.tag");
        tag = r.string();
        break;
      case VALUE.simpleValue:
        r.expect(wire, WIRE.I32, "Summary.Value.simple_value");
        value = { simpleValue: r.float() };
        break;
      case VALUE.histo:
        r.expect(wire, WIRE.LEN, "Summary.Value.histo");
        value = { histo: decodeHistogram(r.bytes()) };
        break;
      default:
        r.skip(wire); // images, audio, tensors: not what this package writes
    }
  }
  return value && { tag, ...value };
}

/**
 * Decodes the protobuf bytes of one `Event`. Scalars (`simple_value`) and histograms (`histo`) are
 * returned; other summary kinds (images, audio, tensors) and other event fields are skipped.
 * Throws `EventFileError` (`CORRUPT_EVENT_FILE`) on malformed bytes.
 */
export function decodeEvent(bytes: Uint8Array): DecodedEvent {
  try {
    const r = new ProtoReader(bytes);
    let wallTime = 0;
    let step = 0;
    let fileVersion: string | undefined;
    let summary: SummaryValue[] | undefined;
    while (!r.done) {
      const { field, wire } = r.tag();
      switch (field) {
        case EVENT.wallTime:
          r.expect(wire, WIRE.I64, "Event.wall_time");
          wallTime = r.double();
          break;
        case EVENT.step:
          r.expect(wire, WIRE.VARINT, "Event.step");
          step = r.varint();
          break;
        case EVENT.fileVersion:
          r.expect(wire, WIRE.LEN, "Event.file_version");
          fileVersion = r.string();
          break;
        case EVENT.summary: {
          r.expect(wire, WIRE.LEN, "Event.summary");
          // an embedded message may come in pieces: they merge (repeated values append)
          summary ??= [];
          const s = new ProtoReader(r.bytes());
          while (!s.done) {
            const t = s.tag();
            if (t.field !== 1) {
              s.skip(t.wire);
              continue;
            }
            s.expect(t.wire, WIRE.LEN, "Summary.value");
            const v = decodeValue(s.bytes());
            if (v) summary.push(v);
          }
          break;
        }
        default:
          r.skip(wire);
      }
    }
    return { wallTime, step, ...(fileVersion !== undefined ? { fileVersion } : {}), ...(summary ? { summary } : {}) };
  } catch (e) {
    if (e instanceof ProtoError) throw new EventFileError("CORRUPT_EVENT_FILE", `malformed Event protobuf: ${e.message}`);
    throw e;
  }
}
