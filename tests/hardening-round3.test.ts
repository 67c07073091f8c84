// The third hardening round's findings, each as a regression test that failed before its fix:
// a Host or forwarded protocol that names no URL never stops the server; MCP requests spend the
// per-user budget; /mcp authenticates before reading the body, is matched exactly and checks its
// tool arguments before any request is made of them; a token for the MCP resource alone is no
// REST token. (Channel binding: tests/channel-binding.test.ts; the pool wait behind a lock:
// tests/faults/pooler.test.ts.)
import type { Server } from 'node:http';
import { connect as netConnect, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/mint-token.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { cleanupsAfterAll, startServer, storageEnv, type ServerProcess } from './faults/process.js';
import { bearer, buildApp, newUser, TEST_SECRET, type TestAppOptions } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';

const JSON_RPC = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' };
const rpc = (method: string, params?: unknown, id = 1) => JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });

/** One raw HTTP/1.1 request with exactly these header lines (a Host fetch would refuse to send). */
function raw(base: string, lines: string[], body = ''): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port: Number(port) });
    let data = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', reject);
    socket.on('end', () => {
      const [head = '', ...rest] = data.split('\r\n\r\n');
      const [statusLine = '', ...headerLines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of headerLines) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') });
    });
    const withBody = body ? [`Content-Length: ${Buffer.byteLength(body)}`] : [];
    socket.write([...lines, ...withBody, 'Connection: close', '', body].join('\r\n'));
  });
}

const mcpPost = (host: string, extra: string[] = []) => [
  'POST /mcp HTTP/1.1',
  `Host: ${host}`,
  'Content-Type: application/json',
  'Accept: application/json, text/event-stream',
  ...extra,
];

// Hosts that are no URL authority: a port out of range, an empty punycode label, a space, a
// percent sign, a quote that would end the challenge's quoted string and inject auth-params.
const BAD_HOSTS = ['api.example.com:99999', 'xn--', 'a b', 'api.example.com%', 'x",error="insufficient_scope'];

describe('1. one request with a Host that names no URL never stops the server', () => {
  const cleanups = cleanupsAfterAll();
  let dev: ServerProcess;
  let proxied: ServerProcess;
  let prod: ServerProcess;
  beforeAll(async () => {
    // The server as it ships (dist/server.js), MCP_RESOURCE_URL unset: development takes the
    // identifier from Host, production from configuration only.
    const start = async (env: Record<string, string>) => {
      const p = await startServer({ ...(await storageEnv(cleanups)), ...env });
      cleanups.push(async () => {
        p.child.kill('SIGKILL');
        await p.exited;
      });
      return p;
    };
    [dev, proxied, prod] = await Promise.all([
      start({ NODE_ENV: 'development' }),
      start({ NODE_ENV: 'development', TRUST_PROXY: 'true' }),
      start({ NODE_ENV: 'production' }),
    ]);
  }, 120_000);

  const health = async (p: ServerProcess) => (await fetch(`${p.base}/health`)).status;

  it('answers 401 to a refused token, or none, whatever the Host; the challenge carries nothing from it', async () => {
    for (const host of BAD_HOSTS) {
      for (const auth of [['Authorization: Bearer x'], []]) {
        const res = await raw(dev.base, mcpPost(host, auth), rpc('ping'));
        expect(res.status, `${host} ${auth.join()}`).toBe(401);
        const challenge = res.headers['www-authenticate'] ?? '';
        expect(challenge).toMatch(/^Bearer realm="todo-api"/);
        expect(challenge).not.toContain('resource_metadata');
        expect(challenge).not.toContain('insufficient_scope');
        expect(JSON.parse(res.body)).toMatchObject({ status: 401 });
      }
      expect(await health(dev)).toBe(200);
    }
    expect(dev.child.exitCode).toBeNull();
  });

  it('answers 404 at the metadata paths for such a Host, never a 500', async () => {
    for (const host of BAD_HOSTS) {
      for (const path of ['/.well-known/oauth-protected-resource', '/.well-known/oauth-protected-resource/mcp']) {
        const res = await raw(dev.base, [`GET ${path} HTTP/1.1`, `Host: ${host}`]);
        expect(res.status, `${host} ${path}`).toBe(404);
        expect(JSON.parse(res.body)).toMatchObject({ code: 'not_found' });
      }
    }
    // A good Host still gets its metadata, named after it.
    const good = await raw(dev.base, ['GET /.well-known/oauth-protected-resource HTTP/1.1', 'Host: api.example.com:8443']);
    expect(JSON.parse(good.body)).toMatchObject({ resource: 'http://api.example.com:8443/mcp' });
    expect(await health(dev)).toBe(200);
  });

  it('behind a trusted proxy, a forwarded protocol that is no scheme is treated alike', async () => {
    for (const proto of ['a b', 'ftp', 'a"b, https']) {
      const res = await raw(
        proxied.base,
        mcpPost('api.example.com', ['Authorization: Bearer x', `X-Forwarded-Proto: ${proto}`]),
        rpc('ping'),
      );
      expect(res.status, proto).toBe(401);
      expect(res.headers['www-authenticate']).not.toContain('resource_metadata');
    }
    const https = await raw(proxied.base, mcpPost('api.example.com', ['Authorization: Bearer x', 'X-Forwarded-Proto: https']), rpc('ping'));
    expect(https.headers['www-authenticate']).toContain(
      'resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/mcp"',
    );
    expect(await health(proxied)).toBe(200);
  });

  it('in production without MCP_RESOURCE_URL, never takes the identifier from Host', async () => {
    const res = await raw(prod.base, mcpPost('evil.example.com', ['Authorization: Bearer x']), rpc('ping'));
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).not.toContain('evil');
    const metadata = await raw(prod.base, ['GET /.well-known/oauth-protected-resource HTTP/1.1', 'Host: evil.example.com']);
    expect(metadata.status).toBe(404);
    expect(metadata.body).not.toContain('evil');
    expect(await health(prod)).toBe(200);
  });
});

describe(`1b. the per-address failure limit counts the server's failures too (${dbKind})`, () => {
  let broken: TestDatabase;
  beforeAll(async () => {
    broken = await createTestDatabase();
    // A real unexpected failure on every task request: the table is gone.
    await broken.db.query('DROP TABLE tasks CASCADE');
  });
  afterAll(() => broken.drop());

  it('a request that makes the server fail (500) cannot be repeated without limit; a 503 is not counted', async () => {
    const { server } = buildApp(broken.db, { rateLimit: { perIpFailures: 3 } });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const auth = await bearer(newUser());
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await fetch(`${base}/api/tasks`, { headers: { Authorization: auth } })).status);
      expect(statuses).toEqual([500, 500, 500, 429, 429]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    // An unreachable database (503) is not the caller's doing: not counted.
    const unreachable = createPostgresDatabase({
      connectionString: 'postgres://x@127.0.0.1:1/x',
      poolMax: 1,
      statementTimeoutMs: 500,
      connectTimeoutMs: 500,
    });
    const down = buildApp(unreachable, { rateLimit: { perIpFailures: 2 } }).server;
    await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
    try {
      const at = `http://127.0.0.1:${(down.address() as AddressInfo).port}/api/tasks`;
      const auth = await bearer(newUser());
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(at, { headers: { Authorization: auth } })).status);
      expect(statuses).toEqual([503, 503, 503, 503]);
    } finally {
      await new Promise((resolve) => down.close(resolve));
      await unreachable.close();
    }
  });
});

describe(`MCP requests against the app (${dbKind})`, () => {
  let database: TestDatabase;
  const servers: Server[] = [];
  let base: string;
  let limited: string;
  let bound: string;
  const RESOURCE = 'https://api.example.com/mcp';

  async function listen(opts: TestAppOptions = {}): Promise<string> {
    const built = buildApp(database.db, opts);
    const { server } = built;
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    base = await listen();
    limited = await listen({ rateLimit: { perUser: 100 } });
    bound = await listen({ mcp: { resourceUrl: RESOURCE } });
  });
  afterAll(async () => {
    for (const s of servers) await new Promise((resolve) => s.close(resolve));
    await database.drop();
  });

  const post = async (at: string, auth: string | undefined, body: string, path = '/mcp') => {
    const res = await fetch(`${at}${path}`, { method: 'POST', headers: { ...JSON_RPC, ...(auth ? { Authorization: auth } : {}) }, body });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const toolCall = async (auth: string, name: string, args: Record<string, unknown>) => {
    const res = await post(base, auth, rpc('tools/call', { name, arguments: args }));
    expect(res.status).toBe(200);
    return JSON.parse(res.text) as {
      result?: { isError?: boolean; content: { text: string }[]; structuredContent?: unknown };
      error?: { code: number; message: string };
    };
  };

  it('3. twenty MCP requests, whatever their method, spend twenty of the user budget', async () => {
    const auth = await bearer(newUser());
    const methods = ['initialize', 'ping', 'tools/list', 'tools/call'];
    for (let i = 0; i < 20; i++) {
      const method = methods[i % methods.length]!;
      const params =
        method === 'initialize'
          ? { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } }
          : method === 'tools/call'
            ? { name: 'list_tasks', arguments: {} }
            : undefined;
      const res = await post(limited, auth, rpc(method, params, i + 1));
      expect(res.status, method).toBe(200);
      // Each says what is left, as a REST answer does.
      expect(res.headers.get('ratelimit')).toMatch(new RegExp(`^"user"; r=${100 - (i + 1)}; `));
    }
    const rest = await fetch(`${limited}/api/tasks`, { headers: { Authorization: auth } });
    expect(rest.headers.get('ratelimit')).toMatch(/^"user"; r=79; /);
  });

  it('4a. authenticates before reading the body: no token and a broken body is 401, not 400 or 422', async () => {
    for (const body of ['{not json', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 5 }), '[]']) {
      const res = await post(base, undefined, body);
      expect(res.status, body).toBe(401);
      expect(JSON.parse(res.text)).toMatchObject({ code: 'token_missing' });
    }
  });

  it('4b. get_task takes a task id only: "stats" in any case is refused, not run as the statistics', async () => {
    const auth = await bearer(newUser());
    for (const task_id of ['stats', 'STATS', 'Stats', '0', '01', '1.0', -1, 1.5, true, null, '..']) {
      const { result } = await toolCall(auth, 'get_task', { task_id });
      expect(result?.isError, JSON.stringify(task_id)).toBe(true);
      expect(JSON.parse(result!.content[1]!.text)).toMatchObject({ status: 422, code: 'validation_failed' });
    }
  });

  it('4c. header arguments are checked as given: control characters, NUL, non-ASCII and outer spaces are 422 tool errors', async () => {
    const auth = await bearer(newUser());
    const created = await toolCall(auth, 'create_task', { title: 'header args' });
    const { id } = (created.result!.structuredContent as { task: { id: number } }).task;
    const bad = ['"1"\r\nX-Evil: 1', '"1"\n', 'a\u0000b', '"1"\u0100', '\u20ac', ' "1"', '"1" ', 'k\tk'];
    for (const value of bad) {
      const update = await toolCall(auth, 'update_task', { task_id: id, if_match: value, title: 'x' });
      expect(update.error, JSON.stringify(value)).toBeUndefined();
      expect(update.result?.isError).toBe(true);
      expect(JSON.parse(update.result!.content[1]!.text)).toMatchObject({
        status: 422,
        errors: [{ path: 'if_match', message: expect.any(String) }],
      });
      const create = await toolCall(auth, 'create_task', { title: 'x', idempotency_key: value });
      expect(create.result?.isError).toBe(true);
      expect(JSON.parse(create.result!.content[1]!.text)).toMatchObject({ status: 422, errors: [{ path: 'idempotency_key' }] });
    }
    // " k" and "k" are not one key: the first is refused, the second works.
    expect((await toolCall(auth, 'create_task', { title: 'k', idempotency_key: ' k' })).result?.isError).toBe(true);
    expect((await toolCall(auth, 'create_task', { title: 'k', idempotency_key: 'k' })).result?.isError).toBeFalsy();
    // Nothing was written by the refused calls.
    const list = await fetch(`${base}/api/tasks`, { headers: { Authorization: auth } });
    expect(((await list.json()) as { title: string }[]).map((t) => t.title).sort()).toEqual(['header args', 'k']);
  });

  it("4d. Object.prototype's names are no arguments", async () => {
    const auth = await bearer(newUser());
    for (const name of ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__']) {
      const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tasks","arguments":{"${name}":1}}}`;
      const res = JSON.parse((await post(base, auth, body)).text) as { result: { isError: boolean; content: { text: string }[] } };
      expect(res.result.isError, name).toBe(true);
      expect(JSON.parse(res.result.content[1]!.text)).toMatchObject({
        status: 422,
        errors: [{ path: name, message: 'is not an argument of this tool' }],
      });
    }
  });

  it('4e. /mcp is matched exactly: /MCP, /Mcp and /mcp/ are not the endpoint', async () => {
    const auth = await bearer(newUser());
    for (const path of ['/MCP', '/Mcp', '/mcp/']) {
      const res = await post(base, auth, rpc('tools/list'), path);
      expect(res.status, path).toBe(404);
      expect(res.text).not.toContain('jsonrpc');
    }
  });

  it('4f. with MCP_RESOURCE_URL, a token issued for the MCP resource alone is refused by REST', async () => {
    const user = newUser();
    const forMcp = `Bearer ${await mintToken({ secret: TEST_SECRET, userId: user, audience: RESOURCE })}`;
    const rest = await fetch(`${bound}/api/tasks`, { headers: { Authorization: forMcp } });
    expect(rest.status).toBe(401);
    expect(await rest.json()).toMatchObject({ code: 'token_invalid' });
    // An audience that is not a string or a list of strings is refused on both: a junk entry
    // beside the MCP resource cannot make a token for /mcp alone pass the REST check.
    const { SignJWT } = await import('jose');
    for (const aud of [[RESOURCE, 123], [RESOURCE, null], 123, true, [RESOURCE, [RESOURCE]]]) {
      const token = await new SignJWT({ aud } as Record<string, unknown>)
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(user)
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode(TEST_SECRET));
      for (const at of [`${bound}/api/tasks`, `${base}/api/tasks`]) {
        const res = await fetch(at, { headers: { Authorization: `Bearer ${token}` } });
        expect(res.status, `${JSON.stringify(aud)} at ${at}`).toBe(401);
      }
      expect((await post(bound, `Bearer ${token}`, rpc('ping'))).status, JSON.stringify(aud)).toBe(401);
    }
    // It works at /mcp, and a token without an audience still works on REST.
    expect((await post(bound, forMcp, rpc('ping'))).status).toBe(200);
    expect((await fetch(`${bound}/api/tasks`, { headers: { Authorization: await bearer(user) } })).status).toBe(200);
  });

  it('4g. malformed tools/call params are JSON-RPC -32602 in plain words, not -32603 with a schema dump', async () => {
    const auth = await bearer(newUser());
    const malformed: [string, unknown][] = [
      ['tools/call', { name: 5 }],
      ['tools/call', { name: 'list_tasks', arguments: [] }],
      ['tools/call', { name: 'list_tasks', arguments: 'x' }],
      ['tools/call', {}],
      // Task-augmented calls (a capability this server does not offer), well-formed or not.
      ['tools/call', { name: 'list_tasks', arguments: {}, task: { ttl: 'x' } }],
      ['tools/call', { name: 'list_tasks', arguments: {}, task: {} }],
      ['tools/list', { cursor: {} }],
      ['tools/list', { cursor: 1 }],
      ['initialize', {}],
      ['initialize', { protocolVersion: {} }],
    ];
    for (const [method, params] of malformed) {
      const res = await post(base, auth, JSON.stringify({ jsonrpc: '2.0', id: 7, method, params }));
      const { error, id } = JSON.parse(res.text) as { id: number; error: { code: number; message: string } };
      expect(error.code, `${method} ${JSON.stringify(params)}`).toBe(-32602);
      expect(id).toBe(7);
      expect(error.message).not.toMatch(/invalid_type|"path"|"code"|expected/);
    }
    // params that are no object at all break the contract's JSON-RPC message: a 422 problem.
    for (const params of ['x', null, 5]) {
      const res = await post(base, auth, JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params }));
      expect(res.status, JSON.stringify(params)).toBe(422);
      expect(JSON.parse(res.text)).toMatchObject({ code: 'validation_failed' });
    }
  });

  it('a tool call is one request: one request log line, with the user, at /mcp', async () => {
    const built = buildApp(database.db);
    const { server } = built;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const at = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const user = newUser();
      const res = await post(at, await bearer(user), rpc('tools/call', { name: 'create_task', arguments: { title: 'one line' } }));
      expect(res.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 200)); // the line is written as the response closes
      const lines = built.logLines.map((l) => JSON.parse(l) as { msg: string; req?: { url: string }; userId?: string });
      const requests = lines.filter((l) => l.msg === 'request completed');
      expect(requests.map((l) => ({ url: l.req?.url, userId: l.userId }))).toEqual([{ url: '/mcp', userId: user }]);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('explains a rejected argument in the words REST uses for the same field', async () => {
    const auth = await bearer(newUser());
    const blank = await toolCall(auth, 'create_task', { title: ' ', tags: ['-home'] });
    expect(JSON.parse(blank.result!.content[1]!.text)).toMatchObject({
      status: 422,
      errors: expect.arrayContaining([
        { path: 'title', message: 'must not be blank' },
        { path: 'tags/0', message: "must be letters, digits, '-' and '_', starting with a letter or digit" },
      ]),
    });
    // A blank title and a title with a NUL in it each say what is wrong with them, and only that,
    // in the same words through MCP and REST.
    for (const [title, message] of [
      [' ', 'must not be blank'],
      ['', 'must not be blank'],
      ['a\u0000b', 'must not contain NUL characters'],
      ['\u0000', 'must not contain NUL characters'],
    ] as const) {
      const tool = await toolCall(auth, 'create_task', { title });
      const toolErrors = (JSON.parse(tool.result!.content[1]!.text) as { errors: unknown[] }).errors;
      const rest = await fetch(`${base}/api/tasks`, {
        method: 'POST',
        headers: { Authorization: auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ title }),
      });
      const restErrors = ((await rest.json()) as { errors: unknown[] }).errors;
      expect(toolErrors, JSON.stringify(title)).toEqual([{ path: 'title', message }]);
      expect(restErrors, JSON.stringify(title)).toEqual([{ path: '/body/title', message }]);
    }
  });

  it('4h. a tool call opens no listener of its own: no private port to hold open or reach', async () => {
    const auth = await bearer(newUser());
    const listeners = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap').length;
    const before = listeners();
    for (const name of ['list_tasks', 'create_task', 'get_task_stats']) {
      const args = name === 'create_task' ? { title: 'no listener' } : {};
      expect((await toolCall(auth, name, args)).result?.isError, name).toBeFalsy();
    }
    // No more than before (a server an earlier test closed may still be going away meanwhile).
    expect(listeners()).toBeLessThanOrEqual(before);
  });
});
