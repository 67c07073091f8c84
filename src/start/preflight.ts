// What a start does before it serves, whether it runs one process or supervises workers.
import { createServer as createNetServer } from 'node:net';
import type { Logger } from 'pino';
import { secretInForce } from '../auth/dev-secret.js';
import type { Config } from '../config.js';
import { migrate } from '../db/migrate.js';
import type { Database } from '../db/types.js';

/** Fails fast, before migrations and warm-up, when something else already listens on the port. */
export async function assertPortFree(config: Config): Promise<void> {
  if (config.port === 0) return;
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${config.port} is already in use (set PORT to another one)`) : err),
    );
    probe.listen({ port: config.port, ...(config.host ? { host: config.host } : {}), exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Logs the database connections one instance may open: each worker has its own pool. */
export function logConnectionBudget(config: Config, logger: Logger): void {
  if (!config.databaseUrl) return;
  logger.info(
    { workers: config.workers, poolMax: config.dbPoolMax, connections: config.workers * config.dbPoolMax },
    'database connection budget: workers × DB_POOL_MAX',
  );
}

/** Applies pending migrations when MIGRATE_ON_START allows it, saying so. */
export async function migrateOnStart(config: Config, db: Database, logger: Logger): Promise<void> {
  if (!config.migrateOnStart) return;
  logger.info('migrating');
  const applied = await migrate(db);
  if (applied.length) logger.info({ migrations: applied.map((m) => `${m.version}.${m.action}.${m.name}`) }, 'migrated');
}

/** The HS256 secret in force (src/auth/dev-secret.ts), as `npm run token` decides it too. */
export const resolveSecret = (config: Config) => secretInForce(config.auth, config.dataDir);
