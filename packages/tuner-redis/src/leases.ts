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
import { withTimeout, type JournalClient } from "./redis-journal.js";

export class WorkerLeases {
  constructor(
    private readonly redis: JournalClient,
    private readonly keyPrefix: string,
    private readonly leaseMs: number,
    private readonly logger: Logger,
    private readonly releaseWaitMs: number,
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
   * Takes the worker's lease and renews it until `stop()`. The worker gives its trial up (`onLost`)
   * when a renewal finds the lease gone, and also by itself when no renewal has reached Redis for
   * two thirds of the lease (cut off, or a connection that hangs): by then others may soon fail its
   * trial, and two runs of one trial must not write the same checkpoint directory. Then it takes a
   * new lease for the trials that follow. A live worker looks dead when its event loop is blocked
   * for longer than about two thirds of `leaseMs` (the training loop yields between batches, so a
   * single batch, or a data load, must stay well under that).
   */
  async start(worker: WorkerInfo, onLost: (why: string) => void): Promise<WorkerHeartbeat> {
    const key = this.key(worker.id);
    const token = globalThis.crypto.randomUUID();
    const take = () => this.redis.set(key, token, "PX", this.leaseMs);
    await take();
    let renewedAt = Date.now();
    let pending = false;
    let stopped = false;
    let lost = false;
    const giveUp = (why: string) => {
      if (lost) return;
      lost = true;
      this.logger.warn(`fitloop tuner: ${why}`);
      onLost(why);
    };
    const timer = setInterval(() => {
      if (stopped) return;
      const silent = Date.now() - renewedAt;
      if (silent > (2 * this.leaseMs) / 3) giveUp(`no lease renewal of worker ${worker.id} reached Redis for ${silent} ms (lease ${this.leaseMs} ms): its trial is given up before others fail it`);
      if (pending) return; // a renewal waiting for a reconnection: do not pile them up
      pending = true;
      void this.redis
        .fitloopRenew(key, token, String(this.leaseMs))
        .then(async (renewed) => {
          if (stopped) return;
          if (renewed !== 1) {
            giveUp(`the lease of worker ${worker.id} expired (no renewal for ${this.leaseMs} ms): its trial may have been failed and queued again by another worker`);
            await take();
          }
          renewedAt = Date.now();
          lost = false;
        })
        .catch(() => undefined) // no connection: ioredis retries and the next tick tries again
        .finally(() => (pending = false));
    }, Math.max(50, Math.round(this.leaseMs / 6)));
    return {
      stop: async () => {
        stopped = true;
        clearInterval(timer);
        // during an outage the release would wait forever: the lease expires by itself
        await withTimeout(this.redis.fitloopRelease(key, token), this.releaseWaitMs);
      },
    };
  }
}
