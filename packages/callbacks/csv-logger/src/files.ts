import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { constants, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The contents of `path`, or `undefined` when there is no such file. */
export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
}

/** Creates the parent directories and an empty `path` (emptying one that exists): Keras' overwrite at the start of training. */
export async function createEmpty(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const h = await open(path, "w");
  await h.close();
}

/**
 * Appends to a file that must exist: without O_CREAT, a file removed during the run is an error
 * (ENOENT) rather than a new file without its header.
 */
export async function appendExisting(path: string, text: string): Promise<void> {
  const h = await open(path, constants.O_WRONLY | constants.O_APPEND);
  try {
    await h.write(text);
  } finally {
    await h.close();
  }
}

/**
 * Replaces `path` with `text` atomically: written to a temporary file beside it, fsynced, renamed
 * over it. A kill at any moment leaves the old file or the new one, never a mix.
 */
export async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  try {
    const h = await open(tmp, "wx");
    try {
      await h.writeFile(text);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Whether `path` is a directory now (false when it does not exist). */
export async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** As `isDirectory`, synchronously, for option checks in a constructor. */
export function isDirectorySync(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
