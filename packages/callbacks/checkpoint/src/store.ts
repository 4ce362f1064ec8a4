import { CheckpointExistsError, CheckpointFormatError } from "./errors.js";

/**
 * Where checkpoints live. The plugin and the loaders only use this interface, so storage is a
 * service: `FileStore` in Node (`@fitloop/checkpoint/node`), `MemoryStore` anywhere, or your own
 * (a browser's IndexedDB, an object store). Register one on the root container under
 * `CHECKPOINT_STORE` to inject it.
 */
export interface CheckpointStore {
  /** Where this store keeps things (for messages). */
  readonly description: string;
  /**
   * Writes every file of checkpoint `name` so that it appears with all of them or not at all
   * (a crash leaves the previous checkpoints as they were). Refuses a name that exists. A file may be
   * a promise (the manifest, which waits for the other files' hashes): write the others meanwhile.
   */
  write(name: string, files: ReadonlyMap<string, FileContent>): Promise<void>;
  /** One file of a checkpoint; refuses a file larger than `maxBytes` before reading it. */
  read(name: string, file: string, maxBytes?: number): Promise<Uint8Array>;
  /** Names of the complete checkpoints. */
  list(): Promise<string[]>;
  remove(name: string): Promise<void>;
  /** The `latest` and `best` pointers (written atomically together). */
  readPointers(): Promise<Pointers>;
  writePointers(pointers: Pointers): Promise<void>;
}

export type FileContent = Uint8Array | Promise<Uint8Array>;

export interface Pointers {
  readonly latest?: string;
  readonly best?: string;
}

/** A name a store accepts: letters, digits and `_ . = + -`, not starting with a dot (temporaries do), at most 200 characters. */
const NAME = /^[A-Za-z0-9_=+\-][A-Za-z0-9_.=+\-]{0,199}$/;

export function checkName(name: unknown): string {
  if (typeof name !== "string" || !NAME.test(name) || name === "pointers.json") {
    throw new CheckpointFormatError(`${JSON.stringify(name)} is not a checkpoint name (letters, digits, _ . = + -, not starting with a dot, at most 200 characters)`);
  }
  return name;
}

/** Turns a formatted template into a valid name (anything else becomes `_`). */
export function sanitizeName(raw: string): string {
  const s = raw.replace(/[^A-Za-z0-9_.=+\-]/g, "_").replace(/^\.+/, "_").slice(0, 200);
  return s.length ? s : "checkpoint";
}

/** Checkpoints in memory (tests, browsers without storage, short-lived runs); copies in and out. */
export class MemoryStore implements CheckpointStore {
  readonly description = "memory";
  private readonly checkpoints = new Map<string, Map<string, Uint8Array>>();
  private pointers: Pointers = {};

  async write(name: string, files: ReadonlyMap<string, FileContent>): Promise<void> {
    checkName(name);
    if (this.checkpoints.has(name)) throw new CheckpointExistsError(name, this.description);
    const entries = await Promise.all([...files].map(async ([k, v]) => [k, (await v).slice()] as const));
    this.checkpoints.set(name, new Map(entries));
  }

  async read(name: string, file: string, maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
    const bytes = this.checkpoints.get(checkName(name))?.get(file);
    if (!bytes) throw new CheckpointFormatError(`${this.description}: checkpoint "${name}" has no file "${file}"`);
    if (bytes.length > maxBytes) throw new CheckpointFormatError(`${this.description}: ${name}/${file} has ${bytes.length} bytes, more than the ${maxBytes} expected`);
    return bytes.slice();
  }

  async list(): Promise<string[]> {
    return [...this.checkpoints.keys()];
  }

  async remove(name: string): Promise<void> {
    this.checkpoints.delete(checkName(name));
  }

  async readPointers(): Promise<Pointers> {
    return { ...this.pointers };
  }

  async writePointers(pointers: Pointers): Promise<void> {
    this.pointers = { ...pointers };
  }

  /** Direct access for tests that corrupt a file on purpose. */
  files(name: string): Map<string, Uint8Array> | undefined {
    return this.checkpoints.get(name);
  }
}
