// A PostgreSQL database of its own for one benchmark run, made empty beside the one a URL names
// (BENCH_DATABASE_URL, or the local server) and dropped, its pool closed first, at the end.
import pg from 'pg';
import { createPostgresDatabase } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';

export const BENCH_ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface ScratchDatabase {
  url: string;
  db: Database;
  drop(): Promise<void>;
}

export async function scratchDatabase(
  name: string,
  opts: { adminUrl?: string; poolMax: number; statementTimeoutMs?: number },
): Promise<ScratchDatabase> {
  const adminUrl = opts.adminUrl ?? BENCH_ADMIN_URL;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const url = Object.assign(new URL(adminUrl), { pathname: `/${name}` }).toString();
  const db = createPostgresDatabase({
    connectionString: url,
    poolMax: opts.poolMax,
    statementTimeoutMs: opts.statementTimeoutMs ?? 600_000,
    connectTimeoutMs: 5000,
  });
  return {
    url,
    db,
    drop: async () => {
      await db.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
