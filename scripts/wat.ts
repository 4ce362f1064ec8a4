/**
 * wat2wasm through wabt, shared by the packages' `build:simd` scripts. Each package passes its own
 * wabt instance (a devDependency of that package), so this file imports nothing.
 */

/** The part of wabt's module API the build uses. */
export interface Wabt {
  parseWat(
    filename: string,
    source: string,
    features: Record<string, boolean>,
  ): {
    resolveNames(): void;
    validate: unknown;
    toBinary(options: { log: boolean; write_debug_names: boolean }): { buffer: ArrayLike<number> };
    destroy(): void;
  };
}

/** Compiles WebAssembly text to bytes, validating with the same features it parses with. */
export function wat2wasm(wabt: Wabt, filename: string, source: string, features: Record<string, boolean>): Uint8Array {
  const mod = wabt.parseWat(filename, source, features);
  try {
    mod.resolveNames();
    (mod.validate as (features: object) => void)(features); // wabt's typings omit validate's features argument
    return Uint8Array.from(mod.toBinary({ log: false, write_debug_names: false }).buffer);
  } finally {
    mod.destroy();
  }
}

/** Base64 of `bytes`, as string-literal lines of at most 100 characters joined by `+`. */
export function base64Literal(bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString("base64");
  return b64.match(/.{1,100}/g)!.map((l) => `  "${l}"`).join(" +\n");
}
