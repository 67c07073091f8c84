import { mkdirSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
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
  if (opts.dataDir) mkdirSync(opts.dataDir, { recursive: true });
  const db = await PGlite.create(opts.dataDir);

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
    close: () => db.close(),
  };
}
