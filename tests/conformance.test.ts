import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintToken } from '../src/auth/mint-token.js';
import { remoteJwks } from '../src/auth/verify-token.js';
import { encodeFeedCursor } from '../src/changes/cursor.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';
import { bearer, buildApp, newUser, TEST_SECRET } from './helpers/app.js';
import { checkResponse, deref, operations, spec, UndocumentedResponse, type Json, type Operation } from './helpers/contract.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

const coverage = new Map<string, Set<string>>(operations.map((o) => [o.id, new Set()]));
const undocumented: string[] = [];

/** Checks one response against the operation's documented responses; records coverage. */
function conform(o: Operation, res: request.Response): void {
  try {
    checkResponse(o, res);
  } catch (err) {
    if (err instanceof UndocumentedResponse) undocumented.push(err.message);
    throw err;
  }
  coverage.get(o.id)!.add(String(res.status));
}

// Apps around real databases: healthy (with built docs), healthy without docs, one whose table was
// dropped (a real unexpected failure), one whose database cannot be reached.
let healthy: TestDatabase;
let broken: TestDatabase;
let unreachable: Database;
let apps: Record<
  'main' | 'noDocs' | 'broken' | 'down' | 'limited' | 'metrics' | 'full' | 'noKeys' | 'unnamedResource',
  ReturnType<typeof buildApp>['app']
>;
const METRICS_TOKEN = 'metrics-token-for-conformance';
const user = newUser();
let auth: string;

beforeAll(async () => {
  [healthy, broken] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  await broken.db.query('DROP TABLE tasks CASCADE');
  await broken.db.query('DROP TABLE event_tickets');
  await broken.db.query('DROP TABLE webhook_endpoints CASCADE');
  unreachable = createPostgresDatabase({
    connectionString: 'postgres://x@127.0.0.1:1/x',
    poolMax: 1,
    statementTimeoutMs: 500,
    connectTimeoutMs: 500,
  });
  const docsFile = inject('docsFile');
  apps = {
    // Room for the endpoints each webhook operation's requests register.
    main: buildApp(healthy.db, { docsFile, bodyLimitBytes: 8192, webhooks: { endpointsPerUser: 1000 } }).app,
    noDocs: buildApp(healthy.db).app,
    broken: buildApp(broken.db).app,
    down: buildApp(unreachable).app,
    limited: buildApp(healthy.db, { rateLimit: { perUser: 1, perIpFailures: 1 } }).app,
    metrics: buildApp(healthy.db, { metrics: { enabled: true, token: METRICS_TOKEN } }).app,
    // One task per user: the conformance user, who has tasks by then, is over it.
    full: buildApp(healthy.db, { tasksPerUser: 1, webhooks: { endpointsPerUser: 1 } }).app,
    // Its JWKS cannot be fetched: a token signed with a key of it answers 503 auth_unavailable.
    noKeys: buildApp(healthy.db, { jwks: remoteJwks('http://127.0.0.1:1/jwks') }).app,
    // As in production without MCP_RESOURCE_URL: the MCP resource is never named from Host.
    unnamedResource: buildApp(healthy.db, { mcp: { resourceFromHost: false } }).app,
  };
  auth = await bearer(user);
  // Two failed requests from this address: it is now over its limit on `limited`, for every path.
  await request(apps.limited).get('/nowhere');
  await request(apps.limited).get('/nowhere');
});

afterAll(async () => {
  const rows = operations.map((o) => {
    const hit = coverage.get(o.id)!;
    return `${o.id.padEnd(30)} ${o.statuses.map((s) => `${s}:${hit.has(s) ? 'hit' : 'MISSED'}`).join(' ')}`;
  });
  const total = operations.reduce((n, o) => n + o.statuses.length, 0);
  const hits = operations.reduce((n, o) => n + o.statuses.filter((s) => coverage.get(o.id)!.has(s)).length, 0);
  console.log(
    `\nContract conformance coverage (operation × documented status): ${hits}/${total}, undocumented responses: ${undocumented.length}\n${rows.join('\n')}\n`,
  );
  await Promise.all([healthy.drop(), broken.drop(), unreachable.close()]);
});

async function newTaskId(): Promise<number> {
  const res = await request(apps.main).post('/api/tasks').set('Authorization', auth).send({ title: 'conformance' });
  return res.body.id as number;
}

// Operations with a required query parameter: the query every valid request of theirs carries.
const REQUIRED_QUERY: Record<string, string> = { clearCompletedTasks: 'status=completed' };

/**
 * A new webhook endpoint of the conformance user (at a literal public address: nothing to resolve,
 * nothing ever delivered, as no dispatcher runs here), and the id of a message queued for it.
 */
async function newWebhook(): Promise<{ webhookId: number; messageId: string }> {
  const res = await request(apps.main).post('/api/webhooks').set('Authorization', auth).send(VALID_BODY.createWebhook!);
  await newTaskId();
  const { rows } = await healthy.db.query<{ message_id: string }>('SELECT message_id FROM webhook_messages WHERE endpoint_id = $1', [
    res.body.id,
  ]);
  return { webhookId: res.body.id as number, messageId: rows[0]!.message_id };
}

interface Ids {
  taskId?: number | string;
  userId?: string;
  webhookId?: number | string;
  messageId?: string;
}

function url(o: Operation, ids: Ids = {}, withQuery = true): string {
  const path = o.path
    .replace('{userId}', encodeURIComponent(ids.userId ?? user))
    .replace('{taskId}', String(ids.taskId ?? 1))
    .replace('{webhookId}', String(ids.webhookId ?? 1))
    .replace('{messageId}', ids.messageId ?? 'msg_00000000000000000000000000000000');
  const query = withQuery ? REQUIRED_QUERY[baseId(o)] : undefined;
  return query ? `${path}?${query}` : path;
}

const baseId = (o: Operation) => o.id.replace(/ForUser$/, '');

const VALID_BODY: Record<string, object> = {
  createTask: { title: 'Conformance' },
  replaceTask: { title: 'Replaced', description: 'd' },
  updateTask: { completed: true },
  toggleTaskCompletion: { completed: true },
  // Ids no one has: deleting them is a 200 (each under not_found); updating them the 404.
  updateTasks: { ids: [987_654_321], completed: true },
  deleteTasks: { ids: [987_654_321] },
  createWebhook: { url: 'https://93.184.216.34/hooks', events: ['task.created'] },
  updateWebhook: { description: 'conformance' },
};

/** A request that must produce `status` for operation `o`. */
async function produce(o: Operation, status: string): Promise<request.Response> {
  const send = async (
    app: keyof typeof apps,
    target: string,
    opts: { token?: string | null; body?: unknown; type?: string; raw?: string; headers?: Record<string, string> } = {},
  ) => {
    let req = request(apps[app])[o.method](target);
    if (opts.headers) req = req.set(opts.headers);
    const token = opts.token === undefined ? auth : opts.token;
    if (token) req = req.set('Authorization', token);
    if (opts.raw !== undefined) return req.set('Content-Type', opts.type ?? 'application/json').send(opts.raw);
    if (opts.body !== undefined) return req.send(opts.body as object);
    if (o.hasBody && o.op.requestBody.required) return req.send(VALID_BODY[baseId(o)]!);
    return req;
  };
  if (o.path === '/mcp') return produceMcp(status, send);
  if (o.path === '/api/events') return produceEvents(status, send);
  // A cursor handed out before the retention began: 410.
  if (status === '410') {
    const old = encodeFeedCursor(user, { position: { xid: '1', seq: '0' }, floorXid: '1', issuedAt: 0 });
    return send('main', `${url(o)}?cursor=${old}`);
  }
  const needsTask = o.path.includes('{taskId}');
  const needsWebhook = o.path.includes('{webhookId}');
  if (o.path === '/metrics') {
    if (status === '200') return send('metrics', o.path, { token: `Bearer ${METRICS_TOKEN}` });
    if (status === '401') return send('metrics', o.path, { token: null });
    if (status === '404') return send('main', o.path, { token: null });
  }
  if (o.path === '/problems/{code}') {
    if (status === '200') return send('main', '/problems/validation_failed', { token: null });
    if (status === '404') return send('main', '/problems/no_such_code', { token: null });
  }
  switch (status) {
    case '200':
    case '201':
    case '202':
    case '204':
      if (o.path === '/ready' || o.path === '/health' || !o.path.startsWith('/api')) return send('main', o.path, { token: null });
      if (baseId(o) === 'updateTasks') return send('main', url(o), { body: { ids: [await newTaskId()], completed: true } });
      return send('main', url(o, needsTask ? { taskId: await newTaskId() } : needsWebhook ? await newWebhook() : {}));
    case '304': {
      const target = url(o, { taskId: await newTaskId() });
      const etag = (await request(apps.main).get(target).set('Authorization', auth)).headers.etag as string;
      return send('main', target, { headers: { 'If-None-Match': etag } });
    }
    case '412':
      return send('main', url(o, { taskId: await newTaskId() }), { headers: { 'If-Match': '"999999"' } });
    case '409':
      await newTaskId();
      if (baseId(o) === 'createWebhook') await newWebhook();
      return send('full', url(o));
    case '400':
      return send('main', url(o), { raw: '{"title": ' });
    case '401':
      return send('main', url(o), { token: null });
    case '403':
      return send('main', url(o, { userId: 'someone-else' }));
    case '404':
      if (o.path === '/docs') return send('noDocs', o.path, { token: null });
      if (o.path.startsWith('/.well-known/')) return send('unnamedResource', o.path, { token: null });
      // An endpoint no one has; for a message, one of the user's endpoints without it.
      if (o.path.includes('{messageId}')) return send('main', url(o, { webhookId: (await newWebhook()).webhookId }));
      return send('main', url(o, { taskId: 987_654_321, webhookId: 987_654_321 }));
    case '413':
      return send('main', url(o), { body: { title: 'x', description: 'y'.repeat(9000) } });
    case '415':
      // An operation without a body ignores one of another type, but not JSON in another charset.
      if (!o.hasBody) return send('main', url(o), { raw: '{}', type: 'application/json; charset=iso-8859-1' });
      return send('main', url(o), { raw: 'title=x', type: 'text/plain' });
    case '422':
      if (needsWebhook) return send('main', url(o, { webhookId: 'abc' }));
      return needsTask ? send('main', url(o, { taskId: 'abc' })) : send('main', `${url(o, {}, false)}?limit=0`);
    case '429':
      return send('limited', o.path.startsWith('/api') ? url(o) : o.path, o.path.startsWith('/api') ? {} : { token: null });
    case '500':
      return send('broken', url(o));
    case '503':
      return send('down', o.path.startsWith('/api') ? url(o) : o.path, o.path.startsWith('/api') ? {} : { token: null });
    default:
      throw new Error(`no scenario for ${o.id} ${status}`);
  }
}

/** The event stream's answers; a 200 is a stream that ends when its token does (in a second). */
async function produceEvents(
  status: string,
  send: (app: keyof typeof apps, target: string, opts?: Record<string, unknown>) => Promise<request.Response>,
) {
  const cursor = encodeFeedCursor(user, { position: { xid: '1', seq: '0' }, floorXid: '1', issuedAt: Math.floor(Date.now() / 1000) });
  switch (status) {
    case '200':
      return send('main', '/api/events', { token: `Bearer ${await mintToken({ secret: TEST_SECRET, userId: user, ttlSec: 1 })}` });
    case '401':
      return send('main', '/api/events', { token: null });
    case '422':
      return send('main', '/api/events', { headers: { 'Last-Event-ID': 'bm90LW91cnM' } });
    case '429':
      return send('limited', '/api/events', { headers: { 'Last-Event-ID': cursor } });
    case '500':
      return send('broken', '/api/events', { headers: { 'Last-Event-ID': cursor } });
    case '503':
      return send('down', '/api/events', {});
    default:
      throw new Error(`no scenario for streamTaskEvents ${status}`);
  }
}

/** The MCP endpoint's answers: JSON-RPC through its transport, problems from the HTTP layer. */
function produceMcp(
  status: string,
  send: (app: keyof typeof apps, target: string, opts?: Record<string, unknown>) => Promise<request.Response>,
) {
  const accept = { Accept: 'application/json, text/event-stream' };
  const initialize = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'conformance', version: '1' } },
  };
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  switch (status) {
    case '200':
      return send('main', '/mcp', { headers: accept, body: initialize });
    case '202':
      return send('main', '/mcp', { headers: accept, body: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    case '400':
      return send('main', '/mcp', { headers: accept, body: { jsonrpc: '2.0', id: 1 } }); // neither a request nor a response
    case '401':
      return send('main', '/mcp', { headers: accept, body: initialize, token: null });
    case '406':
      return send('main', '/mcp', { headers: { Accept: 'application/json' }, body: initialize });
    case '413':
      return send('main', '/mcp', {
        headers: accept,
        body: { ...initialize, params: { ...initialize.params, padding: 'y'.repeat(9000) } },
      });
    case '415':
      return send('main', '/mcp', { headers: accept, raw: 'jsonrpc=2.0', type: 'text/plain' });
    case '422':
      return send('main', '/mcp', { headers: accept, body: { ...initialize, jsonrpc: '1.0' } });
    case '429':
      return send('limited', '/mcp', { headers: accept, body: initialize });
    case '503': {
      const now = Math.floor(Date.now() / 1000);
      const token = `${b64({ alg: 'ES256', kid: 'k1' })}.${b64({ sub: 'x', iat: now, exp: now + 60 })}.${b64({ sig: 1 })}`;
      return send('noKeys', '/mcp', { headers: accept, body: initialize, token: `Bearer ${token}` });
    }
    default:
      throw new Error(`no scenario for callMcp ${status}`);
  }
}

describe('every operation × every documented status', () => {
  for (const o of operations) {
    for (const status of o.statuses) {
      it(`${o.id} → ${status}`, async () => {
        const res = await produce(o, status);
        expect(res.status, res.text?.slice(0, 300)).toBe(Number(status));
        conform(o, res);
      });
    }
  }
});

// ---- Negative pass: one request per constraint in the schemas, each must be a documented 4xx.

interface Violation {
  label: string;
  body?: unknown;
  query?: string;
  taskId?: string;
  webhookId?: string;
  messageId?: string;
}

function schemaViolations(schema: Json, valid: Json): Violation[] {
  const s = deref(schema);
  const out: Violation[] = [];
  if (s.additionalProperties === false) out.push({ label: 'unknown property', body: { ...valid, unexpected: 1 } });
  for (const name of s.required ?? []) {
    const { [name]: _omitted, ...rest } = valid;
    out.push({ label: `${name} missing`, body: rest });
  }
  out.push({ label: 'body not an object', body: [valid] });
  for (const [name, raw] of Object.entries((s.properties ?? {}) as Json)) {
    const p = deref(raw);
    const withValue = (v: unknown, label: string) => out.push({ label: `${name} ${label}`, body: { ...valid, [name]: v } });
    withValue(p.type === 'string' ? 12345 : `not-a-${p.type}`, 'of the wrong type');
    // A field of several forms (anyOf) takes null when one of them does.
    const nullable = p.nullable || (p.anyOf as Json[] | undefined)?.some((form) => deref(form).nullable);
    if (!nullable) withValue(null, 'null');
    if (p.minLength !== undefined) withValue('', `shorter than ${p.minLength}`);
    if (p.maxLength !== undefined) withValue('a'.repeat(p.maxLength + 1), `longer than ${p.maxLength}`);
    if (p.pattern !== undefined) withValue(p.type === 'string' && p.minLength ? ' \t ' : 'a\u0000b', `not matching ${p.pattern}`);
    if (p.enum) withValue('not-in-enum', 'outside the enum');
  }
  return out;
}

function parameterViolations(o: Operation): Violation[] {
  const params = [...((o.op.parameters ?? []) as Json[]), ...((spec.paths[o.path].parameters ?? []) as Json[])].map(deref);
  const out: Violation[] = [];
  for (const p of params) {
    const s = deref(p.schema);
    if (p.in === 'query') {
      const q = (v: string, label: string) => out.push({ label: `${p.name} ${label}`, query: `${p.name}=${encodeURIComponent(v)}` });
      if (s.enum) q('not-in-enum', 'outside the enum');
      if (s.type === 'integer') {
        q('1.5', 'not an integer');
        q('abc', 'not a number');
        if (s.minimum !== undefined) q(String(s.minimum - 1), `below ${s.minimum}`);
        if (s.maximum !== undefined) q(String(s.maximum + 1), `above ${s.maximum}`);
      }
      if (s.maxLength !== undefined) q('a'.repeat(s.maxLength + 1), `longer than ${s.maxLength}`);
      if (s.pattern !== undefined) {
        const bad = ['has spaces!', 'a\u0000b'].find((v) => !new RegExp(s.pattern, 'u').test(v))!;
        q(bad, `not matching ${s.pattern}`);
      }
    }
    if (p.in === 'path' && p.name === 'taskId') {
      for (const v of ['0', '-1', 'abc', '1.5', '9007199254740992', '1e3', '99999999999999999999999'])
        out.push({ label: `taskId ${v}`, taskId: v });
    }
    if (p.in === 'path' && p.name === 'webhookId') {
      for (const v of ['0', '-1', 'abc', '1.5', '9007199254740992', '1e3']) out.push({ label: `webhookId ${v}`, webhookId: v });
    }
    if (p.in === 'path' && p.name === 'messageId') {
      for (const v of ['msg_', 'msg_XYZ', 'msg_0000000000000000000000000000000G', 'evt_00000000000000000000000000000000'])
        out.push({ label: `messageId ${v}`, messageId: v });
    }
  }
  out.push({ label: 'unknown query parameter', query: 'unexpected=1' });
  return out;
}

// ajv's own phrasing, or a pattern's source: what a field error must never show a person.
const RAW_VALIDATOR_TEXT =
  /must match pattern|must NOT|must be equal to one of|must have required property|additional properties|must match format|must be (integer|string|boolean|number|array|object)\b|[\^$]|\\[sdwux]/;

describe('field errors are written for people', () => {
  it('every pattern in the contract says in words what it requires (x-pattern-message)', () => {
    const missing: string[] = [];
    const walk = (node: unknown, at: string) => {
      if (Array.isArray(node)) for (const [i, n] of node.entries()) walk(n, `${at}/${i}`);
      else if (node && typeof node === 'object') {
        const o = node as Json;
        if (typeof o.pattern === 'string' && typeof o['x-pattern-message'] !== 'string') missing.push(at);
        for (const [k, v] of Object.entries(o)) walk(v, `${at}/${k}`);
      }
    };
    walk(spec, '#');
    expect(missing).toEqual([]);
  });

  it('lists every rejected field of a request at once, one entry per field, in plain words', async () => {
    const res = await request(apps.main)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title: '', priority: 'urgent', tags: 'home' });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([
      { path: '/body/title', message: 'must not be blank' },
      { path: '/body/priority', message: 'must be one of none, low, medium, high' },
      { path: '/body/tags', message: 'must be a list' },
    ]);
    expect(res.body.detail).toBe(
      'The request is invalid: title must not be blank; priority must be one of none, low, medium, high; tags must be a list.',
    );
  });
});

describe('negative pass: every constraint violated gives a documented 4xx problem', () => {
  for (const o of operations.filter((op) => op.path.startsWith('/api'))) {
    const violations = [
      ...parameterViolations(o),
      ...(o.hasBody ? schemaViolations(o.op.requestBody.content['application/json'].schema, VALID_BODY[baseId(o)]!) : []),
    ];
    it(`${o.id}: ${violations.length} violations`, async () => {
      const taskId = o.path.includes('{taskId}') ? await newTaskId() : undefined;
      const hook = o.path.includes('{webhookId}') ? await newWebhook() : undefined;
      for (const v of violations) {
        let req = request(apps.main)
          [o.method](
            `${url(o, { taskId: v.taskId ?? taskId, webhookId: v.webhookId ?? hook?.webhookId, messageId: v.messageId ?? hook?.messageId }, false)}${v.query ? `?${v.query}` : ''}`,
          )
          .set('Authorization', auth);
        if (v.body !== undefined) req = req.send(v.body as object);
        else if (o.hasBody && o.op.requestBody.required) req = req.send(VALID_BODY[baseId(o)]!);
        const res = await req;
        expect(res.status, `${o.id} with ${v.label}: ${res.text}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${o.id} with ${v.label}: ${res.text}`).toBeLessThan(500);
        expect(res.headers['content-type'], `${o.id} with ${v.label}`).toMatch(/^application\/problem\+json/);
        // Every message is for people: no validator wording, no regular expression.
        for (const e of (res.body.errors ?? []) as { path: string; message: string }[]) {
          expect(e.message, `${o.id} with ${v.label}: ${e.path}`).not.toMatch(RAW_VALIDATOR_TEXT);
        }
        expect(
          new Set(((res.body.errors ?? []) as { path: string }[]).map((e) => e.path)).size,
          `${o.id} with ${v.label}: one entry per field`,
        ).toBe((res.body.errors ?? []).length);
        conform(o, res);
      }
    });
  }
});

describe('coverage', () => {
  it('hit every documented status of every operation, and nothing undocumented', () => {
    const missed = operations.flatMap((o) => o.statuses.filter((s) => !coverage.get(o.id)!.has(s)).map((s) => `${o.id} ${s}`));
    expect(missed).toEqual([]);
    expect(undocumented).toEqual([]);
  });
});
