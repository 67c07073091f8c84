// Abuse limits: rate limits per user and per address (in memory and in Redis), request size and
// shape limits, slow clients cut off, and the security headers of a JSON API.
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, redisRateLimitStores, type RedisConnection } from '../src/redis.js';
import { createHttpServer } from '../src/http/graceful-server.js';
import { bearer, buildApp, newUser } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

function expect429(res: request.Response) {
  expect(res.status).toBe(429);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.code).toBe('rate_limited');
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  expect(res.headers['ratelimit-policy']).toMatch(/q=\d+; ?w=\d+/);
  expect(res.headers.ratelimit).toMatch(/r=0/);
}

describe('per-user rate limit', () => {
  it('answers 429 past the limit for that user only, with RateLimit headers and Retry-After', async () => {
    const { app } = buildApp(database.db, { rateLimit: { perUser: 3 } });
    const alice = await bearer(newUser());
    for (let i = 0; i < 3; i++) {
      const ok = await request(app).get('/api/tasks').set('Authorization', alice);
      expect(ok.status).toBe(200);
      expect(ok.headers['ratelimit-policy']).toBe('"user"; q=3; w=60');
      expect(ok.headers.ratelimit).toMatch(new RegExp(`^"user"; r=${2 - i}; t=([1-9]|[1-5][0-9]|60)$`));
    }
    expect429(await request(app).get('/api/tasks').set('Authorization', alice));
    expect429(await request(app).post('/api/tasks').set('Authorization', alice).send({ title: 'x' }));
    expect(
      (
        await request(app)
          .get('/api/tasks')
          .set('Authorization', await bearer(newUser()))
      ).status,
    ).toBe(200);
  });
});

describe('a rate-limit store that cannot answer', () => {
  it('lets requests through (and logs it) rather than failing them', async () => {
    const broken = {
      init: () => {},
      get: () => Promise.reject(new Error('store down')),
      increment: () => Promise.reject(new Error('store down')),
      decrement: () => {},
      resetKey: () => {},
    };
    const { app } = buildApp(database.db, { rateLimit: { perUser: 1, perIpFailures: 1 }, rateLimitStores: { ip: broken, user: broken } });
    const auth = await bearer(newUser());
    for (let i = 0; i < 3; i++) expect((await request(app).get('/api/tasks').set('Authorization', auth)).status).toBe(200);
  });
});

describe('per-address limit on failed requests', () => {
  it('does not count successes, then refuses everything from an address with too many failures', async () => {
    const { app } = buildApp(database.db, { rateLimit: { perIpFailures: 3 } });
    const auth = await bearer(newUser());
    for (let i = 0; i < 10; i++) expect((await request(app).get('/api/tasks').set('Authorization', auth)).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await request(app).get('/api/tasks').set('Authorization', 'Bearer wrong')).status).toBe(401);
    expect429(await request(app).get('/api/tasks').set('Authorization', auth));
    expect429(await request(app).get('/health'));
  });

  it('tells clients apart by X-Forwarded-For only when TRUST_PROXY says so', async () => {
    const trusting = buildApp(database.db, { rateLimit: { perIpFailures: 1 }, trustProxy: 'loopback' }).app;
    await request(trusting).get('/nope').set('X-Forwarded-For', '203.0.113.7');
    expect((await request(trusting).get('/health').set('X-Forwarded-For', '203.0.113.7')).status).toBe(429);
    expect((await request(trusting).get('/health').set('X-Forwarded-For', '203.0.113.8')).status).toBe(200);

    const direct = buildApp(database.db, { rateLimit: { perIpFailures: 1 } }).app;
    await request(direct).get('/nope').set('X-Forwarded-For', '203.0.113.7');
    // Without a trusted proxy the header is the client's own claim: it cannot buy a fresh budget.
    expect((await request(direct).get('/health').set('X-Forwarded-For', '198.51.100.1')).status).toBe(429);
  });
});

describe('rate limits in Redis', () => {
  let redis: RedisConnection | undefined;
  let reason = '';
  beforeAll(async () => {
    try {
      redis = await connectRedis(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
    } catch (err) {
      reason = (err as Error).message;
      // CI starts Redis before the session: there, a missing one is a failure, not a skip.
      if (process.env.CI === 'true') throw err;
      console.warn(`limits.test: no Redis (${reason}); the shared-store tests are skipped`);
    }
  });
  afterAll(async () => {
    await redis?.quit();
  });

  it('shares one budget between two instances', async (ctx) => {
    if (!redis) ctx.skip(`no Redis at TEST_REDIS_URL or 127.0.0.1:6379 (${reason})`);
    const prefix = `todo-api-test:${Date.now()}:${Math.random()}:`;
    const stores = () => redisRateLimitStores(redis!, prefix);
    const one = buildApp(database.db, { rateLimit: { perUser: 4 }, rateLimitStores: stores() }).app;
    const two = buildApp(database.db, { rateLimit: { perUser: 4 }, rateLimitStores: stores() }).app;
    const auth = await bearer(newUser());
    expect((await request(one).get('/api/tasks').set('Authorization', auth)).status).toBe(200);
    expect((await request(two).get('/api/tasks').set('Authorization', auth)).status).toBe(200);
    expect((await request(one).get('/api/tasks').set('Authorization', auth)).status).toBe(200);
    expect((await request(two).get('/api/tasks').set('Authorization', auth)).status).toBe(200);
    expect429(await request(one).get('/api/tasks').set('Authorization', auth));
    expect429(await request(two).get('/api/tasks').set('Authorization', auth));
  });

  it('shares the per-address failure budget between two instances, and counts failures only', async (ctx) => {
    if (!redis) ctx.skip(`no Redis at TEST_REDIS_URL or 127.0.0.1:6379 (${reason})`);
    const prefix = `todo-api-test:${Date.now()}:${Math.random()}:`;
    const one = buildApp(database.db, { rateLimit: { perIpFailures: 2 }, rateLimitStores: redisRateLimitStores(redis!, prefix) }).app;
    const two = buildApp(database.db, { rateLimit: { perIpFailures: 2 }, rateLimitStores: redisRateLimitStores(redis!, prefix) }).app;
    for (let i = 0; i < 5; i++) expect((await request(one).get('/health')).status).toBe(200);
    expect((await request(one).get('/nope')).status).toBe(404);
    expect((await request(two).get('/nope')).status).toBe(404);
    // Failures are counted once the response has gone out.
    await new Promise((r) => setTimeout(r, 100));
    expect429(await request(one).get('/health'));
    expect429(await request(two).get('/health'));
  });
});

describe('request limits', () => {
  it('refuses JSON nested deeper than 32 levels with 400, before parsing it', async () => {
    const { app } = buildApp(database.db);
    const auth = await bearer(newUser());
    const deep = `{"title":"x","description":${'['.repeat(40)}${']'.repeat(40)}}`;
    const res = await request(app).post('/api/tasks').set('Authorization', auth).set('Content-Type', 'application/json').send(deep);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'invalid_json', detail: expect.stringMatching(/nested deeper than 32/) });
    const brackets = `{"title":"${'['.repeat(100)}"}`; // brackets inside a string are not nesting
    expect(
      (await request(app).post('/api/tasks').set('Authorization', auth).set('Content-Type', 'application/json').send(brackets)).status,
    ).toBe(201);
  });

  it('reads at most 32 query parameters', async () => {
    const { app } = buildApp(database.db);
    const many = Array.from({ length: 200 }, (_, i) => `p${i}=1`).join('&');
    const res = await request(app)
      .get(`/api/tasks?${many}`)
      .set('Authorization', await bearer(newUser()));
    expect(res.status).toBe(422);
    expect(res.body.errors.length).toBeLessThanOrEqual(32);
  });

  it('answers 431 to headers and URL over 16 KiB, and cuts off a client that sends headers too slowly', async () => {
    const { app } = buildApp(database.db);
    const server = createHttpServer(app, { headersMs: 1000, requestMs: 2000, keepAliveMs: 1000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const big = await fetch(`http://127.0.0.1:${port}/health?x=${'a'.repeat(20_000)}`);
      expect(big.status).toBe(431);

      // Cut off by the headers timeout (408, or a bare close); without one the drip never ends.
      const outcome = await new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write('GET /health HTTP/1.1\r\nHost: localhost\r\n');
          const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 300);
          let data = '';
          socket.on('data', (d) => (data += d.toString()));
          socket.on('close', () => {
            clearInterval(drip);
            resolve(data);
          });
          socket.on('error', () => {});
        });
      });
      expect(outcome.startsWith('HTTP/1.1 408') || outcome === '').toBe(true);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('security headers', () => {
  it('sends what a JSON API should, and no X-Powered-By', async () => {
    const { app } = buildApp(database.db);
    const res = await request(app)
      .get('/api/tasks')
      .set('Authorization', await bearer(newUser()));
    expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
    // HTML-only headers are left out of a JSON API's responses.
    for (const name of [
      'x-dns-prefetch-control',
      'x-download-options',
      'origin-agent-cluster',
      'x-permitted-cross-domain-policies',
      'x-xss-protection',
    ]) {
      expect(res.headers[name], name).toBeUndefined();
    }
    expect(res.headers['x-powered-by']).toBeUndefined();
  });
});
