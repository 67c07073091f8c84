// createApp(): the whole HTTP application around injected dependencies, so tests and the server
// build it the same way around any database and any token verifier.
//   request id + log → security headers → CORS → per-IP limit → auth on /api → per-user limit
//   → JSON body → contract validation → routes → problem+json
import { parse as parseQuery } from 'node:querystring';
import express, { type Express, type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { authenticate } from './auth/authenticate.js';
import { requireSameUser } from './auth/same-user.js';
import type { TokenVerifier } from './auth/verify-token.js';
import type { Config } from './config.js';
import type { Database } from './db/types.js';
import { loadContract } from './http/contract.js';
import { composeMiddleware } from './http/compose.js';
import { corsPolicy } from './http/cors.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { headAsGet } from './http/head-as-get.js';
import { jsonBody } from './http/json-body.js';
import { createMetrics, metricsRouter } from './http/metrics.js';
import { createRateLimiters, type RateLimitStores } from './http/rate-limit.js';
import { securityHeaders } from './http/security-headers.js';
import { VALIDATE_RESPONSES } from './http/send-json.js';
import { createSecurityLog } from './http/security-log.js';
import { storableInput } from './http/storable-input.js';
import { createValidator } from './http/validator.js';
import { mountedAt, requestLogging } from './logger.js';
import { isMcpPath, mcpCors, mcpGate, mcpRouter } from './mcp/endpoint.js';
import { systemRouter } from './system/routes.js';
import { apiAuthentication, eventsRouter } from './changes/events.js';
import { createLiveChanges, type LiveChanges } from './changes/live.js';
import { tasksRouter } from './tasks/routes.js';
import { createTaskService } from './tasks/service.js';
import { type AddressPolicy, systemResolve } from './webhooks/address-policy.js';
import { webhooksRouter } from './webhooks/routes.js';
import { createWebhookService } from './webhooks/service.js';

export type AppConfig = Pick<
  Config,
  | 'corsOrigins'
  | 'bodyLimitBytes'
  | 'validateResponses'
  | 'rateLimit'
  | 'trustProxy'
  | 'metrics'
  | 'tasksPerUser'
  | 'mcp'
  | 'changes'
  | 'webhooks'
>;

export interface AppDeps {
  db: Database;
  verifier: TokenVerifier;
  logger: Logger;
  config: AppConfig;
  /** The built HTML reference served at /docs (`npm run docs`); absent: /docs answers 404. */
  docsFile?: string | undefined;
  /** Verifies tokens at /mcp (audience MCP_RESOURCE_URL when set); absent: `verifier`. */
  mcpVerifier?: TokenVerifier | undefined;
  /** Where the line per request goes (createRequestLogger); absent: `logger`. */
  requestLogger?: Logger | undefined;
  /** Shared rate-limit counters (Redis); absent: in this process's memory. */
  rateLimitStores?: RateLimitStores | undefined;
  /** The contract's validation (createValidator), shared with the warm-up's copy of the app so the
   * per-operation validators it compiles serve this app; absent: one of its own. */
  validation?: RequestHandler[] | undefined;
  /** Live changes (the event streams' hub and wake-ups, createLiveChanges); absent: one of its own, in this process only. */
  live?: LiveChanges | undefined;
  /** Told when a write leaves a task with reminders (the reminder worker's poke); absent: nothing is told. */
  remindersScheduled?: (() => void) | undefined;
  /** Told after every committed write of a task, a redelivery and an endpoint enabled again (the
   * webhook dispatcher's poke); absent: nothing is told. */
  written?: (() => void) | undefined;
  /** Resolves webhook hosts when they are registered (tests pass their own); absent: the system resolver. */
  resolve?: AddressPolicy['resolve'] | undefined;
}

const MAX_QUERY_PARAMETERS = 32;

export function createApp({
  db,
  verifier,
  mcpVerifier,
  logger,
  requestLogger,
  config,
  docsFile,
  rateLimitStores,
  validation,
  live = createLiveChanges(db, { listenUrl: undefined }),
  remindersScheduled,
  written,
  resolve = systemResolve,
}: AppDeps): Express {
  const contract = loadContract();
  const service = createTaskService(db, {
    tasksPerUser: config.tasksPerUser,
    changesRetentionSeconds: config.changes.retentionSeconds,
    changed: written
      ? (userId) => {
          live.published(userId);
          written();
        }
      : live.published,
    remindersScheduled,
  });
  const webhooks = createWebhookService(db, config.webhooks, webhookPolicy(config.webhooks, resolve), written);
  const security = createSecurityLog(logger);
  const limits = createRateLimiters(config.rateLimit, security, rateLimitStores);
  const app = express();
  app.disable('x-powered-by');
  // Only the ETags the contract defines; Express's automatic ones would make undocumented 304s.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  app.set(VALIDATE_RESPONSES, config.validateResponses);
  // Flat key=value pairs only, and not too many of them; repeated keys become arrays, which the
  // contract refuses except for the one repeatable parameter (tag).
  app.set('query parser', (qs: string) => parseQuery(qs, '&', '=', { maxKeys: MAX_QUERY_PARAMETERS }));

  const restCors = corsPolicy({
    origins: config.corsOrigins,
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id', 'If-Match', 'If-None-Match', 'Idempotency-Key'],
    // Without these a browser frontend cannot read pagination links, created tasks' URLs or limits.
    exposedHeaders: [
      'Link',
      'Location',
      'ETag',
      'Idempotent-Replayed',
      'Retry-After',
      'WWW-Authenticate',
      'X-Request-Id',
      'RateLimit',
      'RateLimit-Policy',
    ],
    maxAgeSec: 600,
  });
  // The MCP endpoint has origins of its own (browser MCP clients), none unless configured.
  const agentCors = mcpCors(config.mcp);
  const metrics = config.metrics.enabled ? createMetrics(db) : undefined;

  // Every request goes through these; grouped, the router walks three layers for them, not fifteen.
  app.use(
    composeMiddleware([
      requestLogging(app, logger, requestLogger),
      securityHeaders(),
      (req, res, next) => (isMcpPath(req.path) ? agentCors : restCors)(req, res, next),
      ...(metrics ? [metrics.middleware] : []),
      limits.ip,
      headAsGet,
    ]),
  );
  // Authenticate before reading a body: unauthenticated callers cost no parsing or validation.
  app.use('/api', composeMiddleware([apiAuthentication(authenticate(verifier, security), service), limits.user]));
  app.use(mcpGate({ verifier: mcpVerifier ?? verifier, security, config: config.mcp, userLimit: limits.user }));
  app.use(
    composeMiddleware([
      jsonBody(config.bodyLimitBytes),
      ...(validation ?? createValidator(contract.document, config.validateResponses)),
      storableInput,
    ]),
  );

  app.use('/api/events', eventsRouter({ service, live, config: config.changes }));
  const webhookRoutes = webhooksRouter(webhooks);
  app.use('/api/webhooks', composeMiddleware([mountedAt('/api/webhooks'), webhookRoutes]));
  app.use('/api/:userId/webhooks', composeMiddleware([mountedAt('/api/:userId/webhooks'), requireSameUser(security), webhookRoutes]));
  const tasks = tasksRouter(service, security);
  app.use('/api/tasks', composeMiddleware([mountedAt('/api/tasks'), tasks]));
  app.use('/api/:userId/tasks', composeMiddleware([mountedAt('/api/:userId/tasks'), requireSameUser(security), tasks]));
  // After the task routes, which carry nearly all traffic, so those never walk past these.
  app.use(systemRouter(db, contract, docsFile));
  app.use(metricsRouter(metrics, config.metrics.token));
  app.use(
    mcpRouter({
      config: config.mcp,
      service,
      security,
      version: (contract.document.info as { version: string }).version,
    }),
  );

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}

/** Where webhooks may be sent, from the configuration. */
export function webhookPolicy(config: AppConfig['webhooks'], resolve: AddressPolicy['resolve'] = systemResolve): AddressPolicy {
  return { httpsOnly: config.httpsOnly, allowedHosts: new Set(config.allowedHosts), resolve };
}
