// The process: configuration, database, migrations, token verification, HTTP server, and a
// graceful shutdown that lets accepted requests finish.
import 'dotenv/config';
import cluster from 'node:cluster';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import closeWithGrace from 'close-with-grace';
import { createApp } from './app.js';
import { secretInForce } from './auth/dev-secret.js';
import { mintToken } from './auth/mint-token.js';
import { cachedVerifier } from './auth/token-cache.js';
import { createTokenVerifier, remoteJwks } from './auth/verify-token.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { describeDatabase, openDatabase } from './db/open.js';
import { migrate } from './db/migrate.js';
import { connectRedis, redisRateLimitStores } from './http/redis.js';
import { createHttpServer } from './http/server.js';
import { createLogger } from './logger.js';
import { schedulePurge } from './tasks/idempotency-purge.js';
import { warmUp } from './warm-up.js';

/** The HS256 secret in force (src/auth/dev-secret.ts), as `npm run token` decides it too. */
const resolveSecret = (config: Config) => secretInForce(config.auth, config.dataDir);

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`Configuration error: ${err.message}`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  if (config.workers > 1 && cluster.isPrimary) await runPrimary(config);
  else await runServer(config);
}

/** Fails fast, before migrations and warm-up, when something else already listens on the port. */
async function assertPortFree(config: Config): Promise<void> {
  if (config.port === 0) return;
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${config.port} is already in use (set PORT to another one)`) : err),
    );
    probe.listen({ port: config.port, ...(config.host ? { host: config.host } : {}), exclusive: true }, () => probe.close(() => resolve()));
  });
}

/** Database connections one instance may open: each worker has its own pool. */
function connectionBudget(config: Config) {
  return { workers: config.workers, poolMax: config.dbPoolMax, connections: config.workers * config.dbPoolMax };
}

// A worker that dies is replaced after a pause that doubles with each death in a row (up to 30 s);
// one that served for a minute resets the count. Workers that keep dying before they ever listen
// (a port taken, a database refused) stop the primary with their exit code instead of looping.
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 30_000;
const HEALTHY_AFTER_MS = 60_000;
const MAX_FAILED_STARTS = 5;

/** With WORKERS > 1: migrate once, then run and supervise the workers; they share the port. */
async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  await assertPortFree(config);
  logger.info(connectionBudget(config), 'database connection budget: workers × DB_POOL_MAX');
  if (config.migrateOnStart) {
    logger.info('migrating');
    const db = await openDatabase(config, logger);
    try {
      const applied = await migrate(db);
      if (applied.length) logger.info({ migrations: applied.map((m) => `${m.version}.${m.action}.${m.name}`) }, 'migrated');
    } finally {
      await db.close();
    }
  }
  const { secret, devSecretFile } = resolveSecret(config);
  let stopping = false;
  let deathsInARow = 0;
  let failedStarts = 0;
  const listening = new Set<number>();
  const startedAt = new Map<number, number>();
  const fork = () => {
    const worker = cluster.fork({ MIGRATE_ON_START: 'false' });
    startedAt.set(worker.id, Date.now());
  };
  let resolvePort: (port: number) => void;
  const firstPort = new Promise<number>((resolve) => (resolvePort = resolve));
  // The worker says which port it serves on once its real server listens (a worker's start-up
  // warm-up listens on a private port of its own, which cluster's 'listening' event reports too).
  cluster.on('message', (worker, message: { type?: string; port?: number }) => {
    if (message?.type !== 'listening' || typeof message.port !== 'number') return;
    listening.add(worker.id);
    failedStarts = 0;
    resolvePort(message.port);
  });
  cluster.on('exit', (worker, code, signal) => {
    const uptime = Date.now() - (startedAt.get(worker.id) ?? Date.now());
    const wasListening = listening.delete(worker.id);
    startedAt.delete(worker.id);
    if (stopping) return;
    deathsInARow = uptime > HEALTHY_AFTER_MS ? 1 : deathsInARow + 1;
    if (!wasListening && ++failedStarts >= MAX_FAILED_STARTS) {
      logger.fatal({ code, signal, failedStarts }, 'workers keep dying before they listen; stopping');
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      process.exitCode = typeof code === 'number' && code !== 0 ? code : 1;
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (deathsInARow - 1));
    logger.error({ pid: worker.process.pid, code, signal, restartInMs: delay }, 'worker died; starting another');
    setTimeout(() => !stopping && fork(), delay);
  });
  for (let i = 0; i < config.workers; i++) fork();
  const port = await firstPort;
  logger.info({ port, workers: config.workers }, 'workers listening');
  if (config.env !== 'production') await printWelcome(config, port, secret, devSecretFile);

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping workers');
    const workers = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    if (workers.length === 0) process.exit(0);
    let failed = false;
    let left = workers.length;
    const timer = setTimeout(() => process.exit(1), config.shutdownGraceMs + 2000);
    for (const w of workers) {
      w.once('exit', (code) => {
        failed ||= code !== 0;
        if (--left === 0) {
          clearTimeout(timer);
          process.exit(failed ? 1 : 0);
        }
      });
      w.process.kill('SIGTERM');
    }
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function runServer(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  if (cluster.isPrimary) {
    await assertPortFree(config);
    if (config.databaseUrl) logger.info(connectionBudget(config), 'database connection budget: workers × DB_POOL_MAX');
  }
  const db = await openDatabase(config, logger);
  if (config.migrateOnStart) {
    logger.info('migrating');
    const applied = await migrate(db);
    if (applied.length) logger.info({ migrations: applied.map((m) => `${m.version}.${m.action}.${m.name}`) }, 'migrated');
  }

  const { secret, devSecretFile } = resolveSecret(config);
  const verifier = cachedVerifier(
    createTokenVerifier({
      jwks: config.auth.jwksUrl ? remoteJwks(config.auth.jwksUrl) : undefined,
      secret,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      clockToleranceSec: config.auth.clockToleranceSec,
      maxAgeSec: config.auth.maxAgeSec,
    }),
    { maxEntries: config.auth.tokenCacheSize },
  );

  const docsFile = fileURLToPath(new URL('../dist/docs/index.html', import.meta.url));
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
  const rateLimitStores = redis ? redisRateLimitStores(redis) : undefined;
  const app = createApp({ db, verifier, logger, config, docsFile, rateLimitStores });
  if (config.warmUpRequests > 0) {
    try {
      logger.info({ ...(await warmUp(db, config, config.warmUpRequests)) }, 'warmed up');
    } catch (err) {
      // A warm-up that fails costs only speed: the server starts cold, as it would without one.
      logger.warn({ err: { message: (err as Error).message } }, 'warm-up failed; starting cold');
    }
  }
  const stopPurge = schedulePurge(db, logger);
  const server = createHttpServer(app, config.timeouts);
  // Signals are handled from here on, before the port opens: a SIGTERM that arrives while the
  // start-up message is still being printed must stop the server gracefully, not kill it.
  closeWithGrace({ delay: config.shutdownGraceMs, logger: { error: (m: unknown) => logger.error(m) } }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an unexpected error');
    else logger.info({ signal }, 'shutting down');
    await server.closeGracefully();
    stopPurge();
    await db.close();
    await redis?.quit();
    logger.info('stopped');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, ...(config.host ? { host: config.host } : {}) }, resolve);
  });

  const port = (server.address() as AddressInfo).port;
  logger.info({ port, database: describeDatabase(config), algorithms: verifier.algorithms }, 'listening');
  process.send?.({ type: 'listening', port });
  if (config.env !== 'production' && cluster.isPrimary) await printWelcome(config, port, secret, devSecretFile);
}

async function printWelcome(config: Config, port: number, secret: string | undefined, devSecretFile?: string) {
  const base = `http://localhost:${port}`;
  const lines = [
    '',
    `Todo API is listening on ${base}`,
    `  Database: ${describeDatabase(config)}`,
    `  Docs:     ${base}/docs (contract: ${base}/openapi.json)`,
  ];
  if (secret && devSecretFile) {
    // Only a token of the generated development secret, which guards nothing but this data folder:
    // one signed with a configured JWT_SECRET would work wherever that secret is trusted.
    const token = await mintToken({
      secret,
      userId: 'demo-user',
      issuer: config.auth.issuer,
      audience: config.auth.audience,
    });
    lines.push(
      `  Tokens:   HS256 with the development secret in ${devSecretFile}`,
      '',
      'Try it (a token for user "demo-user", valid for one hour):',
      `  curl -H "Authorization: Bearer ${token}" ${base}/api/tasks`,
      `  curl -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" -d '{"title":"Buy milk"}' ${base}/api/tasks`,
      '',
      'Mint a token for any user: npm run token -- <userId>',
    );
  } else if (secret) {
    lines.push('  Tokens:   HS256 with JWT_SECRET (mint one for a user: npm run token -- <userId>)');
  } else {
    lines.push(`  Tokens:   from Better Auth, verified against ${config.auth.jwksUrl}`);
  }
  console.log(lines.join('\n') + '\n');
}

main().catch((err: unknown) => {
  console.error('Failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
