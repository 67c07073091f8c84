// Wake-ups between instances through PostgreSQL's LISTEN/NOTIFY. Writes say which users changed
// (`published`), batched: one NOTIFY every few milliseconds at most, after the writes committed,
// in a statement of its own through the pool. A NOTIFY inside each write's transaction would
// make every writing transaction's commit wait for the others' (PostgreSQL serialises the commits
// of notifying transactions to keep the queue in commit order), which is what a per-user write
// rate cannot afford; a wake-up lost in a crash between commit and NOTIFY is caught by the
// streams' safety poll. Listening needs a session of its own (a transaction pooler such as Neon's
// cannot LISTEN): DATABASE_DIRECT_URL, or DATABASE_URL when it is a direct connection. It is held
// only while this instance has streams open, so an idle database can scale to zero.
import pg from 'pg';
import type { Logger } from 'pino';
import { ChannelBoundClient } from '../db/channel-binding.js';
import { connectOptions, parsePostgresUrl, wantsFallback } from '../db/connection-url.js';
import type { Queryable } from '../db/types.js';
import type { ChangeHub } from './hub.js';

export const CHANNEL = 'todo_task_changes';
/** A NOTIFY payload is at most 8000 bytes; user ids are at most 255 characters. */
const PAYLOAD_BYTES = 7000;

export interface PgWakeupsOptions {
  /** Where NOTIFY is sent: the app's database (through its pool). */
  db: Queryable;
  /** A session connection for LISTEN. */
  listenUrl: string;
  hub: ChangeHub;
  logger?: Logger | undefined;
  /** How long writes are gathered into one NOTIFY. */
  batchMs?: number;
  /** How long the listener stays connected after the last stream closed. */
  idleMs?: number;
}

export interface PgWakeups {
  /** A committed write changed `userId`'s tasks: wake streams here now, and elsewhere soon. */
  published(userId: string): void;
  /** Whether the listener is connected (for tests and metrics). */
  readonly listening: boolean;
  /** The listener's connection, for tests that kill it (pg_terminate_backend). */
  listenerPid(): Promise<number | undefined>;
  close(): Promise<void>;
}

function listenerClient(url: string, logger: Logger | undefined, useFallback: boolean): pg.Client {
  const opts = connectOptions(parsePostgresUrl(url));
  const ssl = useFallback && opts.fallback !== undefined ? opts.fallback : opts.ssl;
  const config = { connectionString: opts.connectionString, ssl, keepAlive: true, enableChannelBinding: opts.channelBinding !== 'disable' };
  const client = opts.channelBinding === 'require' ? (new ChannelBoundClient(config) as unknown as pg.Client) : new pg.Client(config);
  client.on('error', (err) => logger?.warn({ err: { message: err.message } }, 'change listener connection error'));
  return client;
}

export function createPgWakeups({ db, listenUrl, hub, logger, batchMs = 10, idleMs = 30_000 }: PgWakeupsOptions): PgWakeups {
  const pending = new Set<string>();
  let flushTimer: NodeJS.Timeout | undefined;
  let client: pg.Client | undefined;
  let connecting: Promise<void> | undefined;
  let idleTimer: NodeJS.Timeout | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let backoffMs = 250;
  let closed = false;

  async function flush(): Promise<void> {
    flushTimer = undefined;
    const users = [...pending];
    pending.clear();
    // JSON arrays of user ids, each under the payload limit.
    const batches: string[][] = [[]];
    let size = 2;
    for (const u of users) {
      const more = JSON.stringify(u).length + 1;
      if (size + more > PAYLOAD_BYTES) {
        batches.push([]);
        size = 2;
      }
      batches.at(-1)!.push(u);
      size += more;
    }
    for (const batch of batches.filter((b) => b.length)) {
      try {
        await db.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify(batch)]);
      } catch (err) {
        logger?.warn(
          { err: { message: (err as Error).message } },
          'change notification not sent; other instances catch up on their next poll',
        );
      }
    }
  }

  function scheduleRetry(): void {
    if (closed || hub.count() === 0 || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void listen();
    }, backoffMs);
    retryTimer.unref();
    backoffMs = Math.min(backoffMs * 2, 10_000);
  }

  async function connectOnce(useFallback: boolean): Promise<pg.Client> {
    const c = listenerClient(listenUrl, logger, useFallback);
    try {
      await c.connect();
      return c;
    } catch (err) {
      await c.end().catch(() => {});
      if (!useFallback && wantsFallback(connectOptions(parsePostgresUrl(listenUrl)), err)) return connectOnce(true);
      throw err;
    }
  }

  function listen(): Promise<void> {
    if (client || connecting || closed) return connecting ?? Promise.resolve();
    connecting = (async () => {
      try {
        const c = await connectOnce(false);
        c.on('notification', (msg) => {
          if (msg.channel !== CHANNEL || !msg.payload) return;
          try {
            for (const userId of JSON.parse(msg.payload) as unknown[]) if (typeof userId === 'string') hub.wake(userId);
          } catch {
            // Not ours: ignore.
          }
        });
        // An error or an end, whichever comes first, retires this connection for a new one.
        const lost = () => {
          if (client !== c) return;
          client = undefined;
          void c.end().catch(() => {});
          if (!closed && hub.count() > 0) {
            logger?.warn('change listener disconnected; reconnecting');
            scheduleRetry();
          }
        };
        c.on('error', lost);
        c.on('end', lost);
        await c.query(`LISTEN ${CHANNEL}`);
        client = c;
        backoffMs = 250;
        // Anything committed while no one listened is read now.
        hub.wakeAll();
        if (hub.count() === 0) scheduleIdleEnd();
      } catch (err) {
        logger?.warn({ err: { message: (err as Error).message } }, 'change listener cannot connect; retrying');
        scheduleRetry();
      } finally {
        connecting = undefined;
      }
    })();
    return connecting;
  }

  function scheduleIdleEnd(): void {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => {
      if (hub.count() > 0 || !client) return;
      const c = client;
      client = undefined;
      void c.end().catch(() => {});
    }, idleMs);
    idleTimer.unref();
  }

  hub.onActive((active) => {
    if (active) {
      clearTimeout(idleTimer);
      void listen();
    } else scheduleIdleEnd();
  });

  return {
    published(userId) {
      hub.wake(userId);
      pending.add(userId);
      flushTimer ??= setTimeout(() => void flush(), batchMs);
    },
    get listening() {
      return client !== undefined;
    },
    async listenerPid() {
      if (!client) return undefined;
      try {
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        return rows[0]?.pid;
      } catch {
        return undefined;
      }
    },
    async close() {
      closed = true;
      clearTimeout(idleTimer);
      clearTimeout(retryTimer);
      if (flushTimer) {
        clearTimeout(flushTimer);
        await flush();
      }
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}
