// End to end with the real identity provider: a Better Auth server (its jwt plugin, email and
// password sign-in) on its own port over PostgreSQL. Two users sign up through its HTTP API, fetch
// JWTs from /api/auth/token exactly as a frontend does, and drive this API with them, verified via
// JWKS — in EdDSA (its default), ES256 and RS256, and across a key rotation.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { betterAuth } from 'better-auth';
import { getMigrations } from 'better-auth/db/migration';
import { toNodeHandler } from 'better-auth/node';
import { jwt } from 'better-auth/plugins';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { remoteJwks } from '../src/auth/verify-token.js';
import { buildApp } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const adminUrl = process.env.TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
let skipReason = '';
try {
  const probe = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  await probe.connect();
  await probe.end();
} catch (err) {
  skipReason = `no PostgreSQL at ${adminUrl} for Better Auth (${(err as Error).message})`;
  console.warn(`better-auth.test: skipped, ${skipReason}`);
}

interface IdentityProvider {
  baseURL: string;
  signUp(): Promise<{ userId: string; token: () => Promise<string> }>;
  close(): Promise<void>;
}

/** A real Better Auth server with its own fresh database. */
async function startBetterAuth(jwtOptions: Parameters<typeof jwt>[0]): Promise<IdentityProvider> {
  const dbName = `better_auth_test_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const pool = new pg.Pool({ connectionString: url.toString() });

  let handler: ReturnType<typeof toNodeHandler> | undefined;
  const server: Server = createServer((req, res) => handler!(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const auth = betterAuth({
    baseURL,
    secret: randomBytes(32).toString('hex'),
    database: pool,
    emailAndPassword: { enabled: true },
    plugins: [jwt(jwtOptions)],
    telemetry: { enabled: false },
  });
  const { runMigrations } = await getMigrations(auth.options);
  await runMigrations();
  handler = toNodeHandler(auth);

  return {
    baseURL,
    async signUp() {
      const email = `user-${randomBytes(6).toString('hex')}@example.com`;
      const res = await fetch(`${baseURL}/api/auth/sign-up/email`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Origin: baseURL },
        body: JSON.stringify({ email, password: 'correct horse battery staple', name: 'Test User' }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
      const body = (await res.json()) as { user: { id: string } };
      const cookie = res.headers
        .getSetCookie()
        .map((c) => c.split(';')[0])
        .join('; ');
      return {
        userId: body.user.id,
        // Exactly what a frontend does: the session cookie buys a JWT at /api/auth/token.
        token: async () => {
          const t = await fetch(`${baseURL}/api/auth/token`, { headers: { Cookie: cookie, Origin: baseURL } });
          expect(t.status).toBe(200);
          return ((await t.json()) as { token: string }).token;
        },
      };
    },
    async close() {
      await new Promise((resolve) => server.close(resolve));
      await pool.end();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
      await a.end();
    },
  };
}

function decode(token: string) {
  const [h, p] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h!, 'base64url').toString()) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>,
  };
}

describe.skipIf(skipReason !== '')('real Better Auth tokens', () => {
  let database: TestDatabase;
  const providers: IdentityProvider[] = [];
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    for (const p of providers) await p.close();
    await database?.drop();
  });

  function apiFor(idp: IdentityProvider) {
    // Configured as the README says: JWKS at /api/auth/jwks, iss = aud = BETTER_AUTH_URL.
    return buildApp(database.db, {
      jwks: remoteJwks(`${idp.baseURL}/api/auth/jwks`, { cooldownMs: 0 }),
      secret: '',
      issuer: idp.baseURL,
      audience: idp.baseURL,
    }).app;
  }

  it.each(['EdDSA', 'ES256', 'RS256'] as const)('%s: two users, each sees only their own tasks', async (alg) => {
    const idp = await startBetterAuth(
      alg === 'EdDSA' ? {} : { jwks: { keyPairConfig: alg === 'ES256' ? { alg: 'ES256' } : { alg: 'RS256', modulusLength: 2048 } } },
    );
    providers.push(idp);
    const app = apiFor(idp);
    const alice = await idp.signUp();
    const bob = await idp.signUp();
    const aliceToken = await alice.token();
    expect(decode(aliceToken)).toMatchObject({
      header: { alg, kid: expect.any(String) },
      payload: { sub: alice.userId, iss: idp.baseURL, aud: idp.baseURL },
    });

    const created = await request(app)
      .post('/api/tasks')
      .set('Authorization', `Bearer ${aliceToken}`)
      .send({ title: `Alice via ${alg}` });
    expect(created.status).toBe(201);
    const { rows } = await database.db.query('SELECT user_id FROM tasks WHERE id = $1', [created.body.id]);
    expect(rows).toEqual([{ user_id: alice.userId }]);

    const own = await request(app).get(`/api/${alice.userId}/tasks`).set('Authorization', `Bearer ${aliceToken}`);
    expect(own.body.map((t: { title: string }) => t.title)).toEqual([`Alice via ${alg}`]);

    const bobToken = `Bearer ${await bob.token()}`;
    expect((await request(app).get('/api/tasks').set('Authorization', bobToken)).body).toEqual([]);
    expect((await request(app).get(`/api/tasks/${created.body.id}`).set('Authorization', bobToken)).status).toBe(404);
    expect((await request(app).delete(`/api/tasks/${created.body.id}`).set('Authorization', bobToken)).status).toBe(404);
    expect((await request(app).get(`/api/${alice.userId}/tasks`).set('Authorization', bobToken)).status).toBe(403);
    expect((await request(app).get(`/api/tasks/${created.body.id}`).set('Authorization', `Bearer ${aliceToken}`)).status).toBe(200);
  });

  it('keeps working across a key rotation, old tokens included', async () => {
    const idp = await startBetterAuth({ jwks: { rotationInterval: 1, gracePeriod: 3600 } });
    providers.push(idp);
    const app = apiFor(idp);
    const user = await idp.signUp();
    const before = await user.token();
    expect((await request(app).get('/api/tasks').set('Authorization', `Bearer ${before}`)).status).toBe(200);

    await new Promise((r) => setTimeout(r, 1500)); // past the rotation interval: the next token gets a new key
    const after = await user.token();
    expect(decode(after).header.kid).not.toBe(decode(before).header.kid);
    expect((await request(app).get('/api/tasks').set('Authorization', `Bearer ${after}`)).status).toBe(200);
    expect((await request(app).get('/api/tasks').set('Authorization', `Bearer ${before}`)).status).toBe(200);
  });
});
