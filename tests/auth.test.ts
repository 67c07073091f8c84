// The JWT matrix, through HTTP, against a JWKS served over HTTP inside the test and shaped like
// Better Auth's (kid, no typ, no nbf, user fields in the payload; iss = aud = the app's URL).
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteJwks } from '../src/auth/verify-token.js';
import { bearer, buildApp, TEST_SECRET } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const ALGORITHMS = ['EdDSA', 'ES256', 'ES512', 'RS256', 'PS256'] as const;
type Alg = (typeof ALGORITHMS)[number];

interface SigningKey {
  alg: Alg;
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

const published: JWK[] = [];
const keys = new Map<Alg, SigningKey>();
let jwksServer: Server;
let issuer: string;
let database: TestDatabase;
let app: ReturnType<typeof buildApp>['app'];

async function makeKey(alg: Alg): Promise<SigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomBytes(16).toString('base64url');
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg };
  return { alg, kid, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

/** A 32-character id, like Better Auth's. */
function betterAuthId(): string {
  return randomBytes(24).toString('base64url').slice(0, 32);
}

function betterAuthToken(
  key: SigningKey,
  overrides: { sub?: string | undefined; exp?: number; iss?: string; aud?: string; nbf?: number } = {},
) {
  const now = Math.floor(Date.now() / 1000);
  const sub = 'sub' in overrides ? overrides.sub : betterAuthId();
  const payload: Record<string, unknown> = {
    id: sub,
    name: 'Ada Lovelace',
    email: 'ada@example.com',
    emailVerified: true,
    image: null,
    createdAt: new Date().toISOString(),
    updatedAt: new Date().toISOString(),
    iat: now,
    exp: overrides.exp ?? now + 15 * 60,
    iss: overrides.iss ?? issuer,
    aud: overrides.aud ?? issuer,
  };
  if (sub !== undefined) payload.sub = sub;
  if (overrides.nbf !== undefined) payload.nbf = overrides.nbf;
  // Better Auth's header: alg and kid, no typ.
  return { token: new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: key.kid }).sign(key.privateKey), sub };
}

function b64(obj: unknown) {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

beforeAll(async () => {
  for (const alg of ALGORITHMS) {
    const key = await makeKey(alg);
    keys.set(alg, key);
    published.push(key.publicJwk);
  }
  jwksServer = createServer((req, res) => {
    if (req.url === '/api/auth/jwks') {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ keys: published }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}`;
  database = await createTestDatabase();
  // Both modes at once, as a deployment may configure them: the token's alg decides.
  app = buildApp(database.db, {
    jwks: remoteJwks(`${issuer}/api/auth/jwks`, { cooldownMs: 0 }),
    secret: TEST_SECRET,
    issuer,
    audience: issuer,
  }).app;
});

afterAll(async () => {
  await new Promise((resolve) => jwksServer.close(resolve));
  await database.drop();
});

async function get(authorization: string | undefined) {
  const req = request(app).get('/api/tasks');
  return authorization === undefined ? req : req.set('Authorization', authorization);
}

function expect401(res: request.Response, code: string, reason?: RegExp) {
  expect(res.status).toBe(401);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body.code).toBe(code);
  expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="todo-api"/);
  if (code !== 'token_missing') expect(res.headers['www-authenticate']).toContain('error="invalid_token"');
  if (reason) expect(res.body.detail).toMatch(reason);
}

describe('accepted tokens', () => {
  it.each(ALGORITHMS)('a Better Auth %s token from the JWKS, and the user is its sub', async (alg) => {
    const { token, sub } = betterAuthToken(keys.get(alg)!);
    const auth = `Bearer ${await token}`;
    const created = await request(app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title: `via ${alg}` });
    expect(created.status).toBe(201);
    const { rows } = await database.db.query('SELECT user_id FROM tasks WHERE id = $1', [created.body.id]);
    expect(rows).toEqual([{ user_id: sub }]);
    const own = await request(app).get(`/api/${sub}/tasks`).set('Authorization', auth);
    expect(own.status).toBe(200);
    expect(own.body.map((t: { title: string }) => t.title)).toEqual([`via ${alg}`]);
  });

  it('an HS256 token signed with the shared secret', async () => {
    const res = await get(
      `Bearer ${await new SignJWT({ sub: 'hs-user', iss: issuer, aud: issuer })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(TEST_SECRET))}`,
    );
    expect(res.status).toBe(200);
  });

  it('the scheme name in any case', async () => {
    const { token } = betterAuthToken(keys.get('EdDSA')!);
    expect((await get(`bearer ${await token}`)).status).toBe(200);
    expect((await get(`BEARER ${await token}`)).status).toBe(200);
  });

  it('a key added during a rotation, while tokens of the old key stay valid', async () => {
    const oldToken = await betterAuthToken(keys.get('EdDSA')!).token;
    const rotated = await makeKey('EdDSA');
    const before = await get(`Bearer ${await betterAuthToken(rotated).token}`);
    expect401(before, 'token_invalid', /key/); // not published yet
    published.push(rotated.publicJwk);
    expect((await get(`Bearer ${await betterAuthToken(rotated).token}`)).status).toBe(200); // refetched on the unknown kid
    expect((await get(`Bearer ${oldToken}`)).status).toBe(200);
  });
});

describe('refused tokens', () => {
  const now = () => Math.floor(Date.now() / 1000);

  it('no Authorization header', async () => {
    const res = await get(undefined);
    expect401(res, 'token_missing');
    expect(res.headers['www-authenticate']).toBe('Bearer realm="todo-api"');
  });

  it('another scheme', async () => {
    expect401(await get(`Basic ${Buffer.from('a:b').toString('base64')}`), 'token_missing');
    expect401(await get('Bearer'), 'token_missing');
  });

  it('garbage', async () => {
    expect401(await get('Bearer not-a-jwt'), 'token_invalid', /well-formed/);
    expect401(await get('Bearer a.b.c'), 'token_invalid');
    expect401(await get(`Bearer ${'x'.repeat(10_000)}`), 'token_invalid');
  });

  it('expired', async () => {
    const { token } = betterAuthToken(keys.get('ES256')!, { exp: now() - 60 });
    expect401(await get(`Bearer ${await token}`), 'token_expired', /expired/);
  });

  it('not valid yet (nbf in the future)', async () => {
    const { token } = betterAuthToken(keys.get('ES256')!, { nbf: now() + 600 });
    expect401(await get(`Bearer ${await token}`), 'token_invalid', /not valid yet/);
  });

  it('wrong issuer', async () => {
    const { token } = betterAuthToken(keys.get('RS256')!, { iss: 'https://evil.example' });
    expect401(await get(`Bearer ${await token}`), 'token_invalid', /issuer/);
  });

  it('wrong audience', async () => {
    const { token } = betterAuthToken(keys.get('PS256')!, { aud: 'https://other-api.example' });
    expect401(await get(`Bearer ${await token}`), 'token_invalid', /audience/);
  });

  it('missing or empty sub', async () => {
    expect401(await get(`Bearer ${await betterAuthToken(keys.get('EdDSA')!, { sub: undefined }).token}`), 'token_invalid', /sub/);
    expect401(await get(`Bearer ${await betterAuthToken(keys.get('EdDSA')!, { sub: '' }).token}`), 'token_invalid', /sub/);
    // No stored task could belong to it: PostgreSQL text cannot hold NUL.
    expect401(await get(`Bearer ${await betterAuthToken(keys.get('EdDSA')!, { sub: 'a\u0000b' }).token}`), 'token_invalid', /sub/);
  });

  it('no exp', async () => {
    const token = await new SignJWT({ sub: 'u', iss: issuer, aud: issuer })
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode(TEST_SECRET));
    expect401(await get(`Bearer ${token}`), 'token_invalid', /exp/);
  });

  it('alg: none', async () => {
    const unsigned = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u', exp: now() + 600, iss: issuer, aud: issuer })}.`;
    expect401(await get(`Bearer ${unsigned}`), 'token_invalid', /not accepted/);
  });

  it('an HS256 token signed with the public key’s text (algorithm confusion)', async () => {
    for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
      const key = keys.get(alg)!;
      for (const material of [key.publicPem, JSON.stringify(key.publicJwk)]) {
        const forged = await new SignJWT({ sub: 'attacker', iss: issuer, aud: issuer })
          .setProtectedHeader({ alg: 'HS256', kid: key.kid })
          .setIssuedAt()
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(material));
        expect401(await get(`Bearer ${forged}`), 'token_invalid', /signature/);
      }
    }
  });

  it('a tampered payload', async () => {
    const token = await betterAuthToken(keys.get('EdDSA')!).token;
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    claims.sub = 'someone-else';
    expect401(await get(`Bearer ${header}.${b64(claims)}.${signature}`), 'token_invalid', /signature/);
  });

  it('signed by a key that claims a published kid', async () => {
    const impostor = await makeKey('ES256');
    const token = await betterAuthToken({ ...impostor, kid: keys.get('ES256')!.kid }).token;
    expect401(await get(`Bearer ${token}`), 'token_invalid', /signature/);
  });

  it('an algorithm outside the allowlist (HS512, RS384)', async () => {
    const hs512 = await new SignJWT({ sub: 'u', iss: issuer, aud: issuer })
      .setProtectedHeader({ alg: 'HS512' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(TEST_SECRET));
    expect401(await get(`Bearer ${hs512}`), 'token_invalid', /not accepted/);
    const rs384 = await generateKeyPair('RS384');
    const token = await new SignJWT({ sub: 'u', iss: issuer, aud: issuer })
      .setProtectedHeader({ alg: 'RS384', kid: keys.get('RS256')!.kid })
      .setExpirationTime('5m')
      .sign(rs384.privateKey);
    expect401(await get(`Bearer ${token}`), 'token_invalid', /not accepted/);
  });

  it('an HS256 token when only JWKS is configured', async () => {
    const jwksOnly = buildApp(database.db, { jwks: remoteJwks(`${issuer}/api/auth/jwks`), secret: '', issuer, audience: issuer }).app;
    const res = await request(jwksOnly)
      .get('/api/tasks')
      .set('Authorization', await bearer('u'));
    expect401(res, 'token_invalid', /not accepted/);
  });
});

describe('key source down', () => {
  it('503 auth_unavailable when the JWKS cannot be fetched, not a 401', async () => {
    const down = buildApp(database.db, { jwks: remoteJwks('http://127.0.0.1:1/api/auth/jwks'), secret: '', issuer, audience: issuer }).app;
    const { token } = betterAuthToken(keys.get('EdDSA')!);
    const res = await request(down)
      .get('/api/tasks')
      .set('Authorization', `Bearer ${await token}`);
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('auth_unavailable');
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });
});
