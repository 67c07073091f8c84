// The welcome a developer sees after `npm start`: where the server is and a curl that works.
import type { AddressInfo } from 'node:net';
import { mintToken } from '../auth/mint-token.js';
import type { Config } from '../config.js';
import { describeDatabase } from '../db/open.js';

const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/** Where the server is, from the address it actually bound: the URL to use here, and who else can reach it. */
export function whereListening({ address, family, port }: AddressInfo): { base: string; listening: string } {
  if (UNSPECIFIED.has(address)) {
    const base = `http://localhost:${port}`;
    return { base, listening: `${base} and on every other interface (${address}): other machines on this network can reach it` };
  }
  const base = `http://${family === 'IPv6' ? `[${address}]` : address}:${port}`;
  const loopback = address === '::1' || address.startsWith('127.');
  return { base, listening: loopback ? `${base} (this machine only; HOST=0.0.0.0 listens on every interface)` : base };
}

export async function printWelcome(config: Config, bound: AddressInfo, secret: string | undefined, devSecretFile?: string): Promise<void> {
  const { base, listening } = whereListening(bound);
  const lines = [
    '',
    `Todo API is listening on ${listening}`,
    `  Database: ${describeDatabase(config)}`,
    `  Docs:     ${base}/docs (contract: ${base}/openapi.json)`,
  ];
  if (secret && devSecretFile) {
    // Only a token of the generated development secret, which guards nothing but this data folder:
    // one signed with a configured JWT_SECRET would work wherever that secret is trusted.
    const token = await mintToken({
      secret,
      userId: 'demo-user',
      issuer: config.auth.issuer,
      audience: config.auth.audience,
    });
    lines.push(
      `  Tokens:   HS256 with the development secret in ${devSecretFile}`,
      '',
      'Try it (a token for user "demo-user", valid for one hour):',
      `  curl -H "Authorization: Bearer ${token}" ${base}/api/tasks`,
      `  curl -H "Authorization: Bearer ${token}" -H "Content-Type: application/json" -d '{"title":"Buy milk"}' ${base}/api/tasks`,
      '',
      'Mint a token for any user: npm run token -- <userId>',
    );
  } else if (secret) {
    lines.push('  Tokens:   HS256 with JWT_SECRET (mint one for a user: npm run token -- <userId>)');
  } else {
    lines.push(`  Tokens:   from Better Auth, verified against ${config.auth.jwksUrl}`);
  }
  console.log(`${lines.join('\n')}\n`);
}
