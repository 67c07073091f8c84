// Every setting the server reads, parsed and checked once at start. A bad value stops the process
// with a message naming the variable, instead of surfacing later as a confusing runtime failure.
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parsePostgresUrl, PostgresUrlError } from './db/connection-url.js';

export interface Config {
  env: 'development' | 'production' | 'test';
  port: number;
  /**
   * The interface to listen on. Unset (undefined): every interface, as a container needs; that is
   * the default in production only. Elsewhere the default is the loopback interface, so a laptop in
   * a café does not offer its API to the café's network.
   */
  host: string | undefined;
  logLevel: string;
  /** How log lines are written: JSON (one object a line), or `pretty` for a person at a terminal. */
  logFormat: LogFormat;
  /** Set: real PostgreSQL. Unset: the embedded database in `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  dbPoolMax: number;
  dbStatementTimeoutMs: number;
  dbConnectTimeoutMs: number;
  dbPreparedStatements: boolean;
  migrateOnStart: boolean;
  /** HTTP worker processes (node:cluster); 1 runs in a single process. */
  workers: number;
  auth: AuthConfig;
  corsOrigins: string[];
  bodyLimitBytes: number;
  /** TASKS_PER_USER_MAX: creates past this many tasks of one user answer 409 quota_exceeded. */
  tasksPerUser: number;
  validateResponses: boolean;
  shutdownGraceMs: number;
  /** Requests sent through a private copy of the app before the port opens (src/warm-up.ts); 0: none. */
  warmUpRequests: number;
  rateLimit: RateLimitConfig;
  /** Redis for shared state between instances (rate-limit counters); unset: in memory. */
  redisUrl: string | undefined;
  /** Express "trust proxy": false, true, a hop count, or addresses/subnets. */
  trustProxy: boolean | number | string;
  timeouts: { headersMs: number; requestMs: number; keepAliveMs: number };
  metrics: { enabled: boolean; token: string | undefined };
  mcp: McpConfig;
  changes: ChangesConfig;
  webhooks: WebhooksConfig;
}

export interface WebhooksConfig {
  /** WEBHOOK_ENDPOINTS_PER_USER: endpoints a user may register; more answer 409. */
  endpointsPerUser: number;
  /** WEBHOOK_TIMEOUT_MS: how long one attempt may take, connection included. */
  timeoutMs: number;
  /** WEBHOOK_RETRY_SCHEDULE: seconds before each retry (jittered ±20 %); an endpoint failing for their sum is disabled. */
  retrySchedule: number[];
  /** WEBHOOK_CONCURRENCY_PER_ENDPOINT: attempts in flight to one endpoint, across instances. */
  concurrencyPerEndpoint: number;
  /** WEBHOOK_CONCURRENCY_PER_USER: attempts in flight to one user's endpoints, across instances. */
  concurrencyPerUser: number;
  /** WEBHOOK_CONCURRENCY: attempts in flight from one instance. */
  concurrency: number;
  /** WEBHOOK_SECRET_OVERLAP_SECONDS: how long a rotated-out secret still signs. */
  secretOverlapSeconds: number;
  /** WEBHOOK_POLL_SECONDS: how often an instance looks for messages other instances queued. */
  pollSeconds: number;
  /** WEBHOOK_RETENTION_SECONDS: how long delivered and given-up messages (and their attempts) are kept. */
  retentionSeconds: number;
  /** The largest body sent (thin payloads stay far below it). */
  payloadMaxBytes: number;
  /** Production: https URLs only. */
  httpsOnly: boolean;
  /** WEBHOOK_ALLOWED_HOSTS: hosts that may be local (loopback, private), development and tests only. */
  allowedHosts: string[];
}

/** About three days: 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h, 24 h, 24 h. */
const WEBHOOK_RETRY_SCHEDULE = [5, 30, 120, 600, 1800, 3600, 10_800, 21_600, 43_200, 86_400, 86_400];

function retrySchedule(env: Env): number[] {
  const raw = read(env, 'WEBHOOK_RETRY_SCHEDULE');
  if (raw === undefined) return WEBHOOK_RETRY_SCHEDULE;
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length > 30 || parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1 || Number(p) > 7 * 86_400)) {
    throw new ConfigError(
      `WEBHOOK_RETRY_SCHEDULE must be up to 30 comma-separated whole numbers of seconds, each from 1 to 604800, got "${raw}"`,
    );
  }
  return parts.map(Number);
}

function webhookHosts(env: Env, production: boolean): string[] {
  const hosts = (read(env, 'WEBHOOK_ALLOWED_HOSTS') ?? '')
    .split(',')
    .map((h) =>
      h
        .trim()
        .toLowerCase()
        .replace(/^\[|\]$/g, ''),
    )
    .filter(Boolean);
  if (production && hosts.length > 0) {
    throw new ConfigError('WEBHOOK_ALLOWED_HOSTS is for development and tests: in production webhooks call public addresses only');
  }
  return hosts;
}

export interface ChangesConfig {
  /** CHANGES_RETENTION_SECONDS: how long tombstones (and so feed cursors) are kept. */
  retentionSeconds: number;
  /**
   * DATABASE_DIRECT_URL: a session connection for LISTEN, when DATABASE_URL is a transaction
   * pooler (Neon's pooled URL); unset: DATABASE_URL itself.
   */
  listenUrl: string | undefined;
  /** EVENTS_HEARTBEAT_SECONDS: a comment on every idle stream this often, so proxies keep it open. */
  heartbeatSeconds: number;
  /** EVENTS_POLL_SECONDS: every stream reads the feed this often even without a wake-up. */
  pollSeconds: number;
  /** EVENTS_STREAMS_PER_USER: open streams per user and instance; more answer 429. */
  streamsPerUser: number;
  /** EVENTS_STREAMS_MAX: open streams per instance; more answer 503. */
  streamsMax: number;
  /**
   * REMINDERS_POLL_SECONDS: how often an instance looks for reminders other instances scheduled
   * (it also wakes at the next one it knows of, and when one of its own writes schedules one).
   */
  remindersPollSeconds: number;
}

export interface McpConfig {
  /**
   * MCP_RESOURCE_URL: this MCP server's resource identifier (RFC 8707/9728), e.g.
   * https://api.example.com/mcp. Set: tokens at /mcp must carry it in `aud`, and REST refuses a
   * token issued for it alone. Unset: /mcp takes the tokens REST takes.
   */
  resourceUrl: string | undefined;
  /**
   * Without MCP_RESOURCE_URL, whether the identifier may be taken from the request's (checked)
   * Host: in development and tests only. In production the 401 challenge then names no metadata
   * and the metadata paths answer 404, as nothing but configuration may say what this resource is.
   */
  resourceFromHost: boolean;
  /** The authorization servers the metadata names (Better Auth's URL, or JWT_ISSUER). */
  authorizationServers: string[];
  /** MCP_CORS_ORIGINS: browser origins allowed to call /mcp; none unless configured. */
  corsOrigins: string[];
}

export type LogFormat = 'json' | 'pretty';

export interface RateLimitConfig {
  windowMs: number;
  /** Requests per user per window; 0: no per-user limit. */
  perUser: number;
  /** Failed (4xx/5xx) requests per client IP per window before the IP is refused; 0: no limit. */
  perIpFailures: number;
}

export interface AuthConfig {
  jwksUrl: string | undefined;
  /** HS256 shared secret; from JWT_SECRET, else BETTER_AUTH_SECRET. */
  secret: string | undefined;
  issuer: string | undefined;
  audience: string | undefined;
  clockToleranceSec: number;
  /** JWT_MAX_AGE: the longest lifetime (exp − iat) and age (now − iat) a token may have; unset: any. */
  maxAgeSec: number | undefined;
  /** Verified tokens remembered until their exp; 0 turns the cache off. */
  tokenCacheSize: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Env = Record<string, string | undefined>;

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === '' ? undefined : value;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return Number(raw);
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = read(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // The value is not echoed: a database URL carries a password.
    throw new ConfigError(`${name} must be a URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

// One process in development; in production one per core when the per-user and per-address
// limits can be shared between the processes (Redis). In-memory counters are per process: n workers
// would each allow the advertised limit, so without Redis more than one worker is refused.
// The embedded database lives inside one process, so without DATABASE_URL there is only ever one.
function workers(env: Env, production: boolean, serverDatabase: boolean, sharedLimits: boolean, limitsOn: boolean): number {
  const fallback = production && serverDatabase && (sharedLimits || !limitsOn) ? availableParallelism() : 1;
  const requested = int(env, 'WORKERS', fallback, 1, 256);
  if (requested > 1 && !serverDatabase) {
    throw new ConfigError('WORKERS above 1 needs DATABASE_URL: the embedded database cannot be shared between processes');
  }
  if (requested > 1 && limitsOn && !sharedLimits) {
    throw new ConfigError(
      'WORKERS above 1 needs REDIS_URL: each worker would keep its own rate-limit counters and allow the advertised limit n times over (or turn the limits off with RATE_LIMIT_PER_USER=0 and RATE_LIMIT_IP_FAILURES=0)',
    );
  }
  return requested;
}

function databaseUrl(env: Env, name: 'DATABASE_URL' | 'DATABASE_DIRECT_URL'): string | undefined {
  const raw = url(env, name, ['postgres:', 'postgresql:']);
  if (raw === undefined) return undefined;
  try {
    parsePostgresUrl(raw);
  } catch (err) {
    if (err instanceof PostgresUrlError) throw new ConfigError(`${name}: ${err.message}`);
    throw err;
  }
  return raw;
}

// Off unless set: behind no proxy, X-Forwarded-For is whatever the client claims.
/** LOG_FORMAT; unset: readable lines in development at a terminal, JSON for everything else. */
function logFormat(env: Env, nodeEnv: string, terminal: boolean): LogFormat {
  const raw = read(env, 'LOG_FORMAT');
  if (raw === undefined) return nodeEnv === 'development' && terminal ? 'pretty' : 'json';
  if (raw === 'json' || raw === 'pretty') return raw;
  throw new ConfigError(`LOG_FORMAT must be json or pretty, not ${JSON.stringify(raw)}`);
}

function trustProxy(raw: string | undefined): boolean | number | string {
  if (raw === undefined || ['false', '0', 'off', 'no'].includes(raw.toLowerCase())) return false;
  if (['true', 'on', 'yes'].includes(raw.toLowerCase())) return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  return raw; // addresses, subnets or names such as "loopback, 10.0.0.0/8"
}

// A random 32-byte secret in hex or base64 estimates at 150 bits and more; a repeated or patterned
// one (32 × "x", "abababab…") at almost nothing.
const MIN_SECRET_ENTROPY_BITS = 96;

/** The smallest unit the text repeats ("abcabcab": "abc"); the text itself when it does not repeat. */
function repeatingUnit(text: string): string {
  for (let p = 1; p <= text.length / 2; p++) {
    let repeats = true;
    for (let i = p; i < text.length && repeats; i++) repeats = text[i] === text[i - p];
    if (repeats) return text.slice(0, p);
  }
  return text;
}

/**
 * A guessability floor: the length of the secret's repeating unit times the Shannon entropy of
 * that unit's character frequencies. Not a strength meter; it catches "x" × 32 and "0123…" × 4.
 */
function estimatedEntropyBits(secret: string): number {
  const chars = [...repeatingUnit(secret)];
  const counts = new Map<string, number>();
  for (const ch of chars) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  let perChar = 0;
  for (const c of counts.values()) perChar -= (c / chars.length) * Math.log2(c / chars.length);
  return perChar * chars.length;
}

/** Where a development server listens unless HOST says otherwise: IPv4 loopback, which every
 * client's `localhost` reaches (curl, browsers and Node try both of its addresses). */
export const LOOPBACK = '127.0.0.1';

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = read(env, 'NODE_ENV') ?? 'development';
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    throw new ConfigError(`NODE_ENV must be development, production or test, got "${nodeEnv}"`);
  }
  const production = nodeEnv === 'production';

  // BETTER_AUTH_URL alone is enough for a Better Auth frontend: its jwt plugin publishes keys at
  // /api/auth/jwks and sets both iss and aud to that URL. Explicit variables take precedence.
  const betterAuthUrl = url(env, 'BETTER_AUTH_URL', ['https:', 'http:'])?.replace(/\/+$/, '');
  const auth: AuthConfig = {
    jwksUrl: url(env, 'JWKS_URL', ['https:', 'http:']) ?? (betterAuthUrl && `${betterAuthUrl}/api/auth/jwks`),
    secret: read(env, 'JWT_SECRET') ?? read(env, 'BETTER_AUTH_SECRET'),
    issuer: read(env, 'JWT_ISSUER') ?? betterAuthUrl,
    audience: read(env, 'JWT_AUDIENCE') ?? betterAuthUrl,
    clockToleranceSec: int(env, 'JWT_CLOCK_TOLERANCE_SECONDS', 5, 0, 300),
    maxAgeSec: read(env, 'JWT_MAX_AGE') === undefined ? undefined : int(env, 'JWT_MAX_AGE', 0, 1, 31_536_000),
    tokenCacheSize: int(env, 'TOKEN_CACHE_SIZE', 10_000, 0, 1_000_000),
  };
  if (production && auth.secret && Buffer.byteLength(auth.secret, 'utf8') < 32) {
    throw new ConfigError('JWT_SECRET (or BETTER_AUTH_SECRET) must be at least 32 bytes when NODE_ENV=production');
  }
  if (production && auth.secret && estimatedEntropyBits(auth.secret) < MIN_SECRET_ENTROPY_BITS) {
    throw new ConfigError(
      `JWT_SECRET (or BETTER_AUTH_SECRET) looks guessable (repeated or too few distinct characters); use at least ${MIN_SECRET_ENTROPY_BITS} random bits, e.g. \`openssl rand -base64 32\``,
    );
  }
  if (production && auth.jwksUrl && new URL(auth.jwksUrl).protocol !== 'https:') {
    throw new ConfigError('JWKS_URL must use https: when NODE_ENV=production (keys fetched over plain http can be forged)');
  }
  if (production && !auth.jwksUrl && !auth.secret) {
    throw new ConfigError('JWKS_URL or JWT_SECRET must be set when NODE_ENV=production (the development secret is refused there)');
  }

  const database = databaseUrl(env, 'DATABASE_URL');
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  const rateLimit: RateLimitConfig = {
    windowMs: int(env, 'RATE_LIMIT_WINDOW_MS', 60_000, 1000, 3_600_000),
    perUser: int(env, 'RATE_LIMIT_PER_USER', 6000, 0, 10_000_000),
    perIpFailures: int(env, 'RATE_LIMIT_IP_FAILURES', 2000, 0, 10_000_000),
  };
  const origins = read(env, 'CORS_ORIGINS') ?? 'http://localhost:3000';

  return {
    env: nodeEnv as Config['env'],
    port: int(env, 'PORT', 8000, 0, 65535),
    host: read(env, 'HOST') ?? (production ? undefined : LOOPBACK),
    logLevel: read(env, 'LOG_LEVEL') ?? (nodeEnv === 'test' ? 'silent' : 'info'),
    logFormat: logFormat(env, nodeEnv, process.stdout.isTTY === true),
    databaseUrl: database,
    dataDir: path.resolve(read(env, 'DATA_DIR') ?? './data'),
    dbPoolMax: int(env, 'DB_POOL_MAX', 10, 1, 1000),
    dbStatementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 5000, 100, 600_000),
    dbConnectTimeoutMs: int(env, 'DB_CONNECT_TIMEOUT_MS', 5000, 100, 600_000),
    // On by default: parsing and planning once per connection is most of a create's cost in the
    // database. A pooler that cannot keep them (PgBouncer before 1.21, Supavisor, RDS Proxy) is
    // detected at its first lost statement, which runs again unnamed, and they go off.
    dbPreparedStatements: bool(env, 'DB_PREPARED_STATEMENTS', true),
    migrateOnStart: bool(env, 'MIGRATE_ON_START', true),
    workers: workers(env, production, database !== undefined, redisUrl !== undefined, rateLimit.perUser > 0 || rateLimit.perIpFailures > 0),
    auth,
    corsOrigins: origins
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    bodyLimitBytes: int(env, 'BODY_LIMIT_BYTES', 64 * 1024, 1024, 10 * 1024 * 1024),
    tasksPerUser: int(env, 'TASKS_PER_USER_MAX', 5000, 1, 10_000_000),
    // Checking every response against the contract catches drift; in production it is opt-in.
    validateResponses: bool(env, 'VALIDATE_RESPONSES', !production),
    shutdownGraceMs: int(env, 'SHUTDOWN_GRACE_MS', 10_000, 0, 600_000),
    // None on the embedded database, a development one: there it would add 1.3 s to every start to
    // take 30 ms off the first second's p95 (measured, docs/performance.md).
    warmUpRequests: int(env, 'WARM_UP_REQUESTS', database ? 2000 : 0, 0, 100_000),
    rateLimit,
    redisUrl,
    trustProxy: trustProxy(read(env, 'TRUST_PROXY')),
    timeouts: {
      headersMs: int(env, 'HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
      requestMs: int(env, 'REQUEST_TIMEOUT_MS', 30_000, 100, 600_000),
      keepAliveMs: int(env, 'KEEP_ALIVE_TIMEOUT_MS', 5_000, 100, 600_000),
    },
    metrics: { enabled: bool(env, 'METRICS', false) || read(env, 'METRICS_TOKEN') !== undefined, token: read(env, 'METRICS_TOKEN') },
    changes: {
      retentionSeconds: int(env, 'CHANGES_RETENTION_SECONDS', 30 * 24 * 3600, 1, 10 * 365 * 24 * 3600),
      listenUrl: database && (databaseUrl(env, 'DATABASE_DIRECT_URL') ?? database),
      heartbeatSeconds: int(env, 'EVENTS_HEARTBEAT_SECONDS', 15, 1, 15),
      pollSeconds: int(env, 'EVENTS_POLL_SECONDS', 30, 1, 3600),
      streamsPerUser: int(env, 'EVENTS_STREAMS_PER_USER', 5, 1, 1000),
      streamsMax: int(env, 'EVENTS_STREAMS_MAX', 1000, 1, 1_000_000),
      // Long by default: its own writes wake an instance at once, and a database polled more often
      // than every 5 minutes (Neon's default) could never scale to zero.
      remindersPollSeconds: int(env, 'REMINDERS_POLL_SECONDS', 600, 1, 86_400),
    },
    webhooks: {
      endpointsPerUser: int(env, 'WEBHOOK_ENDPOINTS_PER_USER', 10, 1, 1000),
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
      retrySchedule: retrySchedule(env),
      concurrencyPerEndpoint: int(env, 'WEBHOOK_CONCURRENCY_PER_ENDPOINT', 4, 1, 100),
      // A quarter of an instance's attempts: one user's endpoints that never answer hold 8 of its
      // 32 slots for a timeout each, never all of them.
      concurrencyPerUser: int(env, 'WEBHOOK_CONCURRENCY_PER_USER', 8, 1, 1000),
      concurrency: int(env, 'WEBHOOK_CONCURRENCY', 32, 1, 1000),
      secretOverlapSeconds: int(env, 'WEBHOOK_SECRET_OVERLAP_SECONDS', 24 * 3600, 0, 30 * 24 * 3600),
      // Its own writes (and the next retry it knows of) wake an instance at once; this catches what
      // an instance that died queued. Long, as REMINDERS_POLL_SECONDS: a database polled more often
      // than every 5 minutes (Neon's default) could never scale to zero.
      pollSeconds: int(env, 'WEBHOOK_POLL_SECONDS', 600, 1, 86_400),
      retentionSeconds: int(env, 'WEBHOOK_RETENTION_SECONDS', 7 * 24 * 3600, 60, 365 * 24 * 3600),
      payloadMaxBytes: 64 * 1024,
      httpsOnly: production,
      allowedHosts: webhookHosts(env, production),
    },
    mcp: {
      resourceUrl: url(env, 'MCP_RESOURCE_URL', ['https:', 'http:']),
      resourceFromHost: !production,
      authorizationServers: auth.issuer ? [auth.issuer] : [],
      corsOrigins: (read(env, 'MCP_CORS_ORIGINS') ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
    },
  };
}
