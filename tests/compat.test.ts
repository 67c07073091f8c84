// A client written against contract 1.0 keeps working against today's server, unchanged: it sends
// only what 1.0 knew, and every answer it gets validates against the 1.0 contract (kept in
// tests/fixtures), read as 1.0 clients are told to read it — tolerating fields added since.
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { nextPageUrl } from './helpers/pages.js';
import { dbKind } from './helpers/db.js';

// biome-ignore lint/suspicious/noExplicitAny: walks arbitrary JSON documents
type Json = Record<string, any>;
const v1: Json = JSON.parse(readFileSync(new URL('./fixtures/contract-1.0.0.json', import.meta.url), 'utf8'));

/** The 1.0 document with every `additionalProperties: false` lifted: a tolerant reader. */
function tolerant(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tolerant);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node)
        .filter(([k, v]) => !(k === 'additionalProperties' && v === false))
        .map(([k, v]) => [k, tolerant(v)]),
    );
  }
  return node;
}
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv, { mode: 'full' });
ajv.addSchema(tolerant(v1) as object, 'v1');
const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

function operation(id: string): { path: string; method: string; op: Json } {
  for (const [path, item] of Object.entries(v1.paths as Json)) {
    for (const [method, op] of Object.entries(item as Json)) if ((op as Json).operationId === id) return { path, method, op: op as Json };
  }
  throw new Error(`${id} is not a 1.0 operation`);
}

/** Checks a response as a 1.0 client would: a documented status, and a body of the 1.0 shape. */
function check1_0(id: string, res: request.Response) {
  const { path, method, op } = operation(id);
  const status = String(res.status);
  expect(Object.keys(op.responses), `${id}: 1.0 documents ${status}`).toContain(status);
  if (!res.text) return;
  const type = String(res.headers['content-type']).split(';')[0]!;
  const documented = op.responses[status] as Json;
  const base = documented.$ref ? documented.$ref : `#/paths/${escapePointer(path)}/${method}/responses/${status}`;
  const validate: ValidateFunction = ajv.compile({ $ref: `v1${base}/content/${escapePointer(type)}/schema` });
  expect(validate(JSON.parse(res.text)), `${id} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp();
});
afterAll(() => ctx.close());

describe(`a 1.0 client against this server (${dbKind})`, () => {
  expect(v1.info.version).toBe('1.0.0');

  for (const scoped of [false, true]) {
    it(`runs the FastAPI-era flow${scoped ? ' (user in path)' : ''}, every answer valid under 1.0`, async () => {
      const user = newUser();
      const auth = await bearer(user);
      const root = scoped ? `/api/${encodeURIComponent(user)}/tasks` : '/api/tasks';
      const op = (id: string) => (scoped ? `${id}ForUser` : id);
      const call = async (id: string, req: request.Test) => {
        const res = await req.set('Authorization', auth);
        check1_0(op(id), res);
        return res;
      };

      expect((await call('listTasks', request(ctx.app).get(root))).body).toEqual([]);
      const created = await call('createTask', request(ctx.app).post(root).send({ title: '  Buy milk ', description: 'Two litres' }));
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ title: 'Buy milk', description: 'Two litres', completed: false });
      const id = created.body.id as number;
      const listed = await call('listTasks', request(ctx.app).get(`${root}?status=pending&sort=title&order=asc&limit=10`));
      expect(listed.body.map((t: { id: number }) => t.id)).toEqual([id]);
      const put = await call('replaceTask', request(ctx.app).put(`${root}/${id}`).send({ title: 'Buy oat milk' }));
      expect(put.body).toMatchObject({ title: 'Buy oat milk', description: null, completed: false });
      const done = await call('toggleTaskCompletion', request(ctx.app).patch(`${root}/${id}/complete`));
      expect(done.body.completed).toBe(true);
      const set = await call('toggleTaskCompletion', request(ctx.app).patch(`${root}/${id}/complete`).send({ completed: true }));
      expect(set.body.completed).toBe(true);
      const patched = await call('updateTask', request(ctx.app).patch(`${root}/${id}`).send({ description: 'semi-skimmed' }));
      expect(patched.body.description).toBe('semi-skimmed');
      expect((await call('getTask', request(ctx.app).get(`${root}/${id}`))).status).toBe(200);
      expect((await call('deleteTask', request(ctx.app).delete(`${root}/${id}`))).status).toBe(204);
      const gone = await call('getTask', request(ctx.app).get(`${root}/${id}`));
      expect(gone.status).toBe(404);
      expect(gone.body.detail).toEqual(expect.any(String));
      // 1.0's errors and paging as 1.0 knew them.
      expect((await call('createTask', request(ctx.app).post(root).send({ title: '' }))).status).toBe(422);
      for (let i = 0; i < 3; i++)
        await call(
          'createTask',
          request(ctx.app)
            .post(root)
            .send({ title: `t${i}` }),
        );
      const page = await call('listTasks', request(ctx.app).get(`${root}?limit=2`));
      const next = nextPageUrl(page)!;
      const second = await call('listTasks', request(ctx.app).get(next));
      expect(second.body).toHaveLength(1);
    });
  }

  it('a cursor issued by a 1.0 server still pages on', async () => {
    const auth = await bearer(newUser());
    for (let i = 0; i < 3; i++)
      await request(ctx.app)
        .post('/api/tasks')
        .set('Authorization', auth)
        .send({ title: `t${i}` });
    const all = (await request(ctx.app).get('/api/tasks').set('Authorization', auth)).body as { id: number; created_at: string }[];
    // The cursor format 1.0 issued: the position after the first task, for status=all, created_at desc.
    const v1Cursor = Buffer.from(
      JSON.stringify({ v: 1, st: 'all', s: 'created_at', o: 'desc', k: all[0]!.created_at, id: all[0]!.id }),
    ).toString('base64url');
    const res = await request(ctx.app)
      .get(`/api/tasks?status=all&sort=created_at&order=desc&limit=100&cursor=${v1Cursor}`)
      .set('Authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body.map((t: { id: number }) => t.id)).toEqual(all.slice(1).map((t) => t.id));
  });
});
