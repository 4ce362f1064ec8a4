// Optuna's Redis journal for fitloop's tuner (`tune` in @fitloop/recipes): one study shared by
// fitloop and Optuna workers on many machines, with leases that re-queue the trials of dead workers.
export { RedisJournal, type RedisJournalOptions } from "./redis-journal.js";
export { redactUrl, isRedisUrl } from "./url.js";
