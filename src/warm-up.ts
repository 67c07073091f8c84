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
  /** Requests answered. */
  requests: number;
  /** Requests sent: those answered, and those the deadline cut off. */
  sent: number;
  ms: number;
  /** True when the deadline ended it: requests still in flight then were dropped unanswered. */
  deadline: boolean;
}

const CONCURRENCY = 8;
/**
 * However many requests were asked for, and however slow the database, the warm-up never holds the
 * start longer than this: a hard deadline, counted from its start, at which it stops waiting for
 * the requests in flight (a slow database, a first connection, a cold compute) and returns.
 */
export const WARM_UP_BUDGET_MS = 2_000;
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
export async function warmUp(
  db: Database,
  config: AppConfig,
  requests: number,
  validation?: RequestHandler[],
  budgetMs = WARM_UP_BUDGET_MS,
): Promise<WarmUpResult> {
  const started = performance.now();
  // The deadline: the requests in flight are aborted, and no other is sent.
  const stop = new AbortController();
  const { signal } = stop;
  let cutShort = false;
  const deadline = setTimeout(() => {
    cutShort = true;
    stop.abort();
  }, budgetMs);
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
  // Settles at the deadline (or at once, if it has passed): whatever is still running is not waited for.
  const atDeadline = new Promise<void>((resolve) =>
    signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  // node:http rather than fetch: undici's Request, Headers and web streams cost as much CPU as the
  // app's side of each request, and the warm-up has a time budget.
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const send = (method: string, path: string, typed: boolean, body?: string) =>
    new Promise<number>((resolve, reject) => {
      const headers: Record<string, string> = { Authorization: authorization };
      if (typed) headers['Content-Type'] = 'application/json';
      const req = request({ host: '127.0.0.1', port, method, path: `/api/tasks${path}`, headers, agent, signal }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  let sent = 0;
  let answered = 0;
  let rounds = 0;
  const worker = async () => {
    while (sent < requests && !signal.aborted) {
      // Requests without a body come both ways (browsers send no Content-Type, some clients always
      // one), and the validator compiles each apart.
      const typed = rounds++ % 2 === 1;
      for (const { method, path, body, expect } of ROUND) {
        if (signal.aborted) return;
        sent++;
        const status = await (body === undefined ? send(method, path, typed) : send(method, path, true, JSON.stringify(body))).catch(
          (err: unknown) => {
            if (signal.aborted) return undefined; // cut off by the deadline
            throw err;
          },
        );
        if (status === undefined) return;
        // A database that is down or slow makes every request wait for its timeout: stop at once
        // and start cold (readiness then says what is wrong) rather than hold the start.
        if (status !== expect) throw new Error(`warm-up ${method} answered ${status}, not ${expect}`);
        answered++;
      }
    }
  };
  const workers = Promise.all(Array.from({ length: CONCURRENCY }, worker));
  // After the race, a worker's failure is no one's concern: its outcome was decided.
  workers.catch(() => {});
  try {
    // The workers end when the requests are answered, or at the deadline, when their requests are
    // aborted; the race holds to the deadline even if something in a request does not heed it.
    await Promise.race([workers, atDeadline]);
  } finally {
    clearTimeout(deadline);
    stop.abort(); // whatever is left stops now: the siblings of a worker that failed, too
    agent.destroy();
    const closed = new Promise((resolve) => server.close(resolve));
    // The agent's connections are kept alive, and a request cut off at the deadline may still be
    // waiting for the database inside the copy: close() would wait for them, so they are cut. A
    // handler still running then ends on its own (its statement times out at worst), answering
    // a socket that is gone.
    server.closeAllConnections();
    await closed;
  }
  return { requests: answered, sent, ms: Math.round(performance.now() - started), deadline: cutShort };
}
