// Contract 1.3's forgiving input, where what was meant is unambiguous: a due date given as a date
// alone, tags in any case, and a search for any of its words.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { dbKind } from './helpers/db.js';
import { createTask, walkPages } from './helpers/pages.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp();
});
afterAll(() => ctx.close());

type Task = { id: number; title: string; due_at: string | null; tags: string[] };
const create = (auth: string, body: Record<string, unknown>) => createTask<Task>(ctx.app, auth, body);
const titles = async (auth: string, query: string) =>
  (await walkPages<Task>(ctx.app, auth, `/api/tasks?sort=title&order=asc&${query}`)).items.map((t) => t.title);

describe(`forgiving input (${dbKind})`, () => {
  it('takes a date alone as the start of that day in UTC, in the body and in the filters', async () => {
    const auth = await bearer(newUser());
    const t = await create(auth, { title: 'dentist', due_at: '2026-12-10' });
    expect(t.due_at).toBe('2026-12-10T00:00:00.000000Z');
    await create(auth, { title: 'later', due_at: '2026-12-11T09:00:00+01:00' });
    const patched = await request(ctx.app).patch(`/api/tasks/${t.id}`).set('Authorization', auth).send({ due_at: '2026-12-09' });
    expect(patched.body.due_at).toBe('2026-12-09T00:00:00.000000Z');
    expect(await titles(auth, 'due_before=2026-12-10')).toEqual(['dentist']);
    expect(await titles(auth, 'due_after=2026-12-10&due_before=2026-12-12')).toEqual(['later']);
    // The same day with the full form is the same filter, and a cursor from one serves the other.
    const first = await request(ctx.app).get('/api/tasks?limit=1&sort=title&due_after=2026-12-01').set('Authorization', auth);
    const cursor = new URL(first.headers.link!.slice(1, first.headers.link!.indexOf('>')), 'http://x').searchParams.get('cursor')!;
    const next = await request(ctx.app)
      .get(`/api/tasks?limit=1&sort=title&due_after=2026-12-01T00:00:00Z&cursor=${cursor}`)
      .set('Authorization', auth);
    expect(next.status).toBe(200);
  });

  it('still refuses what is not a date or a date and time with an offset, saying what it takes', async () => {
    const auth = await bearer(newUser());
    for (const due_at of ['2026-12-10T09:00', '2026-13-01', '10/12/2026', 'tomorrow', '2026-12-10 ']) {
      const res = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title: 'x', due_at });
      expect(res.status, due_at).toBe(422);
      expect(res.body.errors, due_at).toEqual([
        {
          path: '/body/due_at',
          message: 'must be an RFC 3339 date and time with an offset, such as 2026-11-28T17:00:00Z, or a date alone, such as 2026-11-28',
        },
      ]);
    }
    const q = await request(ctx.app).get('/api/tasks?due_before=soon').set('Authorization', auth);
    expect(q.status).toBe(422);
    expect(q.body.errors[0].path).toBe('/query/due_before');
  });

  it('stores tags in lower case, each once, and finds them by any case', async () => {
    const auth = await bearer(newUser());
    const t = await create(auth, { title: 'shop', tags: ['Home', 'GROCERIES', 'home', 'x_1'] });
    expect(t.tags).toEqual(['home', 'groceries', 'x_1']);
    const put = await request(ctx.app)
      .put(`/api/tasks/${t.id}`)
      .set('Authorization', auth)
      .send({ title: 'shop', tags: ['Work'] });
    expect(put.body.tags).toEqual(['work']);
    expect(await titles(auth, 'tag=WORK')).toEqual(['shop']);
    const bad = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title: 'x', tags: ['two words'] });
    expect(bad.body.errors).toEqual([
      { path: '/body/tags/0', message: "must be letters, digits, '-' and '_', starting with a letter or digit" },
    ]);
  });

  it('finds tasks with every word by default, and with any word on match=any', async () => {
    const auth = await bearer(newUser());
    await create(auth, { title: 'buy milk' });
    await create(auth, { title: 'call the dentist' });
    await create(auth, { title: 'milk the dentist' });
    await create(auth, { title: 'walk' });
    expect(await titles(auth, 'q=milk%20dentist')).toEqual(['milk the dentist']);
    expect(await titles(auth, 'q=milk%20dentist&match=all')).toEqual(['milk the dentist']);
    expect(await titles(auth, 'q=milk%20dentist&match=any')).toEqual(['buy milk', 'call the dentist', 'milk the dentist']);
    // A cursor belongs to its match: one from `any` is refused for `all`.
    const page = await request(ctx.app).get('/api/tasks?q=milk%20dentist&match=any&limit=1').set('Authorization', auth);
    expect(page.headers.link).toContain('match=any');
    const cursor = new URL(page.headers.link!.slice(1, page.headers.link!.indexOf('>')), 'http://x').searchParams.get('cursor')!;
    const wrong = await request(ctx.app).get(`/api/tasks?q=milk%20dentist&limit=1&cursor=${cursor}`).set('Authorization', auth);
    expect(wrong.body.code).toBe('invalid_cursor');
    expect((await request(ctx.app).get('/api/tasks?q=milk&match=some').set('Authorization', auth)).status).toBe(422);
  });
});
