// createApp(): the whole HTTP application around injected dependencies, so tests and the server
// build it the same way around any database and any token verifier.
//   request id + log → security headers → CORS → per-IP limit → auth on /api → per-user limit
//   → JSON body → contract validation → routes → problem+json
import { parse as parseQuery } from 'node:querystring';
import cors from 'cors';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { authenticate } from './auth/authenticate.js';
import type { TokenVerifier } from './auth/verify-token.js';
import type { Config } from './config.js';
import type { Database } from './db/types.js';
import { loadContract } from './http/contract.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { assertJsonDepth } from './http/json-depth.js';
import { createMetrics } from './http/metrics.js';
import { problems } from './http/problem.js';
import { createRateLimiters, type RateLimitStores } from './http/rate-limit.js';
import { securityHeaders } from './http/security-headers.js';
import { series } from './http/series.js';
import { createSecurityLog } from './http/security-log.js';
import { storableInput } from './http/storable-input.js';
import { createValidator } from './http/validator.js';
import { useRequestLogging } from './logger.js';
import { systemRouter } from './system/routes.js';
import { tasksRouter } from './tasks/routes.js';

export type AppConfig = Pick<
  Config,
  'corsOrigins' | 'bodyLimitBytes' | 'validateResponses' | 'rateLimit' | 'trustProxy' | 'metrics' | 'tasksPerUser'
>;

export interface AppDeps {
  db: Database;
  verifier: TokenVerifier;
  logger: Logger;
  config: AppConfig;
  /** The built HTML reference served at /docs (`npm run docs`); absent: /docs answers 404. */
  docsFile?: string | undefined;
  /** Shared rate-limit counters (Redis); absent: in this process's memory. */
  rateLimitStores?: RateLimitStores | undefined;
}

const MAX_QUERY_PARAMETERS = 32;
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** A Content-Type with no charset, or charset=utf-8. */
function isUtf8(contentType: string | undefined): boolean {
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

/** Names a router's mount point as a template, for logs and metrics (never a real user id). */
function mountedAt(template: string): express.RequestHandler {
  return (_req, res, next) => {
    res.locals.mount = template;
    next();
  };
}

export function createApp({ db, verifier, logger, config, docsFile, rateLimitStores }: AppDeps): Express {
  const contract = loadContract();
  const security = createSecurityLog(logger);
  const limits = createRateLimiters(config.rateLimit, security, rateLimitStores);
  const app = express();
  app.disable('x-powered-by');
  // Only the ETags the contract defines; Express's automatic ones would make undocumented 304s.
  app.set('etag', false);
  app.set('trust proxy', config.trustProxy);
  // Flat key=value pairs only, and not too many of them; repeated keys become arrays, which the
  // contract refuses except for the one repeatable parameter (tag).
  app.set('query parser', (qs: string) => parseQuery(qs, '&', '=', { maxKeys: MAX_QUERY_PARAMETERS }));

  useRequestLogging(app, logger);
  app.use(securityHeaders());
  app.use(
    cors({
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id', 'If-Match', 'If-None-Match', 'Idempotency-Key'],
      // Without these a browser frontend cannot read pagination links, created tasks' URLs or limits.
      exposedHeaders: ['Link', 'Location', 'ETag', 'Idempotent-Replayed', 'Retry-After', 'WWW-Authenticate', 'X-Request-Id', 'RateLimit', 'RateLimit-Policy'],
      maxAge: 600,
    }),
  );
  const metrics = config.metrics.enabled ? createMetrics(db) : undefined;
  if (metrics) app.use(metrics.middleware);
  app.use(limits.ip);

  // HEAD is GET without a body (RFC 9110). The contract lists GET only, so HEAD requests are
  // validated and routed as GET; Node already knows not to send a body for them.
  app.use((req, _res, next) => {
    if (req.method === 'HEAD') req.method = 'GET';
    next();
  });
  // Authenticate before reading a body: unauthenticated callers cost no parsing or validation.
  app.use('/api', series(authenticate(verifier, security), limits.user));
  const json = express.json({
    limit: config.bodyLimitBytes,
    strict: true,
    verify: (_req, _res, raw) => assertJsonDepth(raw),
  });
  // Only POST, PUT and PATCH operations take a body. Content sent with GET or DELETE has no meaning
  // (RFC 9110 §9.3.1); it is ignored, not parsed, so it can neither fail nor cost anything.
  // JSON between systems is UTF-8 (RFC 8259 §8.1): another charset is refused before parsing, so
  // no check on the raw bytes (the nesting limit) can be misled by another encoding.
  app.use((req, res, next) => {
    if (!BODY_METHODS.has(req.method)) return next();
    if (!isUtf8(req.headers['content-type'])) return next(problems.unsupportedMediaType('Send the body as application/json in UTF-8 (RFC 8259); no other charset is accepted.'));
    json(req, res, next);
  });
  app.use(series(...createValidator(contract.document, config.validateResponses), storableInput));

  const tasks = tasksRouter(db, security, { tasksPerUser: config.tasksPerUser });
  app.use('/api/tasks', series(mountedAt('/api/tasks'), tasks));
  app.use(
    '/api/:userId/tasks',
    series(
      mountedAt('/api/:userId/tasks'),
      (req, res, next) => {
        if (req.params.userId === res.locals.userId) return next();
        security(req, { event: 'user_mismatch', pathUserId: String(req.params.userId) });
        next(problems.userMismatch());
      },
      tasks,
    ),
  );
  // After the task routes, which carry nearly all traffic, so those never walk past these.
  app.use(systemRouter(db, contract, docsFile));
  if (metrics) {
    app.get('/metrics', async (req, res) => {
      if (config.metrics.token && req.headers.authorization !== `Bearer ${config.metrics.token}`) {
        throw problems.unauthorized('token_invalid', 'Metrics need `Authorization: Bearer <METRICS_TOKEN>`.', 'Bearer realm="todo-api-metrics"');
      }
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    });
  } else {
    app.get('/metrics', () => {
      throw problems.notFound('Metrics are turned off on this server (METRICS).');
    });
  }

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
