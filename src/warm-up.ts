// Warm-up before the port opens. A fresh Node process runs everything unoptimised until V8 has
// seen it run, and opens its database connections on first use: the first seconds of traffic
// after a start were measured at p95 ≈ 1 s without it (bench/results, "cold start").
// So the server first sends requests of every kind through a private copy of the app, over
// loopback, as a throwaway user who has no tasks and never gets one: reads, and writes that find
// nothing to change (404) or that the contract refuses (422). Every layer runs — auth, limits,
// validation, each statement, problem+json — and nothing is written: no rows, no used-up ids.
// The copy has its own one-off HS256 secret, never stored or shared: no token of it can reach the
// real app, whatever the configured verification, and the real app gains no new way in.
import { randomBytes, randomUUID } from 'node:crypto';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RequestHandler } from 'express';
import { pino } from 'pino';
import { createApp, type AppConfig } from './app.js';
import { mintToken } from './auth/mint-token.js';
import { createTokenVerifier } from './auth/verify-token.js';
import type { Database } from './db/types.js';
import { expressBorn } from './http/express-born.js';

export interface WarmUpResult {
  requests: number;
  ms: number;
}

const CONCURRENCY = 8;
/** However many requests were asked for, the warm-up never holds the start longer than this. */
const TIME_BUDGET_MS = 2_000;
/** A task id no one has: the writes below run their statements and find nothing. */
const NO_SUCH_TASK = Number.MAX_SAFE_INTEGER;

/** One round of what clients do most, each answered as expected without writing anything. */
const ROUND: ReadonlyArray<{ method: string; path: string; body?: unknown; expect: number }> = [
  { method: 'GET', path: '', expect: 200 },
  { method: 'GET', path: '?limit=20&sort=position&tag=warm-up&q=warm&status=pending', expect: 200 },
  { method: 'GET', path: '/stats', expect: 200 },
  { method: 'GET', path: `/${NO_SUCH_TASK}`, expect: 404 },
  { method: 'PATCH', path: `/${NO_SUCH_TASK}/complete`, expect: 404 },
  { method: 'PATCH', path: `/${NO_SUCH_TASK}`, body: { description: 'warm', priority: 'low' }, expect: 404 },
  { method: 'PUT', path: `/${NO_SUCH_TASK}`, body: { title: 'warm-up', tags: ['warm-up'] }, expect: 404 },
  { method: 'DELETE', path: `/${NO_SUCH_TASK}`, expect: 404 },
  // A create the contract refuses (a blank title) runs everything a create does but the INSERT.
  { method: 'POST', path: '', body: { title: ' ', tags: ['warm-up'], priority: 'low' }, expect: 422 },
];

/**
 * `validation` is the app's own (createValidator): express-openapi-validator compiles an
 * operation's validator on its first request, per method, route and Content-Type, so the warm-up's
 * requests compile them for the app instead of its first callers.
 */
export async function warmUp(db: Database, config: AppConfig, requests: number, validation?: RequestHandler[]): Promise<WarmUpResult> {
  const started = performance.now();
  const secret = randomBytes(32).toString('base64url');
  const app = createApp({
    db,
    verifier: createTokenVerifier({ secret, clockToleranceSec: 0 }),
    logger: pino({ level: 'silent' }),
    config: { ...config, rateLimit: { ...config.rateLimit, perUser: 0, perIpFailures: 0 }, metrics: { enabled: false, token: undefined } },
    validation,
  });
  const server = createServer(expressBorn(app), app);
  // exclusive: in a cluster worker a plain listen(0) would share one port among the workers, and
  // this worker's requests could reach another worker's private copy.
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, resolve));
  const { port } = server.address() as AddressInfo;
  const authorization = `Bearer ${await mintToken({ secret, userId: `warm-up:${randomUUID()}`, ttlSec: 600 })}`;
  // node:http rather than fetch: undici's Request, Headers and web streams cost as much CPU as the
  // app's side of each request, and the warm-up has a time budget.
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const send = (method: string, path: string, typed: boolean, body?: string) =>
    new Promise<number>((resolve, reject) => {
      const headers: Record<string, string> = { Authorization: authorization };
      if (typed) headers['Content-Type'] = 'application/json';
      const req = request({ host: '127.0.0.1', port, method, path: `/api/tasks${path}`, headers, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  let sent = 0;
  let rounds = 0;
  const worker = async () => {
    while (sent < requests && performance.now() - started < TIME_BUDGET_MS) {
      // Requests without a body come both ways (browsers send no Content-Type, some clients always
      // one), and the validator compiles each apart.
      const typed = rounds++ % 2 === 1;
      for (const { method, path, body, expect } of ROUND) {
        sent++;
        const status = await (body === undefined ? send(method, path, typed) : send(method, path, true, JSON.stringify(body)));
        // A database that is down or slow makes every request wait for its timeout: stop at once
        // and start cold (readiness then says what is wrong) rather than hold the start.
        if (status !== expect) throw new Error(`warm-up ${method} answered ${status}, not ${expect}`);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  } finally {
    agent.destroy();
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections(); // the agent's connections are kept alive; close() would wait for them
    await closed;
  }
  return { requests: sent, ms: Math.round(performance.now() - started) };
}
