/**
 * Whether the worker of a RUNNING trial is alive, for workers on this machine: the pid exists, is
 * not a zombie, and is the same process (Linux: start time from /proc, and the boot id, so neither
 * a reused pid nor a reboot passes for the worker). Workers on other hosts are "unknown".
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import type { WorkerInfo, WorkerLiveness } from "./journal.js";

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** State letter and start time (clock ticks after boot) of a process, from /proc/<pid>/stat; undefined off Linux. */
export function procStat(pid: number): { state: string; start: number } | undefined {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return undefined;
  // "pid (comm) S ppid ...": comm may hold spaces and parentheses, so split after the last ")"
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const start = Number(fields[19]); // field 22 of the file
  return fields[0] && Number.isFinite(start) ? { state: fields[0], start } : undefined;
}

/** Liveness of workers on this host (`os.hostname()`: containers sharing a journal need distinct hostnames). */
export function localLiveness(): WorkerLiveness {
  const host = hostname();
  const boot = read("/proc/sys/kernel/random/boot_id")?.trim();
  const start = procStat(process.pid)?.start;
  return {
    self: { host, pid: process.pid, ...(boot ? { boot } : {}), ...(start !== undefined ? { start } : {}) },
    isAlive(w: WorkerInfo): boolean | undefined {
      if (w.host !== host || w.pid === undefined) return undefined;
      if (w.boot !== undefined && boot !== undefined && w.boot !== boot) return false;
      try {
        process.kill(w.pid, 0);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "ESRCH") return false;
        if (code !== "EPERM") return undefined; // EPERM: alive, another user's
      }
      const s = procStat(w.pid);
      if (s && (s.state === "Z" || s.state === "X")) return false; // killed, not yet reaped by its parent
      if (s && w.start !== undefined && s.start !== w.start) return false; // the pid was reused
      return true;
    },
  };
}
