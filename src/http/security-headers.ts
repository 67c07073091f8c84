// Security headers from helmet, with settings that suit a JSON API (OWASP's REST cheat sheet):
// nothing may be framed, loaded, sniffed or run from its responses, and HTTPS is sticky. (/docs
// sets its own, looser policy for the Redoc page.)
import type { RequestHandler } from 'express';
import helmet from 'helmet';

export function securityHeaders(): RequestHandler {
  return helmet({
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
}
