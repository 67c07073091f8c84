// createApp(): the whole HTTP application around injected dependencies, so tests and the server
// build it the same way around any database and any token verifier.
//   request id + log → CORS → (public) → auth on /api → JSON body → contract validation → routes → problem+json
import cors from 'cors';
import express, { type Express } from 'express';
import type { Logger } from 'pino';
import { authenticate } from './auth/authenticate.js';
import type { TokenVerifier } from './auth/verify-token.js';
import type { Config } from './config.js';
import type { Database } from './db/types.js';
import { loadContract } from './http/contract.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { problems } from './http/problem.js';
import { createValidator } from './http/validator.js';
import { requestLogger } from './logger.js';
import { systemRouter } from './system/routes.js';
import { tasksRouter } from './tasks/routes.js';

export type AppConfig = Pick<Config, 'corsOrigins' | 'bodyLimitBytes' | 'validateResponses'>;

export interface AppDeps {
  db: Database;
  verifier: TokenVerifier;
  logger: Logger;
  config: AppConfig;
  /** The built HTML reference served at /docs (`npm run docs`); absent: /docs answers 404. */
  docsFile?: string | undefined;
}

export function createApp({ db, verifier, logger, config, docsFile }: AppDeps): Express {
  const contract = loadContract();
  const app = express();
  app.disable('x-powered-by');
  // Only the ETags the contract defines; Express's automatic ones would make undocumented 304s.
  app.set('etag', false);

  app.use(requestLogger(logger));
  app.use((req, res, next) => {
    res.locals.requestId = String(req.id);
    next();
  });
  app.use(
    cors({
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
      // Without these a browser frontend cannot read pagination links or created tasks' URLs.
      exposedHeaders: ['Link', 'Location', 'Retry-After', 'WWW-Authenticate', 'X-Request-Id'],
      maxAge: 600,
    }),
  );

  // HEAD is GET without a body (RFC 9110). The contract lists GET only, so HEAD requests are
  // validated and routed as GET; Node already knows not to send a body for them.
  app.use((req, _res, next) => {
    if (req.method === 'HEAD') req.method = 'GET';
    next();
  });
  // Authenticate before reading a body: unauthenticated callers cost no parsing or validation.
  app.use('/api', authenticate(verifier));
  app.use(express.json({ limit: config.bodyLimitBytes, strict: true }));
  app.use(createValidator(contract.document, config.validateResponses));

  app.use(systemRouter(db, contract, docsFile));
  const tasks = tasksRouter(db);
  app.use('/api/tasks', tasks);
  app.use(
    '/api/:userId/tasks',
    (req, res, next) => next(req.params.userId === res.locals.userId ? undefined : problems.userMismatch()),
    tasks,
  );

  app.use(notFoundHandler);
  app.use(errorHandler);
  return app;
}
