import { randomBytes } from "node:crypto";
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointExistsError, CheckpointFormatError } from "../errors.js";
import { checkName, type CheckpointStore, type FileContent, type Pointers } from "../store.js";

const POINTERS = "pointers.json";
/** Temporaries this process is writing now (a concurrent write must not remove them as stale). */
const active = new Set<string>();

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
    if (await exists(final)) throw new CheckpointExistsError(name, this.description);
    const tmp = join(this.root, `.tmp-${name}-${process.pid}-${randomBytes(4).toString("hex")}`);
    active.add(tmp);
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
    } finally {
      active.delete(tmp);
    }
  }

  async read(name: string, file: string, maxBytes = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
    checkName(name);
    if (!/^[A-Za-z0-9_.\-]+$/.test(file) || file.startsWith(".")) throw new CheckpointFormatError(`no checkpoint file is named ${JSON.stringify(file)}`);
    const path = join(this.root, name, file);
    // regular files only (no symlinks to /dev/zero or elsewhere), and no larger than expected, before reading
    const info = await lstat(path);
    if (!info.isFile()) throw new CheckpointFormatError(`${this.description}: ${name}/${file} is not a regular file`);
    if (info.size > maxBytes) throw new CheckpointFormatError(`${this.description}: ${name}/${file} has ${info.size} bytes, more than the ${maxBytes} expected`);
    const dir = await lstat(join(this.root, name));
    if (!dir.isDirectory()) throw new CheckpointFormatError(`${this.description}: ${name} is not a directory`);
    return new Uint8Array(await readFile(path));
  }

  async list(): Promise<string[]> {
    let entries;
    try {
      entries = await readdir(this.root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    return entries.filter((d) => d.isDirectory() && !d.name.startsWith(".") && isName(d.name)).map((d) => d.name);
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
        // a pointer never leads outside the root: a name that is not a checkpoint name is ignored
        if (typeof v === "string" && isName(v)) out[key] = v;
      }
      return out;
    } catch {
      return {}; // missing or unreadable: the loaders scan the checkpoints instead
    }
  }

  async writePointers(pointers: Pointers): Promise<void> {
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `.tmp-pointers-${process.pid}-${randomBytes(4).toString("hex")}`); // written and renamed at once
    await writeSynced(tmp, new TextEncoder().encode(JSON.stringify(pointers)));
    await rename(tmp, join(this.root, POINTERS));
    await sync(this.root);
  }

  /** Removes what killed writers left: `.tmp-*` entries not being written by this process or another live one. */
  private async removeTemporaries(): Promise<void> {
    for (const d of await readdir(this.root)) {
      if (!d.startsWith(".tmp-")) continue;
      const path = join(this.root, d);
      if (active.has(path)) continue;
      const pid = Number(/-(\d+)-[0-9a-f]{8}$/.exec(d)?.[1]);
      if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue;
      await rm(path, { recursive: true, force: true });
    }
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

function isName(v: string): boolean {
  try {
    checkName(v);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
