// Builds the real app (createApp) around a real database, as production runs it: no response
// validation in the app, responses through the production writers, the app's server made by the
// same factory as production's (createHttpServer). Every response it sends is checked against the
// contract by the tests' own validator instead (shipped-responses.ts).
import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { JWTVerifyGetKey } from 'jose';
import { createApp, type AppConfig, type AppDeps } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import type { RateLimitStores } from '../../src/http/rate-limit.js';
import { mintToken } from '../../src/auth/mint-token.js';
import { createTokenVerifier } from '../../src/auth/verify-token.js';
import type { Database } from '../../src/db/types.js';
import { createHttpServer, type HttpServer } from '../../src/http/graceful-server.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { checkShippedResponses } from './shipped-responses.js';

export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789';

export interface TestAppOptions {
  db?: Database;
  jwks?: JWTVerifyGetKey;
  secret?: string;
  issuer?: string;
  audience?: string;
  bodyLimitBytes?: number;
  docsFile?: string;
  rateLimit?: Partial<AppConfig['rateLimit']>;
  rateLimitStores?: RateLimitStores;
  metrics?: AppConfig['metrics'];
  trustProxy?: AppConfig['trustProxy'];
  tasksPerUser?: number;
  mcp?: Partial<AppConfig['mcp']>;
  validation?: AppDeps['validation'];
  changes?: Partial<AppConfig['changes']>;
  /** Live changes (hub and wake-ups); absent: the app's own, in this process. */
  live?: AppDeps['live'];
  /** Told when a write leaves a task with reminders (a reminder worker's poke). */
  remindersScheduled?: AppDeps['remindersScheduled'];
  /** Webhook settings over the defaults of NODE_ENV=test (http allowed, no local host allowed). */
  webhooks?: Partial<AppConfig['webhooks']>;
  /** Told after every committed write of a task (a webhook dispatcher's poke). */
  written?: AppDeps['written'];
  /** Resolves webhook hosts at registration; absent: the system resolver. */
  resolve?: AppDeps['resolve'];
  /** The app's own response validation (VALIDATE_RESPONSES); off, as in production, unless a test sets it. */
  validateResponses?: boolean;
}

/** Every line any app in this test file logged, for the no-secrets check in tests/setup.ts. */
export const allLogLines: string[] = [];

export function logSink() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      const added = chunk.toString('utf8').split('\n').filter(Boolean);
      lines.push(...added);
      allLogLines.push(...added);
      done();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

/** The app's settings in tests: as in production, limits off unless a test sets them. */
export function testAppConfig(opts: TestAppOptions = {}): AppConfig {
  return {
    corsOrigins: ['http://localhost:3000'],
    bodyLimitBytes: opts.bodyLimitBytes ?? 64 * 1024,
    tasksPerUser: opts.tasksPerUser ?? 5000,
    validateResponses: opts.validateResponses ?? false,
    // Tests hammer one address and one user; limits are exercised by their own tests.
    rateLimit: { windowMs: 60_000, perUser: 0, perIpFailures: 0, ...opts.rateLimit },
    trustProxy: opts.trustProxy ?? false,
    metrics: opts.metrics ?? { enabled: false, token: undefined },
    mcp: { resourceUrl: undefined, resourceFromHost: true, authorizationServers: [], corsOrigins: [], ...opts.mcp },
    changes: {
      retentionSeconds: 30 * 24 * 3600,
      listenUrl: undefined,
      heartbeatSeconds: 15,
      pollSeconds: 30,
      streamsPerUser: 5,
      streamsMax: 1000,
      remindersPollSeconds: 600,
      ...opts.changes,
    },
    webhooks: { ...loadConfig({ NODE_ENV: 'test' }).webhooks, ...opts.webhooks },
  };
}

export function buildApp(db: Database, opts: TestAppOptions = {}) {
  const { lines, logger } = logSink();
  const config = testAppConfig(opts);
  const { mcp } = config;
  const verifier = createTokenVerifier({
    jwks: opts.jwks,
    secret: opts.secret ?? TEST_SECRET,
    issuer: opts.issuer,
    audience: opts.audience,
    clockToleranceSec: 5,
    foreignAudiences: mcp.resourceUrl ? [mcp.resourceUrl] : undefined,
  });
  // As src/start/serve.ts builds it: with MCP_RESOURCE_URL, /mcp takes tokens for that audience only.
  const mcpVerifier = mcp.resourceUrl
    ? createTokenVerifier({
        jwks: opts.jwks,
        secret: opts.secret ?? TEST_SECRET,
        issuer: opts.issuer,
        audience: mcp.resourceUrl,
        clockToleranceSec: 5,
      })
    : undefined;
  const app = createApp({
    db,
    verifier,
    mcpVerifier,
    logger,
    config,
    docsFile: opts.docsFile,
    rateLimitStores: opts.rateLimitStores,
    validation: opts.validation,
    live: opts.live,
    remindersScheduled: opts.remindersScheduled,
    written: opts.written,
    resolve: opts.resolve,
  });
  checkShippedResponses(app);
  // The server production runs the app in; it also makes the app's responses say `Connection:
  // close` once a shutdown begins, for supertest's own servers too.
  const server: HttpServer = createHttpServer(app, { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5_000 });
  return { app, server, logLines: lines };
}

export interface TestContext {
  app: ReturnType<typeof buildApp>['app'];
  logLines: string[];
  database: TestDatabase;
  close(): Promise<void>;
}

export async function setupApp(opts: TestAppOptions = {}): Promise<TestContext> {
  const database = await createTestDatabase();
  const { app, logLines } = buildApp(database.db, opts);
  return { app, logLines, database, close: () => database.drop() };
}

/** A fresh user id per call, so tests in one file never see each other's tasks. */
export function newUser(): string {
  return `user-${randomUUID()}`;
}

export async function bearer(userId: string, opts: { ttlSec?: number; audience?: string } = {}): Promise<string> {
  return `Bearer ${await mintToken({ secret: TEST_SECRET, userId, ...opts })}`;
}
