// Contract 1.3 through HTTP: one change to several tasks (PATCH /api/tasks, all or nothing),
// deleting several (POST /api/tasks/batch-delete, safe to retry), and the user's tags with counts.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { dbKind } from './helpers/db.js';
import { createTask } from './helpers/pages.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp();
});
afterAll(() => ctx.close());

type Task = { id: number; title: string; completed: boolean; due_at: string | null; priority: string; tags: string[]; updated_at: string };

const create = (auth: string, body: Record<string, unknown>) => createTask<Task>(ctx.app, auth, body);
const get = async (auth: string, id: number) => (await request(ctx.app).get(`/api/tasks/${id}`).set('Authorization', auth)).body as Task;
const patchMany = (auth: string, body: unknown, path = '/api/tasks') =>
  request(ctx.app)
    .patch(path)
    .set('Authorization', auth)
    .send(body as object);
const deleteMany = (auth: string, body: unknown) =>
  request(ctx.app)
    .post('/api/tasks/batch-delete')
    .set('Authorization', auth)
    .send(body as object);

describe(`several tasks at once (${dbKind})`, () => {
  it('completes several tasks in one request, returning them in the order given, each with a new version', async () => {
    const auth = await bearer(newUser());
    const a = await create(auth, { title: 'a' });
    const b = await create(auth, { title: 'b' });
    const c = await create(auth, { title: 'c' });
    const res = await patchMany(auth, { ids: [c.id, a.id], completed: true });
    expect(res.status).toBe(200);
    expect(res.body.tasks.map((t: Task) => [t.id, t.completed])).toEqual([
      [c.id, true],
      [a.id, true],
    ]);
    expect((await get(auth, b.id)).completed).toBe(false);
    const etag = (await request(ctx.app).get(`/api/tasks/${a.id}`).set('Authorization', auth)).headers.etag;
    expect(etag).toBe('"2"');
  });

  it('adds and removes tags per task, keeping each task its own, and sets due date and priority', async () => {
    const auth = await bearer(newUser());
    const a = await create(auth, { title: 'a', tags: ['home', 'old'] });
    const b = await create(auth, { title: 'b', tags: ['work'] });
    const res = await patchMany(auth, {
      ids: [a.id, b.id],
      add_tags: ['Urgent', 'home'],
      remove_tags: ['old'],
      priority: 'high',
      due_at: '2027-01-05',
    });
    expect(res.status).toBe(200);
    const [ta, tb] = res.body.tasks as Task[];
    expect(ta).toMatchObject({ tags: ['home', 'urgent'], priority: 'high', due_at: '2027-01-05T00:00:00.000000Z' });
    expect(tb).toMatchObject({ tags: ['work', 'urgent', 'home'], priority: 'high', due_at: '2027-01-05T00:00:00.000000Z' });
    const cleared = await patchMany(auth, { ids: [a.id], due_at: null });
    expect(cleared.body.tasks[0]).toMatchObject({ due_at: null, tags: ['home', 'urgent'] });
  });

  it('changes nothing when one id is not the user’s (another user’s task included), naming each missing id', async () => {
    const auth = await bearer(newUser());
    const other = await bearer(newUser());
    const mine = await create(auth, { title: 'mine' });
    const theirs = await create(other, { title: 'theirs' });
    const res = await patchMany(auth, { ids: [mine.id, theirs.id, 999_999_999], completed: true });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'task_not_found', status: 404 });
    expect(res.body.detail).toContain(`${theirs.id}, 999999999`);
    expect(res.body.errors).toEqual([
      { path: '/body/ids/1', message: 'names no task of this user' },
      { path: '/body/ids/2', message: 'names no task of this user' },
    ]);
    expect(await get(auth, mine.id)).toEqual(mine);
    expect(await get(other, theirs.id)).toEqual(theirs);
  });

  it('refuses a change that would give a task more than 20 tags, or adds and removes one tag, changing nothing', async () => {
    const auth = await bearer(newUser());
    const full = await create(auth, { title: 'full', tags: Array.from({ length: 19 }, (_, i) => `t${i}`) });
    const roomy = await create(auth, { title: 'roomy' });
    const res = await patchMany(auth, { ids: [roomy.id, full.id], add_tags: ['x', 'y'], completed: true });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: '/body/add_tags', message: `would give task ${full.id} more than 20 tags` }]);
    expect(await get(auth, roomy.id)).toEqual(roomy);
    expect(await get(auth, full.id)).toEqual(full);
    const both = await patchMany(auth, { ids: [roomy.id], add_tags: ['Home'], remove_tags: ['home'] });
    expect(both.status).toBe(422);
    expect(both.body.errors).toEqual([{ path: '/body/remove_tags', message: 'cannot remove what add_tags adds (home)' }]);
  });

  it('checks the ids: 1 to 100, each once, whole numbers', async () => {
    const auth = await bearer(newUser());
    for (const ids of [[], [1, 1], [0], Array.from({ length: 101 }, (_, i) => i + 1), ['x']]) {
      const res = await patchMany(auth, { ids, completed: true });
      expect(res.status, JSON.stringify(ids).slice(0, 30)).toBe(422);
      expect(res.body.code).toBe('validation_failed');
    }
    expect((await patchMany(auth, { completed: true })).status).toBe(422);
    expect((await patchMany(auth, { ids: [1], title: 'x' })).status).toBe(422);
  });

  it('works under /api/{userId}/tasks for the token’s user, and answers 403 for another', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const a = await create(auth, { title: 'a' });
    const res = await patchMany(auth, { ids: [a.id], completed: true }, `/api/${user}/tasks`);
    expect(res.status).toBe(200);
    expect(res.body.tasks[0].completed).toBe(true);
    expect((await patchMany(auth, { ids: [a.id], completed: false }, `/api/${newUser()}/tasks`)).status).toBe(403);
    const tags = await request(ctx.app).get(`/api/${user}/tasks/tags`).set('Authorization', auth);
    expect(tags.status).toBe(200);
  });

  it('two batches over the same tasks in opposite orders both complete, one after the other', async () => {
    const auth = await bearer(newUser());
    const tasks = [];
    for (let i = 0; i < 8; i++) tasks.push(await create(auth, { title: `t${i}` }));
    const ids = tasks.map((t) => t.id);
    const rounds = await Promise.all(
      Array.from({ length: 6 }, (_, i) => patchMany(auth, { ids: i % 2 ? [...ids].reverse() : ids, add_tags: [`r${i}`] })),
    );
    expect(rounds.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    for (const t of tasks) expect((await get(auth, t.id)).tags.sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('deletes several tasks, says which were not found, and is safe to retry', async () => {
    const auth = await bearer(newUser());
    const other = await bearer(newUser());
    const a = await create(auth, { title: 'a' });
    const b = await create(auth, { title: 'b' });
    const keep = await create(auth, { title: 'keep' });
    const theirs = await create(other, { title: 'theirs' });
    const res = await deleteMany(auth, { ids: [b.id, theirs.id, a.id] });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: [b.id, a.id], not_found: [theirs.id] });
    const again = await deleteMany(auth, { ids: [b.id, theirs.id, a.id] });
    expect(again.body).toEqual({ deleted: [], not_found: [b.id, theirs.id, a.id] });
    expect((await request(ctx.app).get(`/api/tasks/${a.id}`).set('Authorization', auth)).status).toBe(404);
    expect(await get(auth, keep.id)).toEqual(keep);
    expect(await get(other, theirs.id)).toEqual(theirs);
    // The quota counts what is left: the deletes gave their slots back.
    const stats = await request(ctx.app).get('/api/tasks/stats').set('Authorization', auth);
    expect(stats.body.total).toBe(1);
    expect((await deleteMany(auth, { ids: [] })).status).toBe(422);
    expect((await request(ctx.app).get('/api/tasks/batch-delete').set('Authorization', auth)).status).toBe(405);
  });

  it('logs probes of another user’s tasks through the batches, while the answers stay as for missing ids', async () => {
    const auth = await bearer(newUser());
    const theirs = await create(await bearer(newUser()), { title: 'theirs' });
    expect((await patchMany(auth, { ids: [theirs.id], completed: true })).status).toBe(404);
    expect((await deleteMany(auth, { ids: [theirs.id, 999_999_998] })).body.not_found).toEqual([theirs.id, 999_999_998]);
    const probes = async () => {
      for (let i = 0; i < 50; i++) {
        const found = ctx.logLines.filter((l) => l.includes('cross_user_access') && l.includes(`"taskId":${theirs.id}`));
        if (found.length >= 2) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      return ctx.logLines.filter((l) => l.includes('cross_user_access') && l.includes(`"taskId":${theirs.id}`));
    };
    expect(await probes()).toHaveLength(2);
    expect(ctx.logLines.some((l) => l.includes('cross_user_access') && l.includes('"taskId":999999998'))).toBe(false);
  });

  it('a batch and clearing completed tasks over the same tasks never deadlock', async () => {
    const auth = await bearer(newUser());
    const ids: number[] = [];
    for (let i = 0; i < 30; i++) ids.push((await create(auth, { title: `t${i}`, completed: true })).id);
    // Rows moved by updates, so a scan meets them out of id order.
    await patchMany(auth, { ids: ids.filter((_, i) => i % 2), add_tags: ['moved'] });
    const answers = await Promise.all([
      patchMany(auth, { ids: [...ids].reverse(), completed: false }),
      request(ctx.app).delete('/api/tasks?status=completed').set('Authorization', auth),
      patchMany(auth, { ids, priority: 'high' }),
      request(ctx.app).delete('/api/tasks?status=completed').set('Authorization', auth),
    ]);
    // A batch that comes after a clear finds its tasks gone (404, nothing changed); none fails.
    for (const a of answers) expect([200, 404], a.text.slice(0, 200)).toContain(a.status);
  });

  it('lists the user’s tags with counts, most used first, then by name; none of another user’s', async () => {
    const auth = await bearer(newUser());
    const other = await bearer(newUser());
    const empty = await request(ctx.app).get('/api/tasks/tags').set('Authorization', auth);
    expect(empty.body).toEqual({ tags: [] });
    await create(auth, { title: '1', tags: ['home', 'b'] });
    await create(auth, { title: '2', tags: ['home', 'a'], completed: true });
    await create(auth, { title: '3', tags: ['Home', 'c'] });
    await create(other, { title: 'x', tags: ['secret'] });
    const res = await request(ctx.app).get('/api/tasks/tags').set('Authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      tags: [
        { tag: 'home', tasks: 3, pending: 2 },
        { tag: 'a', tasks: 1, pending: 0 },
        { tag: 'b', tasks: 1, pending: 1 },
        { tag: 'c', tasks: 1, pending: 1 },
      ],
    });
  });
});
