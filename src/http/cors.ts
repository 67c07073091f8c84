// CORS with its answers worked out once. Preflights (OPTIONS) go to the `cors` package; every other
// request gets the headers `cors` would give it (Allow-Origin for `*` or for a listed Origin,
// `Vary: Origin` when the answer depends on it, Expose-Headers), from strings built here at start,
// instead of `cors` rebuilding and joining them on every request.
import type { RequestHandler } from 'express';
import cors from 'cors';

export interface CorsPolicy {
  /** Allowed origins; `*` allows any. */
  origins: string[];
  allowedHeaders: string[];
  exposedHeaders: string[];
  maxAgeSec: number;
}

export function corsPolicy({ origins, allowedHeaders, exposedHeaders, maxAgeSec }: CorsPolicy): RequestHandler {
  const any = origins.includes('*');
  const fromPackage = cors({ origin: any ? '*' : origins, allowedHeaders, exposedHeaders, maxAge: maxAgeSec });
  const allowed = new Set(origins);
  const exposed = exposedHeaders.join(',');
  return (req, res, next) => {
    if (req.method === 'OPTIONS') return fromPackage(req, res, next);
    if (any) res.setHeader('Access-Control-Allow-Origin', '*');
    else {
      const origin = req.headers.origin;
      if (origin !== undefined && allowed.has(origin)) res.setHeader('Access-Control-Allow-Origin', origin);
      // Nothing before this sets Vary; were it set, `cors` would merge into it.
      if (res.hasHeader('Vary')) return fromPackage(req, res, next);
      res.setHeader('Vary', 'Origin');
    }
    if (exposed) res.setHeader('Access-Control-Expose-Headers', exposed);
    next();
  };
}
