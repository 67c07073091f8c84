// Contract 1.1 through HTTP: richer tasks, filters and search, keyset pagination under every sort,
// counts, clearing completed tasks, ETags and preconditions, idempotent creates.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTask, walkPages } from './helpers/pages.js';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { dbKind } from './helpers/db.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp();
});
afterAll(() => ctx.close());

type Task = {
  id: number;
  title: string;
  description: string | null;
  completed: boolean;
  due_at: string | null;
  priority: 'none' | 'low' | 'medium' | 'high';
  tags: string[];
  position: number;
  created_at: string;
  updated_at: string;
};

const create = (auth: string, body: Record<string, unknown>) => createTask<Task>(ctx.app, auth, body);
const walk = async (auth: string, query: string) => (await walkPages<Task>(ctx.app, auth, `/api/tasks?${query}`)).items;

const PRIORITY = ['none', 'low', 'medium', 'high'];

describe(`richer tasks (${dbKind})`, () => {
  it('creates with defaults and with every new field, and shows them everywhere', async () => {
    const auth = await bearer(newUser());
    const plain = await create(auth, { title: 'plain' });
    expect(plain).toMatchObject({ due_at: null, priority: 'none', tags: [], position: 1024 });
    const rich = await create(auth, {
      title: 'rich',
      due_at: '2026-12-01T09:00:00+01:00',
      priority: 'high',
      tags: ['home', 'x-1'],
      position: 5.5,
    });
    expect(rich).toMatchObject({ due_at: '2026-12-01T08:00:00.000000Z', priority: 'high', tags: ['home', 'x-1'], position: 5.5 });
    const next = await create(auth, { title: 'after the last' });
    expect(next.position).toBe(2048); // 1024 past the largest position
    const got = await request(ctx.app).get(`/api/tasks/${rich.id}`).set('Authorization', auth);
    expect(got.body).toEqual(rich);
  });

  it('PATCH sets and clears the new fields; PUT without them keeps them (1.0 clients erase nothing)', async () => {
    const auth = await bearer(newUser());
    const t = await create(auth, { title: 't', due_at: '2030-01-01T00:00:00Z', priority: 'low', tags: ['a'] });
    const patched = await request(ctx.app)
      .patch(`/api/tasks/${t.id}`)
      .set('Authorization', auth)
      .send({ due_at: null, tags: [], priority: 'medium', position: -3 });
    expect(patched.body).toMatchObject({ due_at: null, tags: [], priority: 'medium', position: -3 });
    await request(ctx.app)
      .patch(`/api/tasks/${t.id}`)
      .set('Authorization', auth)
      .send({ tags: ['keep'], due_at: '2031-01-01T00:00:00Z' });
    const put = await request(ctx.app).put(`/api/tasks/${t.id}`).set('Authorization', auth).send({ title: 'renamed', description: 'd' });
    expect(put.body).toMatchObject({
      title: 'renamed',
      description: 'd',
      tags: ['keep'],
      due_at: '2031-01-01T00:00:00.000000Z',
      priority: 'medium',
      position: -3,
    });
  });

  it.each([
    [{ tags: ['-home'] }, '/body/tags/0'],
    [{ tags: ['two words'] }, '/body/tags/0'],
    [{ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, '/body/tags'],
    [{ tags: ['x'.repeat(33)] }, '/body/tags/0'],
    [{ priority: 'urgent' }, '/body/priority'],
    [{ due_at: 'tomorrow' }, '/body/due_at'],
    [{ position: 1e16 }, '/body/position'],
    [{ position: 'first' }, '/body/position'],
  ])('refuses %j with 422 naming %s, storing nothing', async (extra, path) => {
    const auth = await bearer(newUser());
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title: 'x', ...extra });
    expect(res.status).toBe(422);
    expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    expect((await request(ctx.app).get('/api/tasks').set('Authorization', auth)).body).toEqual([]);
  });
});

describe(`filters and search (${dbKind})`, () => {
  let auth: string;
  let t: Record<string, Task>;
  beforeAll(async () => {
    auth = await bearer(newUser());
    const past = '2020-05-05T10:00:00Z';
    const future = '2099-01-01T00:00:00Z';
    t = {
      milk: await create(auth, {
        title: 'Buy milk',
        description: 'semi-skimmed, two litres',
        tags: ['groceries', 'home'],
        priority: 'high',
        due_at: past,
      }),
      bread: await create(auth, { title: 'Buy bread', tags: ['groceries'], priority: 'low', due_at: future }),
      report: await create(auth, { title: 'Quarterly report', description: 'for the board', tags: ['work'], priority: 'high' }),
      done: await create(auth, { title: 'Old milk receipt', completed: true, due_at: past, tags: ['home'] }),
      odd: await create(auth, { title: '100% done? _maybe_', description: 'Ünïcödé café' }),
    };
  });
  const ids = (tasks: Task[]) => tasks.map((x) => x.id).sort((a, b) => a - b);
  const of = (...names: string[]) => names.map((n) => t[n]!.id).sort((a, b) => a - b);
  const list = async (query: string) => ids(await walk(auth, query));

  it.each([
    ['priority=high', ['milk', 'report']],
    ['tag=groceries', ['milk', 'bread']],
    ['tag=groceries&tag=home', ['milk']],
    ['tag=home&status=pending', ['milk']],
    ['overdue=true', ['milk']],
    ['overdue=false', ['bread', 'report', 'done', 'odd']],
    ['due_before=2021-01-01T00:00:00Z', ['milk', 'done']],
    ['due_after=2021-01-01T00:00:00Z', ['bread']],
    ['due_after=2020-05-05T10:00:00Z&due_before=2020-05-05T10:00:01Z', ['milk', 'done']],
    ['q=milk', ['milk', 'done']],
    ['q=MIL', ['milk', 'done']],
    ['q=buy%20mil', ['milk']],
    ['q=buy+bread', ['bread']],
    ['q=skim', ['milk']],
    ['q=board', ['report']],
    ['q=cafe', []],
    ['q=caf%C3%A9', ['odd']],
    ['q=%25', ['odd']],
    ['q=_', ['odd']],
    ['q=%3F', ['odd']],
    ['q=!!', []],
    ['q=b', ['milk', 'bread', 'report']],
    ['q=milk&priority=high&overdue=true&tag=home', ['milk']],
  ] as const)('%s', async (query, expected) => {
    expect(await list(query)).toEqual(of(...expected));
  });

  it('search uses the full-text index', { timeout: 60_000 }, async () => {
    if (dbKind !== 'postgres') return; // PGlite plans the same, but its tiny tables are seq-scanned either way
    const db = ctx.database.db;
    // A user with 20 000 tasks, among 120 000, looking for the two that mention zebras.
    await db.query(`INSERT INTO tasks (user_id, title) SELECT 'search-heavy', 'Task ' || g FROM generate_series(1, 20000) g`);
    await db.query(`INSERT INTO tasks (user_id, title) VALUES ('search-heavy', 'Zebra crossing'), ('search-heavy', 'Paint the zebras')`);
    await db.query(
      `INSERT INTO tasks (user_id, title) SELECT 'search-other-' || (g % 1000), 'Task ' || g FROM generate_series(1, 100000) g`,
    );
    await db.query('ANALYZE tasks');
    const { rows } = await db.query<Record<string, string>>(
      "EXPLAIN SELECT id FROM tasks WHERE user_id = 'search-heavy' AND search @@ to_tsquery('simple', 'zebra:*')",
    );
    expect(rows.map((r) => Object.values(r)[0]).join('\n')).toMatch(/tasks_search_idx/);
  });
});

describe(`keyset pagination under every sort and filter (${dbKind})`, () => {
  it('walks every page of a large list: no task skipped or repeated, in order', { timeout: 120_000 }, async () => {
    const user = newUser();
    const auth = await bearer(user);
    // Many ties on purpose (few distinct titles, priorities, positions, due dates), so the id
    // tie-breaker is what keeps pages apart.
    const values = Array.from({ length: 240 }, (_, i) => [
      user,
      `Task ${i % 7}`,
      i % 3 === 0,
      i % 5 === 0 ? null : new Date(Date.UTC(2026, 0, 1 + (i % 9))).toISOString(),
      i % 4,
      i % 2 ? ['odd'] : ['even'],
      (i % 11) * 512 + (i % 2 ? 0.5 : 0),
    ]);
    for (const v of values) {
      await ctx.database.db.query(
        'INSERT INTO tasks (user_id, title, completed, due_at, priority, tags, position) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        v,
      );
    }
    const all = await walk(auth, 'limit=500');
    expect(all).toHaveLength(240);
    const keyOf: Record<string, (x: Task) => string | number> = {
      created_at: (x) => x.created_at,
      updated_at: (x) => x.updated_at,
      title: (x) => x.title.toLowerCase(),
      due_at: (x) => x.due_at ?? '9999',
      priority: (x) => PRIORITY.indexOf(x.priority),
      position: (x) => x.position,
    };
    for (const sort of Object.keys(keyOf)) {
      for (const order of ['asc', 'desc']) {
        for (const filter of ['', '&status=pending', '&tag=odd', '&priority=high', '&q=task', '&overdue=false']) {
          const seen = await walk(auth, `sort=${sort}&order=${order}&limit=7${filter}`);
          const wanted = all
            .filter((x) =>
              filter === '&status=pending'
                ? !x.completed
                : filter === '&tag=odd'
                  ? x.tags.includes('odd')
                  : filter === '&priority=high'
                    ? x.priority === 'high'
                    : filter === '&overdue=false'
                      ? !(x.due_at && !x.completed && x.due_at < new Date().toISOString())
                      : true,
            )
            .sort((a, b) => {
              const ka = keyOf[sort]!(a);
              const kb = keyOf[sort]!(b);
              const c = ka < kb ? -1 : ka > kb ? 1 : a.id - b.id;
              return order === 'asc' ? c : -c;
            });
          expect(
            seen.map((x) => x.id),
            `${sort} ${order}${filter}`,
          ).toEqual(wanted.map((x) => x.id));
        }
      }
    }
  });

  it('refuses a cursor replayed with other filters', async () => {
    const auth = await bearer(newUser());
    for (let i = 0; i < 3; i++) await create(auth, { title: `t${i}`, tags: ['a'] });
    const first = await request(ctx.app).get('/api/tasks?limit=1&tag=a').set('Authorization', auth);
    const next = /<([^>]+)>/.exec(first.headers.link as string)![1]!;
    const res = await request(ctx.app).get(next.replace('tag=a', 'tag=b')).set('Authorization', auth);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('invalid_cursor');
  });
});

describe(`stats and clearing (${dbKind})`, () => {
  const localDate = (tz: string, d: Date) =>
    new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);

  it.each(['UTC', 'Europe/Paris', 'Pacific/Kiritimati', 'Pacific/Pago_Pago', 'America/St_Johns'])(
    'counts by status, overdue and due today in %s',
    async (tz) => {
      const auth = await bearer(newUser());
      const now = Date.now();
      const hour = 3_600_000;
      const dues = [-30, -13, -5, -1, 1, 5, 11, 13, 30].map((h) => new Date(now + h * hour));
      for (const [i, due] of dues.entries()) await create(auth, { title: `t${i}`, due_at: due.toISOString(), completed: i === 4 });
      await create(auth, { title: 'no due date' });
      const res = await request(ctx.app)
        .get(`/api/tasks/stats?tz=${encodeURIComponent(tz)}`)
        .set('Authorization', auth);
      expect(res.status).toBe(200);
      const today = localDate(tz, new Date());
      const pending = dues.filter((_, i) => i !== 4);
      expect(res.body).toEqual({
        total: 10,
        pending: 9,
        completed: 1,
        overdue: pending.filter((d) => d.getTime() < Date.now()).length,
        due_today: pending.filter((d) => localDate(tz, d) === today).length,
      });
    },
  );

  it('refuses an unknown time zone with 422 naming tz', async () => {
    const res = await request(ctx.app)
      .get('/api/tasks/stats?tz=Mars/Olympus_Mons')
      .set('Authorization', await bearer(newUser()));
    expect(res.status).toBe(422);
    expect(res.body.errors[0].path).toBe('/query/tz');
  });

  it('clears completed tasks of the caller only, and says how many', async () => {
    const auth = await bearer(newUser());
    const other = await bearer(newUser());
    await create(auth, { title: 'a', completed: true });
    await create(auth, { title: 'b', completed: true });
    const kept = await create(auth, { title: 'c' });
    const theirs = await create(other, { title: 'd', completed: true });
    const res = await request(ctx.app).delete('/api/tasks?status=completed').set('Authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: 2 });
    expect((await walk(auth, '')).map((x) => x.id)).toEqual([kept.id]);
    expect((await walk(other, '')).map((x) => x.id)).toEqual([theirs.id]);
    expect((await request(ctx.app).delete('/api/tasks?status=completed').set('Authorization', auth)).body).toEqual({ deleted: 0 });
  });

  it('never deletes everything: status=completed is required', async () => {
    const auth = await bearer(newUser());
    await create(auth, { title: 'a', completed: true });
    for (const q of ['', '?status=all', '?status=pending']) {
      const res = await request(ctx.app).delete(`/api/tasks${q}`).set('Authorization', auth);
      expect(res.status).toBe(422);
    }
    expect(await walk(auth, '')).toHaveLength(1);
  });
});

describe(`ETags and preconditions (${dbKind})`, () => {
  it('gives every task response an ETag that changes with the task, and only then', async () => {
    const auth = await bearer(newUser());
    const created = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title: 'v1' });
    const e1 = created.headers.etag as string;
    expect(e1).toMatch(/^"\d+"$/);
    const got = await request(ctx.app).get(`/api/tasks/${created.body.id}`).set('Authorization', auth);
    expect(got.headers.etag).toBe(e1);
    const same = await request(ctx.app).patch(`/api/tasks/${created.body.id}`).set('Authorization', auth).send({ title: 'v1' });
    expect(same.headers.etag).toBe(e1); // nothing changed
    const changed = await request(ctx.app)
      .patch(`/api/tasks/${created.body.id}`)
      .set('Authorization', auth)
      .send({ tags: ['new'] });
    expect(changed.headers.etag).not.toBe(e1);
    const toggled = await request(ctx.app).patch(`/api/tasks/${created.body.id}/complete`).set('Authorization', auth);
    expect(toggled.headers.etag).not.toBe(changed.headers.etag);
  });

  it('If-None-Match: 304 without a body while unchanged, 200 after a change', async () => {
    const auth = await bearer(newUser());
    const t = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title: 'cached' });
    const url = `/api/tasks/${t.body.id}`;
    for (const header of [t.headers.etag as string, `W/${t.headers.etag}`, `"999", ${t.headers.etag}`, '*']) {
      const res = await request(ctx.app).get(url).set('Authorization', auth).set('If-None-Match', header);
      expect(res.status, header).toBe(304);
      expect(res.text ?? '').toBe('');
      expect(res.headers.etag).toBe(t.headers.etag);
    }
    await request(ctx.app).patch(url).set('Authorization', auth).send({ title: 'changed' });
    const res = await request(ctx.app)
      .get(url)
      .set('Authorization', auth)
      .set('If-None-Match', t.headers.etag as string);
    expect(res.status).toBe(200);
    expect(res.body.title).toBe('changed');
  });

  it('If-Match: writes with the current ETag, refuses a stale one with 412 and writes nothing', async () => {
    const auth = await bearer(newUser());
    const t = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title: 'v1' });
    const url = `/api/tasks/${t.body.id}`;
    const e1 = t.headers.etag as string;
    const ok = await request(ctx.app).put(url).set('Authorization', auth).set('If-Match', e1).send({ title: 'v2' });
    expect(ok.status).toBe(200);
    // Someone else's change made e1 stale: every write with it is refused.
    for (const attempt of [
      request(ctx.app).put(url).set('Authorization', auth).set('If-Match', e1).send({ title: 'lost' }),
      request(ctx.app).patch(url).set('Authorization', auth).set('If-Match', e1).send({ title: 'lost' }),
      request(ctx.app).patch(`${url}/complete`).set('Authorization', auth).set('If-Match', e1),
      request(ctx.app).delete(url).set('Authorization', auth).set('If-Match', e1),
      request(ctx.app).put(url).set('Authorization', auth).set('If-Match', `W/${ok.headers.etag}`).send({ title: 'weak never matches' }),
    ]) {
      const res = await attempt;
      expect(res.status).toBe(412);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ code: 'precondition_failed' });
      expect(res.body.detail).toContain(ok.headers.etag as string);
    }
    const now = await request(ctx.app).get(url).set('Authorization', auth);
    expect(now.body).toMatchObject({ title: 'v2', completed: false });
    expect(
      (await request(ctx.app).patch(url).set('Authorization', auth).set('If-Match', `"1", ${ok.headers.etag}`).send({ title: 'v3' }))
        .status,
    ).toBe(200);
    expect((await request(ctx.app).delete(url).set('Authorization', auth).set('If-Match', '*')).status).toBe(204);
  });

  it("404, not 412, for a task that is not the caller's, whatever the If-Match", async () => {
    const owner = await bearer(newUser());
    const t = await request(ctx.app).post('/api/tasks').set('Authorization', owner).send({ title: 'mine' });
    const intruder = await bearer(newUser());
    for (const ifMatch of ['"999"', t.headers.etag as string, '*']) {
      const res = await request(ctx.app)
        .patch(`/api/tasks/${t.body.id}`)
        .set('Authorization', intruder)
        .set('If-Match', ifMatch)
        .send({ title: 'x' });
      expect(res.status).toBe(404);
    }
  });
});

describe(`Idempotency-Key (${dbKind})`, () => {
  const post = (auth: string, key: string, body: object) =>
    request(ctx.app).post('/api/tasks').set('Authorization', auth).set('Idempotency-Key', key).send(body);

  it('a retry returns the original response and creates nothing; another body is refused', async () => {
    const auth = await bearer(newUser());
    const first = await post(auth, 'key-1', { title: 'once', tags: ['a'], priority: 'low' });
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    await request(ctx.app).patch(`/api/tasks/${first.body.id}`).set('Authorization', auth).send({ title: 'changed since' });
    // Same body, keys in another order: the same request.
    const retry = await post(auth, 'key-1', { priority: 'low', tags: ['a'], title: 'once' });
    expect(retry.status).toBe(201);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.location).toBe(first.headers.location);
    expect(retry.headers.etag).toBe(first.headers.etag);
    const other = await post(auth, 'key-1', { title: 'something else' });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('idempotency_key_reused');
    expect(await walk(auth, '')).toHaveLength(1);
  });

  it('keys belong to their user', async () => {
    const a = await bearer(newUser());
    const b = await bearer(newUser());
    const ra = await post(a, 'shared-key', { title: 'a' });
    const rb = await post(b, 'shared-key', { title: 'b' });
    expect(rb.status).toBe(201);
    expect(rb.headers['idempotent-replayed']).toBeUndefined();
    expect(rb.body.id).not.toBe(ra.body.id);
  });

  it('concurrent retries of one key create exactly one task', async () => {
    const auth = await bearer(newUser());
    const results = await Promise.all(Array.from({ length: 20 }, () => post(auth, 'racing-key', { title: 'raced' })));
    expect(results.every((r) => r.status === 201)).toBe(true);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(results.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    expect(await walk(auth, '')).toHaveLength(1);
  });

  it('forgets a key after 24 hours', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const first = await post(auth, 'old-key', { title: 'x' });
    await ctx.database.db.query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' WHERE user_id = $1", [user]);
    const again = await post(auth, 'old-key', { title: 'x' });
    expect(again.status).toBe(201);
    expect(again.body.id).not.toBe(first.body.id);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
  });

  it('refuses a malformed key with 422', async () => {
    const res = await post(await bearer(newUser()), 'has space', { title: 'x' });
    expect(res.status).toBe(422);
    expect(res.body.errors[0].path).toMatch(/^\/header\/idempotency-key/i);
  });
});
