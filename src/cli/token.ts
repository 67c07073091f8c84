// npm run token -- <userId> [ttlSeconds] — an HS256 token signed with the configured secret
// (JWT_SECRET, BETTER_AUTH_SECRET, or the development secret in DATA_DIR).
import 'dotenv/config';
import { loadOrCreateDevSecret } from '../auth/dev-secret.js';
import { mintToken } from '../auth/mint-token.js';
import { ConfigError, loadConfig } from '../config.js';

async function run(): Promise<void> {
  const [userId, ttl] = process.argv.slice(2);
  if (!userId || (ttl !== undefined && !/^\d+$/.test(ttl))) {
    console.error('usage: npm run token -- <userId> [ttlSeconds]');
    process.exit(64);
  }
  const config = loadConfig();
  let secret = config.auth.secret;
  if (!secret) {
    if (config.env === 'production') throw new ConfigError('JWT_SECRET is not set; there is nothing to sign with');
    secret = loadOrCreateDevSecret(config.dataDir).secret;
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
