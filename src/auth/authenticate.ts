// Express middleware: the bearer token becomes res.locals.userId, or the request ends with 401.
import type { Request, RequestHandler } from 'express';
import { type HttpProblem, problems } from '../http/problem.js';
import type { SecurityLog } from '../http/security-log.js';
import { KeySourceUnavailableError, TokenError, type TokenFailure, type TokenVerifier } from './verify-token.js';

const REALM = 'Bearer realm="todo-api"';
const BEARER = /^Bearer +(\S+) *$/i;

// A header value carries visible ASCII only: no quote, backslash or backtick (they would end or
// escape the quoted string), no control character, nothing beyond Latin-1 (Node refuses it).
const headerSafe = (text: string) => text.replace(/[^\x20-\x7E]|["\\`]/g, '');

type Failure = 'token_missing' | 'token_invalid' | 'token_expired';

/**
 * The 401, its challenge carrying `extra` auth-params too (the MCP endpoint's resource_metadata).
 * RFC 6750: no error code when no credentials were sent; invalid_token when they were refused.
 * The description is the server's own text, never a value taken from the token.
 */
function unauthorized(extra: string | undefined, code: Failure, detail: string, description = detail): HttpProblem {
  const realm = extra ? `${REALM}, ${extra}` : REALM;
  const challenge = code === 'token_missing' ? realm : `${realm}, error="invalid_token", error_description="${headerSafe(description)}"`;
  return problems.unauthorized(code, detail, challenge);
}

/** The challenge's description per reason: fixed text, so nothing from the token reaches a header. */
const TOKEN_FAILURES: Record<TokenFailure, string> = {
  malformed: 'The token is not a well-formed JWT.',
  unsupported_algorithm: 'The token is signed with an algorithm this server does not accept.',
  unknown_key: 'The token was signed with a key this server does not know.',
  bad_signature: 'The token signature does not verify.',
  expired: 'The token has expired.',
  not_yet_valid: 'The token is not valid yet.',
  missing_expiry: 'The token has no valid exp claim.',
  wrong_issuer: 'The token was issued by another issuer.',
  wrong_audience: 'The token was issued for another audience.',
  invalid_subject: 'The token has no usable sub claim.',
  too_old: 'The token is older than this server accepts.',
};

export function authenticate(
  verifier: TokenVerifier,
  security: SecurityLog,
  opts: { challenge?: (req: Request) => string | undefined } = {},
): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization;
    if (!header) {
      security(req, { event: 'auth_failed', reason: 'missing' });
      next(unauthorized(opts.challenge?.(req), 'token_missing', 'Send a bearer token: `Authorization: Bearer <JWT>`.'));
      return;
    }
    const match = BEARER.exec(header);
    if (!match) {
      security(req, { event: 'auth_failed', reason: 'wrong_scheme' });
      next(unauthorized(opts.challenge?.(req), 'token_missing', 'The Authorization header must use the Bearer scheme: `Bearer <JWT>`.'));
      return;
    }
    // One chain, one call of next, ending in the error handler whatever throws along the way
    // (building the challenge included): a rejection here must never go unhandled.
    verifier
      .verify(match[1]!)
      .then(
        ({ userId, validUntil }) => {
          res.locals.userId = userId;
          // Until when a long answer (the event stream) may go on for this token.
          res.locals.tokenValidUntil = validUntil;
          return undefined;
        },
        (err: unknown) => {
          if (err instanceof TokenError) {
            security(req, { event: 'auth_failed', reason: err.reason });
            return unauthorized(
              opts.challenge?.(req),
              err.reason === 'expired' ? 'token_expired' : 'token_invalid',
              err.message,
              TOKEN_FAILURES[err.reason],
            );
          }
          if (err instanceof KeySourceUnavailableError) {
            req.log?.warn({ err: { message: err.message, cause: String(err.cause) } }, 'JWKS unavailable');
            return problems.unavailable('auth_unavailable', 'The signing keys cannot be fetched right now. Try again shortly.');
          }
          return err;
        },
      )
      .then(next, next)
      .catch((err: unknown) => req.log?.error({ err }, 'the request could not be passed on after authentication'));
  };
}
