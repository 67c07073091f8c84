// User B tries every operation on user A's task, on both route families: B learns nothing, changes nothing.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';

let ctx: TestContext;
const alice = newUser();
const bob = newUser();
let aliceTask: { id: number; title: string; description: string | null; completed: boolean; updated_at: string };

beforeAll(async () => {
  ctx = await setupApp();
  const res = await request(ctx.app)
    .post('/api/tasks')
    .set('Authorization', await bearer(alice))
    .send({ title: 'Alice only', description: 'secret plans' });
  aliceTask = res.body;
});
afterAll(() => ctx.close());

async function aliceRow() {
  const { rows } = await ctx.database.db.query('SELECT user_id, title, description, completed FROM tasks WHERE id = $1', [aliceTask.id]);
  return rows[0];
}

describe.each([
  { family: '/api/tasks', base: '/api/tasks' },
  { family: '/api/{bob}/tasks', base: `/api/${bob}/tasks` },
])('Bob on $family', ({ base }) => {
  const ops = [
    ['GET', (id: number) => request(ctx.app).get(`${base}/${id}`)],
    ['PUT', (id: number) => request(ctx.app).put(`${base}/${id}`).send({ title: 'pwned' })],
    ['PATCH', (id: number) => request(ctx.app).patch(`${base}/${id}`).send({ title: 'pwned', completed: true })],
    ['PATCH complete', (id: number) => request(ctx.app).patch(`${base}/${id}/complete`)],
    ['PATCH complete with body', (id: number) => request(ctx.app).patch(`${base}/${id}/complete`).send({ completed: true })],
    ['DELETE', (id: number) => request(ctx.app).delete(`${base}/${id}`)],
  ] as const;

  it.each(ops)('%s on Alice’s task is a 404 identical to a missing task, and changes nothing', async (_name, op) => {
    const auth = await bearer(bob);
    const theirs = await op(aliceTask.id).set('Authorization', auth);
    const missing = await op(999_999_999).set('Authorization', auth);
    expect(theirs.status).toBe(404);
    expect(theirs.body.code).toBe('task_not_found');
    // Same answer as for an id nobody has, apart from the id and request id.
    const strip = (b: Record<string, unknown>) => ({ ...b, detail: String(b.detail).replace(/\d+/, 'N'), instance: undefined });
    expect(strip(theirs.body)).toEqual(strip(missing.body));
    expect(await aliceRow()).toEqual({ user_id: alice, title: 'Alice only', description: 'secret plans', completed: false });
  });

  it('listing never includes Alice’s task', async () => {
    const res = await request(ctx.app)
      .get(`${base}?limit=500`)
      .set('Authorization', await bearer(bob));
    expect(res.status).toBe(200);
    expect(res.body.map((t: { id: number }) => t.id)).not.toContain(aliceTask.id);
  });

  it('creating puts the task in Bob’s name, whatever the body says', async () => {
    const res = await request(ctx.app)
      .post(base)
      .set('Authorization', await bearer(bob))
      .send({ title: 'Bob’s', user_id: alice });
    expect(res.status).toBe(422); // unknown properties are refused, so no owner can be smuggled in
    const ok = await request(ctx.app)
      .post(base)
      .set('Authorization', await bearer(bob))
      .send({ title: 'Bob’s' });
    const { rows } = await ctx.database.db.query('SELECT user_id FROM tasks WHERE id = $1', [ok.body.id]);
    expect(rows).toEqual([{ user_id: bob }]);
  });
});

it('Bob cannot use Alice’s path even with his own valid token', async () => {
  const res = await request(ctx.app)
    .get(`/api/${alice}/tasks/${aliceTask.id}`)
    .set('Authorization', await bearer(bob));
  expect(res.status).toBe(403);
  expect(res.body.code).toBe('user_mismatch');
  expect(JSON.stringify(res.body)).not.toContain('Alice only');
});
