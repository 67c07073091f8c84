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

async function tables(): Promise<string[]> {
  const { rows } = await t.db.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
  );
  return rows.map((r) => r.table_name);
}

describe('migrations', () => {
  it('go up, down and up again', async () => {
    expect(await migrationStatus(t.db, { dir })).toEqual({ current: 0, latest: 1, pending: [1] });
    expect((await migrate(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['1.do']);
    expect(await tables()).toEqual(['schemaversion', 'tasks']);
    expect(await migrate(t.db, { dir })).toEqual([]); // idempotent

    expect((await migrateDown(t.db, { dir })).map((m) => `${m.version}.${m.action}`)).toEqual(['1.undo']);
    expect(await tables()).toEqual(['schemaversion']);
    expect((await migrationStatus(t.db, { dir })).current).toBe(0);

    await migrate(t.db, { dir });
    expect(await tables()).toEqual(['schemaversion', 'tasks']);
    await t.db.query("INSERT INTO tasks (user_id, title) VALUES ('u', 'works')");
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
      path.join(dir, '002.do.half-broken.sql'),
      'CREATE TABLE half_done (id int);\nALTER TABLE tasks ADD COLUMN extra text;\nSELECT no_such_function();\n',
    );
    writeFileSync(path.join(dir, '002.undo.half-broken.sql'), 'DROP TABLE half_done;\n');
    await expect(migrate(t.db, { dir })).rejects.toThrow(/no_such_function/);
    expect((await migrationStatus(t.db, { dir })).current).toBe(1);
    expect(await tables()).toEqual(['schemaversion', 'tasks']);
    const { rows } = await t.db.query("SELECT 1 FROM information_schema.columns WHERE table_name = 'tasks' AND column_name = 'extra'");
    expect(rows).toHaveLength(0);
    // The database is usable afterwards: no transaction left open.
    await t.db.query("INSERT INTO tasks (user_id, title) VALUES ('u', 'still fine')");
  });

  it.skipIf(dbKind !== 'postgres')('apply exactly once when two instances migrate at the same time (PostgreSQL)', async () => {
    const second = createPostgresDatabase({ connectionString: t.url!, poolMax: 2, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
    try {
      const [a, b] = await Promise.all([migrate(t.db, { dir }), migrate(second, { dir })]);
      expect([...a, ...b].map((m) => `${m.version}.${m.action}`)).toEqual(['1.do']);
      const { rows } = await t.db.query('SELECT version FROM schemaversion WHERE version > 0');
      expect(rows).toEqual([{ version: '1' }]);
    } finally {
      await second.close();
    }
  });
});
