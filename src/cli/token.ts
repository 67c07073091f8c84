// npm run token -- <userId> [ttlSeconds] — an HS256 token signed with the secret the server uses
// (JWT_SECRET, BETTER_AUTH_SECRET, or the development secret in DATA_DIR; secretInForce decides for
// both). Only the token goes to stdout: `T=$(npm run -s token -- alice)`.
import 'dotenv/config';
import { secretInForce } from '../auth/dev-secret.js';
import { mintToken } from '../auth/mint-token.js';
import { ConfigError, loadConfig } from '../config.js';

async function run(): Promise<void> {
  const [userId, ttl] = process.argv.slice(2);
  if (!userId || (ttl !== undefined && !/^\d+$/.test(ttl))) {
    console.error('usage: npm run token -- <userId> [ttlSeconds]');
    process.exit(64);
  }
  const config = loadConfig();
  const { secret } = secretInForce(config.auth, config.dataDir);
  if (!secret) {
    throw new ConfigError(
      `this server verifies Better Auth tokens only (JWKS from ${config.auth.jwksUrl}) and has no JWT_SECRET to sign with: get a token from Better Auth, or set JWT_SECRET for both`,
    );
  }
  const token = await mintToken({
    secret,
    userId,
    ttlSec: ttl === undefined ? 3600 : Number(ttl),
    issuer: config.auth.issuer,
    audience: config.auth.audience,
  });
  process.stdout.write(`${token}\n`);
}

run().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : (err as Error).message);
  process.exit(1);
});
