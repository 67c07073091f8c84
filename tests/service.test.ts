// The task service on its own, against the real database this run uses: each operation's typed
// outcomes (the task; not found; precondition failed; quota exceeded; key reused; an invalid
// cursor; an unknown time zone), and what was stored. The REST routes and the MCP tools only
// translate these; their own tests go through HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskService, type TaskService } from '../src/tasks/service.js';
import { newUser } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';

describe(`the task service (${dbKind})`, () => {
  let database: TestDatabase;
  let service: TaskService;
  const locationOf = (id: number) => `/api/tasks/${id}`;
  beforeAll(async () => {
    database = await createTestDatabase();
    service = createTaskService(database.db, { tasksPerUser: 3 });
  });
  afterAll(() => database.drop());

  const stored = async (id: number) =>
    (
      await database.db.query<{ user_id: string; title: string; completed: boolean }>(
        'SELECT user_id, title, completed FROM tasks WHERE id = $1',
        [id],
      )
    ).rows[0];

  it('creates, reads, writes under If-Match, and tells a missing task from a stale precondition', async () => {
    const user = newUser();
    const created = await service.create(user, { title: '  Buy milk ', completed: false }, { locationOf });
    expect(created).toMatchObject({
      kind: 'created',
      replayed: false,
      etag: '"1"',
      task: { title: 'Buy milk', priority: 'none', tags: [] },
    });
    if (created.kind !== 'created') throw new Error('not created');
    const id = created.task.id;
    expect(created.location).toBe(`/api/tasks/${id}`);
    expect(await stored(id)).toEqual({ user_id: user, title: 'Buy milk', completed: false });

    expect(await service.get(user, id)).toMatchObject({ kind: 'found', etag: '"1"', version: 1 });
    expect(await service.get(newUser(), id)).toEqual({ kind: 'not_found', taskId: id });

    const updated = await service.update(user, id, { completed: true }, { ifMatch: '"1"' });
    expect(updated).toMatchObject({ kind: 'written', etag: '"2"', task: { completed: true } });
    expect(await service.update(user, id, { title: 'stale' }, { ifMatch: '"1"' })).toEqual({
      kind: 'precondition_failed',
      taskId: id,
      currentEtag: '"2"',
    });
    expect((await stored(id))?.title).toBe('Buy milk');
    // Another user's task is not found, with or without a precondition: nothing is revealed.
    expect(await service.update(newUser(), id, { title: 'x' }, { ifMatch: '"2"' })).toEqual({ kind: 'not_found', taskId: id });
    expect(await service.remove(newUser(), id)).toEqual({ kind: 'not_found', taskId: id });

    expect(await service.replace(user, id, { title: 'Replaced' })).toMatchObject({
      kind: 'written',
      task: { title: 'Replaced', description: null, completed: true },
    });
    expect(await service.setCompletion(user, id, undefined)).toMatchObject({ kind: 'written', task: { completed: false } });
    expect(await service.remove(user, id, '"999"')).toMatchObject({ kind: 'precondition_failed', taskId: id });
    expect(await service.remove(user, id)).toEqual({ kind: 'deleted' });
    expect(await stored(id)).toBeUndefined();
  });

  it('keeps the quota, and an idempotency key replays or refuses', async () => {
    const user = newUser();
    const first = await service.create(user, { title: 'a', completed: false }, { idempotencyKey: 'k1', locationOf });
    const again = await service.create(user, { title: 'a', completed: false }, { idempotencyKey: 'k1', locationOf });
    expect(first).toMatchObject({ kind: 'created', replayed: false });
    expect(again).toMatchObject({ kind: 'created', replayed: true });
    if (first.kind !== 'created' || again.kind !== 'created') throw new Error('not created');
    expect(again.task).toEqual(first.task);
    expect(await service.create(user, { title: 'b', completed: false }, { idempotencyKey: 'k1', locationOf })).toEqual({
      kind: 'key_reused',
    });
    await service.create(user, { title: 'b', completed: false }, { locationOf });
    await service.create(user, { title: 'c', completed: false }, { locationOf });
    expect(await service.create(user, { title: 'd', completed: false }, { locationOf })).toEqual({ kind: 'quota_exceeded', max: 3 });
    // A create refused by the quota keeps no key: the same key works once there is room.
    expect(await service.create(user, { title: 'd', completed: false }, { idempotencyKey: 'k2', locationOf })).toEqual({
      kind: 'quota_exceeded',
      max: 3,
    });
    expect(await service.clearCompleted(user)).toBe(0);
    const { rows } = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM tasks WHERE user_id = $1', [user]);
    expect(rows[0]!.n).toBe(3);
  });

  it('pages with a cursor bound to its query, and checks the time zone of the stats', async () => {
    const user = newUser();
    for (const title of ['one', 'two', 'three']) await service.create(user, { title, completed: false }, { locationOf });
    const page = await service.list(user, { status: 'all', sort: 'created_at', limit: 2 });
    expect(page).toMatchObject({ kind: 'page', order: 'desc' });
    if (page.kind !== 'page' || !page.nextCursor) throw new Error('no next page');
    expect(page.tasks.map((t) => t.title)).toEqual(['three', 'two']);
    const rest = await service.list(user, { status: 'all', sort: 'created_at', limit: 2, cursor: page.nextCursor });
    expect(rest).toMatchObject({ kind: 'page', nextCursor: undefined });
    expect(rest.kind === 'page' && rest.tasks.map((t) => t.title)).toEqual(['one']);
    // The cursor of one query is refused for another.
    expect(await service.list(user, { status: 'pending', sort: 'created_at', limit: 2, cursor: page.nextCursor })).toMatchObject({
      kind: 'invalid_cursor',
    });
    expect(await service.stats(user, 'Europe/Paris')).toMatchObject({ kind: 'stats', stats: { total: 3, pending: 3 } });
    expect(await service.stats(user, 'Mars/Olympus_Mons')).toEqual({ kind: 'unknown_time_zone' });
  });
});
