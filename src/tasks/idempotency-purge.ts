// Expired idempotency keys of every user, deleted in the background: a key is promised for 24 hours,
// and a user who never makes another keyed create must not keep theirs forever. Small batches, so a
// purge never holds many row locks or runs into the statement timeout.
import type { Logger } from 'pino';
import type { Queryable } from '../db/types.js';
import { every } from '../system/every.js';
import { purgeExpiredKeys } from './queries.js';

const BATCH = 1000;

/** Deletes every expired key, batch by batch; returns how many. */
export async function purgeIdempotencyKeys(db: Queryable): Promise<number> {
  let total = 0;
  for (;;) {
    const deleted = await purgeExpiredKeys(db, BATCH);
    total += deleted;
    if (deleted < BATCH) return total;
  }
}

/** Purges now and then every `everyMs`; the returned function stops it. Never keeps the process alive. */
export function schedulePurge(db: Queryable, logger: Logger, everyMs = 15 * 60_000): () => void {
  return every(
    everyMs,
    {
      run: async () => {
        const deleted = await purgeIdempotencyKeys(db);
        return deleted > 0 ? { deleted } : undefined;
      },
      done: 'expired idempotency keys purged',
      failed: 'idempotency key purge failed; next try later',
    },
    logger,
  );
}
