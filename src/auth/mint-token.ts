// Mints HS256 tokens for development and tests, shaped like Better Auth's (sub, iat, exp).
import { createSecretKey } from 'node:crypto';
import { SignJWT, type JWTPayload } from 'jose';

export interface MintOptions {
  secret: string;
  userId: string;
  ttlSec?: number;
  issuer?: string | undefined;
  audience?: string | undefined;
  claims?: JWTPayload;
}

export function mintToken(opts: MintOptions): Promise<string> {
  const jwt = new SignJWT({ ...opts.claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.userId)
    .setIssuedAt()
    .setExpirationTime(`${opts.ttlSec ?? 3600}s`);
  if (opts.issuer) jwt.setIssuer(opts.issuer);
  if (opts.audience) jwt.setAudience(opts.audience);
  return jwt.sign(createSecretKey(Buffer.from(opts.secret, 'utf8')));
}
