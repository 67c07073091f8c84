// The feed's events (tombstones, fired reminders) older than CHANGES_RETENTION_SECONDS, and expired
// event tickets, deleted in the background, as idempotency keys are (src/tasks/idempotency-purge.ts):
// a cursor from before the newest purged event of its user then answers 410 cursor_expired.
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { Database } from '../db/types.js';
import { every } from '../system/every.js';
import { createTaskService } from '../tasks/service.js';

/** Purges now and then (a quarter of the retention, between 1 s and 15 min); the returned function stops it. */
export function scheduleChangesPurge(db: Database, config: Pick<Config, 'changes' | 'tasksPerUser'>, logger: Logger): () => void {
  const service = createTaskService(db, { tasksPerUser: config.tasksPerUser, changesRetentionSeconds: config.changes.retentionSeconds });
  const everyMs = Math.min(15 * 60_000, Math.max(1000, (config.changes.retentionSeconds * 1000) / 4));
  return every(
    everyMs,
    {
      run: async () => {
        const deleted = await service.purgeChanges();
        return deleted > 0 ? { deleted } : undefined;
      },
      done: 'old tombstones and fired reminders purged',
      failed: 'change feed purge failed; next try later',
    },
    logger,
  );
}
