// docs/nextjs.md end to end, without Next.js: a real Better Auth server configured as the recipe
// says (email and password, the jwt() plugin with its defaults, nextCookies()) on its own port over
// an in-process PGlite; this API configured with BETTER_AUTH_URL alone; a browser (Better Auth's own
// client, with a cookie jar) that signs up and signs in; then the recipe's server side
// (auth.api.getToken with the request's cookie) and client side (authClient.token()) each driving
// the SDK with a cachedToken: one token for several calls, a new one once it is about to expire.
// The token lines are the recipe's own (checked below against docs/nextjs.md and the examples);
// the tests only add a clock they can move, so nothing waits 15 minutes or depends on speed.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { betterAuth } from 'better-auth';
import { createAuthMiddleware } from 'better-auth/api';
import { createAuthClient } from 'better-auth/client';
import { jwtClient } from 'better-auth/client/plugins';
import { getMigrations } from 'better-auth/db/migration';
import { nextCookies } from 'better-auth/next-js';
import { toNodeHandler } from 'better-auth/node';
import { jwt } from 'better-auth/plugins';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
} from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedToken, createTodoClient, TodoApiError } from '../packages/client/src/index.js';
import { remoteJwks } from '../src/auth/verify-token.js';
import { loadConfig } from '../src/config.js';
import { buildApp } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

/**
 * Kysely over an in-process PGlite, for Better Auth: PostgreSQL's adapter, compiler and
 * introspector, and PGlite's single connection lent to one query or transaction at a time.
 * (kysely-pglite-dialect does the same but declares PGlite < 0.5 as its peer.)
 */
function pgliteDialect(pglite: PGlite): Dialect {
  const connection: DatabaseConnection = {
    async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
      const result = await pglite.query<R>(query.sql, [...query.parameters]);
      return result.affectedRows === undefined
        ? { rows: result.rows }
        : { rows: result.rows, numAffectedRows: BigInt(result.affectedRows) };
    },
    streamQuery() {
      throw new Error('PGlite does not stream results');
    },
  };
  let queue: Promise<void> = Promise.resolve();
  let release: (() => void) | undefined;
  return {
    createAdapter: () => new PostgresAdapter(),
    createQueryCompiler: () => new PostgresQueryCompiler(),
    createIntrospector: (db) => new PostgresIntrospector(db),
    createDriver: () => ({
      async init() {},
      async acquireConnection() {
        const previous = queue;
        let done!: () => void;
        queue = new Promise<void>((resolve) => (done = resolve));
        await previous;
        release = done;
        return connection;
      },
      async releaseConnection() {
        const done = release;
        release = undefined;
        done?.();
      },
      async beginTransaction(conn) {
        await conn.executeQuery(CompiledQuery.raw('BEGIN'));
      },
      async commitTransaction(conn) {
        await conn.executeQuery(CompiledQuery.raw('COMMIT'));
      },
      async rollbackTransaction(conn) {
        await conn.executeQuery(CompiledQuery.raw('ROLLBACK'));
      },
      async destroy() {},
    }),
  };
}

/** A browser's fetch for one site: it keeps the cookies that site sets and sends them back, with its Origin. */
function browserFetch(origin: string) {
  const jar = new Map<string, string>();
  const requests: string[] = [];
  const fetchWithCookies: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    if (url.origin === origin) {
      if (jar.size) request.headers.set('Cookie', cookie());
      request.headers.set('Origin', origin);
    }
    requests.push(`${request.method} ${url.pathname}`);
    const response = await fetch(request);
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) jar.delete(name);
      else jar.set(name, value);
    }
    return response;
  };
  function cookie() {
    return [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
  }
  return { fetch: fetchWithCookies, cookie, requests };
}

function claims(token: string): Record<string, unknown> {
  const [header, payload] = token
    .split('.')
    .slice(0, 2)
    .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
  return { ...payload, alg: header.alg };
}

/** A clock the test moves; the SDK's cachedToken reads it instead of Date.now. */
function clock() {
  let t = Date.now();
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const FIFTEEN_MINUTES = 15 * 60_000;

let database: TestDatabase;
let pglite: PGlite;
const servers: Server[] = [];
let authURL: string;
let apiURL: string;
let auth: ReturnType<typeof startAuth>;
/** Every token Better Auth signed at /token, over HTTP or through auth.api.getToken. */
let tokensSigned = 0;

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** lib/auth.ts of the recipe, with its environment spelled out and a counter of signed tokens. */
function startAuth(baseURL: string) {
  return betterAuth({
    baseURL, // BETTER_AUTH_URL, the same value the API is started with
    secret: randomBytes(32).toString('hex'), // BETTER_AUTH_SECRET
    database: { dialect: pgliteDialect(pglite), type: 'postgres' },
    emailAndPassword: { enabled: true },
    plugins: [jwt(), nextCookies()],
    hooks: {
      after: createAuthMiddleware(async (ctx) => {
        if (ctx.path === '/token') tokensSigned++;
      }),
    },
    telemetry: { enabled: false },
  });
}

beforeAll(async () => {
  database = await createTestDatabase();
  pglite = await PGlite.create();
  let handler: ReturnType<typeof toNodeHandler> | undefined;
  authURL = await listen(createServer((req, res) => handler!(req, res)));
  auth = startAuth(authURL);
  await (await getMigrations(auth.options)).runMigrations();
  handler = toNodeHandler(auth); // in Next.js: app/api/auth/[...all]/route.ts, toNextJsHandler(auth)

  // This API as `BETTER_AUTH_URL=<the app's URL> npm start` configures it: JWKS, iss and aud from that one variable.
  const config = loadConfig({ NODE_ENV: 'test', BETTER_AUTH_URL: authURL }).auth;
  expect(config).toMatchObject({ jwksUrl: `${authURL}/api/auth/jwks`, issuer: authURL, audience: authURL, secret: undefined });
  apiURL = await listen(
    buildApp(database.db, { jwks: remoteJwks(config.jwksUrl!), secret: '', issuer: config.issuer, audience: config.audience }).server,
  );
});

afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
  await pglite?.close();
  await database?.drop();
});

describe('docs/nextjs.md, run against real Better Auth', () => {
  const browser = () => browserFetch(authURL);
  let user: { id: string; cookies: ReturnType<typeof browserFetch>; authClient: ReturnType<typeof clientFor> };
  function clientFor(cookies: ReturnType<typeof browserFetch>) {
    // lib/auth-client.ts of the recipe (better-auth/react's createAuthClient is this one with hooks).
    return createAuthClient({ baseURL: authURL, plugins: [jwtClient()], fetchOptions: { customFetchImpl: cookies.fetch } });
  }

  it('a user signs up, signs out and signs in through Better Auth over HTTP, holding a session cookie', async () => {
    const cookies = browser();
    const authClient = clientFor(cookies);
    const email = `reader-${randomBytes(4).toString('hex')}@example.com`;
    const password = 'correct horse battery staple';
    const signedUp = await authClient.signUp.email({ email, password, name: 'Reader' });
    expect(signedUp.error).toBeNull();
    expect(cookies.cookie()).toMatch(/better-auth\.session_token=/);
    await authClient.signOut();
    expect(cookies.cookie()).not.toMatch(/better-auth\.session_token=/);
    const signedIn = await authClient.signIn.email({ email, password });
    expect(signedIn.error).toBeNull();
    expect(cookies.cookie()).toMatch(/better-auth\.session_token=/);
    user = { id: signedIn.data!.user.id, cookies, authClient };
  });

  it('server side: auth.api.getToken with the request’s cookie, one token for a page’s calls, a new one near exp', async () => {
    const time = clock();
    // What Next.js hands a Server Component as headers(): the browser's request, its cookie included.
    const requestHeaders = new Headers({ cookie: user.cookies.cookie() });
    const signedBefore = tokensSigned;
    const todos = createTodoClient({
      baseUrl: apiURL,
      getToken: cachedToken(async () => (await auth.api.getToken({ headers: requestHeaders })).token, { now: time.now }),
    });

    const created = await todos.createTask({ title: 'Written on the server', due_at: '2030-01-01T00:00:00Z' });
    const [{ tasks }, stats] = await Promise.all([todos.listTasks({ status: 'pending', sort: 'due_at' }), todos.getTaskStats()]);
    expect(tasks.map((t) => t.id)).toEqual([created.id]);
    expect(stats).toMatchObject({ total: 1, pending: 1 });
    expect(tokensSigned - signedBefore).toBe(1);
    const { rows } = await database.db.query('SELECT user_id FROM tasks WHERE id = $1', [created.id]);
    expect(rows).toEqual([{ user_id: user.id }]);

    time.advance(FIFTEEN_MINUTES - 31_000);
    await todos.getTask(created.id);
    expect(tokensSigned - signedBefore).toBe(1);
    time.advance(1000); // 30 s before exp: renewed before it could expire in flight
    await todos.getTask(created.id);
    await todos.setTaskCompletion(created.id, true);
    expect(tokensSigned - signedBefore).toBe(2);

    // Better Auth's defaults, which the recipe and this API rely on: EdDSA, 15 minutes, iss = aud = BETTER_AUTH_URL.
    const c = claims((await auth.api.getToken({ headers: requestHeaders })).token);
    expect(c).toMatchObject({ alg: 'EdDSA', sub: user.id, iss: authURL, aud: authURL });
    expect(Number(c.exp) - Number(c.iat)).toBe(900);
  });

  it('server side, signed out: no token, and the SDK call fails with Better Auth’s 401 before reaching the API', async () => {
    const requestHeaders = new Headers();
    const todos = createTodoClient({
      baseUrl: apiURL,
      getToken: cachedToken(async () => (await auth.api.getToken({ headers: requestHeaders })).token),
    });
    const err = await todos.listTasks().catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 401 });
    expect(err).not.toBeInstanceOf(TodoApiError);
  });

  it('client side: authClient.token() once for several calls, again near exp, and nothing after sign-out', async () => {
    const time = clock();
    const { authClient, cookies } = user;
    const todoToken = cachedToken(async () => (await authClient.token()).data?.token, { now: time.now });
    const todos = createTodoClient({ baseUrl: apiURL, getToken: todoToken });
    const tokenRequests = () => cookies.requests.filter((r) => r === 'GET /api/auth/token').length;
    const before = tokenRequests();

    // The same user as on the server side: the task written there is here.
    const [{ tasks }] = await Promise.all([todos.listTasks(), todos.getTaskStats()]);
    expect(tasks.map((t) => t.title)).toEqual(['Written on the server']);
    const added = await todos.createTask({ title: 'Added in the browser' }, { idempotencyKey: crypto.randomUUID() });
    const read = (await todos.getTaskWithETag(added.id))!;
    await todos.updateTaskIfMatch(added.id, read.etag, { priority: 'high' });
    expect(tokenRequests() - before).toBe(1);

    time.advance(FIFTEEN_MINUTES - 30_000);
    expect((await todos.getTask(added.id)).priority).toBe('high');
    await todos.listTasks();
    expect(tokenRequests() - before).toBe(2);

    // The recipe's signOut(): Better Auth's, then the token is forgotten; the next call has none.
    await authClient.signOut();
    todoToken.clear();
    const err = await todos.listTasks().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TodoApiError);
    expect(err).toMatchObject({ status: 401, code: 'token_missing' });
  });

  it('runs the lines docs/nextjs.md and packages/client/examples show', () => {
    const doc = readFileSync(new URL('../docs/nextjs.md', import.meta.url), 'utf8');
    const server = readFileSync(new URL('../packages/client/examples/nextjs-server.ts', import.meta.url), 'utf8');
    const browserSide = readFileSync(new URL('../packages/client/examples/nextjs-better-auth.ts', import.meta.url), 'utf8');
    const serverLine = 'cachedToken(async () => (await auth.api.getToken({ headers: requestHeaders })).token)';
    const browserLine = 'cachedToken(async () => (await authClient.token()).data?.token)';
    for (const text of [doc, server]) expect(text).toContain(serverLine);
    for (const text of [doc, browserSide]) expect(text).toContain(browserLine);
    expect(doc).toContain('plugins: [jwt(), nextCookies()]');
    expect(doc).toContain('createAuthClient({ plugins: [jwtClient()] })');
  });
});
