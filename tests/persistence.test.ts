// Data outlives the app: a new app (and a new database handle) over the same storage sees it all.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { afterAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/db/migrate.js';
import { createPGliteDatabase } from '../src/db/pglite.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';
import { bearer, buildApp, newUser } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Opens the same storage twice in a row, as a restarted server would. */
async function storage(): Promise<() => Promise<Database>> {
  if (dbKind === 'postgres') {
    const t: TestDatabase = await createTestDatabase();
    await t.db.close();
    cleanups.push(() => t.drop().catch(() => {}));
    return async () => createPostgresDatabase({ connectionString: t.url!, poolMax: 2, statementTimeoutMs: 5000, connectTimeoutMs: 5000 });
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'todo-data-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return () => createPGliteDatabase({ dataDir: dir });
}

describe(`restart (${dbKind})`, () => {
  it('keeps every task, exactly as acknowledged', async () => {
    const open = await storage();
    const user = newUser();
    const auth = await bearer(user);

    const first = await open();
    await migrate(first);
    const app1 = buildApp(first).app;
    const created = [];
    for (const title of ['one', 'two', 'three']) {
      created.push((await request(app1).post('/api/tasks').set('Authorization', auth).send({ title })).body);
    }
    const patched = (await request(app1).patch(`/api/tasks/${created[1].id}/complete`).set('Authorization', auth)).body;
    await request(app1).delete(`/api/tasks/${created[2].id}`).set('Authorization', auth);
    await first.close();

    const second = await open();
    try {
      expect(await migrate(second)).toEqual([]); // already at the latest version
      const app2 = buildApp(second).app;
      const listed = await request(app2).get('/api/tasks?sort=created_at&order=asc').set('Authorization', auth);
      expect(listed.body).toEqual([created[0], patched]);
    } finally {
      await second.close();
    }
  });
});
