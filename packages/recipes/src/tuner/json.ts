/**
 * JSON as Python's `json` module writes and reads it, so a journal line written here is
 * byte-for-byte what Optuna would write for the same record, and a line Python wrote parses here.
 * Python writes bare `NaN`, `Infinity` and `-Infinity` (which `JSON.parse` rejects) and escapes every
 * character outside printable ASCII (`ensure_ascii`).
 */

/** A JSON value as Python reads and writes it: numbers may be NaN or +-Infinity. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };
export type JsonObject = { readonly [key: string]: JsonValue };

/** A line that is not JSON Python could have written. */
export class PyJsonSyntaxError extends SyntaxError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super(`${message} at position ${position}`);
    this.name = "PyJsonSyntaxError";
  }
}

/** Parses one JSON text, accepting Python's bare `NaN`, `Infinity` and `-Infinity` outside strings. */
export function parsePyJson(text: string): JsonValue {
  // the common case is plain JSON: let the engine's parser do it
  if (!text.includes("NaN") && !text.includes("Infinity")) {
    try {
      return JSON.parse(text) as JsonValue;
    } catch (e) {
      throw new PyJsonSyntaxError((e as Error).message, 0);
    }
  }
  const p = new Parser(text);
  const v = p.value();
  p.space();
  if (p.i !== text.length) p.fail("unexpected text after the value");
  return v;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

class Parser {
  i = 0;
  constructor(private readonly s: string) {}

  fail(message: string): never {
    throw new PyJsonSyntaxError(message, this.i);
  }

  space(): void {
    while (this.i < this.s.length && " \t\n\r".includes(this.s[this.i]!)) this.i++;
  }

  private literal(word: string, value: JsonValue): JsonValue {
    if (!this.s.startsWith(word, this.i)) this.fail(`expected ${word}`);
    this.i += word.length;
    return value;
  }

  value(): JsonValue {
    this.space();
    const c = this.s[this.i];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    if (c === "t") return this.literal("true", true);
    if (c === "f") return this.literal("false", false);
    if (c === "n") return this.literal("null", null);
    if (c === "N") return this.literal("NaN", Number.NaN);
    if (c === "I") return this.literal("Infinity", Number.POSITIVE_INFINITY);
    if (c === "-" && this.s[this.i + 1] === "I") return this.literal("-Infinity", Number.NEGATIVE_INFINITY);
    NUMBER.lastIndex = this.i;
    const m = NUMBER.exec(this.s);
    if (!m) this.fail("expected a value");
    this.i += m[0].length;
    return Number(m[0]);
  }

  private string(): string {
    const start = this.i++;
    while (this.i < this.s.length) {
      const c = this.s[this.i]!;
      if (c === "\\") this.i += 2;
      else if (c === '"') {
        this.i++;
        // the engine unescapes the literal exactly as JSON defines it
        try {
          return JSON.parse(this.s.slice(start, this.i)) as string;
        } catch {
          this.i = start;
          this.fail("invalid string");
        }
      } else this.i++;
    }
    return this.fail("unterminated string");
  }

  private array(): JsonValue[] {
    this.i++;
    const out: JsonValue[] = [];
    this.space();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.space();
      const c = this.s[this.i++];
      if (c === "]") return out;
      if (c !== ",") this.fail("expected , or ]");
    }
  }

  private object(): { [key: string]: JsonValue } {
    this.i++;
    const out: { [key: string]: JsonValue } = {};
    this.space();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.space();
      if (this.s[this.i] !== '"') this.fail("expected a key");
      const key = this.string();
      this.space();
      if (this.s[this.i++] !== ":") this.fail("expected :");
      // defineProperty: a "__proto__" key is data, as with JSON.parse
      Object.defineProperty(out, key, { value: this.value(), enumerable: true, writable: true, configurable: true });
      this.space();
      const c = this.s[this.i++];
      if (c === "}") return out;
      if (c !== ",") this.fail("expected , or }");
    }
  }
}

/**
 * Python's `repr(float)`: the shortest digits that round-trip (as JavaScript's), in scientific form
 * when the exponent is below -4 or at least 16 (`1e-05`, `1e+16`), else positional with a `.0` for
 * whole numbers.
 */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (x === Number.POSITIVE_INFINITY) return "Infinity";
  if (x === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, e] = x.toExponential().split("e") as [string, string];
  const exp = Number(e);
  if (exp < -4 || exp >= 16) return `${mantissa}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
  const s = String(x); // positional for these exponents
  return s.includes(".") ? s : `${s}.0`;
}

/** A number as Python writes it: whole numbers as integers (Python's ints), others as `repr(float)`. */
function pyNumber(x: number): string {
  return Number.isInteger(x) && Math.abs(x) < 1e16 && !Object.is(x, -0) ? String(x) : pyFloatRepr(x);
}

const SHORT_ESCAPES: Record<string, string> = { '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f" };

/** A string as Python's `json.dumps` (`ensure_ascii=True`) writes it: everything outside space..~ escaped, UTF-16 units as `\uxxxx`. */
export function pyString(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const code = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short) out += short;
    else if (code >= 0x20 && code <= 0x7e) out += c;
    else out += `\\u${code.toString(16).padStart(4, "0")}`;
  }
  return `${out}"`;
}

/** `json.dumps(value)` as Python writes it (separators `", "` and `": "`, bare NaN/Infinity). Undefined properties are left out. */
export function stringifyPy(value: JsonValue): string {
  if (value === null) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return pyNumber(value);
  if (typeof value === "string") return pyString(value);
  if (Array.isArray(value)) return `[${(value as readonly JsonValue[]).map(stringifyPy).join(", ")}]`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) if (v !== undefined) parts.push(`${pyString(k)}: ${stringifyPy(v)}`);
  return `{${parts.join(", ")}}`;
}

const pad = (n: number, width = 2) => String(n).padStart(width, "0");

/** Wall-clock milliseconds (as Python's `datetime.now()`), with the sub-millisecond digits of the monotonic clock. */
const nowMs = () => Date.now() + (performance.now() % 1);

/**
 * Python's `datetime.now().isoformat(timespec="microseconds")`: local time, no zone, microseconds
 * (`2024-05-01T13:02:03.123456`). `epochMs` may carry a fraction of a millisecond.
 */
export function localIsoTimestamp(epochMs: number = nowMs()): string {
  const whole = Math.floor(epochMs);
  const d = new Date(whole);
  const micros = Math.min(999_999, (d.getMilliseconds() * 1000 + Math.floor((epochMs - whole) * 1000)));
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(micros, 6)}`;
}

const ISO = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?$/;

/** Milliseconds since the epoch of a naive local timestamp as Python writes it; NaN for anything else. */
export function parseLocalIsoTimestamp(text: string): number {
  const m = ISO.exec(text);
  if (!m) return Number.NaN;
  const [, y, mo, d, h, mi, s, frac] = m;
  const micros = frac ? Number(frac.padEnd(6, "0")) : 0;
  return new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s ?? 0)).getTime() + micros / 1000;
}
