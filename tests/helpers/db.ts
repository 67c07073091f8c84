// A fresh, migrated database per test file: in-memory PGlite by default, or — with
// TEST_DATABASE_URL — a new database on that PostgreSQL server, dropped afterwards.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { migrate } from '../../src/db/migrate.js';
import { createPGliteDatabase } from '../../src/db/pglite.js';
import { createPostgresDatabase } from '../../src/db/postgres.js';
import type { Database } from '../../src/db/types.js';

export const serverUrl = process.env.TEST_DATABASE_URL || undefined;
export const dbKind = serverUrl ? 'postgres' : 'pglite';

export interface TestDatabase {
  db: Database;
  /** Set in PostgreSQL mode: the new database's URL, for opening a second pool onto the same data. */
  url: string | undefined;
  drop(): Promise<void>;
}

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** An empty database, not migrated. */
export async function createEmptyDatabase(): Promise<TestDatabase> {
  if (!serverUrl) {
    const db = await createPGliteDatabase({ dataDir: undefined, template: inject('pgliteTemplate') });
    return { db, url: undefined, drop: () => db.close() };
  }
  const name = `todo_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = withDatabase(serverUrl, name);
  const db = createPostgresDatabase({ connectionString: url, poolMax: 10, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
  return {
    db,
    url,
    drop: async () => {
      await db.close();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const t = await createEmptyDatabase();
  await migrate(t.db);
  return t;
}
