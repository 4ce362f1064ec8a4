import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointFormatError } from "../errors.js";
import { checkName, type CheckpointStore, type FileContent, type Pointers } from "../store.js";

const POINTERS = "pointers.json";

/** fsync a file or directory by path. */
async function sync(path: string): Promise<void> {
  const h = await open(path, "r");
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const h = await open(path, "wx"); // never over an existing file
  try {
    await h.writeFile(bytes);
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Checkpoints as directories under `root`. A checkpoint is written into a temporary directory
 * (`.tmp-*`), every file and the directory fsynced, then renamed into place and the parent fsynced:
 * a kill at any moment leaves either the whole new checkpoint or none of it, and the previous ones
 * untouched. Removal renames first, so a half-deleted checkpoint is never visible. Temporaries a
 * killed writer left behind are removed by the next write. One writer per root at a time.
 */
export class FileStore implements CheckpointStore {
  readonly description: string;

  constructor(readonly root: string) {
    if (typeof root !== "string" || root.length === 0) throw new CheckpointFormatError(`FileStore needs a directory, got ${JSON.stringify(root)}`);
    this.description = `directory ${root}`;
  }

  async write(name: string, files: ReadonlyMap<string, FileContent>): Promise<void> {
    checkName(name);
    await mkdir(this.root, { recursive: true });
    await this.removeTemporaries();
    const final = join(this.root, name);
    if (await exists(final)) throw new CheckpointFormatError(`checkpoint "${name}" exists in ${this.description}`);
    const tmp = join(this.root, `.tmp-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
    await mkdir(tmp);
    try {
      for (const file of files.keys()) {
        if (!/^[A-Za-z0-9_.\-]+$/.test(file) || file.startsWith(".")) throw new CheckpointFormatError(`cannot write a checkpoint file named ${JSON.stringify(file)}`);
      }
      // every file at once (a pending one, the manifest, as soon as it is ready); all fsynced before the rename
      const results = await Promise.allSettled([...files].map(async ([file, bytes]) => writeSynced(join(tmp, file), await bytes)));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
      if (failed) throw failed.reason;
      await sync(tmp);
      await rename(tmp, final);
      await sync(this.root);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  async read(name: string, file: string): Promise<Uint8Array> {
    checkName(name);
    if (!/^[A-Za-z0-9_.\-]+$/.test(file) || file.startsWith(".")) throw new CheckpointFormatError(`no checkpoint file is named ${JSON.stringify(file)}`);
    return new Uint8Array(await readFile(join(this.root, name, file)));
  }

  async list(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return entries.filter((d) => d.isDirectory() && !d.name.startsWith(".")).map((d) => d.name).filter((n) => {
      try {
        checkName(n);
        return true;
      } catch {
        return false;
      }
    });
  }

  async remove(name: string): Promise<void> {
    checkName(name);
    const path = join(this.root, name);
    if (!(await exists(path))) return;
    const trash = join(this.root, `.tmp-removed-${name}-${randomBytes(4).toString("hex")}`);
    await rename(path, trash);
    await sync(this.root);
    await rm(trash, { recursive: true, force: true });
  }

  async readPointers(): Promise<Pointers> {
    try {
      const p = JSON.parse(await readFile(join(this.root, POINTERS), "utf8")) as Record<string, unknown>;
      const out: { latest?: string; best?: string } = {};
      for (const key of ["latest", "best"] as const) {
        const v = p[key];
        if (typeof v === "string") out[key] = checkName(v); // a pointer never leads outside the root
      }
      return out;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
      if (e instanceof CheckpointFormatError) throw e;
      return {}; // an unreadable pointer file: the loaders fall back to scanning the checkpoints
    }
  }

  async writePointers(pointers: Pointers): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-pointers-${process.pid}-${randomBytes(4).toString("hex")}`);
    await writeSynced(tmp, new TextEncoder().encode(JSON.stringify(pointers)));
    await rename(tmp, join(this.root, POINTERS));
    await sync(this.root);
  }

  /** Removes what killed writers left: `.tmp-*` entries. */
  private async removeTemporaries(): Promise<void> {
    for (const d of await readdir(this.root)) if (d.startsWith(".tmp-")) await rm(join(this.root, d), { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
}
