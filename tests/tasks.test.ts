// Every task operation through HTTP on both route families, asserting the response and what was stored.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp();
});
afterAll(() => ctx.close());

async function stored(id: number) {
  const { rows } = await ctx.database.db.query<{ user_id: string; title: string; description: string | null; completed: boolean }>(
    'SELECT user_id, title, description, completed FROM tasks WHERE id = $1',
    [id],
  );
  return rows[0];
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

// Both families must behave identically; each test runs against each.
const families = [
  { name: '/api/tasks', base: (_user: string) => '/api/tasks' },
  { name: '/api/{userId}/tasks', base: (user: string) => `/api/${encodeURIComponent(user)}/tasks` },
];

describe.each(families)('$name', ({ base }) => {
  it('runs the FastAPI-era frontend flow: list [] → create → list → put → complete → delete → 404', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const root = base(user);

    const empty = await request(ctx.app).get(root).set('Authorization', auth);
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual([]);

    const created = await request(ctx.app).post(root).set('Authorization', auth).send({ title: 'Buy milk', description: 'Two litres' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ title: 'Buy milk', description: 'Two litres', completed: false });
    expect(created.body.id).toBeTypeOf('number');
    expect(created.body.created_at).toMatch(ISO_UTC);
    expect(created.body.updated_at).toBe(created.body.created_at);
    expect(created.body).not.toHaveProperty('user_id');
    expect(created.headers.location).toBe(`${root}/${created.body.id}`);
    const id: number = created.body.id;
    expect(await stored(id)).toEqual({ user_id: user, title: 'Buy milk', description: 'Two litres', completed: false });

    const listed = await request(ctx.app).get(root).set('Authorization', auth);
    expect(listed.body).toEqual([created.body]);

    const put = await request(ctx.app)
      .put(`${root}/${id}`)
      .set('Authorization', auth)
      .send({ title: 'Buy oat milk', description: 'One litre' });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ id, title: 'Buy oat milk', description: 'One litre', completed: false });

    const done = await request(ctx.app).patch(`${root}/${id}/complete`).set('Authorization', auth);
    expect(done.status).toBe(200);
    expect(done.body.completed).toBe(true);
    expect(await stored(id)).toMatchObject({ completed: true });

    const deleted = await request(ctx.app).delete(`${root}/${id}`).set('Authorization', auth);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect(await stored(id)).toBeUndefined();

    const gone = await request(ctx.app).get(`${root}/${id}`).set('Authorization', auth);
    expect(gone.status).toBe(404);
    expect(gone.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(gone.body).toMatchObject({ status: 404, code: 'task_not_found', type: '/problems/task_not_found' });
    expect(gone.body.detail).toContain(String(id));
  });

  it('creates with defaults, trims the title, and keeps the description as sent', async () => {
    const user = newUser();
    const res = await request(ctx.app)
      .post(base(user))
      .set('Authorization', await bearer(user))
      .send({ title: '  Call mum \n', description: '  spaced  ' });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ title: 'Call mum', description: '  spaced  ', completed: false });
    expect(await stored(res.body.id)).toMatchObject({ title: 'Call mum', description: '  spaced  ' });

    const completed = await request(ctx.app)
      .post(base(user))
      .set('Authorization', await bearer(user))
      .send({ title: 'Already done', completed: true, description: null });
    expect(completed.body).toMatchObject({ completed: true, description: null });
  });

  it('gets one task', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const created = await request(ctx.app).post(base(user)).set('Authorization', auth).send({ title: 'One' });
    const res = await request(ctx.app)
      .get(`${base(user)}/${created.body.id}`)
      .set('Authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(created.body);
  });

  it('PUT replaces title and description, and leaves completed unless given', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const { body: task } = await request(ctx.app)
      .post(base(user))
      .set('Authorization', auth)
      .send({ title: 'Old', description: 'old text', completed: true });

    const noDescription = await request(ctx.app)
      .put(`${base(user)}/${task.id}`)
      .set('Authorization', auth)
      .send({ title: ' New ' });
    expect(noDescription.status).toBe(200);
    expect(noDescription.body).toMatchObject({ title: 'New', description: null, completed: true });

    const withCompleted = await request(ctx.app)
      .put(`${base(user)}/${task.id}`)
      .set('Authorization', auth)
      .send({ title: 'New', description: 'x', completed: false });
    expect(withCompleted.body).toMatchObject({ title: 'New', description: 'x', completed: false });
    expect(await stored(task.id)).toMatchObject({ title: 'New', description: 'x', completed: false });
  });

  it('PATCH changes only what is sent; null clears the description; {} changes nothing', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const { body: task } = await request(ctx.app).post(base(user)).set('Authorization', auth).send({ title: 'Title', description: 'Desc' });
    const url = `${base(user)}/${task.id}`;

    const title = await request(ctx.app).patch(url).set('Authorization', auth).send({ title: 'Renamed' });
    expect(title.body).toMatchObject({ title: 'Renamed', description: 'Desc', completed: false });

    const done = await request(ctx.app).patch(url).set('Authorization', auth).send({ completed: true });
    expect(done.body).toMatchObject({ title: 'Renamed', description: 'Desc', completed: true });

    const cleared = await request(ctx.app).patch(url).set('Authorization', auth).send({ description: null });
    expect(cleared.body).toMatchObject({ title: 'Renamed', description: null, completed: true });
    expect(Date.parse(cleared.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(task.updated_at));

    const nothing = await request(ctx.app).patch(url).set('Authorization', auth).send({});
    expect(nothing.status).toBe(200);
    expect(nothing.body).toEqual(cleared.body);
    expect(await stored(task.id)).toMatchObject({ title: 'Renamed', description: null, completed: true });
  });

  it('toggles completion without a body, sets it idempotently with one', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const { body: task } = await request(ctx.app).post(base(user)).set('Authorization', auth).send({ title: 'Toggle me' });
    const url = `${base(user)}/${task.id}/complete`;

    expect((await request(ctx.app).patch(url).set('Authorization', auth)).body.completed).toBe(true);
    expect((await request(ctx.app).patch(url).set('Authorization', auth)).body.completed).toBe(false);
    expect((await request(ctx.app).patch(url).set('Authorization', auth).send({})).body.completed).toBe(true);

    const set1 = await request(ctx.app).patch(url).set('Authorization', auth).send({ completed: false });
    const set2 = await request(ctx.app).patch(url).set('Authorization', auth).send({ completed: false });
    expect(set1.body.completed).toBe(false);
    expect(set2.body).toEqual(set1.body); // idempotent: not even updated_at moves
    expect(await stored(task.id)).toMatchObject({ completed: false });
  });

  it('answers 404 for every operation on a task that does not exist', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const url = `${base(user)}/987654321`;
    const responses = await Promise.all([
      request(ctx.app).get(url).set('Authorization', auth),
      request(ctx.app).put(url).set('Authorization', auth).send({ title: 'x' }),
      request(ctx.app).patch(url).set('Authorization', auth).send({ title: 'x' }),
      request(ctx.app).delete(url).set('Authorization', auth),
      request(ctx.app).patch(`${url}/complete`).set('Authorization', auth),
    ]);
    for (const res of responses) {
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('task_not_found');
    }
  });
});

describe('boundaries of a task', () => {
  it('accepts a 500-character title and a 2000-character description, and stores them whole', async () => {
    const user = newUser();
    const title = 'é'.repeat(500);
    const description = '😀'.repeat(2000);
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', await bearer(user))
      .send({ title, description });
    expect(res.status).toBe(201);
    expect(await stored(res.body.id)).toMatchObject({ title, description });
  });

  it.each([
    ['an empty title', { title: '' }, '/body/title'],
    ['a blank title', { title: ' \t\n ' }, '/body/title'],
    ['a 501-character title', { title: 'a'.repeat(501) }, '/body/title'],
    ['a title with NUL', { title: 'a\u0000b' }, '/body/title'],
    ['a 2001-character description', { title: 'ok', description: 'd'.repeat(2001) }, '/body/description'],
    ['a missing title', { description: 'no title' }, '/body/title'],
    ['a non-string title', { title: 42 }, '/body/title'],
    ['a non-boolean completed', { title: 'ok', completed: 'yes' }, '/body/completed'],
    ['an unknown property', { title: 'ok', owner: 'someone-else' }, '/body/owner'],
  ])('refuses %s with 422 and names the field, storing nothing', async (_name, body, path) => {
    const user = newUser();
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', await bearer(user))
      .send(body);
    expect(res.status).toBe(422);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.detail).toEqual(expect.any(String));
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    const { rows } = await ctx.database.db.query('SELECT 1 FROM tasks WHERE user_id = $1', [user]);
    expect(rows).toHaveLength(0);
  });
});
