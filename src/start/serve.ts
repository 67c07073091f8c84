// One serving process (the only one, or a cluster worker): database, migrations, token
// verification, the app, warm-up, then the port; a graceful shutdown lets accepted requests finish.
import cluster from 'node:cluster';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import closeWithGrace from 'close-with-grace';
import { createApp, webhookPolicy } from '../app.js';
import { cachedVerifier } from '../auth/token-cache.js';
import { createTokenVerifier, remoteJwks } from '../auth/verify-token.js';
import type { Config } from '../config.js';
import { describeDatabase, openDatabase } from '../db/open.js';
import { loadContract } from '../http/contract.js';
import { createHttpServer } from '../http/graceful-server.js';
import { createValidator } from '../http/validator.js';
import { createLogger, createRequestLogger } from '../logger.js';
import { connectRedis, redisRateLimitStores } from '../redis.js';
import { createLiveChanges } from '../changes/live.js';
import { scheduleChangesPurge } from '../changes/purge.js';
import { startReminderWorker } from '../reminders/worker.js';
import { startWebhookDispatcher } from '../webhooks/dispatcher.js';
import { scheduleWebhookPurge } from '../webhooks/purge.js';
import { createTaskService } from '../tasks/service.js';
import { schedulePurge } from '../tasks/idempotency-purge.js';
import { warmUp } from '../warm-up.js';
import { printWelcome } from './banner.js';
import { assertPortFree, logConnectionBudget, migrateOnStart, resolveSecret } from './preflight.js';

export async function serve(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel, config.logFormat);
  if (cluster.isPrimary) {
    await assertPortFree(config);
    logConnectionBudget(config, logger);
  }
  logger.info({ database: describeDatabase(config) }, 'opening the database');
  const db = await openDatabase(config, logger);
  await migrateOnStart(config, db, logger);

  const { secret, devSecretFile } = resolveSecret(config);
  const jwks = config.auth.jwksUrl ? remoteJwks(config.auth.jwksUrl) : undefined;
  const verifierFor = (audience: string | undefined, foreignAudiences?: string[]) =>
    cachedVerifier(
      createTokenVerifier({
        jwks,
        secret,
        issuer: config.auth.issuer,
        audience,
        clockToleranceSec: config.auth.clockToleranceSec,
        maxAgeSec: config.auth.maxAgeSec,
        foreignAudiences,
      }),
      { maxEntries: config.auth.tokenCacheSize },
    );
  // RFC 8707: with MCP_RESOURCE_URL, a token is good at /mcp only if it was issued for it, and a
  // token issued for /mcp alone is no REST token.
  const verifier = verifierFor(config.auth.audience, config.mcp.resourceUrl ? [config.mcp.resourceUrl] : undefined);
  const mcpVerifier = config.mcp.resourceUrl ? verifierFor(config.mcp.resourceUrl) : undefined;

  const docsFile = fileURLToPath(new URL('../../dist/docs/index.html', import.meta.url));
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, logger) : undefined;
  const rateLimitStores = redis ? redisRateLimitStores(redis) : undefined;
  const requestLogger = createRequestLogger(logger, config.logFormat, config.env === 'production');
  const validation = createValidator(loadContract().document, config.validateResponses);
  const live = createLiveChanges(db, config.changes, logger);
  const webhooks = startWebhookDispatcher(db, config.webhooks, {
    policy: webhookPolicy(config.webhooks),
    logger,
    userAgent: `todo-api-webhooks/${(loadContract().document.info as { version: string }).version}`,
  });
  const reminders = startReminderWorker(
    createTaskService(db, {
      tasksPerUser: config.tasksPerUser,
      changesRetentionSeconds: config.changes.retentionSeconds,
      changed: (userId) => {
        live.published(userId);
        webhooks.poke();
      },
    }),
    { pollSeconds: config.changes.remindersPollSeconds, logger },
  );
  const app = createApp({
    db,
    verifier,
    mcpVerifier,
    logger,
    requestLogger,
    config,
    docsFile,
    rateLimitStores,
    validation,
    live,
    remindersScheduled: reminders.poke,
    written: webhooks.poke,
  });
  if (config.warmUpRequests > 0) {
    logger.info({ requests: config.warmUpRequests }, 'warming up');
    try {
      const warmed = await warmUp(db, config, config.warmUpRequests, validation);
      // Cut off before a single answer (a database too slow to answer, or down): as cold as a failure.
      logger.info({ ...warmed }, warmed.requests === 0 ? 'warm-up answered nothing before its deadline; starting cold' : 'warmed up');
    } catch (err) {
      // A warm-up that fails costs only speed: the server starts cold, as it would without one.
      logger.warn({ err: { message: (err as Error).message } }, 'warm-up failed; starting cold');
    }
  }
  const stopPurge = schedulePurge(db, logger);
  const stopChangesPurge = scheduleChangesPurge(db, config, logger);
  const stopWebhookPurge = scheduleWebhookPurge(db, config.webhooks, logger);
  const server = createHttpServer(app, config.timeouts);
  // Signals are handled from here on, before the port opens: a SIGTERM that arrives while the
  // start-up message is still being printed must stop the server gracefully, not kill it.
  closeWithGrace({ delay: config.shutdownGraceMs, logger: { error: (m: unknown) => logger.error(m) } }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'shutting down after an unexpected error');
    else logger.info({ signal }, 'shutting down');
    // Streams never end by themselves: ended first, so their clients reconnect (to another
    // instance, if there is one) and the accepted requests can finish.
    const closing = server.closeGracefully();
    live.endStreams();
    await closing;
    stopPurge();
    stopChangesPurge();
    stopWebhookPurge();
    reminders.stop();
    await webhooks.stop();
    await live.close();
    await db.close();
    await redis?.quit();
    logger.info('stopped');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: config.port, ...(config.host ? { host: config.host } : {}) }, resolve);
  });

  if (!config.mcp.resourceUrl && !config.mcp.resourceFromHost) {
    logger.warn('MCP_RESOURCE_URL is unset: /mcp serves tokens, but names no metadata for MCP clients to find their authorization server');
  }
  const bound = server.address() as AddressInfo;
  const { port } = bound;
  logger.info({ port, address: bound.address, database: describeDatabase(config), algorithms: verifier.algorithms }, 'listening');
  process.send?.({ type: 'listening', port, address: bound.address, family: bound.family });
  if (config.env !== 'production' && cluster.isPrimary) await printWelcome(config, bound, secret, devSecretFile);
}
