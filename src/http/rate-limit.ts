// Abuse limits: per client IP before authentication (counting failed requests only, so busy
// clients behind one address are not throttled for succeeding) and per user after it, with
// express-rate-limit's stores. Counters live in memory, or in Redis when several instances must
// share one budget.
import type { NextFunction, Request, RequestHandler } from 'express';
import { ipKeyGenerator, MemoryStore, type Options, type Store } from 'express-rate-limit';
import type { RateLimitConfig } from '../config.js';
import { type HttpProblem, problems } from './problem.js';
import type { SecurityLog } from './security-log.js';

export interface RateLimitStores {
  ip: Store;
  user: Store;
}

function limited(limiter: 'ip' | 'user', windowMs: number): HttpProblem {
  const window = windowMs % 60_000 === 0 ? `${windowMs / 60_000} minute(s)` : `${Math.round(windowMs / 1000)} seconds`;
  return problems.rateLimited(
    limiter === 'user'
      ? `Too many requests for this user in ${window}. Wait for the time in Retry-After.`
      : `Too many failed requests from this address in ${window}. Wait for the time in Retry-After.`,
  );
}

/** Seconds until a counter's window ends, at least 1 (what Retry-After and `t=` say). */
function secondsLeft(resetTime: Date | undefined, windowSec: number): number {
  return resetTime ? Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000)) : windowSec;
}

/** A store's answer, without a promise hop when the store answers synchronously (MemoryStore). */
function settle<T>(value: Promise<T> | T, then: (value: T) => void, fail: (err: unknown) => void): void {
  if (value instanceof Promise) value.then(then, fail);
  else then(value);
}

/** A store that cannot answer does not take the API down with it: the request goes on, unlimited. */
function storeFailed(req: Request, next: NextFunction) {
  return (err: unknown) => {
    req.log.warn({ err: { message: (err as Error).message } }, 'rate-limit store unavailable');
    next();
  };
}

/**
 * The failures the per-address limit counts: every 4xx but the 429 it sends itself, and every 5xx
 * but a 503 (the database or the key source is unavailable: not this caller's doing, and counting
 * it would lock out everyone behind one address during an outage). A request that makes the
 * server fail is counted, so it cannot be repeated without limit.
 */
const isCountedFailure = (status: number) => status >= 400 && status !== 429 && status !== 503;

/**
 * Per client address, failed requests (isCountedFailure) only. express-rate-limit's own way to count
 * failures only (skipSuccessfulRequests) counts every request and takes successes back when they
 * finish, setting headers each time; this reads the counter once per request and writes it only
 * when a request fails, on the same stores (memory or Redis). Requests of an address still in
 * flight count as failures-to-be until they end, so a burst of concurrent failures cannot all pass
 * the check before the first of them is counted.
 */
function failureLimiter(config: RateLimitConfig, security: SecurityLog, store: Store): RequestHandler {
  void store.init?.({ windowMs: config.windowMs } as Options);
  const windowSec = Math.ceil(config.windowMs / 1000);
  const policy = `"ip-failures"; q=${config.perIpFailures}; w=${windowSec}`;
  const inFlight = new Map<string, number>();
  const leave = (key: string) => {
    const n = inFlight.get(key)! - 1;
    if (n === 0) inFlight.delete(key);
    else inFlight.set(key, n);
  };
  return (req, res, next) => {
    const key = ipKeyGenerator(req.ip ?? '');
    const pending = inFlight.get(key) ?? 0;
    inFlight.set(key, pending + 1);
    let left = false;
    const done = () => {
      if (left) return;
      left = true;
      leave(key);
    };
    settle(
      store.get?.(key),
      (info) => {
        if (info && info.totalHits + pending >= config.perIpFailures) {
          done();
          const resetSec = secondsLeft(info.resetTime, windowSec);
          res.setHeader('Retry-After', String(resetSec));
          res.setHeader('RateLimit-Policy', policy);
          res.setHeader('RateLimit', `"ip-failures"; r=0; t=${resetSec}`);
          security(req, { event: 'rate_limited', limiter: 'ip' });
          next(limited('ip', config.windowMs));
          return;
        }
        res.once('close', () => {
          // Counted before it stops being in flight, so the two never both miss it.
          const failed = isCountedFailure(res.statusCode);
          if (failed) settle(store.increment(key), done, done);
          else done();
        });
        next();
      },
      (err) => {
        done();
        storeFailed(req, next)(err);
      },
    );
  };
}

/**
 * Per user, every request. The counting is the store's (express-rate-limit's MemoryStore or
 * rate-limit-redis); the middleware around it is ours, because express-rate-limit's costs a
 * hashed partition key, several promise hops and option checks on every request for the same two
 * headers (replacing it cut the app's CPU per request by about a tenth: `npm run bench:compare`).
 */
function userLimiter(config: RateLimitConfig, security: SecurityLog, store: Store): RequestHandler {
  void store.init?.({ windowMs: config.windowMs } as Options);
  const windowSec = Math.ceil(config.windowMs / 1000);
  const policy = `"user"; q=${config.perUser}; w=${windowSec}`;
  return (req, res, next) => {
    settle(
      store.increment(`user:${res.locals.userId}`),
      ({ totalHits, resetTime }) => {
        const resetSec = secondsLeft(resetTime, windowSec);
        res.setHeader('RateLimit-Policy', policy);
        res.setHeader('RateLimit', `"user"; r=${Math.max(0, config.perUser - totalHits)}; t=${resetSec}`);
        if (totalHits > config.perUser) {
          res.setHeader('Retry-After', String(resetSec));
          security(req, { event: 'rate_limited', limiter: 'user' });
          next(limited('user', config.windowMs));
          return;
        }
        next();
      },
      storeFailed(req, next),
    );
  };
}

export function createRateLimiters(
  config: RateLimitConfig,
  security: SecurityLog,
  stores?: RateLimitStores,
): { ip: RequestHandler; user: RequestHandler } {
  const pass: RequestHandler = (_req, _res, next) => next();
  return {
    ip: config.perIpFailures > 0 ? failureLimiter(config, security, stores?.ip ?? new MemoryStore()) : pass,
    user: config.perUser > 0 ? userLimiter(config, security, stores?.user ?? new MemoryStore()) : pass,
  };
}
