// A development-only HS256 secret, generated once and kept beside the embedded database, so
// `npm start` works with no configuration and tokens stay valid across restarts.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export function loadOrCreateDevSecret(dataDir: string): { secret: string; file: string; created: boolean } {
  const file = path.join(dataDir, 'dev-jwt-secret');
  try {
    const secret = readFileSync(file, 'utf8').trim();
    if (secret.length >= 32) return { secret, file, created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { secret, file, created: true };
}

/**
 * The HS256 secret in force, decided here for the server and `npm run token` alike: the configured
 * one; else, when no Better Auth JWKS is configured either (development), the generated one; else
 * none — that server verifies Better Auth's tokens only, and minting an HS256 token is pointless.
 */
export function secretInForce(
  auth: { secret: string | undefined; jwksUrl: string | undefined },
  dataDir: string,
): { secret: string | undefined; devSecretFile?: string } {
  if (auth.secret || auth.jwksUrl) return { secret: auth.secret };
  // loadConfig refuses production without configured auth, so this is development or test.
  const dev = loadOrCreateDevSecret(dataDir);
  return { secret: dev.secret, devSecretFile: dev.file };
}
