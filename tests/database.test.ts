// The Database interface the app relies on, on whichever database the suite runs against: the
// embedded one (PGlite on its own thread) or PostgreSQL.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { isDatabaseUnavailable, isRejectedValue } from '../src/db/errors.js';
import { migrate } from '../src/db/migrate.js';
import { createPGliteDatabase } from '../src/db/pglite.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';
import { getTask, listTasks } from '../src/tasks/queries.js';
import { logSink } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

const count = async (userId: string) =>
  Number((await database.db.query<{ n: string }>('SELECT count(*) AS n FROM tasks WHERE user_id = $1', [userId])).rows[0]!.n);

describe(`database (${dbKind})`, () => {
  it('returns rows with their types, and counts the rows a write touched', async () => {
    const { db } = database;
    const inserted = await db.query<{ id: string | number; tags: string[]; created_at: Date; completed: boolean }>(
      "INSERT INTO tasks (user_id, title, tags) VALUES ('db-types', 'a', $1), ('db-types', 'b', '{}') RETURNING id, tags, created_at, completed",
      [['x', 'y']],
    );
    expect(inserted.rowCount).toBe(2);
    expect(inserted.rows[0]!.tags).toEqual(['x', 'y']);
    expect(inserted.rows[0]!.created_at).toBeInstanceOf(Date);
    expect(inserted.rows[0]!.completed).toBe(false);
    expect((await db.query("UPDATE tasks SET completed = true WHERE user_id = 'db-types'")).rowCount).toBe(2);
  });

  it('commits a transaction whose work resolves, and rolls back one that throws', async () => {
    const { db } = database;
    const value = await db.transaction(async (tx) => {
      await tx.query("INSERT INTO tasks (user_id, title) VALUES ('db-commit', 'kept')");
      return 42;
    });
    expect(value).toBe(42);
    expect(await count('db-commit')).toBe(1);

    const failure = new Error('changed my mind');
    await expect(
      db.transaction(async (tx) => {
        await tx.query("INSERT INTO tasks (user_id, title) VALUES ('db-rollback', 'gone')");
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await count('db-rollback')).toBe(0);
  });

  it('keeps the SQLSTATE of a refused value, so the HTTP layer can tell bad input from a fault', async () => {
    const err = await database.db.query("INSERT INTO tasks (user_id, title) VALUES ('db-check', '   ')").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as { code?: string }).code).toBe('23514');
    expect(isRejectedValue(err)).toBe(true);
    // Inside a transaction too, and the transaction is rolled back.
    const inTx = await database.db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO tasks (user_id, title) VALUES ('db-check', 'ok')");
        await tx.query("INSERT INTO tasks (user_id, title) VALUES ('db-check', '')");
      })
      .catch((e: unknown) => e);
    expect((inTx as { code?: string }).code).toBe('23514');
    expect(await count('db-check')).toBe(0);
  });

  it('runs transactions one after another when they are started together', async () => {
    const { db } = database;
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: string }>("SELECT count(*) AS n FROM tasks WHERE user_id = 'db-serial'");
          await tx.query("INSERT INTO tasks (user_id, title) VALUES ('db-serial', $1)", [`${i} saw ${rows[0]!.n}`]);
        }),
      ),
    );
    expect(await count('db-serial')).toBe(10);
  });

  it('never runs a statement inside an open transaction that is not its own', async () => {
    const { db } = database;
    let inserted!: () => void;
    const didInsert = new Promise<void>((resolve) => (inserted = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const open = db
      .transaction(async (tx) => {
        await tx.query("INSERT INTO tasks (user_id, title) VALUES ('db-unseen', 'never committed')");
        inserted();
        await held;
        throw new Error('rolled back');
      })
      .catch(() => {});
    await didInsert;
    // Sent while the transaction holds its uncommitted row: on PGlite's one connection it must wait
    // for the transaction to end, on PostgreSQL it runs on another connection; it sees no row.
    const seen = count('db-unseen');
    release();
    await open;
    expect(await seen).toBe(0);
  });

  it('runs a statement again after it failed, and one that cannot be parsed fails the same way each time', async () => {
    const { db } = database;
    const divide = 'SELECT 10 / $1::integer AS q';
    await expect(db.query(divide, [0])).rejects.toMatchObject({ code: '22012' });
    expect((await db.query(divide, [5])).rows).toEqual([{ q: 2 }]);
    for (let i = 0; i < 2; i++) await expect(db.query('SELEC $1', [1])).rejects.toMatchObject({ code: '42601' });
    expect((await db.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('sends every kind of value the app binds, the same on each run of a statement', async () => {
    const text = 'SELECT $1::text IS NULL AS absent, $2::boolean AS flag, $3::integer + 1 AS next, $4::text[] AS tags, $5::text AS title';
    const values = [null, true, 41, ['x', 'y, "z"', 'NULL', ''], "it's \\ done"];
    for (let i = 0; i < 2; i++) {
      expect((await database.db.query(text, values)).rows).toEqual([
        { absent: true, flag: true, next: 42, tags: ['x', 'y, "z"', 'NULL', ''], title: "it's \\ done" },
      ]);
    }
  });
});

/**
 * Runs a page of tasks and a get eight times each, then reads the database's own count of generic
 * and custom plans for the statements it keeps (pg_prepared_statements), picked by their text.
 */
async function plansAfterEightRuns(db: Database) {
  for (let i = 0; i < 8; i++) {
    await listTasks(db, 'planned', { status: 'all', sort: 'created_at', order: 'desc', limit: 10 });
    await getTask(db, 'planned', 1);
  }
  const { rows } = await db.query<{ statement: string; generic_plans: string; custom_plans: string }>(
    'SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements',
  );
  return (test: (s: string) => boolean) =>
    rows.filter((r) => test(r.statement)).map((r) => ({ generic: Number(r.generic_plans), custom: Number(r.custom_plans) }));
}

/** One PostgreSQL connection with named statements, so pg_prepared_statements shows all it prepared. */
async function onOneConnection<T>(fn: (db: Database) => Promise<T>, logger?: Logger): Promise<T> {
  const one = createPostgresDatabase({
    connectionString: database.url!,
    poolMax: 1,
    statementTimeoutMs: 5000,
    connectTimeoutMs: 5000,
    preparedStatements: true,
    ...(logger ? { logger } : {}),
  });
  try {
    return await fn(one);
  } finally {
    await one.close();
  }
}

describe.runIf(dbKind === 'postgres')('prepared statements (PostgreSQL)', () => {
  it('name a statement by its text alone: processes that prepare in another order agree on every name', async () => {
    // Through a pooler that shares one server connection between processes, a name one process
    // prepared must never be another statement in the next.
    const texts = [
      'SELECT $1::integer + 1 AS n',
      "SELECT $1::text || '!' AS s",
      'SELECT count(*)::integer AS n FROM tasks WHERE user_id = $1',
    ];
    const prepared = (order: string[]) =>
      onOneConnection(async (one) => {
        for (const text of order) await one.query(text, [text.includes('integer +') ? 1 : 'u']);
        const { rows } = await one.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements');
        return new Map(rows.filter((r) => texts.includes(r.statement)).map((r) => [r.statement, r.name]));
      });
    const first = await prepared(texts);
    const second = await prepared([...texts].reverse());
    expect(first.size).toBe(texts.length);
    expect(new Set(first.values()).size).toBe(texts.length);
    expect(second).toEqual(first);
  });

  it('keep the settings in front of each statement parsed on the connection, named by their text like it', async () => {
    const rows = await onOneConnection(async (one) => {
      for (let i = 0; i < 3; i++) await one.query('SELECT $1::integer AS n', [i]);
      return (await one.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements')).rows;
    });
    const settings = rows.filter((r) => r.statement.includes("set_config('statement_timeout'"));
    expect(settings).toHaveLength(1);
    expect(settings[0]!.name).toMatch(/^todo_[0-9a-f]{32}$/);
  });

  it('discard a connection whose round trip failed before its statement was parsed, and keep naming statements', async () => {
    // The prelude fails at run time, so the server skips the statement's Parse that followed it,
    // which node-postgres has already recorded as done. On that connection the statement's next run
    // would find no such statement and pass for a pooler that cannot keep them.
    const { lines, logger } = logSink();
    const statement = 'SELECT $1::integer * 2 AS n';
    const names = await onOneConnection(async (one) => {
      await expect(one.queryAfter({ text: 'SELECT 1 / $1::integer', values: ['0'] }, statement, [4])).rejects.toMatchObject({
        code: '22012',
      });
      expect((await one.query<{ n: number }>(statement, [4])).rows).toEqual([{ n: 8 }]);
      return (await one.query<{ statement: string }>('SELECT statement FROM pg_prepared_statements')).rows.map((r) => r.statement);
    }, logger);
    expect(names).toContain(statement);
    expect(lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50)).toEqual([]);
  });

  it('plan a page of tasks for its own user every time, and let the rest keep a generic plan', async () => {
    await onOneConnection(async (one) => {
      const plans = await plansAfterEightRuns(one);
      expect(plans((s) => s.includes('ORDER BY'))).toEqual([{ generic: 0, custom: 8 }]);
      const [get] = plans((s) => /FROM tasks WHERE user_id = \$1 AND id = \$2$/.test(s));
      expect(get!.generic).toBeGreaterThan(0);
    });
  });
});

describe.runIf(dbKind === 'pglite')('embedded database thread', () => {
  it('plans every run of a statement for its own parameters, a page of tasks too, though it keeps it parsed', async () => {
    const db = await createPGliteDatabase({ dataDir: undefined, template: inject('pgliteTemplate') });
    try {
      await migrate(db);
      const plans = await plansAfterEightRuns(db);
      expect(plans((s) => s.includes('ORDER BY'))).toEqual([{ generic: 0, custom: 8 }]);
      expect(plans((s) => /FROM tasks WHERE user_id = \$1 AND id = \$2$/.test(s))).toEqual([{ generic: 0, custom: 8 }]);
    } finally {
      await db.close();
    }
  });

  it('does not hold up the HTTP thread while a statement runs', async () => {
    const db = await createPGliteDatabase({ dataDir: undefined, template: inject('pgliteTemplate') });
    try {
      // Timers on this thread keep firing while the database thread is busy: were the statement
      // run on this thread, not one tick could come before it ended.
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      const ticksWhileBusy = await db.query('SELECT pg_sleep(1.5)').then(() => ticks);
      clearInterval(timer);
      expect(ticksWhileBusy).toBeGreaterThanOrEqual(10);
    } finally {
      await db.close();
    }
  });

  it('fails every call once closed, as unavailable, instead of hanging', async () => {
    const db = await createPGliteDatabase({ dataDir: undefined, template: inject('pgliteTemplate') });
    await db.close();
    const err = await db.query('SELECT 1').catch((e: unknown) => e);
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it('ends a statement that runs past the timeout with 57014 and reopens the folder with the data intact', {
    timeout: 60_000,
  }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'todo-pglite-timeout-'));
    const restarts: string[] = [];
    const db = await createPGliteDatabase({ dataDir: dir, statementTimeoutMs: 300, onRestart: (r) => restarts.push(r) });
    try {
      await db.query('CREATE TABLE kept (x int)');
      await db.query('INSERT INTO kept VALUES (1), (2)');
      // PGlite itself ignores statement_timeout: this would run for a minute.
      const [stuck, behind] = await Promise.allSettled([db.query('SELECT pg_sleep(60)'), db.query('SELECT 1')]);
      expect(stuck).toMatchObject({ status: 'rejected', reason: { code: '57014' } });
      expect(behind.status).toBe('rejected');
      expect(isDatabaseUnavailable((stuck as PromiseRejectedResult).reason)).toBe(true);
      expect(isDatabaseUnavailable((behind as PromiseRejectedResult).reason)).toBe(true);
      expect(restarts).toHaveLength(1);
      expect((await db.query('SELECT x FROM kept ORDER BY x')).rows).toEqual([{ x: 1 }, { x: 2 }]);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
