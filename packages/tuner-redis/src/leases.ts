/**
 * Leases for workers (Optuna's journal has none: a worker that dies leaves its trial RUNNING
 * forever). Each worker holds one key, `{prefix}:fitloop:worker:{id}`, with a TTL renewed every
 * third of it from the worker's event loop, which the training loop yields to between batches: a
 * dead or hung worker stops renewing, its key expires, and the next worker to look fails its trial
 * and queues it again. The lease belongs to the worker, which runs one trial at a time, and exists
 * before the worker appends its first RUNNING record, so nobody can see a running trial whose
 * lease has not been taken yet.
 */
import type { Logger } from "@fitloop/core";
import type { WorkerHeartbeat, WorkerInfo } from "@fitloop/recipes";
import type { JournalClient } from "./redis-journal.js";

export class WorkerLeases {
  constructor(
    private readonly redis: JournalClient,
    private readonly keyPrefix: string,
    private readonly leaseMs: number,
    private readonly logger: Logger,
  ) {}

  private key(workerId: string): string {
    return `${this.keyPrefix}${workerId}`;
  }

  /** `undefined` for workers without a lease (Python's, or fitloop's on a file journal): never failed by us. */
  async isAlive(w: WorkerInfo): Promise<boolean | undefined> {
    if (w.lease !== true) return undefined;
    return (await this.redis.exists(this.key(w.id))) === 1;
  }

  /**
   * Takes the worker's lease and renews it until `stop()`. When a renewal finds the lease gone (the
   * worker was cut off longer than the lease, and others may have failed its trial), `onLost` is
   * told, so the trial stops, and a new lease is taken for the trials that follow.
   */
  async start(worker: WorkerInfo, onLost: (why: string) => void): Promise<WorkerHeartbeat> {
    const key = this.key(worker.id);
    const token = globalThis.crypto.randomUUID();
    const take = () => this.redis.set(key, token, "PX", this.leaseMs);
    await take();
    let pending = false;
    let stopped = false;
    const timer = setInterval(() => {
      if (pending || stopped) return; // a renewal waiting for a reconnection: do not pile them up
      pending = true;
      void this.redis
        .fitloopRenew(key, token, String(this.leaseMs))
        .then(async (renewed) => {
          if (renewed === 1 || stopped) return;
          const why = `the lease of worker ${worker.id} expired (no renewal for ${this.leaseMs} ms): its trial may have been failed and queued again by another worker`;
          this.logger.warn(`fitloop tuner: ${why}`);
          onLost(why);
          await take();
        })
        .catch(() => undefined) // no connection: ioredis retries and the next tick tries again
        .finally(() => (pending = false));
    }, Math.max(50, Math.round(this.leaseMs / 3)));
    return {
      stop: async () => {
        stopped = true;
        clearInterval(timer);
        await this.redis.fitloopRelease(key, token).catch(() => undefined);
      },
    };
  }
}
