/**
 * An independent reader of event files for the tests: TFRecord framing walked here, every masked
 * CRC checked with @node-rs/crc32 (native CRC-32C) and each Event decoded by protobufjs from the
 * .proto text beside this file. Nothing from the package's own encoder or decoder is used.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { crc32c } from "@node-rs/crc32";
import protobuf from "protobufjs";

const root = protobuf.parse(readFileSync(join(dirname(fileURLToPath(import.meta.url)), "event.fixture.proto"), "utf8")).root;
const EventType = root.lookupType("tensorflow.Event");

export interface IndependentHisto {
  min: number;
  max: number;
  num: number;
  sum: number;
  sumSquares: number;
  bucketLimit: number[];
  bucket: number[];
}
export interface IndependentValue {
  tag: string;
  /** The oneof case protobufjs saw: "simpleValue", "histo", or undefined (nothing set). */
  value: string | undefined;
  simpleValue: number;
  histo?: IndependentHisto;
}
export interface IndependentEvent {
  wallTime: number;
  step: number;
  what: string | undefined;
  fileVersion?: string;
  summary?: { value: IndependentValue[] };
}

/** TensorFlow's mask, written out again here (rotate right 15, add the constant, mod 2^32). */
export const mask = (crc: number): number => ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** Decodes every record of an event file; throws on any framing or CRC problem. Counts the CRCs checked. */
export function decodeIndependently(bytes: Buffer): { events: IndependentEvent[]; crcs: number } {
  const events: IndependentEvent[] = [];
  let crcs = 0;
  let at = 0;
  while (at < bytes.length) {
    if (at + 12 > bytes.length) throw new Error(`truncated header at ${at}`);
    const length = Number(bytes.readBigUInt64LE(at));
    if (mask(crc32c(bytes.subarray(at, at + 8))) !== bytes.readUInt32LE(at + 8)) throw new Error(`length CRC mismatch at ${at}`);
    crcs++;
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (data.length !== length || at + 16 + length > bytes.length) throw new Error(`truncated record at ${at}`);
    if (mask(crc32c(data)) !== bytes.readUInt32LE(at + 12 + length)) throw new Error(`data CRC mismatch at ${at}`);
    crcs++;
    const msg = EventType.decode(data);
    events.push(EventType.toObject(msg, { longs: Number, oneofs: true, defaults: true, arrays: true }) as IndependentEvent);
    at += 16 + length;
  }
  return { events, crcs };
}

/** The event files of one directory in name order (TensorBoard's order), each decoded independently. */
export function decodeDir(dir: string): { file: string; events: IndependentEvent[]; crcs: number }[] {
  return readdirSync(dir)
    .filter((f) => f.includes("tfevents"))
    .sort()
    .map((file) => ({ file, ...decodeIndependently(readFileSync(join(dir, file))) }));
}

/** Scalars by tag: [step, value] pairs in file order. */
export function scalarsOf(events: readonly IndependentEvent[]): Map<string, [number, number][]> {
  const out = new Map<string, [number, number][]>();
  for (const e of events) {
    for (const v of e.summary?.value ?? []) {
      if (v.value !== "simpleValue") continue;
      let series = out.get(v.tag);
      if (!series) out.set(v.tag, (series = []));
      series.push([e.step, v.simpleValue]);
    }
  }
  return out;
}
