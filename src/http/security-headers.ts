// Security headers from helmet, with settings that suit a JSON API (OWASP's REST cheat sheet):
// nothing may be framed, loaded, sniffed or run from its responses, and HTTPS is sticky. They do not depend on the request, so helmet runs once, at start, and
// every response gets the headers it set. (/docs sets its own, looser policy for the Redoc page.)
import type { RequestHandler } from 'express';
import helmet from 'helmet';

export function securityHeaders(): RequestHandler {
  const headers: [string, string][] = [];
  const recorder = {
    setHeader: (name: string, value: string) => headers.push([name, value]),
    removeHeader: () => {},
  };
  const middleware = helmet({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    // Headers that only mean something for HTML pages and old browsers' handling of them: a JSON
    // API gains nothing from them but bytes on every response.
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false,
  });
  let ran = false;
  middleware({} as never, recorder as never, () => (ran = true));
  if (!ran) throw new Error('helmet did not finish synchronously');
  return (_req, res, next) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    next();
  };
}
