// Tombstones older than CHANGES_RETENTION_SECONDS, and expired event tickets, deleted in the
// background, as idempotency keys are (src/tasks/idempotency-purge.ts): a cursor from before the
// newest purged tombstone of its user then answers 410 cursor_expired.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Database } from '../db/types.js';
import { createTaskService } from '../tasks/service.js';

/** Purges now and then (a quarter of the retention, between 1 s and 15 min); the returned function stops it. */
export function scheduleChangesPurge(db: Database, config: Pick<Config, 'changes' | 'tasksPerUser'>, logger: Logger): () => void {
  const service = createTaskService(db, { tasksPerUser: config.tasksPerUser, changesRetentionSeconds: config.changes.retentionSeconds });
  const everyMs = Math.min(15 * 60_000, Math.max(1000, (config.changes.retentionSeconds * 1000) / 4));
  const run = () =>
    service.purgeChanges().then(
      (n) => n > 0 && logger.info({ deleted: n }, 'old tombstones purged'),
      (err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'tombstone purge failed; next try later'),
    );
  const first = setTimeout(run, 1000);
  const timer = setInterval(run, everyMs);
  first.unref();
  timer.unref();
  return () => {
    clearTimeout(first);
    clearInterval(timer);
  };
}
