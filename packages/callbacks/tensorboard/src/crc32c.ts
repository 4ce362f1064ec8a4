/**
 * CRC-32C (Castagnoli), the checksum TFRecord framing uses, table-driven (one 256-entry table of
 * the reflected polynomial 0x82F63B78). Records are small (a few scalars, a few histograms), so a
 * byte-wise loop is fast enough and keeps the package free of native code.
 */
const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/**
 * CRC-32C of `data`. Pass an earlier result as `crc` to continue over more bytes
 * (`crc32c(b, crc32c(a))` equals `crc32c(a ++ b)`, as `@node-rs/crc32`'s `initialState`).
 */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The masked CRC TFRecord stores: rotated right by 15 bits plus a constant, so that a CRC of data
 * that itself contains CRCs is not degenerate (TensorFlow's `crc32c::Mask`).
 */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}
