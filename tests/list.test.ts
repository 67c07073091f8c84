// Listing: filters, sorts, and keyset pagination through the Link header, walked page by page.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listQuery, type TaskSort } from '../src/tasks/queries.js';
import { nextPageUrl, walkPages } from './helpers/pages.js';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';

interface Task {
  id: number;
  title: string;
  completed: boolean;
  created_at: string;
  updated_at: string;
}

let ctx: TestContext;
const user = newUser();
let auth: string;
let all: Task[] = [];

beforeAll(async () => {
  ctx = await setupApp();
  auth = await bearer(user);
  // Titles repeat (ties broken by id) and differ in case (ordered case-insensitively).
  const titles = ['pear', 'Apple', 'apple', 'fig', 'Banana', 'cherry', 'pear', 'date', 'Elder', 'grape', 'kiwi', 'lime', 'mango'];
  for (const [i, title] of titles.entries()) {
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title, completed: i % 3 === 0 });
    expect(res.status).toBe(201);
  }
  // Touch a few so updated_at order differs from created_at order.
  const { body } = await request(ctx.app).get('/api/tasks?limit=500').set('Authorization', auth);
  for (const t of (body as Task[]).filter((_, i) => i % 4 === 1)) {
    await request(ctx.app)
      .patch(`/api/tasks/${t.id}`)
      .set('Authorization', auth)
      .send({ title: `${t.title} (edited)` });
  }
  all = (await request(ctx.app).get('/api/tasks?limit=500').set('Authorization', auth)).body;
  expect(all).toHaveLength(titles.length);
});
afterAll(() => ctx.close());

async function walk(firstUrl: string): Promise<{ tasks: Task[]; pages: number }> {
  const { items, pages } = await walkPages<Task>(ctx.app, auth, firstUrl, { maxPages: 100 });
  return { tasks: items, pages };
}

function expected(sort: 'created_at' | 'updated_at' | 'title', order: 'asc' | 'desc', status: string): Task[] {
  const key = (t: Task) => (sort === 'title' ? t.title.toLowerCase() : t[sort]);
  const filtered = all.filter((t) => status === 'all' || t.completed === (status === 'completed'));
  const sorted = [...filtered].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    // Code-point order, as the API promises (not locale order).
    return ka < kb ? -1 : ka > kb ? 1 : a.id - b.id;
  });
  return order === 'asc' ? sorted : sorted.reverse();
}

describe('GET /api/tasks', () => {
  it('defaults to newest first, 100 per page, no Link when everything fits', async () => {
    const res = await request(ctx.app).get('/api/tasks').set('Authorization', auth);
    expect(res.status).toBe(200);
    expect(res.headers.link).toBeUndefined();
    expect(res.body.map((t: Task) => t.id)).toEqual(expected('created_at', 'desc', 'all').map((t) => t.id));
  });

  it('takes limit as a number and announces the next page', async () => {
    const res = await request(ctx.app).get('/api/tasks?limit=2').set('Authorization', auth);
    expect(res.body).toHaveLength(2);
    const next = nextPageUrl(res)!;
    expect(next).toMatch(/^\/api\/tasks\?/);
    const params = new URL(next, 'http://x').searchParams;
    expect(params.get('limit')).toBe('2');
    expect(params.get('sort')).toBe('created_at');
    expect(params.get('cursor')).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  for (const sort of ['created_at', 'updated_at', 'title'] as const) {
    for (const order of ['asc', 'desc'] as const) {
      for (const status of ['all', 'pending', 'completed']) {
        it(`walks every page sorted by ${sort} ${order}, status=${status}, skipping and repeating nothing`, async () => {
          const { tasks, pages } = await walk(`/api/tasks?sort=${sort}&order=${order}&status=${status}&limit=3`);
          const want = expected(sort, order, status);
          expect(tasks.map((t) => t.id)).toEqual(want.map((t) => t.id));
          expect(pages).toBe(Math.max(1, Math.ceil(want.length / 3)));
        });
      }
    }
  }

  it('follows the Link header on the user-scoped path too', async () => {
    const { tasks } = await walk(`/api/${user}/tasks?limit=4`);
    expect(tasks.map((t) => t.id)).toEqual(expected('created_at', 'desc', 'all').map((t) => t.id));
  });

  it('only lists the caller’s own tasks', async () => {
    const other = newUser();
    const otherAuth = await bearer(other);
    await request(ctx.app).post('/api/tasks').set('Authorization', otherAuth).send({ title: 'not yours' });
    const mine = await request(ctx.app).get('/api/tasks?limit=500').set('Authorization', auth);
    expect(mine.body.map((t: Task) => t.title)).not.toContain('not yours');
    const theirs = await request(ctx.app).get('/api/tasks').set('Authorization', otherAuth);
    expect(theirs.body.map((t: Task) => t.title)).toEqual(['not yours']);
  });

  it.each([
    ['limit=0', '/query/limit'],
    ['limit=501', '/query/limit'],
    ['limit=abc', '/query/limit'],
    ['limit=1.5', '/query/limit'],
    ['status=done', '/query/status'],
    ['sort=owner', '/query/sort'],
    ['order=up', '/query/order'],
    ['cursor=not%20base64!', '/query/cursor'],
    ['stauts=pending', '/query/stauts'],
  ])('refuses %s with 422 naming %s', async (query, path) => {
    const res = await request(ctx.app).get(`/api/tasks?${query}`).set('Authorization', auth);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
  });

  it('refuses a cursor used with another order, and a forged one, with invalid_cursor', async () => {
    const first = await request(ctx.app).get('/api/tasks?limit=2&sort=title&order=asc').set('Authorization', auth);
    const cursor = new URL(nextPageUrl(first)!, 'http://x').searchParams.get('cursor')!;

    const otherOrder = await request(ctx.app).get(`/api/tasks?limit=2&sort=title&order=desc&cursor=${cursor}`).set('Authorization', auth);
    expect(otherOrder.status).toBe(422);
    expect(otherOrder.body).toMatchObject({ code: 'invalid_cursor', errors: [{ path: '/query/cursor' }] });

    const forged = [
      Buffer.from('{"v":1,"st":"all","s":"created_at","o":"desc","k":"2026-02-30T00:00:00.000000Z","id":1}').toString('base64url'),
      Buffer.from('{"v":1,"st":"all","s":"title","o":"desc","k":"a\\u0000","id":1}').toString('base64url'),
      Buffer.from('{"v":1,"st":"all","s":"created_at","o":"desc","k":"x","id":-1}').toString('base64url'),
      Buffer.from('[]').toString('base64url'),
      'AAAA',
    ];
    for (const c of forged) {
      const sort = c.length > 60 && Buffer.from(c, 'base64url').toString().includes('"title"') ? 'title' : 'created_at';
      const res = await request(ctx.app).get(`/api/tasks?sort=${sort}&cursor=${c}`).set('Authorization', auth);
      expect(res.status, `cursor ${c}`).toBe(422);
      expect(res.body.code).toBe('invalid_cursor');
    }
  });
});

describe('list plans', () => {
  it('reads a page of a user with many tasks by an index range, never by sorting them all', async () => {
    const db = ctx.database.db;
    await db.query(`INSERT INTO tasks (user_id, title) SELECT 'plan-heavy', 'Task ' || g FROM generate_series(1, 20000) g`);
    await db.query(`INSERT INTO tasks (user_id, title) SELECT 'plan-other-' || (g % 200), 'Other ' || g FROM generate_series(1, 20000) g`);
    await db.query('ANALYZE tasks');
    const keys: Record<TaskSort, string> = {
      created_at: '2026-01-01T00:00:00.000000Z',
      updated_at: '2026-01-01T00:00:00.000000Z',
      title: 'task 5',
      due_at: 'infinity',
      priority: '2',
      position: '5000',
    };
    for (const sort of Object.keys(keys) as TaskSort[]) {
      for (const order of ['asc', 'desc'] as const) {
        for (const withCursor of [false, true]) {
          // Every shape of statement: all tasks or one status, with and without other filters.
          for (const variant of [{ status: 'all' }, { status: 'pending' }, { status: 'all', overdue: false }] as const) {
            const { text, values } = listQuery('plan-heavy', {
              ...variant,
              sort,
              order,
              limit: 100,
              after: withCursor ? { key: keys[sort], id: 10 } : undefined,
            });
            const { rows } = await db.query<Record<string, string>>(`EXPLAIN ${text}`, values);
            const plan = rows.map((r) => Object.values(r)[0]).join('\n');
            const what = `${sort} ${order} cursor=${withCursor} ${JSON.stringify(variant)}:\n${plan}`;
            expect(plan, what).toMatch(/Index Scan/);
            expect(plan, what).not.toMatch(/Sort/);
          }
        }
      }
    }
  });
});
