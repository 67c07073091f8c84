// Express middleware: the bearer token becomes res.locals.userId, or the request ends with 401.
import type { RequestHandler } from 'express';
import { HttpProblem, problems } from '../http/problem.js';
import type { SecurityLog } from '../http/security-log.js';
import { KeySourceUnavailableError, TokenError, type TokenVerifier } from './verify-token.js';

const REALM = 'Bearer realm="todo-api"';
const BEARER = /^Bearer +(\S+) *$/i;

function unauthorized(code: 'token_missing' | 'token_invalid' | 'token_expired', detail: string): HttpProblem {
  // RFC 6750: no error code when no credentials were sent; invalid_token when they were refused.
  const challenge =
    code === 'token_missing'
      ? REALM
      : `${REALM}, error="invalid_token", error_description="${detail.replace(/["\\`]/g, '')}"`;
  return new HttpProblem({
    status: 401,
    code,
    title: 'Unauthorized',
    detail,
    headers: { 'WWW-Authenticate': challenge },
  });
}

export function authenticate(verifier: TokenVerifier, security: SecurityLog): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    if (!header) {
      security(req, { event: 'auth_failed', reason: 'missing' });
      next(unauthorized('token_missing', 'Send a bearer token: `Authorization: Bearer <JWT>`.'));
      return;
    }
    const match = BEARER.exec(header);
    if (!match) {
      security(req, { event: 'auth_failed', reason: 'wrong_scheme' });
      next(unauthorized('token_missing', 'The Authorization header must use the Bearer scheme: `Bearer <JWT>`.'));
      return;
    }
    verifier.verify(match[1]!).then(
      ({ userId }) => {
        res.locals.userId = userId;
        next();
      },
      (err: unknown) => {
        if (err instanceof TokenError) {
          security(req, { event: 'auth_failed', reason: err.reason });
          next(unauthorized(err.reason === 'expired' ? 'token_expired' : 'token_invalid', err.message));
        } else if (err instanceof KeySourceUnavailableError) {
          req.log?.warn({ err: { message: err.message, cause: String(err.cause) } }, 'JWKS unavailable');
          next(problems.unavailable('auth_unavailable', 'The signing keys cannot be fetched right now. Try again shortly.'));
        } else {
          next(err);
        }
      },
    );
  };
}
