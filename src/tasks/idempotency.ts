// Idempotent creates: the first request with an Idempotency-Key claims the key and stores its
// response in the same transaction as the task it creates; a retry with the same key reads that
// response back. The claim is a primary-key insert, so a concurrent retry waits for the first
// to commit and then replays it: one task, however many retries race.
import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../db/types.js';
import { claimKey, deleteExpiredKeysOf, storedResponse, storeResponse, type StoredResponse } from './queries.js';

export type { StoredResponse };

export type IdempotentOutcome =
  | { kind: 'created'; response: StoredResponse }
  | { kind: 'replayed'; response: StoredResponse }
  | { kind: 'conflict' };

/** A digest of the request body that ignores key order and white space. */
export function requestHash(body: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    }
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(body ?? null)))
    .digest('base64url');
}

/**
 * Runs `create` once per (user, key): the first time inside the transaction that claims the key,
 * every later time (within the TTL, with the same body) not at all, returning what it returned.
 */
export async function createOnce(
  db: Database,
  userId: string,
  key: string,
  hash: string,
  create: (tx: Queryable) => Promise<StoredResponse>,
): Promise<IdempotentOutcome> {
  return db.transaction(async (tx) => {
    // Expired keys of this user go first, so an old key can be used afresh.
    await deleteExpiredKeysOf(tx, userId);
    if (!(await claimKey(tx, userId, key, hash))) {
      const stored = (await storedResponse(tx, userId, key))!;
      if (stored.request_hash !== hash) return { kind: 'conflict' };
      return { kind: 'replayed', response: { status: stored.status, etag: stored.etag, location: stored.location, body: stored.body } };
    }
    const response = await create(tx);
    await storeResponse(tx, userId, key, response);
    return { kind: 'created', response };
  });
}
