// Abuse limits: per client IP before authentication (counting failed requests only, so busy
// clients behind one address are not throttled for succeeding) and per user after it, with
// express-rate-limit's stores. Counters live in memory, or in Redis when several instances must
// share one budget.
import type { RequestHandler } from 'express';
import { ipKeyGenerator, MemoryStore, rateLimit, type Options, type Store } from 'express-rate-limit';
import type { RateLimitConfig } from '../config.js';
import { HttpProblem } from './problem.js';
import type { SecurityLog } from './security-log.js';

export interface RateLimitStores {
  ip: Store;
  user: Store;
}

function limited(limiter: 'ip' | 'user', windowMs: number): HttpProblem {
  const window = windowMs % 60_000 === 0 ? `${windowMs / 60_000} minute(s)` : `${Math.round(windowMs / 1000)} seconds`;
  return new HttpProblem({
    status: 429,
    code: 'rate_limited',
    title: 'Too many requests',
    detail:
      limiter === 'user'
        ? `Too many requests for this user in ${window}. Wait for the time in Retry-After.`
        : `Too many failed requests from this address in ${window}. Wait for the time in Retry-After.`,
  });
}

/**
 * Per client address, failed requests (4xx and 5xx) only. express-rate-limit's own way to count
 * failures only (skipSuccessfulRequests) counts every request and takes successes back when they
 * finish, setting headers each time; this reads the counter once per request and writes it only
 * when a request fails, on the same stores (memory or Redis).
 */
function failureLimiter(config: RateLimitConfig, security: SecurityLog, store: Store): RequestHandler {
  void store.init?.({ windowMs: config.windowMs } as Options);
  const windowSec = Math.ceil(config.windowMs / 1000);
  return (req, res, next) => {
    const key = ipKeyGenerator(req.ip ?? '');
    Promise.resolve(store.get?.(key)).then(
      (info) => {
        if (info && info.totalHits >= config.perIpFailures) {
          const resetSec = info.resetTime ? Math.max(1, Math.ceil((info.resetTime.getTime() - Date.now()) / 1000)) : windowSec;
          res.setHeader('Retry-After', String(resetSec));
          res.setHeader('RateLimit-Policy', `"ip-failures"; q=${config.perIpFailures}; w=${windowSec}`);
          res.setHeader('RateLimit', `"ip-failures"; r=0; t=${resetSec}`);
          security(req, { event: 'rate_limited', limiter: 'ip' });
          next(limited('ip', config.windowMs));
          return;
        }
        res.once('finish', () => {
          if (res.statusCode >= 400) Promise.resolve(store.increment(key)).catch(() => {});
        });
        next();
      },
      // A store that cannot answer does not take the API down with it.
      (err: unknown) => {
        req.log.warn({ err: { message: (err as Error).message } }, 'rate-limit store unavailable');
        next();
      },
    );
  };
}

export function createRateLimiters(
  config: RateLimitConfig,
  security: SecurityLog,
  stores?: RateLimitStores,
): { ip: RequestHandler; user: RequestHandler } {
  const pass: RequestHandler = (_req, _res, next) => next();
  const common = {
    windowMs: config.windowMs,
    standardHeaders: 'draft-8' as const,
    legacyHeaders: false,
    // X-Forwarded-For is ignored unless TRUST_PROXY says a proxy sets it; a client sending it
    // anyway is not a misconfiguration worth a warning on every start.
    validate: { xForwardedForHeader: false },
  };
  const ip = config.perIpFailures > 0 ? failureLimiter(config, security, stores?.ip ?? new MemoryStore()) : pass;
  const user =
    config.perUser > 0
      ? rateLimit({
          ...common,
          identifier: 'user',
          limit: config.perUser,
          keyGenerator: (_req, res) => `user:${res.locals.userId}`,
          ...(stores ? { store: stores.user } : {}),
          handler: (req, _res, next) => {
            security(req, { event: 'rate_limited', limiter: 'user' });
            next(limited('user', config.windowMs));
          },
        })
      : pass;
  return { ip, user };
}
