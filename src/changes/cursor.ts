// Change-feed cursors: where a reader of one user's changes stands. Opaque to clients; inside, the
// position of the last change read (a transaction id and a sequence number, see
// migrations/005), the floor below which tombstones are of no use to it (a full sync skips the
// deletes of tasks gone before it began), when the cursor was issued, and a digest of the user it
// belongs to, so one user's cursor is refused for another.
import { createHash } from 'node:crypto';

/** A point in the feed's order: (transaction id, sequence), both as decimal text (64-bit). */
export interface FeedPosition {
  xid: string;
  seq: string;
}

export interface FeedCursor {
  position: FeedPosition;
  /** Tombstones of transactions below this id are skipped. */
  floorXid: string;
  /** When the cursor was handed out (seconds since the epoch). */
  issuedAt: number;
}

export const START: FeedPosition = { xid: '0', seq: '0' };

interface Payload {
  v: 1;
  u: string;
  x: string;
  s: string;
  f: string;
  t: number;
}

const userDigest = (userId: string) => createHash('sha256').update(userId).digest('base64url').slice(0, 12);
const DECIMAL = /^(0|[1-9]\d{0,19})$/;
const MAX_XID = 2n ** 64n - 1n;
const MAX_SEQ = 2n ** 63n - 1n;

export class InvalidFeedCursorError extends Error {
  override name = 'InvalidFeedCursorError';
}

export function encodeFeedCursor(userId: string, cursor: FeedCursor): string {
  const payload: Payload = {
    v: 1,
    u: userDigest(userId),
    x: cursor.position.xid,
    s: cursor.position.seq,
    f: cursor.floorXid,
    t: cursor.issuedAt,
  };
  return Buffer.from(JSON.stringify(payload)).toString('base64url');
}

export function decodeFeedCursor(userId: string, text: string): FeedCursor {
  let p: Partial<Payload>;
  try {
    p = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Payload>;
  } catch {
    throw new InvalidFeedCursorError('is not a cursor this API issued');
  }
  if (
    !p ||
    typeof p !== 'object' ||
    p.v !== 1 ||
    typeof p.x !== 'string' ||
    typeof p.s !== 'string' ||
    typeof p.f !== 'string' ||
    !DECIMAL.test(p.x) ||
    !DECIMAL.test(p.s) ||
    !DECIMAL.test(p.f) ||
    !Number.isSafeInteger(p.t)
  ) {
    throw new InvalidFeedCursorError('is not a cursor this API issued');
  }
  // Within the types the database reads them as (xid8 and bigint).
  if (BigInt(p.x) > MAX_XID || BigInt(p.f) > MAX_XID || BigInt(p.s) > MAX_SEQ) {
    throw new InvalidFeedCursorError('is not a cursor this API issued');
  }
  if (p.u !== userDigest(userId)) throw new InvalidFeedCursorError("belongs to another user's feed");
  return { position: { xid: p.x, seq: p.s }, floorXid: p.f, issuedAt: p.t as number };
}

/** Whether `a` comes before `b` in the feed's order. */
export function isBefore(a: FeedPosition, b: FeedPosition): boolean {
  const ax = BigInt(a.xid);
  const bx = BigInt(b.xid);
  return ax < bx || (ax === bx && BigInt(a.seq) < BigInt(b.seq));
}
