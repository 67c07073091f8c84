import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { createPGliteDatabase } from './pglite.js';
import { createPostgresDatabase } from './postgres.js';
import type { Database } from './types.js';

/** PostgreSQL when DATABASE_URL is set; otherwise the embedded database under DATA_DIR. */
export function openDatabase(config: Config, logger?: Logger): Promise<Database> {
  if (config.databaseUrl) {
    return Promise.resolve(
      createPostgresDatabase({
        connectionString: config.databaseUrl,
        poolMax: config.dbPoolMax,
        statementTimeoutMs: config.dbStatementTimeoutMs,
        connectTimeoutMs: config.dbConnectTimeoutMs,
        preparedStatements: config.dbPreparedStatements,
        ...(logger ? { logger } : {}),
      }),
    );
  }
  return createPGliteDatabase({
    dataDir: path.join(config.dataDir, 'pglite'),
    statementTimeoutMs: config.dbStatementTimeoutMs,
    onRestart: (reason) => logger?.error({ reason }, 'embedded database restarted: a statement ran past DB_STATEMENT_TIMEOUT_MS'),
  });
}

/** Where the data lives, for start-up messages; never includes a password. */
export function describeDatabase(config: Config): string {
  if (!config.databaseUrl) return `embedded PostgreSQL (PGlite) in ${path.join(config.dataDir, 'pglite')}`;
  const u = new URL(config.databaseUrl);
  return `PostgreSQL at ${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
}
