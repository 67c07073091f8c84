// Live changes for one process: the hub its streams wait on, how a committed write wakes them
// (here at once; on other instances through PostgreSQL's LISTEN/NOTIFY when the database is
// PostgreSQL), and the open streams, which a shutdown ends so their clients reconnect elsewhere.
import type { Logger } from 'pino';
import type { ChangesConfig } from '../config.js';
import type { Database } from '../db/types.js';
import { type ChangeHub, createChangeHub } from './hub.js';
import { createPgWakeups, type PgWakeups } from './pg-wakeups.js';

export interface LiveChanges {
  hub: ChangeHub;
  /** A committed write changed `userId`'s tasks. */
  published(userId: string): void;
  /** Streams register here so a shutdown can end them. */
  streams: Set<{ end(): void }>;
  /** The cross-instance wake-ups, when there are any (PostgreSQL). */
  wakeups: PgWakeups | undefined;
  /** Ends every open stream (they reconnect, to another instance if this one is going); streams asked for from now on end at once. */
  endStreams(): void;
  /** Whether endStreams was called: this instance is going. */
  readonly closing: boolean;
  close(): Promise<void>;
}

export function createLiveChanges(db: Database, config: Pick<ChangesConfig, 'listenUrl'>, logger?: Logger): LiveChanges {
  const hub = createChangeHub();
  const wakeups =
    db.kind === 'postgres' && config.listenUrl ? createPgWakeups({ db, listenUrl: config.listenUrl, hub, logger }) : undefined;
  const streams = new Set<{ end(): void }>();
  let closing = false;
  return {
    hub,
    published: wakeups ? (userId) => wakeups.published(userId) : (userId) => hub.wake(userId),
    streams,
    wakeups,
    endStreams() {
      closing = true;
      for (const s of [...streams]) s.end();
    },
    get closing() {
      return closing;
    },
    async close() {
      closing = true;
      for (const s of [...streams]) s.end();
      await wakeups?.close();
    },
  };
}
