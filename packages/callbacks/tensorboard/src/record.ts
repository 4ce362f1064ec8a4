import { maskedCrc32c } from "./crc32c.js";
import { EventFileError } from "./errors.js";
import { decodeEvent, type DecodedEvent } from "./event.js";

/**
 * One TFRecord: `uint64 length` (little-endian), `uint32 masked_crc32c(length bytes)`, the data,
 * `uint32 masked_crc32c(data)`. An event file is a sequence of these, one `Event` each.
 */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length + 16);
  const view = new DataView(out.buffer);
  // lengths above 2^32 would need the high word; an event is never that large
  view.setUint32(0, data.length, true);
  view.setUint32(4, 0, true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

const corrupt = (record: number, offset: number, message: string) =>
  new EventFileError("CORRUPT_EVENT_FILE", `event file record ${record} (byte ${offset}): ${message}`, record, offset);

const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;

/**
 * Decodes a whole event file (the bytes of `events.out.tfevents.*`): checks both masked CRCs of
 * every record and decodes each `Event` (see `decodeEvent` for what is kept). Throws
 * `EventFileError` (`CORRUPT_EVENT_FILE`) naming the record and byte offset at the first problem:
 * a CRC mismatch, a record cut short (a file still being written, or a write that failed), a
 * malformed protobuf.
 */
export function readEventFile(bytes: Uint8Array): DecodedEvent[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const events: DecodedEvent[] = [];
  for (let at = 0, record = 0; at < bytes.length; record++) {
    if (at + 12 > bytes.length) throw corrupt(record, at, `truncated header (${bytes.length - at} of 12 bytes)`);
    const lengthCrc = maskedCrc32c(bytes.subarray(at, at + 8));
    if (lengthCrc !== view.getUint32(at + 8, true)) throw corrupt(record, at, `length CRC mismatch (stored ${hex(view.getUint32(at + 8, true))}, computed ${hex(lengthCrc)})`);
    const length = view.getUint32(at, true) + view.getUint32(at + 4, true) * 2 ** 32;
    const end = at + 12 + length + 4;
    if (end > bytes.length) throw corrupt(record, at, `truncated record (length ${length}, ${bytes.length - at - 12} bytes left)`);
    const data = bytes.subarray(at + 12, at + 12 + length);
    const dataCrc = maskedCrc32c(data);
    if (dataCrc !== view.getUint32(end - 4, true)) throw corrupt(record, at, `data CRC mismatch (stored ${hex(view.getUint32(end - 4, true))}, computed ${hex(dataCrc)})`);
    try {
      events.push(decodeEvent(data));
    } catch (e) {
      throw e instanceof EventFileError ? corrupt(record, at, e.message) : e;
    }
    at = end;
  }
  return events;
}
