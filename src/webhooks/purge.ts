// Delivered and given-up webhook messages (and their attempts, by cascade) older than
// WEBHOOK_RETENTION_SECONDS, deleted in the background like the change feed's old events
// (src/changes/purge.ts). Pending messages are never purged: they are still owed.
import type { Logger } from 'pino';
import type { WebhooksConfig } from '../config.js';
import type { Database } from '../db/types.js';
import { every } from '../system/every.js';
import { purgeMessages } from './queries.js';

/** Purges every 15 minutes (or a quarter of the retention, if shorter); the returned function stops it. */
export function scheduleWebhookPurge(db: Database, config: Pick<WebhooksConfig, 'retentionSeconds'>, logger: Logger): () => void {
  const everyMs = Math.min(15 * 60_000, Math.max(1000, (config.retentionSeconds * 1000) / 4));
  return every(
    everyMs,
    {
      run: async () => {
        let deleted = 0;
        for (;;) {
          const n = await purgeMessages(db, config.retentionSeconds, 1000);
          deleted += n;
          if (n < 1000) return deleted > 0 ? { deleted } : undefined;
        }
      },
      done: 'old webhook messages purged',
      failed: 'webhook message purge failed; next try later',
    },
    logger,
  );
}
