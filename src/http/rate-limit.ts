// Abuse limits with express-rate-limit: per client IP before authentication (counting failed
// requests only, so busy clients behind one address are not throttled for succeeding) and per user
// after it. Counters live in memory, or in Redis when several instances must share one budget.
import type { RequestHandler } from 'express';
import { rateLimit, type Store } from 'express-rate-limit';
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
  const ip =
    config.perIpFailures > 0
      ? rateLimit({
          ...common,
          identifier: 'ip-failures',
          limit: config.perIpFailures,
          skipSuccessfulRequests: true,
          ...(stores ? { store: stores.ip } : {}),
          handler: (req, _res, next) => {
            security(req, { event: 'rate_limited', limiter: 'ip' });
            next(limited('ip', config.windowMs));
          },
        })
      : pass;
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
