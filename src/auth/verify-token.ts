// Bearer token verification, the only place a token is trusted. Two kinds of key:
//   - Better Auth's JWKS (EdDSA by default; ES256, ES512, RS256, PS256), keys chosen by `kid`;
//   - a shared secret (HS256), for frontends that sign their own tokens.
// The token's `alg` picks the kind and each kind only ever sees its own algorithms, so an HS256
// token is never checked against public-key material (no algorithm confusion) and `none` never passes.
import { webcrypto } from 'node:crypto';
import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export const ASYMMETRIC_ALGORITHMS = ['EdDSA', 'ES256', 'ES512', 'RS256', 'PS256'] as const;
export const SHARED_SECRET_ALGORITHM = 'HS256';

/** Why a token was refused: for logs and for the problem detail, never containing the token. */
export type TokenFailure =
  | 'malformed'
  | 'unsupported_algorithm'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'missing_expiry'
  | 'wrong_issuer'
  | 'wrong_audience'
  | 'invalid_subject'
  | 'too_old';

export class TokenError extends Error {
  override name = 'TokenError';
  constructor(
    readonly reason: TokenFailure,
    message: string,
  ) {
    super(message);
  }
}

/** The key source (the JWKS endpoint) could not be reached: not the token's fault. */
export class KeySourceUnavailableError extends Error {
  override name = 'KeySourceUnavailableError';
}

export interface VerifiedToken {
  userId: string;
  claims: JWTPayload;
  /** Until when (seconds since the epoch) the token stays acceptable: its exp, or sooner under JWT_MAX_AGE. */
  validUntil: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<VerifiedToken>;
  /** The algorithms this verifier accepts, for start-up messages. */
  readonly algorithms: readonly string[];
}

export interface VerifierOptions {
  /** Asymmetric keys: createRemoteJWKSet in production, a local set in tests. */
  jwks?: JWTVerifyGetKey | undefined;
  secret?: string | undefined;
  issuer?: string | undefined;
  audience?: string | undefined;
  clockToleranceSec: number;
  /** The longest lifetime a token may have (exp − iat) and the oldest it may be (now − iat), in seconds. */
  maxAgeSec?: number | undefined;
  /**
   * Audiences that belong to another resource of this server (the MCP endpoint's): a token issued
   * for them alone is refused here even when no `audience` is required.
   */
  foreignAudiences?: readonly string[] | undefined;
}

export function remoteJwks(url: string, opts: { cooldownMs?: number } = {}): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), {
    // Refetch on an unknown kid (a rotation) at most every 30 s; otherwise keep keys 10 minutes.
    cooldownDuration: opts.cooldownMs ?? 30_000,
    cacheMaxAge: 10 * 60_000,
    timeoutDuration: 5_000,
  });
}

// A JWT is three base64url parts; anything much larger than a real token is refused unparsed.
const MAX_TOKEN_LENGTH = 8192;
const MAX_SUBJECT_LENGTH = 255;
// An unpaired UTF-16 surrogate. PostgreSQL stores one as U+FFFD, so two different ids would become
// one stored user: such an id is refused, here and in every input (src/http/storable-input.ts).
export const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** exp, nbf and iat, when present, are finite numbers; iat is not in the future; the age is bounded. */
function checkTimes(payload: JWTPayload, toleranceSec: number, maxAgeSec: number | undefined): void {
  for (const claim of ['exp', 'nbf', 'iat'] as const) {
    const value = payload[claim];
    if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) {
      throw claim === 'exp'
        ? new TokenError('missing_expiry', 'The token has no valid `exp` claim.')
        : new TokenError('malformed', `The token's \`${claim}\` claim is not a number of seconds.`);
    }
  }
  const now = Date.now() / 1000;
  if (payload.iat !== undefined && payload.iat > now + toleranceSec) {
    throw new TokenError('not_yet_valid', 'The token was issued in the future (`iat`).');
  }
  if (maxAgeSec !== undefined) {
    if (payload.iat === undefined) throw new TokenError('too_old', 'The token has no `iat` claim, and this server limits token age.');
    if (payload.exp! - payload.iat > maxAgeSec + toleranceSec || now - payload.iat > maxAgeSec + toleranceSec) {
      throw new TokenError('too_old', `The token lives longer than this server accepts (JWT_MAX_AGE: ${maxAgeSec} s).`);
    }
  }
}

export function createTokenVerifier(opts: VerifierOptions): TokenVerifier {
  // jose checks signatures with WebCrypto, and handed a KeyObject it makes a CryptoKey of it on
  // every call, which doubled what a new token costs to check (about 80 → 38 µs of CPU): the key is
  // made once, here.
  const secretKey: Promise<webcrypto.CryptoKey> | undefined = opts.secret
    ? webcrypto.subtle.importKey('raw', Buffer.from(opts.secret, 'utf8'), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
    : undefined;
  const algorithms = [...(opts.jwks ? ASYMMETRIC_ALGORITHMS : []), ...(secretKey !== undefined ? [SHARED_SECRET_ALGORITHM] : [])];
  const claimChecks = {
    clockTolerance: opts.clockToleranceSec,
    requiredClaims: ['exp'],
    ...(opts.issuer ? { issuer: opts.issuer } : {}),
    ...(opts.audience ? { audience: opts.audience } : {}),
  };

  async function verify(token: string): Promise<VerifiedToken> {
    if (token.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed', 'The token is too long to be a JWT.');
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw new TokenError('malformed', 'The token is not a well-formed JWT.');
    }

    let payload: JWTPayload;
    try {
      if (alg === SHARED_SECRET_ALGORITHM && secretKey !== undefined) {
        ({ payload } = await jwtVerify(token, await secretKey, { ...claimChecks, algorithms: [SHARED_SECRET_ALGORITHM] }));
      } else if (opts.jwks && ASYMMETRIC_ALGORITHMS.includes(alg as never)) {
        ({ payload } = await jwtVerify(token, opts.jwks, { ...claimChecks, algorithms: [...ASYMMETRIC_ALGORITHMS] }));
      } else {
        throw new TokenError(
          'unsupported_algorithm',
          `Tokens signed with ${typeof alg === 'string' ? alg : 'no algorithm'} are not accepted; this server accepts ${algorithms.join(', ')}.`,
        );
      }
    } catch (err) {
      throw translate(err);
    }

    checkTimes(payload, opts.clockToleranceSec, opts.maxAgeSec);
    // RFC 7519 §4.1.3: one string or an array of strings; anything else is no audience to check.
    const audiences = payload.aud === undefined ? [] : ([] as unknown[]).concat(payload.aud);
    if (!audiences.every((a) => typeof a === 'string')) {
      throw new TokenError('malformed', "The token's `aud` claim is not a string or a list of strings.");
    }
    if (opts.foreignAudiences?.length) {
      if (audiences.length > 0 && audiences.every((a) => opts.foreignAudiences!.includes(a as string))) {
        throw new TokenError('wrong_audience', 'The token was issued for another resource of this server (the MCP endpoint).');
      }
    }
    const sub = payload.sub;
    // NUL cannot be stored in a PostgreSQL text column, so no user could ever own such an id.
    if (
      typeof sub !== 'string' ||
      sub.trim() === '' ||
      sub.length > MAX_SUBJECT_LENGTH ||
      sub.includes('\u0000') ||
      LONE_SURROGATE.test(sub)
    ) {
      throw new TokenError('invalid_subject', 'The token has no usable `sub` claim (the user id).');
    }
    const validUntil = opts.maxAgeSec === undefined ? payload.exp! : Math.min(payload.exp!, payload.iat! + opts.maxAgeSec);
    return { userId: sub, claims: payload, validUntil };
  }

  return { verify, algorithms };
}

function translate(err: unknown): Error {
  if (err instanceof TokenError) return err;
  if (err instanceof errors.JWTExpired) return new TokenError('expired', 'The token has expired.');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return new TokenError('not_yet_valid', 'The token is not valid yet (`nbf` is in the future).');
      case 'iss':
        return new TokenError('wrong_issuer', 'The token was issued by another issuer.');
      case 'aud':
        return new TokenError('wrong_audience', 'The token was issued for another audience.');
      case 'exp':
        return new TokenError('missing_expiry', 'The token has no valid `exp` claim.');
      default:
        return new TokenError('malformed', `The token's \`${err.claim}\` claim is invalid.`);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return new TokenError('bad_signature', 'The token signature does not verify.');
  }
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
    return new TokenError('unknown_key', 'The token was signed with a key this server does not know.');
  }
  if (err instanceof errors.JOSEAlgNotAllowed || err instanceof errors.JOSENotSupported) {
    return new TokenError('unsupported_algorithm', 'The token is signed with an algorithm that is not accepted.');
  }
  if (err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid || !(err instanceof errors.JOSEError)) {
    // jose raises its own errors for everything about the token; anything else came from fetching keys.
    return new KeySourceUnavailableError('The signing keys could not be fetched.', { cause: err });
  }
  return new TokenError('malformed', 'The token is not a well-formed JWT.');
}
