// Configuration is checked at start; a bad value names its variable.
import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';

// A random-looking secret of 32 bytes and more, as production requires.
const STRONG_SECRET = 'kX3v9Qm2Lw8Rt5Zp1Yc7Hn4Bf6Dj0Gs2Ue';

describe('loadConfig', () => {
  it('has working defaults for a fresh machine', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ env: 'development', port: 8000, databaseUrl: undefined, migrateOnStart: true, validateResponses: true });
    expect(c.corsOrigins).toEqual(['http://localhost:3000']);
    expect(c.dataDir).toMatch(/data$/);
  });

  it('falls back from JWT_SECRET to BETTER_AUTH_SECRET', () => {
    expect(loadConfig({ BETTER_AUTH_SECRET: 'b' }).auth.secret).toBe('b');
    expect(loadConfig({ JWT_SECRET: 'j', BETTER_AUTH_SECRET: 'b' }).auth.secret).toBe('j');
  });

  it('derives JWKS URL, issuer and audience from BETTER_AUTH_URL, explicit values winning', () => {
    expect(loadConfig({ BETTER_AUTH_URL: 'https://app.example.com/' }).auth).toMatchObject({
      jwksUrl: 'https://app.example.com/api/auth/jwks',
      issuer: 'https://app.example.com',
      audience: 'https://app.example.com',
    });
    expect(
      loadConfig({ BETTER_AUTH_URL: 'https://app.example.com', JWKS_URL: 'https://keys.example.com/jwks', JWT_AUDIENCE: 'api' }).auth,
    ).toMatchObject({ jwksUrl: 'https://keys.example.com/jwks', issuer: 'https://app.example.com', audience: 'api' });
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ DB_POOL_MAX: '0' }, /DB_POOL_MAX/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL/],
    [{ JWKS_URL: 'ftp://x/jwks' }, /JWKS_URL/],
    [{ MIGRATE_ON_START: 'maybe' }, /MIGRATE_ON_START/],
    [{ NODE_ENV: 'staging' }, /NODE_ENV/],
    [{ NODE_ENV: 'production' }, /JWKS_URL or JWT_SECRET/],
  ])('refuses %o naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('turns response validation off in production unless asked for', () => {
    const secret = 'a-production-secret-of-32-bytes!';
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret }).validateResponses).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, VALIDATE_RESPONSES: 'true' }).validateResponses).toBe(true);
  });

  it('refuses a weak shared secret or a plain-http JWKS URL in production, not in development', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short-secret' })).toThrow(/at least 32 bytes/);
    expect(() => loadConfig({ NODE_ENV: 'production', BETTER_AUTH_SECRET: 'x'.repeat(31) })).toThrow(/at least 32 bytes/);
    expect(() => loadConfig({ NODE_ENV: 'production', JWKS_URL: 'http://auth.example.com/api/auth/jwks' })).toThrow(/https/);
    expect(() => loadConfig({ NODE_ENV: 'production', BETTER_AUTH_URL: 'http://auth.example.com' })).toThrow(/https/);
    expect(loadConfig({ NODE_ENV: 'production', JWKS_URL: 'https://auth.example.com/api/auth/jwks' }).auth.jwksUrl).toMatch(/^https/);
    expect(loadConfig({ JWT_SECRET: 'short', JWKS_URL: 'http://localhost:3000/api/auth/jwks' }).auth.secret).toBe('short');
  });

  it('refuses a long but guessable secret in production, and reads a URL scheme in any case (security item 15)', () => {
    for (const guessable of ['x'.repeat(32), 'ab'.repeat(20), '0123456789'.repeat(4)]) {
      expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: guessable })).toThrow(/looks guessable/);
    }
    // What `openssl rand -hex 32` and `openssl rand -base64 32` print.
    expect(
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: '3f9a1c07b2e84d6695a0c4e1f7d2b38a6c5e90f1d4a7b2c8e3f6a9d0c1b4e7f2' }).auth.secret,
    ).toBeDefined();
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'q8Vx2Lr0TnW5yKc3Hb7Zp9Mf1Dg4Js6Ea0Uo8Ri2Yt4=' }).auth.secret).toBeDefined();
    expect(loadConfig({ NODE_ENV: 'production', JWKS_URL: 'HTTPS://auth.example.com/api/auth/jwks' }).auth.jwksUrl).toBe(
      'HTTPS://auth.example.com/api/auth/jwks',
    );
    expect(() => loadConfig({ NODE_ENV: 'production', JWKS_URL: 'HTTP://auth.example.com/api/auth/jwks' })).toThrow(/https/);
    expect(loadConfig({ JWT_MAX_AGE: '3600' }).auth.maxAgeSec).toBe(3600);
    expect(loadConfig({}).auth.maxAgeSec).toBeUndefined();
    expect(() => loadConfig({ JWT_MAX_AGE: '0' })).toThrow(/JWT_MAX_AGE/);
  });

  it('runs one process unless told otherwise, and never several over the embedded database', () => {
    const redis = { REDIS_URL: 'redis://127.0.0.1:6379' };
    const production = { NODE_ENV: 'production', JWT_SECRET: STRONG_SECRET, DATABASE_URL: 'postgres://x@h/db' };
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ DATABASE_URL: 'postgres://x@h/db', WORKERS: '4', ...redis }).workers).toBe(4);
    expect(loadConfig({ ...production, ...redis }).workers).toBe(availableParallelism());
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: STRONG_SECRET }).workers).toBe(1);
    expect(() => loadConfig({ WORKERS: '2' })).toThrow(/WORKERS above 1 needs DATABASE_URL/);
  });

  it('runs one worker without Redis, so the advertised rate limits hold', () => {
    // Counters in memory are per process: n workers would each allow the whole limit.
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: STRONG_SECRET, DATABASE_URL: 'postgres://x@h/db' }).workers).toBe(1);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://x@h/db', WORKERS: '2' })).toThrow(/WORKERS above 1 needs REDIS_URL/);
    const unlimited = { RATE_LIMIT_PER_USER: '0', RATE_LIMIT_IP_FAILURES: '0' };
    expect(loadConfig({ DATABASE_URL: 'postgres://x@h/db', WORKERS: '2', ...unlimited }).workers).toBe(2);
  });

  it("checks DATABASE_URL's TLS parameters as libpq reads them, without echoing the URL", () => {
    const neon = 'postgresql://u:p4ss@ep-x-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require&channel_binding=require';
    expect(loadConfig({ DATABASE_URL: neon }).databaseUrl).toBe(neon);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:p4ss@h/db?sslmode=required' })).toThrow(
      /DATABASE_URL: sslmode=required is not one of disable, allow, prefer, require, verify-ca, verify-full/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:p4ss@h/db?sslmode=disable&channel_binding=require' })).toThrow(
      /channel_binding=require needs TLS/,
    );
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:p4ss@h/db?channel_binding=always' })).toThrow(/channel_binding=always/);
    try {
      loadConfig({ DATABASE_URL: 'mysql://u:p4ss@h/db' });
    } catch (err) {
      expect((err as Error).message).not.toContain('p4ss');
    }
    expect.assertions(5);
  });

  it('reads rate limits, trust proxy, timeouts and metrics', () => {
    const c = loadConfig({ RATE_LIMIT_PER_USER: '10', TRUST_PROXY: '1', METRICS_TOKEN: 'm', REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(c.rateLimit.perUser).toBe(10);
    expect(c.trustProxy).toBe(1);
    expect(c.metrics).toEqual({ enabled: true, token: 'm' });
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect(loadConfig({ TRUST_PROXY: 'loopback, 10.0.0.0/8' }).trustProxy).toBe('loopback, 10.0.0.0/8');
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(() => loadConfig({ REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/);
  });
});
