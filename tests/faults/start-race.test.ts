// Two server processes started at once on one empty PostgreSQL database: both come up, and each
// migration is applied exactly once (the advisory lock in src/db/migrate.ts).
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultMigrationsDir } from '../../src/db/migrate.js';
import { bearer, newUser } from '../helpers/app.js';
import { createEmptyDatabase, dbKind, type TestDatabase } from '../helpers/db.js';
import { cleanupsAfterAll, logLines, startServer, type ServerProcess } from './process.js';

const cleanups = cleanupsAfterAll();

// PostgreSQL only: an embedded data folder takes one process (tests/server.test.ts shows the refusal).
describe(`processes starting at once (${dbKind === 'postgres' ? 'postgres' : 'skipped: a PostgreSQL-mode test'})`, () => {
  it.skipIf(dbKind !== 'postgres')('apply each migration exactly once, and both serve', { timeout: 120_000 }, async () => {
    const t: TestDatabase = await createEmptyDatabase();
    cleanups.push(() => t.drop());
    const servers: ServerProcess[] = await Promise.all([0, 1, 2].map(() => startServer({ DATABASE_URL: t.url! })));
    cleanups.push(async () => {
      for (const s of servers) s.child.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.exited));
    });

    const versions = readdirSync(defaultMigrationsDir).filter((f) => /^\d+\.do\./.test(f)).length;
    const { rows } = await t.db.query<{ version: string; n: string }>(
      'SELECT version, count(*) AS n FROM schemaversion WHERE version > 0 GROUP BY version ORDER BY version',
    );
    expect(rows.map((r) => Number(r.n))).toEqual(Array(versions).fill(1));
    const migrated = servers.filter((s) => logLines(s).some((l) => l.msg === 'migrated'));
    expect(migrated).toHaveLength(1);

    const auth = await bearer(newUser());
    for (const s of servers) {
      const res = await fetch(`${s.base}/api/tasks`, {
        method: 'POST',
        headers: { Authorization: auth, 'Content-Type': 'application/json' },
        body: '{"title":"x"}',
      });
      expect(res.status).toBe(201);
    }
  });
});
