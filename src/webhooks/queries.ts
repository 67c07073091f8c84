// The SQL of webhooks, every statement scoped by the user or run by the dispatcher. The messages
// themselves are written by triggers (migrations/007.do.webhooks.sql), in the transaction of the
// change they report.
import type { Database, Queryable } from '../db/types.js';
import { utc } from '../db/utc-text.js';

export interface EndpointRow {
  id: string;
  url: string;
  description: string;
  events: string[];
  enabled: boolean;
  disabled_reason: 'user' | 'gone' | 'failing' | null;
  disabled_at: string | null;
  failing_since: string | null;
  previous_secret_until: string | null;
  created_at: string;
  updated_at: string;
}

const ENDPOINT_COLUMNS = `id::text, url, description, events, enabled, disabled_reason, ${utc('disabled_at')} AS disabled_at,
  ${utc('failing_since')} AS failing_since,
  CASE WHEN previous_secret_until > now() THEN ${utc('previous_secret_until')} END AS previous_secret_until,
  ${utc('created_at')} AS created_at, ${utc('updated_at')} AS updated_at`;

export async function listEndpoints(db: Queryable, userId: string): Promise<EndpointRow[]> {
  const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE user_id = $1 ORDER BY e.id`, [
    userId,
  ]);
  return rows;
}

export async function getEndpoint(db: Queryable, userId: string, id: string): Promise<EndpointRow | undefined> {
  const { rows } = await db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE user_id = $1 AND id = $2`, [
    userId,
    id,
  ]);
  return rows[0];
}

/** Creates an endpoint unless the user has `max` already (counted under a per-user lock); undefined then. */
export async function createEndpoint(
  db: Database,
  userId: string,
  e: { url: string; description: string; events: string[]; secret: string },
  max: number,
): Promise<EndpointRow | undefined> {
  const { rows } = await db.queryAfter<EndpointRow>(
    { text: "SELECT pg_advisory_xact_lock(hashtextextended('webhook_endpoints:' || $1, 0))", values: [userId] },
    `INSERT INTO webhook_endpoints (user_id, url, description, events, secret)
     SELECT $1, $2, $3, $4, $5 WHERE (SELECT count(*) FROM webhook_endpoints WHERE user_id = $1) < $6
     RETURNING ${ENDPOINT_COLUMNS}`,
    [userId, e.url, e.description, e.events, e.secret, max],
  );
  return rows[0];
}

/**
 * Changes what is given (`updated_at` only when something did change). `enabled` true clears the
 * reason and the failure streak, false says the user disabled it. Disabled, its pending messages
 * are parked (due at 'infinity', so no look scans them); turned back on, or pointed at another
 * URL, they are due at once instead of at their next retry.
 */
export async function updateEndpoint(
  db: Queryable,
  userId: string,
  id: string,
  e: { url?: string | undefined; description?: string | undefined; events?: string[] | undefined; enabled?: boolean | undefined },
): Promise<EndpointRow | undefined> {
  const { rows } = await db.query<EndpointRow>(
    `WITH changed AS (
       UPDATE webhook_endpoints w SET
         url = coalesce($3, w.url), description = coalesce($4, w.description), events = coalesce($5, w.events),
         enabled = coalesce($6, w.enabled),
         disabled_reason = CASE WHEN $6 IS NULL THEN w.disabled_reason WHEN $6 THEN NULL ELSE coalesce(w.disabled_reason, 'user') END,
         disabled_at = CASE WHEN $6 IS NULL THEN w.disabled_at WHEN $6 THEN NULL ELSE coalesce(w.disabled_at, now()) END,
         failing_since = CASE WHEN ($6 AND NOT w.enabled) OR coalesce($3, w.url) <> w.url THEN NULL ELSE w.failing_since END,
         updated_at = CASE WHEN (coalesce($3, w.url), coalesce($4, w.description), coalesce($5, w.events), coalesce($6, w.enabled))
                                IS DISTINCT FROM (w.url, w.description, w.events, w.enabled) THEN now() ELSE w.updated_at END
         FROM webhook_endpoints o
        WHERE o.id = w.id AND w.user_id = $1 AND w.id = $2
        RETURNING w.*, o.enabled AS was_enabled, o.url AS was_url),
     woken AS (
       UPDATE webhook_messages m SET next_attempt_at = CASE WHEN c.enabled THEN now() ELSE 'infinity' END
         FROM changed c
        WHERE m.endpoint_id = c.id AND m.state = 'pending' AND m.next_attempt_at > now()
          AND (m.leased_until IS NULL OR m.leased_until <= now())
          AND ((c.enabled AND (NOT c.was_enabled OR c.url <> c.was_url)) OR (NOT c.enabled AND c.was_enabled)))
     SELECT ${ENDPOINT_COLUMNS} FROM changed`,
    [userId, id, e.url ?? null, e.description ?? null, e.events ?? null, e.enabled ?? null],
  );
  return rows[0];
}

export async function deleteEndpoint(db: Queryable, userId: string, id: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM webhook_endpoints WHERE user_id = $1 AND id = $2', [userId, id]);
  return rowCount > 0;
}

/** A new secret; the current one keeps signing until `overlapSeconds` from now. */
export async function rotateSecret(
  db: Queryable,
  userId: string,
  id: string,
  secret: string,
  overlapSeconds: number,
): Promise<{ previous_secret_until: string } | undefined> {
  const { rows } = await db.query<{ previous_secret_until: string }>(
    `UPDATE webhook_endpoints SET previous_secret = secret, secret = $3,
       previous_secret_until = now() + make_interval(secs => $4), updated_at = now()
     WHERE user_id = $1 AND id = $2 RETURNING ${utc('previous_secret_until')} AS previous_secret_until`,
    [userId, id, secret, overlapSeconds],
  );
  return rows[0];
}

export interface AttemptRow {
  id: string;
  message_id: string;
  event_type: string;
  attempted_at: string;
  status: number | null;
  error: string | null;
  duration_ms: number;
  message_state: 'pending' | 'delivered' | 'failed';
  next_attempt_at: string | null;
}

/** The endpoint's latest attempts, newest first; undefined when the user has no such endpoint. */
export async function listAttempts(db: Queryable, userId: string, id: string, limit: number): Promise<AttemptRow[] | undefined> {
  const { rows } = await db.query<AttemptRow & { endpoint: boolean }>(
    `SELECT true AS endpoint, a.id::text, m.message_id, m.event_type, ${utc('a.attempted_at')} AS attempted_at, a.status, a.error,
            a.duration_ms, m.state AS message_state, CASE WHEN m.state = 'pending' AND m.next_attempt_at < 'infinity' THEN ${utc('m.next_attempt_at')} END AS next_attempt_at
       FROM webhook_endpoints e
       LEFT JOIN LATERAL (SELECT * FROM webhook_attempts a WHERE a.endpoint_id = e.id ORDER BY a.id DESC LIMIT $3) a ON true
       LEFT JOIN webhook_messages m ON m.id = a.message_pk
      WHERE e.user_id = $1 AND e.id = $2
      ORDER BY a.id DESC`,
    [userId, id, limit],
  );
  if (rows.length === 0) return undefined;
  return rows.filter((r) => r.id !== null).map(({ endpoint: _, ...r }) => r);
}

/**
 * Queues the message for delivery again, now, with a fresh schedule; undefined when the user's
 * endpoint has no such message. One being delivered right now is left to that attempt (its lease
 * stands, so it is never sent twice at once, and the answer gives the lease's end), and sent
 * again at once after it unless that attempt delivers it.
 */
export async function redeliver(
  db: Queryable,
  userId: string,
  id: string,
  messageId: string,
): Promise<{ message_id: string; state: 'pending'; next_attempt_at: string } | undefined> {
  const { rows } = await db.query<{ message_id: string; state: 'pending'; next_attempt_at: string }>(
    `UPDATE webhook_messages m SET
         state = 'pending', finished_at = NULL,
         redeliver = coalesce(m.leased_until > now(), false),
         attempts = CASE WHEN m.leased_until > now() THEN m.attempts ELSE 0 END,
         next_attempt_at = CASE WHEN m.leased_until > now() THEN m.next_attempt_at WHEN e.enabled THEN now() ELSE 'infinity' END
       FROM webhook_endpoints e
      WHERE e.id = m.endpoint_id AND e.user_id = $1 AND m.endpoint_id = $2 AND m.message_id = $3
      RETURNING m.message_id, m.state, ${utc('m.next_attempt_at')} AS next_attempt_at`,
    [userId, id, messageId],
  );
  return rows[0];
}

export interface ClaimedMessage {
  id: string;
  endpoint_id: string;
  message_id: string;
  event_type: string;
  data: unknown;
  /** When the event happened, as the payload's timestamp. */
  created_at: string;
  attempts: number;
  url: string;
  secret: string;
  previous_secret: string | null;
}

// Due messages of enabled endpoints, each taken by one instance (SKIP LOCKED) and leased: the
// lease is also the next attempt's time, so a message whose instance died is due again when its
// lease runs out. Endpoints are picked first, the one whose oldest due message has waited longest
// first, each with the room it has under `perEndpoint` leased messages and its user's under
// `perUser` (counted across instances; two claims at the same instant may each take their share),
// so one user's slow endpoints cannot hold every attempt an instance makes. The due messages are
// read from an index only (a disabled endpoint's are parked at 'infinity', out of its range), and
// each endpoint's are then taken in order from its own range.
const CLAIM_SQL = `WITH leased AS MATERIALIZED (
  SELECT m.endpoint_id, e.user_id FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id
   WHERE m.leased_until > now()),
busy_endpoint AS (SELECT endpoint_id, count(*)::int AS n FROM leased GROUP BY endpoint_id),
busy_user AS (SELECT user_id, count(*)::int AS n FROM leased GROUP BY user_id),
endpoints AS (
  SELECT e.id, e.user_id, least($2 - coalesce(be.n, 0), $4 - coalesce(bu.n, 0)) AS room
    FROM (SELECT endpoint_id, min(next_attempt_at) AS oldest FROM webhook_messages
           WHERE state = 'pending' AND next_attempt_at <= now() GROUP BY endpoint_id) d
    JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
    LEFT JOIN busy_endpoint be ON be.endpoint_id = e.id
    LEFT JOIN busy_user bu ON bu.user_id = e.user_id
   WHERE coalesce(be.n, 0) < $2 AND coalesce(bu.n, 0) < $4
   ORDER BY d.oldest
   LIMIT $1),
picked AS (
  SELECT c.id, c.next_attempt_at, endpoints.user_id FROM endpoints CROSS JOIN LATERAL (
    SELECT m.id, m.next_attempt_at FROM webhook_messages m
     WHERE m.endpoint_id = endpoints.id AND m.state = 'pending' AND m.next_attempt_at <= now()
     ORDER BY m.next_attempt_at, m.id LIMIT endpoints.room FOR UPDATE SKIP LOCKED) c),
due AS (
  SELECT r.id FROM (
    SELECT p.id, p.next_attempt_at,
           row_number() OVER (PARTITION BY p.user_id ORDER BY p.next_attempt_at, p.id) + coalesce(bu.n, 0) AS place
      FROM picked p LEFT JOIN busy_user bu ON bu.user_id = p.user_id) r
   WHERE r.place <= $4
   ORDER BY r.next_attempt_at, r.id
   LIMIT $1)
UPDATE webhook_messages m
   SET leased_until = now() + make_interval(secs => $3), next_attempt_at = now() + make_interval(secs => $3), attempts = m.attempts + 1
  FROM due, webhook_endpoints e
 WHERE m.id = due.id AND e.id = m.endpoint_id
RETURNING m.id::text, m.endpoint_id::text, m.message_id, m.event_type, m.data, ${utc('m.created_at')} AS created_at, m.attempts, e.url, e.secret,
  CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret`;

export async function claimMessages(
  db: Queryable,
  limit: number,
  { perEndpoint, perUser, leaseSeconds }: { perEndpoint: number; perUser: number; leaseSeconds: number },
): Promise<ClaimedMessage[]> {
  const { rows } = await db.query<ClaimedMessage>(CLAIM_SQL, [limit, perEndpoint, leaseSeconds, perUser]);
  return rows;
}

/**
 * Records an attempt and what follows: the message delivered, given up, or due again at
 * `retryInSeconds`; the endpoint's failure streak; the endpoint disabled when it answered 410
 * (`gone`), or when a message is given up after the endpoint failed every attempt since that
 * message's first one (`failing`: no delivery at all for the whole retry schedule). Nothing when
 * the message was redelivered or its endpoint deleted meanwhile (the lease is no longer this
 * attempt's).
 */
export async function recordAttempt(
  db: Queryable,
  a: {
    messagePk: string;
    endpointId: string;
    attempts: number;
    status: number | undefined;
    error: string | undefined;
    durationMs: number;
    state: 'pending' | 'delivered' | 'failed';
    retryInSeconds: number | undefined;
    gone: boolean;
  },
): Promise<{ disabled: string | null } | undefined> {
  const { rows } = await db.query<{ disabled: string | null }>(
    `WITH m AS (
       UPDATE webhook_messages SET
         state = CASE WHEN redeliver AND $7 <> 'delivered' THEN 'pending' ELSE $7 END,
         attempts = CASE WHEN redeliver AND $7 <> 'delivered' THEN 0 ELSE attempts END,
         next_attempt_at = CASE WHEN redeliver AND $7 <> 'delivered' THEN now()
                                WHEN $8::float8 IS NULL THEN next_attempt_at ELSE now() + make_interval(secs => $8::float8) END,
         finished_at = CASE WHEN $7 = 'pending' OR (redeliver AND $7 <> 'delivered') THEN NULL ELSE now() END,
         leased_until = NULL, redeliver = false
        WHERE id = $1 AND attempts = $3 AND leased_until IS NOT NULL
        RETURNING id, state),
     a AS (
       INSERT INTO webhook_attempts (endpoint_id, message_pk, status, error, duration_ms)
       SELECT $2, id, $4, $5, $6 FROM m),
     verdict AS (
       SELECT CASE
         WHEN NOT e.enabled THEN NULL
         WHEN $9 THEN 'gone'
         WHEN m.state = 'failed' AND e.failing_since <= coalesce((SELECT min(attempted_at) FROM webhook_attempts WHERE message_pk = $1), now())
           THEN 'failing'
       END AS reason
       FROM webhook_endpoints e, m WHERE e.id = $2),
     parked AS (
       UPDATE webhook_messages p SET next_attempt_at = 'infinity'
         FROM verdict v
        WHERE v.reason IS NOT NULL AND p.endpoint_id = $2 AND p.state = 'pending' AND p.id <> $1
          AND (p.leased_until IS NULL OR p.leased_until <= now()))
     UPDATE webhook_endpoints e SET
       failing_since = CASE WHEN $7 = 'delivered' THEN NULL ELSE coalesce(e.failing_since, now()) END,
       enabled = e.enabled AND v.reason IS NULL,
       disabled_reason = coalesce(e.disabled_reason, v.reason),
       disabled_at = CASE WHEN v.reason IS NULL THEN e.disabled_at ELSE now() END,
       updated_at = CASE WHEN v.reason IS NULL THEN e.updated_at ELSE now() END
      FROM m, verdict v WHERE e.id = $2
      RETURNING v.reason AS disabled`,
    [a.messagePk, a.endpointId, a.attempts, a.status ?? null, a.error ?? null, a.durationMs, a.state, a.retryInSeconds ?? null, a.gone],
  );
  return rows[0];
}

/**
 * Seconds until the next message of an enabled endpoint falls due (0 if one is due; undefined when
 * none is pending), and until the first lease ends (undefined when none is held).
 */
export async function nextLook(db: Queryable): Promise<{ dueIn: number | undefined; leaseEndsIn: number | undefined }> {
  // Not greatest(0, …) in SQL: greatest ignores a NULL, so "none pending" would read as "one due now".
  const { rows } = await db.query<{ due: number | null; lease: number | null }>(
    `SELECT (SELECT extract(epoch FROM min(m.next_attempt_at) - now())::float8
               FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id AND e.enabled
              WHERE m.state = 'pending') AS due,
            (SELECT extract(epoch FROM min(leased_until) - now())::float8 FROM webhook_messages WHERE leased_until > now()) AS lease`,
  );
  const seconds = (s: number | null | undefined) => (s === null || s === undefined ? undefined : Math.max(0, s));
  return { dueIn: seconds(rows[0]?.due), leaseEndsIn: seconds(rows[0]?.lease) };
}

/** Forgets delivered and given-up messages (and their attempts) older than the retention; how many. */
export async function purgeMessages(db: Queryable, retentionSeconds: number, batch: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM webhook_messages WHERE id IN (
       SELECT id FROM webhook_messages WHERE state <> 'pending' AND finished_at < now() - make_interval(secs => $1) LIMIT $2)`,
    [retentionSeconds, batch],
  );
  return rowCount;
}
