// Warm-up before the port opens. A fresh Node process runs everything unoptimised until V8 has
// seen it run, and opens its database connections and prepares its statements on first use: the
// first seconds of traffic after a start were measured at p95 ≈ 1 s (bench/results, "cold start").
// So the server first sends a few thousand requests of every kind through a private copy of the
// app, over loopback, as a throwaway user whose tasks it deletes again. The copy has its own
// one-off HS256 secret, never stored or shared: no token of it can reach the real app, whatever
// the configured verification, and the real app gains no new way in.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { createApp, type AppConfig } from './app.js';
import { mintToken } from './auth/mint-token.js';
import { createTokenVerifier } from './auth/verify-token.js';
import type { Database } from './db/types.js';

export interface WarmUpResult {
  requests: number;
  ms: number;
}

const CONCURRENCY = 8;
/** However many requests were asked for, the warm-up never holds the start longer than this. */
const TIME_BUDGET_MS = 15_000;

export async function warmUp(db: Database, config: AppConfig, requests: number): Promise<WarmUpResult> {
  const started = performance.now();
  const secret = randomBytes(32).toString('base64url');
  const app = createApp({
    db,
    verifier: createTokenVerifier({ secret, clockToleranceSec: 0 }),
    logger: pino({ level: 'silent' }),
    config: { ...config, rateLimit: { ...config.rateLimit, perUser: 0, perIpFailures: 0 }, metrics: { enabled: false, token: undefined } },
  });
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/tasks`;
  const headers = {
    Authorization: `Bearer ${await mintToken({ secret, userId: `warm-up:${randomUUID()}`, ttlSec: 600 })}`,
    'Content-Type': 'application/json',
  };
  const call = async (method: string, url: string, body?: unknown) => {
    const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const text = await res.text();
    // A database that is down or slow makes every request wait for its timeout: stop at once and
    // start cold (readiness then says what is wrong) rather than hold the start for minutes.
    if (res.status >= 500) throw new Error(`warm-up request answered ${res.status}`);
    return text ? (JSON.parse(text) as { id?: number }) : {};
  };
  let sent = 0;
  const worker = async () => {
    // One round of the operations clients use most, ending with the task deleted again.
    while (sent < requests && performance.now() - started < TIME_BUDGET_MS) {
      sent += 8;
      const { id } = await call('POST', base, { title: 'warm-up', tags: ['warm-up'], priority: 'low' });
      await call('GET', `${base}?limit=20`);
      await call('GET', `${base}/${id}`);
      await call('PATCH', `${base}/${id}/complete`);
      await call('PATCH', `${base}/${id}`, { description: 'warm' });
      await call('PUT', `${base}/${id}`, { title: 'warm-up again' });
      await call('GET', `${base}?sort=position&tag=warm-up&q=warm`);
      await call('DELETE', `${base}/${id}`);
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // Whatever an error left behind goes too.
    await call('DELETE', `${base}?status=completed`);
    for (const t of (await call('GET', `${base}?limit=500`)) as unknown as { id: number }[]) await call('DELETE', `${base}/${t.id}`);
  } finally {
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections(); // fetch keeps its connections alive; close() would wait for them
    await closed;
  }
  return { requests: sent, ms: Math.round(performance.now() - started) };
}
