// Fuzzing every operation with hostile input: arbitrary bodies and media types, query strings, path
// ids and user ids, headers and tokens. Whatever arrives, the answer is a documented status of that
// operation, never a 5xx, and every error is a problem+json with a human detail.
import { createSecretKey } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildApp, newUser, TEST_SECRET, type TestContext } from './helpers/app.js';
import { checkResponse, operations, type Operation } from './helpers/contract.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';

let database: TestDatabase;
let app: TestContext['app'];
const user = newUser();
let auth: string;
let taskId: number;

beforeAll(async () => {
  database = await createTestDatabase();
  app = buildApp(database.db).app;
  auth = await bearer(user);
  const res = await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'fuzz target' });
  taskId = res.body.id;
});
afterAll(() => database.drop());

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });
function wellFormed(s: string): boolean {
  try {
    encodeURIComponent(s);
    return true;
  } catch {
    return false;
  }
}
// Any Unicode text: NUL, controls, right-to-left marks, astral characters. (Lone surrogates cannot be
// percent-encoded into a URL; bodies get them separately.)
const anyText = fc.string({ unit: 'binary', maxLength: 40 }).filter(wellFormed);
const weirdText = fc.oneof(
  anyText,
  fc.constantFrom('\u0000', 'a\u0000b', '\u202e', '😀'.repeat(300), ' '.repeat(600), 'x'.repeat(2001), "'; DROP TABLE tasks; --"),
);

const idSegment = fc
  .oneof(
    fc.constant(() => String(taskId)),
    fc.constantFrom(
      '0',
      '-1',
      '1.5',
      '1e3',
      '0x10',
      '00001',
      ' 1',
      '9007199254740992',
      '99999999999999999999999999',
      'NaN',
      'null',
      '..',
      '%00',
      '%',
      '%E0%A4%A',
      'ⅷ',
      '١٢',
    ),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }).map(String),
    anyText.filter((s) => s !== '').map(encodeURIComponent),
  )
  .map((v) => (typeof v === 'function' ? v : () => v));

const userSegment = fc.oneof(
  fc.constant(() => encodeURIComponent(user)),
  fc.constant(() => encodeURIComponent(newUser())),
  anyText.filter((s) => s !== '').map((s) => () => encodeURIComponent(s)),
  fc.constantFrom('%', '%FF', 'a'.repeat(300)).map((s) => () => s),
);

const knownParams = ['status', 'sort', 'order', 'limit', 'cursor', 'priority', 'tag', 'due_before', 'due_after', 'overdue', 'q', 'tz'];
const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(fc.constantFrom(...knownParams), printable),
      fc.oneof(
        fc.constantFrom(
          'all',
          'pending',
          'completed',
          'title',
          'asc',
          'position',
          'high',
          'true',
          'home',
          'Europe/Paris',
          'Mars/Base',
          '2026-01-01T00:00:00Z',
          '2026-02-30T00:00:00Z',
          '',
          '0',
          '501',
          '-1',
          '1.5',
          'eyJ4Ijox',
          '[]',
          '%',
        ),
        weirdText,
        fc.integer().map(String),
      ),
    ),
    { maxLength: 5 },
  )
  .map((pairs) => pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&'));

const jsonValue = fc.jsonValue({ maxDepth: 4 });
const taskLike = fc.record(
  {
    title: fc.oneof(weirdText, jsonValue),
    description: fc.oneof(weirdText, jsonValue, fc.constant(null)),
    completed: fc.oneof(fc.boolean(), jsonValue),
    due_at: fc.oneof(weirdText, jsonValue, fc.constantFrom('2026-01-01T00:00:00Z', '0000-01-01T00:00:00Z', '9999-12-31T23:59:59+14:00')),
    priority: fc.oneof(weirdText, fc.constantFrom('none', 'high')),
    tags: fc.oneof(
      jsonValue,
      fc.array(fc.oneof(weirdText, fc.constantFrom('home', 'a-b'))),
      fc.constant(Array.from({ length: 25 }, (_, i) => `t${i}`)),
    ),
    position: fc.oneof(jsonValue, fc.double(), fc.constantFrom(1e308, -1e15, 5e-324)),
    id: jsonValue,
    user_id: weirdText,
    __proto__: jsonValue,
  },
  { requiredKeys: [] },
);
const deep = fc.integer({ min: 20, max: 5000 }).map((n) => '['.repeat(n) + ']'.repeat(n));
const body = fc.oneof(
  fc.constant(undefined),
  taskLike.map((v) => JSON.stringify(v)),
  jsonValue.map((v) => JSON.stringify(v)),
  deep,
  weirdText,
  fc.constant('{"title":"\\ud800 lone surrogate"}'),
  fc.constantFrom(
    '{',
    '{"title":',
    'null',
    '""',
    '{"title":"a"}',
    '{"title":"a","title":"b"}',
    '\ufeff{"title":"a"}',
    '{"title":"a"}garbage',
  ),
);
const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'application/problem+json',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  'json',
);

async function sign(claims: Record<string, unknown>, opts: { secret?: string; alg?: string; exp?: number } = {}) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: opts.alg ?? 'HS256', typ: 'JWT' }).setIssuedAt();
  jwt.setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 600);
  return jwt.sign(createSecretKey(Buffer.from(opts.secret ?? TEST_SECRET, 'utf8')));
}
const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Authorization header values: valid, absent, malformed, forged, expired, and well-signed tokens with hostile claims. */
const authorization = fc.oneof(
  fc.constant(async () => auth),
  fc.constant(async () => undefined),
  printable.map((s) => async () => s),
  printable.map((s) => async () => `Bearer ${s}`),
  fc.constant(async () => `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: user })}.`),
  fc.constant(async () => `Bearer ${await sign({ sub: user }, { secret: 'another-secret-that-is-long-enough-000' })}`),
  fc.constant(async () => `Bearer ${await sign({ sub: user }, { exp: Math.floor(Date.now() / 1000) - 3600 })}`),
  fc.constant(async () => `Basic ${Buffer.from('user:pass').toString('base64')}`),
  fc.tuple(jsonValue, jsonValue).map(
    ([h, p]) =>
      async () =>
        `Bearer ${b64(h)}.${b64(p)}.${b64('sig')}`,
  ),
  fc.oneof(weirdText, jsonValue).map((sub) => async () => `Bearer ${await sign({ sub })}`),
);

const extraHeaders = fc.record(
  {
    'x-request-id': printable,
    accept: fc.constantFrom('application/xml', 'text/html', '*/*', 'application/problem+json', ''),
    'content-encoding': fc.constantFrom('gzip', 'br', 'identity', 'bogus'),
    'if-none-match': printable,
    'if-match': fc.oneof(printable, fc.constantFrom('*', '"1"', 'W/"1"', '"1", "2"', '"99999999999999999999"')),
    'idempotency-key': fc.oneof(printable, fc.constantFrom('k', 'x'.repeat(300))),
    'x-http-method-override': fc.constantFrom('DELETE', 'PUT'),
    origin: fc.constantFrom('http://localhost:3000', 'https://evil.example', 'null'),
  },
  { requiredKeys: [] },
);

function expectDocumentedAnswer(o: Operation, res: request.Response) {
  expect(res.status, `${o.id}: ${res.text.slice(0, 300)}`).toBeLessThan(500);
  checkResponse(o, res);
  if (res.status >= 400) {
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(typeof res.body.detail === 'string' && res.body.detail.length > 0, `${o.id} ${res.status}: a human detail`).toBe(true);
  }
}

/** Reads a response until it is known: a problem to its end, a stream to its first bytes. */
function streamHead(
  res: NodeJS.ReadableStream & { headers: Record<string, string> },
  done: (err: Error | null, body: unknown) => void,
): void {
  let text = '';
  let answered = false;
  const answer = (body: unknown) => {
    if (answered) return;
    answered = true;
    done(null, body);
  };
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    text += chunk;
    if (res.headers['content-type']?.startsWith('text/event-stream')) {
      (res as unknown as { destroy(): void }).destroy();
      answer(text);
    }
  });
  res.on('end', () => {
    try {
      answer(JSON.parse(text));
    } catch {
      answer(text);
    }
  });
}

const RUNS = Number(process.env.FUZZ_RUNS ?? 60);
const tasksOperations = operations.filter((o) => o.path.startsWith('/api/'));

describe(`fuzzing (${dbKind})`, () => {
  it.each(tasksOperations.map((o) => [o.id, o] as const))(
    '%s: never a 5xx, always a documented problem',
    { timeout: 120_000 },
    async (_id, o) => {
      await fc.assert(
        fc.asyncProperty(
          idSegment,
          userSegment,
          queryString,
          body,
          contentType,
          authorization,
          extraHeaders,
          async (id, uid, qs, payload, type, token, headers) => {
            const url = o.path.replace('{taskId}', id()).replace('{userId}', uid()) + (qs ? `?${qs}` : '');
            let req = request(app)[o.method](url);
            const value = await token();
            if (value !== undefined) req = req.set('Authorization', value);
            for (const [k, v] of Object.entries(headers)) req = req.set(k, v);
            if (type) req = req.set('Content-Type', type);
            if (payload !== undefined) req = req.send(payload);
            // An event stream that opens stays open: its head is the answer, then it is dropped.
            if (o.path === '/api/events') req = req.buffer(true).parse(streamHead as never);
            const res = await req;
            if (o.path === '/api/events') Object.assign(res, { text: typeof res.body === 'string' ? res.body : JSON.stringify(res.body) });
            // Content-Encoding the server cannot decode is refused by the body parser with its own 415.
            expectDocumentedAnswer(o, res);
          },
        ),
        { numRuns: RUNS, seed: process.env.FC_SEED ? Number(process.env.FC_SEED) : undefined },
      );
    },
  );

  it('any method on any path: never a 5xx; errors are problems, 405 names what is allowed', { timeout: 120_000 }, async () => {
    const paths = [...new Set(operations.map((o) => o.path))];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...paths),
        fc.constantFrom('get', 'post', 'put', 'patch', 'delete', 'options', 'head'),
        idSegment,
        authorization,
        async (p, method, id, token) => {
          const url = p.replace('{taskId}', id()).replace('{userId}', encodeURIComponent(user));
          let req = request(app)[method](url);
          const value = await token();
          if (value !== undefined) req = req.set('Authorization', value);
          // An event stream that opens stays open: its head is the answer.
          if (p === '/api/events') req = req.buffer(true).parse(streamHead as never);
          const res = await req;
          if (p === '/api/events') Object.assign(res, { text: typeof res.body === 'string' ? res.body : JSON.stringify(res.body) });
          expect(res.status, `${method} ${url}: ${res.text?.slice(0, 200)}`).toBeLessThan(500);
          if (res.status >= 400 && method !== 'head') {
            expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
            expect(res.body.detail).toEqual(expect.any(String));
          }
          if (res.status === 405) expect(res.headers.allow).toBeTruthy();
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });
});
