// Reminders across kill -9: many reminders fall due at once while instances of the shipped server
// fire them; one instance is killed while it fires (on PostgreSQL, beside a second one that goes
// on; on the embedded database, the only one), and a server started afterwards on the same storage
// finishes the work. Every reminder is delivered exactly once: none lost with the killed
// transaction, none fired twice.
import { describe, expect, it } from 'vitest';
import { bearer, newUser } from '../helpers/app.js';
import { dbKind } from '../helpers/db.js';
import { cleanupsAfterAll, startServer, storageEnv, type ServerProcess } from './process.js';

const cleanups = cleanupsAfterAll();
const TASKS = 600;
const PER_TASK = 3;

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
  it('a server killed while it fires loses none and a second one fires none twice', { timeout: 120_000 }, async () => {
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

    const auth = await bearer(newUser(), { ttlSec: 600 });
    const from = (await api(first.base, auth, '/api/tasks/changes')).body.cursor as string;
    // All fall due within a few milliseconds of each other, a while after the last is created.
    const due = Date.now() + 8000;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < TASKS) {
          const i = next++;
          const reminders = Array.from({ length: PER_TASK }, (_, k) => ({ at: new Date(due + k).toISOString() }));
          const res = await api(first.base, auth, '/api/tasks', { method: 'POST', body: JSON.stringify({ title: `r${i}`, reminders }) });
          expect(res.status).toBe(201);
        }
      }),
    );
    expect(Date.now()).toBeLessThan(due);

    // Killed while the reminders are being fired: the first has begun, most are still to come.
    const reader = second ?? first;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
    for (;;) {
      const fired = (await reminderIds(reader.base, auth, from)).length;
      if (fired > 0 || Date.now() > due + 10_000) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    first.child.kill('SIGKILL');
    await first.exited;
    const atKill = second ? (await reminderIds(second.base, auth, from)).length : undefined;

    const after = await startServer(env);
    servers.push(after);
    let ids: string[] = [];
    const end = Date.now() + 30_000;
    while (Date.now() < end) {
      ids = await reminderIds(after.base, auth, from);
      if (ids.length >= TASKS * PER_TASK) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    // A little longer: anything fired twice would show now.
    await new Promise((r) => setTimeout(r, 2000));
    ids = await reminderIds(after.base, auth, from);
    expect(ids).toHaveLength(TASKS * PER_TASK);
    expect(new Set(ids).size).toBe(TASKS * PER_TASK);
    if (atKill !== undefined) expect(atKill).toBeLessThanOrEqual(TASKS * PER_TASK);
  });
});
