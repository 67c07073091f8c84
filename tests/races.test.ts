// Concurrent clients on one task, through one listening server: toggles all count, and racing
// PUT/PATCH/DELETE never produce a 5xx or bring a deleted task back.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { createTask as insertTask, deleteTask } from '../src/tasks/queries.js';
import { dbKind } from './helpers/db.js';

let ctx: TestContext;
let server: Server;
let base: string;
beforeAll(async () => {
  ctx = await setupApp();
  server = ctx.app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await ctx.close();
});

async function call(auth: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: auth, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

async function createTask(auth: string, title: string) {
  const res = await call(auth, 'POST', '/api/tasks', { title });
  expect(res.status).toBe(201);
  return res.body as { id: number; completed: boolean };
}

describe(`races (${dbKind})`, () => {
  it('200 concurrent toggles: the final state is the parity of the acknowledged ones', async () => {
    const auth = await bearer(newUser());
    const task = await createTask(auth, 'toggled');
    expect(task.completed).toBe(false);
    const results = await Promise.all(Array.from({ length: 200 }, () => call(auth, 'PATCH', `/api/tasks/${task.id}/complete`)));
    expect(results.map((r) => r.status).filter((s) => s !== 200)).toEqual([]);
    // Each toggle saw a distinct state: exactly half of them completed the task.
    expect(results.filter((r) => r.body!.completed === true)).toHaveLength(100);
    const final = await call(auth, 'GET', `/api/tasks/${task.id}`);
    expect(final.body!.completed).toBe(false); // 200 acknowledged toggles: even
    const { rows } = await ctx.database.db.query<{ completed: boolean }>('SELECT completed FROM tasks WHERE id = $1', [task.id]);
    expect(rows).toEqual([{ completed: false }]);
  });

  it('an odd number of concurrent toggles leaves the task completed', async () => {
    const auth = await bearer(newUser());
    const task = await createTask(auth, 'toggled 51 times');
    const results = await Promise.all(Array.from({ length: 51 }, () => call(auth, 'PATCH', `/api/tasks/${task.id}/complete`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect((await call(auth, 'GET', `/api/tasks/${task.id}`)).body!.completed).toBe(true);
  });

  it('racing PUT, PATCH, toggles and DELETEs: no 5xx, one delete wins, the task stays deleted', async () => {
    const auth = await bearer(newUser());
    for (let round = 0; round < 5; round++) {
      const task = await createTask(auth, `contested ${round}`);
      const path = `/api/tasks/${task.id}`;
      const ops = [
        ...Array.from({ length: 20 }, (_, i) => () => call(auth, 'PUT', path, { title: `put ${i}`, description: `d${i}` })),
        ...Array.from({ length: 20 }, (_, i) => () => call(auth, 'PATCH', path, { title: `patch ${i}` })),
        ...Array.from({ length: 10 }, () => () => call(auth, 'PATCH', `${path}/complete`)),
        ...Array.from({ length: 5 }, () => () => call(auth, 'DELETE', path)),
      ].sort(() => Math.random() - 0.5);
      const results = await Promise.all(ops.map((op) => op()));
      expect(results.filter((r) => r.status >= 500)).toEqual([]);
      expect(results.every((r) => [200, 204, 404].includes(r.status))).toBe(true);
      expect(results.filter((r) => r.status === 204)).toHaveLength(1);
      // Deleted is final: no later write finds it, and it is gone from the list and the table.
      expect((await call(auth, 'GET', path)).status).toBe(404);
      expect((await call(auth, 'PUT', path, { title: 'resurrect?' })).status).toBe(404);
      expect((await call(auth, 'PATCH', path, { title: 'resurrect?' })).status).toBe(404);
      expect((await call(auth, 'PATCH', `${path}/complete`)).status).toBe(404);
      const list = await fetch(`${base}/api/tasks?limit=500`, { headers: { Authorization: auth } });
      expect(((await list.json()) as { id: number }[]).some((t) => t.id === task.id)).toBe(false);
      const { rows } = await ctx.database.db.query('SELECT 1 FROM tasks WHERE id = $1', [task.id]);
      expect(rows).toHaveLength(0);
    }
  });

  it('concurrent PUT and PATCH of one task: the stored row is one whole write, never a mix', async () => {
    const auth = await bearer(newUser());
    const task = await createTask(auth, 'mixed');
    const path = `/api/tasks/${task.id}`;
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        i % 2
          ? call(auth, 'PUT', path, { title: `w${i}`, description: `w${i}`, completed: i % 4 === 1 })
          : call(auth, 'PATCH', path, { title: `w${i}`, description: `w${i}` }),
      ),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const { rows } = await ctx.database.db.query<{ title: string; description: string }>(
      'SELECT title, description FROM tasks WHERE id = $1',
      [task.id],
    );
    expect(rows[0]!.description).toBe(rows[0]!.title);
  });

  it('40 creates at once at the quota edge, on a pool of 40: exactly the room there is, again after deletes', async () => {
    // The statement itself races here (migrations/004): creates far from the quota run side by side,
    // those within the server's connection count of it take the user's quota lock alone.
    const { rows } = await ctx.database.db.query<{ slack: number }>(
      "SELECT current_setting('max_connections')::integer + current_setting('max_prepared_transactions')::integer AS slack",
    );
    const quota = rows[0]!.slack + 30;
    const url = ctx.database.url;
    const wide = url
      ? createPostgresDatabase({ connectionString: url, poolMax: 40, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 })
      : ctx.database.db;
    const user = newUser();
    const task = (title: string) => ({
      title,
      description: null,
      completed: false,
      dueAt: null,
      priority: 'none' as const,
      tags: [],
      position: undefined,
    });
    const race = () => Promise.all(Array.from({ length: 40 }, (_, i) => insertTask(wide, user, task(`race ${i}`), quota)));
    try {
      const ids: number[] = [];
      for (let i = 0; i < quota - 5; i++) ids.push((await insertTask(wide, user, task(`fill ${i}`), quota))!.task.id);
      expect((await race()).filter(Boolean)).toHaveLength(5);
      for (const id of ids.slice(0, 10)) expect(await deleteTask(wide, user, id)).toBe(true);
      expect((await race()).filter(Boolean)).toHaveLength(10);
      const stored = await wide.query<{ n: number }>('SELECT count(*)::integer AS n FROM tasks WHERE user_id = $1', [user]);
      expect(stored.rows).toEqual([{ n: quota }]);
    } finally {
      if (url) await wide.close();
    }
  });
});
