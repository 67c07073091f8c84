// Every documented error status, produced for real, rendered as problem+json with a human detail.
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { bearer, buildApp, newUser, setupApp, type TestContext } from './helpers/app.js';
import { createTestDatabase } from './helpers/db.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp({ bodyLimitBytes: 4096 });
});
afterAll(() => ctx.close());

function expectProblem(res: request.Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, type: `/problems/${code}`, title: expect.any(String) });
  expect(res.body.detail).toEqual(expect.any(String));
  expect(res.body.detail.length).toBeGreaterThan(10);
  expect(res.body.instance).toBe(res.headers['x-request-id']);
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .+\.(ts|js):\d+/); // no stack trace
}

describe('client errors', () => {
  it('400 for malformed JSON, on every operation with a body', async () => {
    const auth = await bearer(newUser());
    for (const [method, url] of [
      ['post', '/api/tasks'],
      ['put', '/api/tasks/1'],
      ['patch', '/api/tasks/1'],
      ['patch', '/api/tasks/1/complete'],
    ] as const) {
      const res = await request(ctx.app)[method](url).set('Authorization', auth).set('Content-Type', 'application/json').send('{"title": ');
      expectProblem(res, 400, 'invalid_json');
    }
  });

  it('400 for a JSON body that is not an object or array', async () => {
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', await bearer(newUser()))
      .set('Content-Type', 'application/json')
      .send('"just a string"');
    expectProblem(res, 400, 'invalid_json');
  });

  it('403 when the path user is not the token user, on every user-scoped operation', async () => {
    const owner = newUser();
    const { body: task } = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', await bearer(owner))
      .send({ title: 't' });
    const auth = await bearer(newUser());
    const base = `/api/${owner}/tasks`;
    const responses = await Promise.all([
      request(ctx.app).get(base).set('Authorization', auth),
      request(ctx.app).post(base).set('Authorization', auth).send({ title: 'x' }),
      request(ctx.app).get(`${base}/${task.id}`).set('Authorization', auth),
      request(ctx.app).put(`${base}/${task.id}`).set('Authorization', auth).send({ title: 'x' }),
      request(ctx.app).patch(`${base}/${task.id}`).set('Authorization', auth).send({ title: 'x' }),
      request(ctx.app).delete(`${base}/${task.id}`).set('Authorization', auth),
      request(ctx.app).patch(`${base}/${task.id}/complete`).set('Authorization', auth),
    ]);
    for (const res of responses) expectProblem(res, 403, 'user_mismatch');
    const { rows } = await ctx.database.db.query('SELECT title FROM tasks WHERE id = $1', [task.id]);
    expect(rows).toEqual([{ title: 't' }]);
  });

  it('404 for an unknown path', async () => {
    const res = await request(ctx.app)
      .get('/api/nothing-here/at-all')
      .set('Authorization', await bearer(newUser()));
    expectProblem(res, 404, 'not_found');
    expectProblem(await request(ctx.app).get('/nope'), 404, 'not_found');
  });

  it('405 with Allow for a method the path does not support', async () => {
    const auth = await bearer(newUser());
    const collection = await request(ctx.app).put('/api/tasks').set('Authorization', auth).send({ title: 'x' });
    expectProblem(collection, 405, 'method_not_allowed');
    expect(collection.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'GET', 'PATCH', 'POST']);

    const item = await request(ctx.app).post('/api/tasks/1').set('Authorization', auth).send({ title: 'x' });
    expectProblem(item, 405, 'method_not_allowed');
    expect(item.headers.allow?.split(', ').sort()).toEqual(['DELETE', 'GET', 'PATCH', 'PUT']);

    const health = await request(ctx.app).post('/health');
    expectProblem(health, 405, 'method_not_allowed');
    expect(health.headers.allow).toBe('GET');
  });

  it('400 for a body that does not inflate under its Content-Encoding (found by fuzzing; was a 500)', async () => {
    const auth = await bearer(newUser());
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await request(ctx.app)
        .post('/api/tasks')
        .set('Authorization', auth)
        .set('Content-Type', 'application/json')
        .set('Content-Encoding', encoding)
        .send('{"title":"not compressed"}');
      expectProblem(res, 400, 'invalid_json');
    }
  });

  it('ignores content sent with GET or DELETE instead of refusing it (found by fuzzing; was a 415)', async () => {
    const auth = await bearer(newUser());
    const list = await request(ctx.app).get('/api/tasks').set('Authorization', auth).set('Content-Type', 'text/plain').send('hello');
    expect(list.status).toBe(200);
    const created = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title: 'gone soon' });
    const del = await request(ctx.app)
      .delete(`/api/tasks/${created.body.id}`)
      .set('Authorization', auth)
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{');
    expect(del.status).toBe(204);
  });

  it('413 for a body over the limit, storing nothing', async () => {
    const user = newUser();
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', await bearer(user))
      .send({ title: 'big', description: 'x'.repeat(5000) });
    expectProblem(res, 413, 'payload_too_large');
    const { rows } = await ctx.database.db.query('SELECT 1 FROM tasks WHERE user_id = $1', [user]);
    expect(rows).toHaveLength(0);
  });

  it('415 for a body that is not application/json', async () => {
    const auth = await bearer(newUser());
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
      const res = await request(ctx.app).post('/api/tasks').set('Authorization', auth).set('Content-Type', type).send('title=x');
      expectProblem(res, 415, 'unsupported_media_type');
    }
    const latin1 = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"title":"x"}');
    expectProblem(latin1, 415, 'unsupported_media_type');
  });

  it('422 naming the body when a JSON request has no body', async () => {
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', await bearer(newUser()))
      .set('Content-Type', 'application/json');
    expectProblem(res, 422, 'validation_failed');
    // With no body at all the validator finds no body; with Content-Length: 0, an empty object.
    expect(res.body.errors[0].path).toMatch(/^\/body/);
  });

  it('422 for path ids that are not positive safe integers', async () => {
    const auth = await bearer(newUser());
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999', '9007199254740992', '%F0%9F%98%80']) {
      const res = await request(ctx.app).get(`/api/tasks/${id}`).set('Authorization', auth);
      expectProblem(res, 422, 'validation_failed');
      expect(res.body.errors[0].path).toBe('/path/taskId');
    }
  });
});

describe('server errors', () => {
  it('500 with a generic detail when the database fails unexpectedly, and the error is logged', async () => {
    const broken = await createTestDatabase();
    try {
      await broken.db.query('DROP TABLE tasks CASCADE'); // a real failure: the relation no longer exists
      const { app, logLines } = buildApp(broken.db);
      const res = await request(app)
        .get('/api/tasks')
        .set('Authorization', await bearer(newUser()));
      expectProblem(res, 500, 'internal_error');
      expect(res.body.detail).not.toMatch(/tasks|relation|exist/i);
      const logged = logLines.map((l) => JSON.parse(l)).find((l) => l.msg === 'unhandled error');
      expect(logged?.err?.message).toMatch(/tasks/);
      expect(logged?.req?.id ?? logged?.reqId).toBe(res.headers['x-request-id']);

      // An MCP tool call that fails the same way: a problem result, never the failure's own text.
      const mcp = await request(app)
        .post('/mcp')
        .set('Authorization', await bearer(newUser()))
        .set('Accept', 'application/json, text/event-stream')
        .send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'list_tasks', arguments: {} } });
      expect(mcp.status).toBe(200);
      expect(mcp.body.error).toBeUndefined();
      expect(mcp.body.result.isError).toBe(true);
      expect(JSON.parse(mcp.body.result.content[1].text)).toMatchObject({ status: 500, code: 'internal_error' });
      expect(JSON.stringify(mcp.body)).not.toMatch(/relation|does not exist/i);
    } finally {
      await broken.drop();
    }
  });

  it('503 with Retry-After when the database cannot be reached; /ready says so too', async () => {
    // A real pool pointed at a port where nothing listens.
    const unreachable = createPostgresDatabase({
      connectionString: 'postgres://nobody@127.0.0.1:1/none',
      poolMax: 1,
      statementTimeoutMs: 1000,
      connectTimeoutMs: 1000,
    });
    try {
      const { app } = buildApp(unreachable);
      const res = await request(app)
        .get('/api/tasks')
        .set('Authorization', await bearer(newUser()));
      expectProblem(res, 503, 'database_unavailable');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);

      const ready = await request(app).get('/ready');
      expectProblem(ready, 503, 'database_unavailable');
      expect(Number(ready.headers['retry-after'])).toBeGreaterThan(0);
      expect((await request(app).get('/health')).status).toBe(200);
    } finally {
      await unreachable.close();
    }
  });
});

describe('public endpoints', () => {
  it('/health and /ready answer without a token', async () => {
    expect((await request(ctx.app).get('/health')).body).toEqual({ status: 'ok' });
    expect((await request(ctx.app).get('/ready')).body).toEqual({ status: 'ready', checks: { database: 'ok' } });
  });

  it('/openapi.json is the bundled contract, byte for byte', async () => {
    const res = await request(ctx.app).get('/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.text).toBe(readFileSync(new URL('../generated/openapi.json', import.meta.url), 'utf8'));
    const yaml = await request(ctx.app).get('/openapi.yaml');
    expect(yaml.status).toBe(200);
    expect(yaml.headers['content-type']).toMatch(/^application\/yaml/);
    expect(yaml.text).toBe(readFileSync(new URL('../generated/openapi.yaml', import.meta.url), 'utf8'));
  });

  it('/docs is a 404 problem when the reference has not been built', async () => {
    expectProblem(await request(ctx.app).get('/docs'), 404, 'not_found');
  });

  it('answers CORS preflights for the frontend origin and exposes Link, Location and ETag', async () => {
    const res = await request(ctx.app)
      .options('/api/tasks')
      .set('Origin', 'http://localhost:3000')
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('http://localhost:3000');
    expect(res.headers['access-control-allow-headers']).toMatch(/Authorization/i);

    const get = await request(ctx.app)
      .get('/api/tasks')
      .set('Origin', 'http://localhost:3000')
      .set('Authorization', await bearer(newUser()));
    expect(get.headers['access-control-expose-headers']).toMatch(/Link/);
    expect(get.headers['access-control-expose-headers']).toMatch(/Location/);
    // 1.1: a browser frontend must be able to send preconditions and keys, and read ETags.
    const preflight = await request(ctx.app)
      .options('/api/tasks/1')
      .set('Origin', 'http://localhost:3000')
      .set('Access-Control-Request-Method', 'PATCH')
      .set('Access-Control-Request-Headers', 'authorization,content-type,if-match,if-none-match,idempotency-key');
    for (const h of ['If-Match', 'If-None-Match', 'Idempotency-Key'])
      expect(preflight.headers['access-control-allow-headers']).toContain(h);
    expect(preflight.headers['access-control-allow-methods']).toMatch(/PATCH/);
    expect(get.headers['access-control-expose-headers']).toMatch(/\bETag\b/);
    expect(get.headers['access-control-expose-headers']).toMatch(/Idempotent-Replayed/);

    const evil = await request(ctx.app).get('/health').set('Origin', 'https://evil.example');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('keeps a sane incoming X-Request-Id and replaces an unsafe one', async () => {
    const kept = await request(ctx.app).get('/health').set('X-Request-Id', 'trace-abc-123');
    expect(kept.headers['x-request-id']).toBe('trace-abc-123');
    const replaced = await request(ctx.app).get('/health').set('X-Request-Id', 'bad id\twith spaces');
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers HEAD wherever GET is, without a body', async () => {
    const health = await request(ctx.app).head('/health');
    expect(health.status).toBe(200);
    expect(health.text).toBeUndefined();
    const list = await request(ctx.app)
      .head('/api/tasks')
      .set('Authorization', await bearer(newUser()));
    expect(list.status).toBe(200);
    expect(list.headers['content-type']).toMatch(/^application\/json/);
    expect((await request(ctx.app).head('/api/tasks')).status).toBe(401);
  });

  it('sends no X-Powered-By', async () => {
    expect((await request(ctx.app).get('/health')).headers['x-powered-by']).toBeUndefined();
  });
});
