import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { lockDataDir } from './data-dir-lock.js';
import type { Database, Queryable, QueryResult, Session } from './types.js';

export interface PGliteOptions {
  /** A folder to keep the data in; undefined keeps it in memory (tests). */
  dataDir: string | undefined;
}

interface PGliteResults {
  rows: unknown[];
  affectedRows?: number;
}

function result<R>(res: PGliteResults): QueryResult<R> {
  return { rows: res.rows as R[], rowCount: res.affectedRows || res.rows.length };
}

export async function createPGliteDatabase(opts: PGliteOptions): Promise<Database> {
  let release = () => {};
  if (opts.dataDir) {
    mkdirSync(opts.dataDir, { recursive: true });
    release = lockDataDir(opts.dataDir);
  }
  let db: PGlite;
  try {
    db = await PGlite.create(opts.dataDir);
  } catch (err) {
    release();
    throw err;
  }

  const query = async <R>(text: string, params?: readonly unknown[]) =>
    result<R>(await db.query(text, params as unknown[]));

  return {
    kind: 'pglite',
    query,
    transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      // PGlite is one connection; its transaction() holds it exclusively until fn settles.
      return db.transaction((tx) =>
        fn({
          query: async <R>(text: string, params?: readonly unknown[]) =>
            result<R>(await tx.query(text, params as unknown[])),
        }),
      );
    },
    async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
      // The only connection is the session. Callers use this before serving traffic.
      return fn({
        query,
        exec: async (script: string) => {
          await db.exec(script);
        },
      });
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    close: async () => {
      try {
        await db.close();
      } finally {
        release();
      }
    },
  };
}
