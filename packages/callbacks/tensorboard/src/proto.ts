/**
 * The few protobuf wire-format pieces an `Event` needs: varints, fixed64 doubles, fixed32 floats and
 * length-delimited fields (strings, sub-messages, packed doubles). Written here rather than taken
 * from a library: ~100 lines against a dependency with code generation or reflection for three
 * small messages. Tests check it against protobufjs.
 */

export const WIRE = { VARINT: 0, I64: 1, LEN: 2, I32: 5 } as const;

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** Appends protobuf fields to a growing buffer. */
export class ProtoWriter {
  private buf = new Uint8Array(64);
  private view = new DataView(this.buf.buffer);
  private pos = 0;

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A varint of an integer in the safe range; negatives as 64-bit two's complement (int64). */
  varint(n: number): void {
    this.reserve(10);
    if (n < 0) {
      let v = BigInt.asUintN(64, BigInt(n));
      while (v >= 0x80n) {
        this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
        v >>= 7n;
      }
      this.buf[this.pos++] = Number(v);
      return;
    }
    // division, not shifts: shifts would truncate to 32 bits
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.pos++] = n;
  }

  int64(field: number, n: number): void {
    this.tag(field, WIRE.VARINT);
    this.varint(n);
  }

  double(field: number, v: number): void {
    this.tag(field, WIRE.I64);
    this.reserve(8);
    this.view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  float(field: number, v: number): void {
    this.tag(field, WIRE.I32);
    this.reserve(4);
    this.view.setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  bytes(field: number, b: Uint8Array): void {
    this.tag(field, WIRE.LEN);
    this.varint(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  string(field: number, s: string): void {
    this.bytes(field, utf8.encode(s));
  }

  packedDoubles(field: number, values: readonly number[]): void {
    this.tag(field, WIRE.LEN);
    this.varint(values.length * 8);
    this.reserve(values.length * 8);
    for (const v of values) {
      this.view.setFloat64(this.pos, v, true);
      this.pos += 8;
    }
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** A wire-format problem; the reader turns it into an error naming the record. */
export class ProtoError extends Error {}

/** Reads protobuf fields from `buf`; unknown fields are skipped as the wire type says. */
export class ProtoReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw new ProtoError(`truncated field at byte ${this.pos} (needs ${n} more bytes, ${this.buf.length - this.pos} left)`);
  }

  /** A varint as a number (exact up to 2^53); 10-byte negatives come back negative (int64). */
  varint(): number {
    let lo = 0;
    let big: bigint | undefined;
    for (let i = 0; ; i++) {
      if (i >= 10) throw new ProtoError(`varint longer than 10 bytes at byte ${this.pos}`);
      this.need(1);
      const b = this.buf[this.pos++]!;
      if (i < 7) lo += (b & 0x7f) * 2 ** (7 * i);
      else big = (big ?? BigInt(lo)) | (BigInt(b & 0x7f) << BigInt(7 * i));
      if (!(b & 0x80)) break;
    }
    return big === undefined ? lo : Number(BigInt.asIntN(64, big));
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    const at = this.pos;
    const t = this.varint();
    if (t < 8) throw new ProtoError(`invalid field number 0 at byte ${at}`);
    return { field: Math.floor(t / 8), wire: t % 8 };
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  float(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  bytes(): Uint8Array {
    const n = this.varint();
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    try {
      return utf8Decoder.decode(this.bytes());
    } catch (e) {
      throw e instanceof ProtoError ? e : new ProtoError(`invalid UTF-8 in a string field before byte ${this.pos}`);
    }
  }

  /** A repeated double: packed (one length-delimited run) or one value (fixed64), as parsers must accept both. */
  doubles(wire: number, into: number[]): void {
    if (wire === WIRE.I64) {
      into.push(this.double());
      return;
    }
    const b = this.bytes();
    if (b.length % 8) throw new ProtoError(`packed doubles of ${b.length} bytes (not a multiple of 8)`);
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    for (let i = 0; i < b.length; i += 8) into.push(v.getFloat64(i, true));
  }

  skip(wire: number): void {
    if (wire === WIRE.VARINT) this.varint();
    else if (wire === WIRE.LEN) this.bytes();
    else if (wire === WIRE.I64 || wire === WIRE.I32) {
      const n = wire === WIRE.I64 ? 8 : 4;
      this.need(n);
      this.pos += n;
    } else throw new ProtoError(`unsupported wire type ${wire} before byte ${this.pos}`);
  }

  /** Checks that a known field came with the wire type its declaration has. */
  expect(wire: number, expected: number, what: string): void {
    if (wire !== expected) throw new ProtoError(`${what} has wire type ${wire}, expected ${expected}`);
  }
}
