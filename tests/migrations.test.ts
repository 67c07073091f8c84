// Migrations on a real database: up/down/up, checksums, a failing migration rolled back whole,
// and two runners at once applying each migration exactly once.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultMigrationsDir, migrate, migrateDown, migrationStatus } from '../src/db/migrate.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { createEmptyDatabase, dbKind, type TestDatabase } from './helpers/db.js';

let t: TestDatabase;
let dir: string;

beforeEach(async () => {
  t = await createEmptyDatabase();
  dir = mkdtempSync(path.join(tmpdir(), 'todo-migrations-'));
  cpSync(defaultMigrationsDir, dir, { recursive: true });
});
afterEach(async () => {
  await t.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function columns(): Promise<string[]> {
  const { rows } = await t.db.query<{ column_name: string }>(
    "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'tasks' ORDER BY 1",
  );
  return rows.map((r) => r.column_name);
}

async function tables(): Promise<string[]> {
  const { rows } = await t.db.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  it('go up, down and up again', async () => {
    expect(await migrationStatus(t.db, { dir })).toEqual({ current: 0, latest: 7, pending: [1, 2, 3, 4, 5, 6, 7] });
    expect((await migrate(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual([
      '1.do',
      '2.do',
      '3.do',
      '4.do',
      '5.do',
      '6.do',
      '7.do',
    ]);
    expect(await tables()).toEqual([
      'change_horizons',
      'event_tickets',
      'idempotency_keys',
      'reminder_schedule',
      'schemaversion',
      'task_counts',
      'task_events',
      'task_occurrences',
      'tasks',
      'webhook_attempts',
      'webhook_endpoints',
      'webhook_messages',
    ]);
    expect(await migrate(t.db, { dir })).toEqual([]); // idempotent

    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['7.undo']);
    expect(await tables()).toEqual([
      'change_horizons',
      'event_tickets',
      'idempotency_keys',
      'reminder_schedule',
      'schemaversion',
      'task_counts',
      'task_events',
      'task_occurrences',
      'tasks',
    ]);
    // The tasks' own triggers are back to what 1.5 had: a write works without the webhook tables.
    await t.db.query("INSERT INTO tasks (user_id, title) VALUES ('u', 'after 7.undo')");
    await t.db.query("DELETE FROM tasks WHERE user_id = 'u'");

    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['6.undo']);
    expect(await tables()).toEqual([
      'change_horizons',
      'event_tickets',
      'idempotency_keys',
      'schemaversion',
      'task_counts',
      'task_tombstones',
      'tasks',
    ]);
    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['5.undo']);
    expect(await tables()).toEqual(['idempotency_keys', 'schemaversion', 'task_counts', 'tasks']);

    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['4.undo']);
    expect(await tables()).toEqual(['idempotency_keys', 'schemaversion', 'task_counts', 'tasks']);
    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['3.undo']);
    expect(await tables()).toEqual(['idempotency_keys', 'schemaversion', 'tasks']);
    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['2.undo']);
    expect(await tables()).toEqual(['schemaversion', 'tasks']);
    expect(await columns()).toEqual(['completed', 'created_at', 'description', 'id', 'title', 'updated_at', 'user_id']);
    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['1.undo']);
    expect(await tables()).toEqual(['schemaversion']);
    expect((await migrationStatus(t.db, { dir })).current).toBe(0);

    await migrate(t.db, { dir });
    expect(await tables()).toEqual([
      'change_horizons',
      'event_tickets',
      'idempotency_keys',
      'reminder_schedule',
      'schemaversion',
      'task_counts',
      'task_events',
      'task_occurrences',
      'tasks',
      'webhook_attempts',
      'webhook_endpoints',
      'webhook_messages',
    ]);
    await t.db.query("INSERT INTO tasks (user_id, title) VALUES ('u', 'works')");
  });

  it('002 keeps existing tasks whole, down and up again, and orders them by creation', async () => {
    await migrate(t.db, { dir, target: 1 });
    await t.db.query(
      "INSERT INTO tasks (user_id, title, description, completed) VALUES ('u', 'first', 'd1', true), ('u', 'second', NULL, false), ('v', 'other', NULL, false)",
    );
    await migrate(t.db, { dir });
    // 003 counts the tasks that were there, for the per-user quota.
    expect((await t.db.query('SELECT user_id, tasks FROM task_counts ORDER BY user_id')).rows).toEqual([
      { user_id: 'u', tasks: 2 },
      { user_id: 'v', tasks: 1 },
    ]);
    const read = () =>
      t.db.query<Record<string, unknown>>('SELECT title, description, completed, priority, tags, position, due_at FROM tasks ORDER BY id');
    expect((await read()).rows).toEqual([
      { title: 'first', description: 'd1', completed: true, priority: 0, tags: [], position: 1024, due_at: null },
      { title: 'second', description: null, completed: false, priority: 0, tags: [], position: 2048, due_at: null },
      { title: 'other', description: null, completed: false, priority: 0, tags: [], position: 1024, due_at: null },
    ]);
    await t.db.query("UPDATE tasks SET tags = '{home}', priority = 3 WHERE title = 'second'");
    // 004 spreads a count over rows; going back folds them into one per user.
    await t.db.query("INSERT INTO task_counts (user_id, shard, tasks) VALUES ('u', 7, 3), ('w', 2, 0)");
    await migrateDown(t.db, { dir, target: 3 });
    expect((await t.db.query('SELECT * FROM task_counts ORDER BY user_id')).rows).toEqual([
      { user_id: 'u', tasks: 5 },
      { user_id: 'v', tasks: 1 },
    ]);
    const { rows } = await t.db.query('SELECT title, description, completed FROM tasks ORDER BY id');
    expect(rows).toEqual([
      { title: 'first', description: 'd1', completed: true },
      { title: 'second', description: null, completed: false },
      { title: 'other', description: null, completed: false },
    ]);
    await migrate(t.db, { dir });
    expect((await read()).rows.map((r) => r.position)).toEqual([1024, 2048, 1024]);
  });

  it('refuse to run when an applied migration file has changed', async () => {
    await migrate(t.db, { dir });
    const file = path.join(dir, '001.do.create-tasks.sql');
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n-- edited after being applied\n`);
    await expect(migrate(t.db, { dir })).rejects.toThrow(/checksum/i);
  });

  it('roll a failing migration back whole, leaving the previous version', async () => {
    await migrate(t.db, { dir });
    writeFileSync(
      path.join(dir, '008.do.half-broken.sql'),
      'CREATE TABLE half_done (id int);\nALTER TABLE tasks ADD COLUMN extra text;\nSELECT no_such_function();\n',
    );
    writeFileSync(path.join(dir, '008.undo.half-broken.sql'), 'DROP TABLE half_done;\n');
    await expect(migrate(t.db, { dir })).rejects.toThrow(/no_such_function/);
    expect((await migrationStatus(t.db, { dir })).current).toBe(7);
    expect(await tables()).toEqual([
      'change_horizons',
      'event_tickets',
      'idempotency_keys',
      'reminder_schedule',
      'schemaversion',
      'task_counts',
      'task_events',
      'task_occurrences',
      'tasks',
      'webhook_attempts',
      'webhook_endpoints',
      'webhook_messages',
    ]);
    const { rows } = await t.db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'extra'");
    expect(rows).toHaveLength(0);
    // The database is usable afterwards: no transaction left open.
    await t.db.query("INSERT INTO tasks (user_id, title) VALUES ('u', 'still fine')");
  });

  it.skipIf(dbKind !== 'postgres')('apply exactly once when two instances migrate at the same time (PostgreSQL)', async () => {
    const second = createPostgresDatabase({ connectionString: t.url!, poolMax: 2, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
    try {
      const [a, b] = await Promise.all([migrate(t.db, { dir }), migrate(second, { dir })]);
      expect([...a, ...b].map((m) => `${m.version}.${m.action}`)).toEqual(['1.do', '2.do', '3.do', '4.do', '5.do', '6.do', '7.do']);
      const { rows } = await t.db.query('SELECT version FROM schemaversion WHERE version > 0 ORDER BY version');
      expect(rows).toEqual([
        { version: '1' },
        { version: '2' },
        { version: '3' },
        { version: '4' },
        { version: '5' },
        { version: '6' },
        { version: '7' },
      ]);
    } finally {
      await second.close();
    }
  });
});
