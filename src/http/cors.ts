// CORS by the `cors` package, configured once: the origins allowed (`*` for any), the request
// headers a browser may send and the response headers it may read.
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
  return cors({ origin: origins.includes('*') ? '*' : origins, allowedHeaders, exposedHeaders, maxAge: maxAgeSec });
}
