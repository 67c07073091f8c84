// Idempotent creates: the first request with an Idempotency-Key claims the key and stores its
// response in the same transaction as the task it creates; a retry with the same key reads that
// response back. The claim is a primary-key insert, so a concurrent retry waits for the first
// to commit and then replays it: one task, however many retries race.
import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../db/types.js';

export interface StoredResponse {
  status: number;
  etag: string;
  location: string;
  body: unknown;
}

export type IdempotentOutcome =
  | { kind: 'created'; response: StoredResponse }
  | { kind: 'replayed'; response: StoredResponse }
  | { kind: 'conflict' };

/** A digest of the request body that ignores key order and white space. */
export function requestHash(body: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
    }
    return v;
  };
  return createHash('sha256').update(JSON.stringify(canonical(body ?? null))).digest('base64url');
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
    // Keys are kept 24 hours. Expired keys of this user go first, so an old key can be used afresh.
    await tx.query("DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at < now() - interval '24 hours'", [userId]);
    const claim = await tx.query(
      `INSERT INTO idempotency_keys (user_id, key, request_hash, status, etag, location, body)
       VALUES ($1, $2, $3, 0, '', '', 'null') ON CONFLICT DO NOTHING RETURNING 1`,
      [userId, key, hash],
    );
    if (claim.rows.length === 0) {
      const { rows } = await tx.query<StoredResponse & { request_hash: string }>(
        'SELECT request_hash, status, etag, location, body FROM idempotency_keys WHERE user_id = $1 AND key = $2',
        [userId, key],
      );
      const stored = rows[0]!;
      if (stored.request_hash !== hash) return { kind: 'conflict' };
      return { kind: 'replayed', response: { status: stored.status, etag: stored.etag, location: stored.location, body: stored.body } };
    }
    const response = await create(tx);
    await tx.query(
      'UPDATE idempotency_keys SET status = $3, etag = $4, location = $5, body = $6::jsonb WHERE user_id = $1 AND key = $2',
      [userId, key, response.status, response.etag, response.location, JSON.stringify(response.body)],
    );
    return { kind: 'created', response };
  });
}
