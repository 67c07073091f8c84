// Reminders across kill -9: 900 reminders fall due at once while instances of the shipped server
// fire them, and the servers are killed while they fire; a server started afterwards on the same
// storage finishes the work. Every reminder is delivered exactly once: none lost with a killed
// transaction, none fired twice.
//
// On PostgreSQL two instances fire, and the test holds one reminder's event id in a transaction of
// its own, so the statement that fires it waits inside its transaction: both instances are killed
// while one of them is in the middle of it. The embedded database has one instance, killed once
// the first reminders are in the feed and most are still to come.
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { bearer, newUser } from '../helpers/app.js';
import { dbKind } from '../helpers/db.js';
import { cleanupsAfterAll, startServer, storageEnv, type ServerProcess } from './process.js';

const cleanups = cleanupsAfterAll();
const TASKS = 900;

async function api(base: string, auth: string, path: string, init: RequestInit = {}) {
  const res = await fetch(`${base}${path}`, { ...init, headers: { Authorization: auth, 'Content-Type': 'application/json' } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Reminder ids in the user's feed after `from`, in order, duplicates kept. */
async function reminderIds(base: string, auth: string, from: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor = from;
  for (;;) {
    const { body } = await api(base, auth, `/api/tasks/changes?reminders=true&limit=1000&cursor=${cursor}`);
    for (const c of body.changes as { op: string; reminder?: { id: string } }[]) if (c.op === 'reminder') ids.push(c.reminder!.id);
    cursor = body.cursor as string;
    if (!body.has_more) return ids;
  }
}

describe(`reminders survive kill -9 (${dbKind})`, () => {
  it('servers killed while they fire lose no reminder, and none fires twice', { timeout: 120_000 }, async () => {
    const storage = await storageEnv(cleanups);
    const env = { ...storage, REMINDERS_POLL_SECONDS: '1' };
    const servers: ServerProcess[] = [];
    cleanups.push(async () => {
      for (const s of servers) s.child.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.exited));
    });
    const first = await startServer(env);
    servers.push(first);
    // On PostgreSQL a second instance fires beside the first and outlives it.
    const second = dbKind === 'postgres' ? await startServer(env) : undefined;
    if (second) servers.push(second);

    const user = newUser();
    const auth = await bearer(user, { ttlSec: 600 });
    const from = (await api(first.base, auth, '/api/tasks/changes')).body.cursor as string;
    // Each task reminds 3 minutes before it is due; created due in 2030, however long that takes.
    const ids: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < TASKS) {
          const i = next++;
          const body = { title: `r${i}`, due_at: '2030-01-01T00:00:00Z', reminders: [{ before_minutes: 3 }] };
          const res = await api(first.base, auth, '/api/tasks', { method: 'POST', body: JSON.stringify(body) });
          expect(res.status).toBe(201);
          ids[i] = res.body.id as number;
        }
      }),
    );
    // Then all made due at once, by a few batches: every reminder falls due at the same instant.
    const dueAt = new Date(Date.now() + 3 * 60_000 + 15_000).toISOString();
    for (let i = 0; i < TASKS; i += 100) {
      const res = await api(first.base, auth, '/api/tasks', {
        method: 'PATCH',
        body: JSON.stringify({ ids: ids.slice(i, i + 100), due_at: dueAt }),
      });
      expect(res.status).toBe(200);
    }
    const due = Date.parse(dueAt) - 3 * 60_000;

    if (second) {
      // The middle task's first reminder, held: whichever instance fires it waits mid-statement.
      const blocker = new pg.Client({ connectionString: storage.DATABASE_URL });
      await blocker.connect();
      cleanups.push(() => blocker.end());
      const held = `rem_${ids[TASKS / 2]}_${Date.parse(dueAt) * 1000}_b3`;
      await blocker.query('BEGIN');
      await blocker.query(`INSERT INTO task_events (user_id, task_id, kind, event_id) VALUES ($1, $2, 'reminder', $3)`, [
        user,
        ids[TASKS / 2],
        held,
      ]);
      const waiting = async () =>
        (
          await blocker.query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%reminder_schedule%' AND pid <> pg_backend_pid()`,
          )
        ).rows[0].n as number;
      // A liveness wait, not a speed check: generous, and on failure the servers' logs say why.
      const end = Date.now() + 60_000;
      while ((await waiting()) === 0) {
        expect(
          Date.now(),
          `no instance reached the held reminder:\n${first.output().slice(-3000)}\n${second.output().slice(-3000)}`,
        ).toBeLessThan(end);
        await new Promise((r) => setTimeout(r, 20));
      }
      first.child.kill('SIGKILL');
      second.child.kill('SIGKILL');
      await Promise.all([first.exited, second.exited]);
      // The held event never existed: the statement it stopped may now end, or may have ended with its client.
      await blocker.query('ROLLBACK');
    } else {
      // Killed while the reminders are being fired: the first are in the feed, most still to come.
      await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
      for (;;) {
        const fired = (await reminderIds(first.base, auth, from)).length;
        if (fired > 0 || Date.now() > due + 10_000) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      first.child.kill('SIGKILL');
      await first.exited;
    }

    const after = await startServer(env);
    servers.push(after);
    let delivered: string[] = [];
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      delivered = await reminderIds(after.base, auth, from);
      if (delivered.length >= TASKS) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // A little longer: anything fired twice would show now.
    await new Promise((r) => setTimeout(r, 2000));
    delivered = await reminderIds(after.base, auth, from);
    expect(delivered).toHaveLength(TASKS);
    expect(new Set(delivered).size).toBe(TASKS);
  });
});
