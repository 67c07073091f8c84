// The second attack pass (issue 15): one regression test per finding, through the real app on a
// real database. docs/security.md maps each finding to its control and to the test here.
import { createHmac } from 'node:crypto';
import { gunzipSync, brotliDecompressSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { errorHandler } from '../src/http/error-handler.js';
import { HttpProblem } from '../src/http/problem.js';
import { loggedUrl } from '../src/logger.js';
import { purgeIdempotencyKeys } from '../src/tasks/idempotency-purge.js';
import { bearer, buildApp, newUser, TEST_SECRET } from './helpers/app.js';
import { walkPages } from './helpers/pages.js';
import { createTestDatabase, serverUrl, type TestDatabase } from './helpers/db.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { createTask, listTasks } from '../src/tasks/queries.js';

let database: TestDatabase;
let app: ReturnType<typeof buildApp>['app'];
let lines: string[];
let docsFile: string;

beforeAll(async () => {
  database = await createTestDatabase();
  ({ app, logLines: lines } = buildApp(database.db));
  docsFile = inject('docsFile');
}, 90_000);
afterAll(async () => {
  await database.drop();
});

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** An HS256 token from raw JSON text, so claims JSON can hold what a JWT library would not write. */
function rawToken(header: string | object, payloadJson: string, secret = TEST_SECRET): string {
  const input = `${b64(header)}.${Buffer.from(payloadJson).toString('base64url')}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);
const claims = (extra: Record<string, unknown>) => JSON.stringify({ sub: 'someone', iat: now(), exp: now() + 600, ...extra });

async function create(auth: string, body: object, target: express.Express = app) {
  return request(target).post('/api/tasks').set('Authorization', auth).send(body);
}

describe('1. one stored user per token: ids and input must be well-formed Unicode', () => {
  it('refuses a sub with an unpaired surrogate (401), so "\\ud800victim" can never become "\\ufffdvictim"', async () => {
    for (const sub of ['\ud800victim', '\udc00victim', 'victim\udbff']) {
      const res = await request(app)
        .get('/api/tasks')
        .set('Authorization', `Bearer ${rawToken({ alg: 'HS256' }, claims({ sub }))}`);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('token_invalid');
    }
    // U+FFFD itself is well-formed text: that user is a user like any other, and alone.
    const auth = `Bearer ${rawToken({ alg: 'HS256' }, claims({ sub: '\ufffdvictim' }))}`;
    expect((await create(auth, { title: 'mine' })).status).toBe(201);
    const { rows } = await database.db.query<{ user_id: string }>("SELECT DISTINCT user_id FROM tasks WHERE user_id LIKE '%victim'");
    expect(rows).toEqual([{ user_id: '\ufffdvictim' }]);
  });

  it('refuses unpaired surrogates in every stored or searched string with 422, naming each field', async () => {
    const auth = await bearer(newUser());
    const res = await request(app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .set('Content-Type', 'application/json')
      .send('{"title":"ok \\ud800","description":"\\udc00","due_at":null}');
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([
      { path: '/body/title', message: expect.stringMatching(/well-formed Unicode/) },
      { path: '/body/description', message: expect.stringMatching(/well-formed Unicode/) },
    ]);
    const id = (await create(auth, { title: 'to patch' })).body.id as number;
    const patched = await request(app)
      .patch(`/api/tasks/${id}`)
      .set('Authorization', auth)
      .set('Content-Type', 'application/json')
      .send('{"title":"\\ud83d"}');
    expect(patched.status).toBe(422);
    expect(patched.body.errors).toEqual([{ path: '/body/title', message: expect.stringMatching(/well-formed Unicode/) }]);
    // A well-formed pair (an emoji) is text like any other.
    expect((await create(auth, { title: 'ok \ud83d\ude00' })).status).toBe(201);
    const { rows } = await database.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tasks WHERE title LIKE '%' || chr(65533) || '%'",
    );
    expect(rows).toEqual([{ n: 0 }]);
  });
});

describe('1b. a URL that does not decode', () => {
  it('answers 422 for the request as a whole, never echoing the raw path as a field', async () => {
    const user = newUser();
    const auth = await bearer(user);
    for (const path of ['/api/%ED%A0%80/tasks', '/api/tasks/%ZZ', `/api/${user}/tasks/%FF`]) {
      const res = await request(app).get(path).set('Authorization', auth);
      expect(res.status, path).toBe(422);
      expect(res.body.errors, path).toEqual([{ path: '', message: 'has a URL whose %-escapes are not valid UTF-8' }]);
      expect(res.body.detail).toBe('The request is invalid: the request has a URL whose %-escapes are not valid UTF-8.');
    }
  });
});

describe('2. nothing untrusted reaches a header; the error seam never falls through to HTML', () => {
  it('answers a token whose alg holds CR/LF, DEL or non-Latin-1 text with a plain 401 problem', async () => {
    for (const alg of ['HS256\r\nX-Injected: 1', 'HS\u007f256', 'HS256\u2028', 'ＨＳ２５６']) {
      const res = await request(app)
        .get('/api/tasks')
        .set('Authorization', `Bearer ${rawToken({ alg }, claims({}))}`);
      expect(res.status).toBe(401);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="todo-api", error="invalid_token", error_description="[\x20-\x7E]*"$/);
      expect(res.headers['x-injected']).toBeUndefined();
      expect(res.text).not.toMatch(/<html|at .*\.ts:\d+|TypeError/i);
    }
  });

  it("sends a fixed problem+json 500 when a problem cannot be rendered, never Express's HTML page", async () => {
    const bare = express();
    bare.get('/boom', () => {
      throw new HttpProblem({ status: 400, code: 'validation_failed', title: 'x', detail: 'x', headers: { 'X-Bad': 'line\nbreak' } });
    });
    bare.use(errorHandler);
    const res = await request(bare).get('/boom');
    expect(res.status).toBe(500);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['x-bad']).toBeUndefined();
    expect(res.body).toMatchObject({ status: 500, code: 'internal_error' });
    expect(res.text).not.toMatch(/<html|Error:|at /);
  });
});

describe('3. one user cannot slow everyone: quota, cheap substring search', () => {
  it('caps tasks per user with 409 quota_exceeded; deletes and clears give room back; racing creates never pass it', async () => {
    const { app: small } = buildApp(database.db, { tasksPerUser: 5 });
    const user = newUser();
    const auth = await bearer(user);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create(auth, { title: `t${i}`, completed: i % 2 === 0 }, small)),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(5);
    const refused = results.filter((r) => r.status === 409);
    expect(refused).toHaveLength(15);
    expect(refused[0]!.body).toMatchObject({ code: 'quota_exceeded', status: 409 });
    expect(refused[0]!.body.detail).toMatch(/5 tasks/);
    const stored = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [user]);
    expect(stored.rows).toEqual([{ n: 5 }]);

    const first = results.find((r) => r.status === 201)!.body.id as number;
    expect((await request(small).delete(`/api/tasks/${first}`).set('Authorization', auth)).status).toBe(204);
    // Completed, so the clearing below has one to clear whichever of the racing creates won.
    expect((await create(auth, { title: 'room again', completed: true }, small)).status).toBe(201);
    expect((await create(auth, { title: 'full again' }, small)).status).toBe(409);
    const cleared = await request(small).delete('/api/tasks?status=completed').set('Authorization', auth);
    expect(cleared.body.deleted).toBeGreaterThan(0);
    expect((await create(auth, { title: 'after clearing' }, small)).status).toBe(201);
    // A user whose list empties leaves no count behind.
    for (const t of (await request(small).get('/api/tasks').set('Authorization', auth)).body as { id: number }[]) {
      await request(small).delete(`/api/tasks/${t.id}`).set('Authorization', auth);
    }
    expect((await database.db.query('SELECT tasks FROM task_counts WHERE user_id = $1', [user])).rows).toEqual([]);
    expect((await create(auth, { title: 'a fresh start' }, small)).status).toBe(201);
    expect((await database.db.query('SELECT tasks FROM task_counts WHERE user_id = $1', [user])).rows).toEqual([{ tasks: 1 }]);
  });

  it('keeps no idempotency key for a create refused by the quota', async () => {
    const { app: one } = buildApp(database.db, { tasksPerUser: 1 });
    const auth = await bearer(newUser());
    const kept = await create(auth, { title: 'the one' }, one);
    const refused = await request(one)
      .post('/api/tasks')
      .set('Authorization', auth)
      .set('Idempotency-Key', 'k-1')
      .send({ title: 'second' });
    expect(refused.status).toBe(409);
    await request(one).delete(`/api/tasks/${kept.body.id}`).set('Authorization', auth);
    const retried = await request(one)
      .post('/api/tasks')
      .set('Authorization', auth)
      .set('Idempotency-Key', 'k-1')
      .send({ title: 'second' });
    expect(retried.status).toBe(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('holds a quota past the server connections exactly: creates race through the shared and the exact path, plain and idempotent', async () => {
    // Creates far under the quota run side by side (migrations/004); within the server's connection
    // count of it they count alone. A quota just above that count drives both at once.
    const { rows } = await database.db.query<{ slack: number }>(
      "SELECT current_setting('max_connections')::integer + current_setting('max_prepared_transactions')::integer AS slack",
    );
    const quota = rows[0]!.slack + 20;
    const { app: near } = buildApp(database.db, { tasksPerUser: quota });
    const user = newUser();
    const auth = await bearer(user);
    const results = await Promise.all(
      Array.from({ length: quota + 40 }, (_, i) => {
        const post = request(near).post('/api/tasks').set('Authorization', auth);
        return (i % 4 === 0 ? post.set('Idempotency-Key', `race-${i}`) : post).send({ title: `t${i}` });
      }),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(quota);
    expect(results.filter((r) => r.status === 409)).toHaveLength(40);
    const counted = () =>
      database.db.query<{ n: number; stored: number }>(
        'SELECT (SELECT coalesce(sum(tasks), 0)::integer FROM task_counts WHERE user_id = $1) AS n, (SELECT count(*)::integer FROM tasks WHERE user_id = $1) AS stored',
        [user],
      );
    expect((await counted()).rows).toEqual([{ n: quota, stored: quota }]);

    // A delete folds the user's rows into one; the last delete leaves none.
    const ids = results.filter((r) => r.status === 201).map((r) => r.body.id as number);
    expect((await request(near).delete(`/api/tasks/${ids[0]}`).set('Authorization', auth)).status).toBe(204);
    const rowsOf = () => database.db.query<{ tasks: number }>('SELECT tasks FROM task_counts WHERE user_id = $1', [user]);
    expect((await rowsOf()).rows).toEqual([{ tasks: quota - 1 }]);
    expect((await request(near).post('/api/tasks').set('Authorization', auth).send({ title: 'room for one' })).status).toBe(201);
    expect((await request(near).post('/api/tasks').set('Authorization', auth).send({ title: 'no room' })).status).toBe(409);
    await Promise.all(ids.slice(1).map((id) => request(near).delete(`/api/tasks/${id}`).set('Authorization', auth)));
    expect((await counted()).rows).toEqual([{ n: 1, stored: 1 }]);
    const last = (await request(near).get('/api/tasks').set('Authorization', auth)).body[0].id as number;
    await request(near).patch(`/api/tasks/${last}/complete`).set('Authorization', auth);
    expect((await request(near).delete('/api/tasks?status=completed').set('Authorization', auth)).body).toEqual({ deleted: 1 });
    expect((await rowsOf()).rows).toEqual([]);
  });

  it('matches punctuation-only search text as a literal substring (no wildcards)', async () => {
    const auth = await bearer(newUser());
    await create(auth, { title: 'literal %_ here' });
    await create(auth, { title: 'wildcards would match this' });
    await create(auth, { title: 'other', description: 'what!?' });
    const pct = await request(app).get('/api/tasks').query({ q: '%_' }).set('Authorization', auth);
    expect(pct.body.map((t: { title: string }) => t.title)).toEqual(['literal %_ here']);
    const bang = await request(app).get('/api/tasks').query({ q: '!?' }).set('Authorization', auth);
    expect(bang.body.map((t: { title: string }) => t.title)).toEqual(['other']);
    const many = await request(app)
      .get('/api/tasks')
      .query({ q: '%'.repeat(200) })
      .set('Authorization', auth);
    expect(many.status).toBe(200);
    expect(many.body).toEqual([]);
  });
});

describe('4. logged URLs carry no credentials and no personal query text', () => {
  it('logs the switches, redacts search text, tags, cursors and anything unknown', async () => {
    const auth = await bearer(newUser());
    await request(app)
      .get('/api/tasks?access_token=eyJ.secret.value&q=my%20diagnosis&tag=medical&status=all&limit=5')
      .set('Authorization', auth);
    const line = lines.map((l) => JSON.parse(l) as { req?: { url?: string } }).find((l) => l.req?.url?.endsWith('limit=5'));
    expect(line?.req?.url).toBe('/api/tasks?[unknown]=[redacted]&q=[redacted]&tag=[redacted]&status=all&limit=5');
    expect(lines.join('\n')).not.toMatch(/eyJ\.secret|diagnosis|medical/);
    expect(loggedUrl('/api/tasks/7')).toBe('/api/tasks/7');
    expect(loggedUrl('/api/tasks?cursor=abc&sort=title&order=asc')).toBe('/api/tasks?cursor=[redacted]&sort=title&order=asc');
    expect(loggedUrl('/health?eyJhbGciOiJIUzI1NiJ9')).toBe('/health?[unknown]=[redacted]');
    // An event stream's ticket and resume point are named, never shown.
    expect(loggedUrl('/api/events?ticket=abc&last_event_id=xyz')).toBe('/api/events?ticket=[redacted]&last_event_id=[redacted]');
  });
});

describe('6. JSON is UTF-8 only', () => {
  it('refuses another charset with 415 before parsing, so the nesting limit cannot be bypassed', async () => {
    const auth = await bearer(newUser());
    const deep = `{"title":"x","tags":${'['.repeat(40)}${']'.repeat(40)}}`;
    for (const charset of ['utf-16le', 'utf-16', 'latin1', 'UTF-32']) {
      const res = await request(app)
        .post('/api/tasks')
        .set('Authorization', auth)
        .set('Content-Type', `application/json; charset=${charset}`)
        .send(Buffer.from(deep, charset === 'utf-16le' || charset === 'utf-16' ? 'utf16le' : 'latin1'));
      expect(res.status).toBe(415);
      expect(res.body.code).toBe('unsupported_media_type');
    }
    const utf8 = await request(app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .set('Content-Type', 'application/json; charset=UTF-8')
      .send('{"title":"fine"}');
    expect(utf8.status).toBe(201);
    const tooDeep = await request(app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .set('Content-Type', 'application/json; charset=utf-8')
      .send(deep);
    expect(tooDeep.status).toBe(400);
  });
});

describe('7. due dates stay within what RFC 3339 and the contract can carry', () => {
  it('refuses an instant outside years 0001–9999 in UTC, in the body and in the query; the edges work', async () => {
    const auth = await bearer(newUser());
    for (const due_at of ['9999-12-31T23:59:59-15:00', '0001-01-01T00:00:00+01:00']) {
      const res = await create(auth, { title: 'edge', due_at });
      expect(res.status).toBe(422);
      expect(res.body.errors).toEqual([{ path: '/body/due_at', message: expect.stringMatching(/0001-01-01T00:00:00Z to 9999-12-31/) }]);
    }
    const late = await create(auth, { title: 'last', due_at: '9999-12-31T23:59:59.999999Z' });
    const early = await create(auth, { title: 'first', due_at: '0001-01-01T00:00:00Z' });
    expect([late.status, early.status]).toEqual([201, 201]);
    expect(late.body.due_at).toBe('9999-12-31T23:59:59.999999Z');
    expect(early.body.due_at).toBe('0001-01-01T00:00:00.000000Z');
    const odd = await create(auth, { title: 'odd', due_at: '2030-05-06T07:08:09.00012+05:30' });
    expect(odd.body.due_at).toBe('2030-05-06T01:38:09.000120Z');
    const list = await request(app).get('/api/tasks?sort=due_at').set('Authorization', auth);
    expect(list.status).toBe(200);
    expect(list.body.map((t: { title: string }) => t.title)).toEqual(['first', 'odd', 'last']);
    const query = await request(app).get('/api/tasks').query({ due_before: '9999-12-31T23:59:59-15:00' }).set('Authorization', auth);
    expect(query.status).toBe(422);
    expect(query.body.errors[0].path).toBe('/query/due_before');
    // And the database holds any other writer to the same rule.
    await expect(
      database.db.query("INSERT INTO tasks (user_id, title, due_at) VALUES ('u', 'x', '10000-01-01T00:00:00Z')"),
    ).rejects.toMatchObject({ code: '23514' });
  });
});

describe('7b. timestamps are RFC 3339 in UTC whatever the database session defaults', () => {
  it.runIf(serverUrl !== undefined)('reads the same text under another DateStyle and TimeZone', async () => {
    const name = new URL(database.url!).pathname.slice(1);
    await database.db.query(`ALTER DATABASE ${name} SET DateStyle = 'German, DMY'`);
    await database.db.query(`ALTER DATABASE ${name} SET TimeZone = 'Asia/Kolkata'`);
    // New sessions pick the defaults up: a second pool onto the same data.
    const other = createPostgresDatabase({
      connectionString: database.url!,
      poolMax: 1,
      statementTimeoutMs: 10_000,
      connectTimeoutMs: 5_000,
    });
    try {
      // The session's own defaults (each statement's settings apply on top of them).
      const { rows } = await other.query<{ name: string; reset_val: string }>(
        "SELECT name, reset_val FROM pg_settings WHERE name IN ('DateStyle', 'TimeZone') ORDER BY name",
      );
      expect(rows.map((r) => r.reset_val)).toEqual(['German, DMY', 'Asia/Kolkata']);
      const created = await createTask(
        other,
        'datestyle-user',
        {
          title: 't',
          description: null,
          completed: false,
          dueAt: '2030-05-06T07:08:09.5Z',
          priority: 'none',
          tags: [],
          position: undefined,
        },
        100,
      );
      expect(created!.task.due_at).toBe('2030-05-06T07:08:09.500000Z');
      expect(created!.task.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
      const page = await listTasks(other, 'datestyle-user', { status: 'all', sort: 'due_at', order: 'asc', limit: 10 });
      expect(page.tasks[0]!.due_at).toBe('2030-05-06T07:08:09.500000Z');
    } finally {
      await other.close();
      await database.db.query(`ALTER DATABASE ${name} RESET DateStyle`);
      await database.db.query(`ALTER DATABASE ${name} RESET TimeZone`);
    }
  });
});

describe("8. the per-address failure limit counts atomically and only the client's own failures", () => {
  it('lets at most the limit of concurrent failures through', async () => {
    const { app: limited } = buildApp(database.db, { rateLimit: { perIpFailures: 20 } });
    const res = await Promise.all(
      Array.from({ length: 120 }, () => request(limited).get('/api/tasks').set('Authorization', 'Bearer nope')),
    );
    const statuses = res.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(20);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(100);
  });

  it("does not count a user's own 429s against the address they share with others", async () => {
    const { app: limited } = buildApp(database.db, { rateLimit: { perUser: 2, perIpFailures: 3 } });
    const busy = await bearer(newUser());
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push((await request(limited).get('/api/tasks').set('Authorization', busy)).status);
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429, 429, 429, 429, 429]);
    expect((await request(limited).get('/health')).status).toBe(200);
    expect(
      (
        await request(limited)
          .get('/api/tasks')
          .set('Authorization', await bearer(newUser()))
      ).status,
    ).toBe(200);
  });
});

describe('9. /docs is compressed, cacheable and loads nothing from elsewhere', () => {
  it('sends brotli or gzip as accepted, with an ETag that answers 304', async () => {
    const { app: withDocs } = buildApp(database.db, { docsFile });
    const html = readFileSync(docsFile, 'utf8');
    const brotliCompressedSize = readFileSync(`${docsFile}.br`).length;
    expect(brotliDecompressSync(readFileSync(`${docsFile}.br`)).toString('utf8')).toBe(html);
    expect(html).not.toMatch(/cdn\.redoc\.ly/);
    const br = await request(withDocs)
      .get('/docs')
      .set('Accept-Encoding', 'gzip, br')
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['cache-control']).toBe('public, max-age=300');
    expect(br.headers.vary).toMatch(/Accept-Encoding/);
    // The client decodes it (as a browser would); on the wire it is a third of the page or less.
    expect((br.body as Buffer).toString('utf8')).toBe(html);
    expect(Number(br.headers['content-length'])).toBe(brotliCompressedSize);
    expect(brotliCompressedSize).toBeLessThan(html.length / 3);
    const gz = await request(withDocs)
      .get('/docs')
      .set('Accept-Encoding', 'gzip')
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect((gz.body as Buffer).toString('utf8')).toBe(html);
    expect(gunzipSync(readFileSync(`${docsFile}.gz`)).toString('utf8')).toBe(html);
    const plain = await request(withDocs).get('/docs').set('Accept-Encoding', 'identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.text).toBe(html);
    const again = await request(withDocs)
      .get('/docs')
      .set('If-None-Match', br.headers.etag as string);
    expect(again.status).toBe(304);
  });
});

describe('10. expired idempotency keys are purged for every user', () => {
  it('deletes keys older than 24 hours whoever owns them, and keeps the fresh ones', async () => {
    const stale = newUser();
    const fresh = newUser();
    for (const [user, age] of [
      [stale, '25 hours'],
      [stale, '30 days'],
      [fresh, '1 hour'],
    ] as const) {
      await database.db.query(
        `INSERT INTO idempotency_keys (user_id, key, request_hash, status, etag, location, body, created_at)
         VALUES ($1, $2, 'h', 201, '"1"', '/api/tasks/1', 'null', now() - $3::interval)`,
        [user, `key-${age}`, age],
      );
    }
    expect(await purgeIdempotencyKeys(database.db)).toBeGreaterThanOrEqual(2);
    const { rows } = await database.db.query<{ user_id: string }>('SELECT user_id FROM idempotency_keys WHERE user_id IN ($1, $2)', [
      stale,
      fresh,
    ]);
    expect(rows).toEqual([{ user_id: fresh }]);
  });
});

describe('11. cursors of due dates in years 0001–0099', () => {
  it('follows every page of a due-date sort through the first century', async () => {
    const auth = await bearer(newUser());
    for (const year of ['0001', '0050', '0099', '1999']) await create(auth, { title: year, due_at: `${year}-06-15T12:00:00Z` });
    const { items } = await walkPages<{ title: string }>(app, auth, '/api/tasks?sort=due_at&limit=1');
    const seen = items.map((t) => t.title);
    expect(seen).toEqual(['0001', '0050', '0099', '1999']);
  });
});

describe('12–13. ids and preconditions are read one way only', () => {
  it('answers a non-canonical or out-of-range task id with 422 at /path/taskId, before any query', async () => {
    const auth = await bearer(newUser());
    const id = (await create(auth, { title: 'canonical' })).body.id as number;
    expect((await request(app).get(`/api/tasks/${id}`).set('Authorization', auth)).status).toBe(200);
    for (const form of [
      `0x${id.toString(16)}`,
      `+${id}`,
      `${id}.0`,
      `${id}e0`,
      `%20${id}`,
      `0${id}`,
      'Infinity',
      '9'.repeat(400),
      '9007199254740992',
    ]) {
      const res = await request(app).get(`/api/tasks/${form}`).set('Authorization', auth);
      expect(res.status, form).toBe(422);
      expect(
        res.body.errors.map((e: { path: string }) => e.path),
        form,
      ).toEqual(['/path/taskId']);
    }
  });

  it('answers If-Match with a version beyond the integer range with 412, not 422', async () => {
    const auth = await bearer(newUser());
    const id = (await create(auth, { title: 'versioned' })).body.id as number;
    const res = await request(app)
      .patch(`/api/tasks/${id}`)
      .set('Authorization', auth)
      .set('If-Match', '"2147483648"')
      .send({ title: 'x' });
    expect(res.status).toBe(412);
    expect(res.body.code).toBe('precondition_failed');
  });
});

describe('14. token times are finite, not in the future, and bounded when configured', () => {
  it('refuses exp: 1e400 and a future iat', async () => {
    const infinite = rawToken({ alg: 'HS256' }, `{"sub":"u","iat":${now()},"exp":1e400}`);
    const future = rawToken({ alg: 'HS256' }, claims({ iat: now() + 3600 }));
    for (const token of [infinite, future]) {
      const res = await request(app).get('/api/tasks').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(401);
    }
  });

  it('refuses a token that lives longer than JWT_MAX_AGE, or has no iat, when it is set', async () => {
    const { createTokenVerifier } = await import('../src/auth/verify-token.js');
    const verifier = createTokenVerifier({ secret: TEST_SECRET, clockToleranceSec: 5, maxAgeSec: 900 });
    await expect(verifier.verify(rawToken({ alg: 'HS256' }, claims({ exp: now() + 600 })))).resolves.toMatchObject({ userId: 'someone' });
    await expect(verifier.verify(rawToken({ alg: 'HS256' }, claims({ exp: now() + 86_400 })))).rejects.toMatchObject({ reason: 'too_old' });
    await expect(verifier.verify(rawToken({ alg: 'HS256' }, claims({ iat: now() - 3600, exp: now() + 60 })))).rejects.toMatchObject({
      reason: 'too_old',
    });
    await expect(verifier.verify(rawToken({ alg: 'HS256' }, JSON.stringify({ sub: 'x', exp: now() + 60 })))).rejects.toMatchObject({
      reason: 'too_old',
    });
  });
});

describe('16. a user whose id is "tasks"', () => {
  it('uses /api/tasks; /api/tasks/tasks is the task family and answers 422, as documented', async () => {
    const auth = await bearer('tasks');
    expect((await create(auth, { title: 'mine' })).status).toBe(201);
    expect((await request(app).get('/api/tasks').set('Authorization', auth)).body).toHaveLength(1);
    const ambiguous = await request(app).get('/api/tasks/tasks').set('Authorization', auth);
    expect(ambiguous.status).toBe(422);
    expect(ambiguous.body.errors[0].path).toBe('/path/taskId');
  });
});
