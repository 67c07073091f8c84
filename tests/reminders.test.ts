// Reminders (contract 1.5): scheduled from the task's own due date, completion and reminders by the
// database, fired by the database's clock exactly once however many instances run the worker, and
// delivered as events of the feed (`reminders=true`) and of the event stream (`event: reminder`).
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLiveChanges, type LiveChanges } from '../src/changes/live.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import type { Database } from '../src/db/types.js';
import { type ReminderWorker, startReminderWorker } from '../src/reminders/worker.js';
import { createTaskService } from '../src/tasks/service.js';
import { bearer, buildApp, newUser } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';
import { openSse } from './helpers/sse.js';

let ctx: { app: ReturnType<typeof buildApp>['app']; database: TestDatabase; live: LiveChanges; close(): Promise<void> };
/** A second connection pool onto the same database, as another instance has (PostgreSQL only). */
let other: Database | undefined;
/** What the app's writes that schedule reminders wake (serve.ts: its reminder worker). */
let poke = () => {};
beforeAll(async () => {
  const database = await createTestDatabase();
  // The app's live changes, so the workers below wake its event streams as serve.ts wires them.
  const live = createLiveChanges(database.db, { listenUrl: undefined });
  const { app } = buildApp(database.db, { live, remindersScheduled: () => poke() });
  ctx = { app, database, live, close: () => database.drop() };
  if (ctx.database.url) {
    other = createPostgresDatabase({ connectionString: ctx.database.url, poolMax: 4, statementTimeoutMs: 10_000, connectTimeoutMs: 5_000 });
  }
});
afterAll(async () => {
  await other?.close();
  await ctx.close();
});

const workers: ReminderWorker[] = [];
function instance(db: Database): ReminderWorker {
  const worker = startReminderWorker(createTaskService(db, { tasksPerUser: 5000, changed: ctx.live.published }), { pollSeconds: 1 });
  workers.push(worker);
  return worker;
}
const stopWorkers = () => {
  for (const w of workers.splice(0)) w.stop();
};

interface Reminder {
  id: string;
  task_id: number;
  title: string;
  due_at: string | null;
  remind_at: string;
  fired_at: string;
  reminder: { before_minutes?: number; at?: string };
}

async function create(auth: string, body: Record<string, unknown>): Promise<{ id: number; due_at: string | null }> {
  const res = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send(body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Every reminder event in the user's feed after `from`. */
async function fired(auth: string, from: string): Promise<Reminder[]> {
  const out: Reminder[] = [];
  let cursor = from;
  for (;;) {
    const res = await request(ctx.app).get(`/api/tasks/changes?reminders=true&limit=1000&cursor=${cursor}`).set('Authorization', auth);
    expect(res.status).toBe(200);
    for (const c of res.body.changes) if (c.op === 'reminder') out.push(c.reminder);
    cursor = res.body.cursor;
    if (!res.body.has_more) return out;
  }
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const soon = (ms: number) => new Date(Date.now() + ms).toISOString();
// Reminders are set well ahead and then made due here, "the time has come", so no test depends on
// how fast the machine runs its requests (one set a second ahead would not fire if its create took
// longer). Scheduling itself is checked row by row in its own test.
const arrive = (userId: string, ago = '0 seconds') =>
  ctx.database.db.query(`UPDATE reminder_schedule SET fire_at = now() - $2::interval WHERE user_id = $1 AND reminder_key LIKE 'a%'`, [
    userId,
    ago,
  ]);
const schedule = async (taskId: number) =>
  (
    await ctx.database.db.query<{ reminder_key: string; fire_at: string }>(
      `SELECT reminder_key, to_char(fire_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS fire_at
         FROM reminder_schedule WHERE task_id = $1 ORDER BY reminder_key`,
      [taskId],
    )
  ).rows;

// An absolute reminder's key: its instant in microseconds.
const AT_KEY = `a${Date.parse('2027-03-01T07:00:00Z') * 1000}`;

/** Where the user's feed stands now: reminders that fire later are read from here (a full sync lists none that fired before it). */
async function feedNow(auth: string): Promise<string> {
  let res = await request(ctx.app).get('/api/tasks/changes?limit=1000').set('Authorization', auth);
  while (res.body.has_more)
    res = await request(ctx.app).get(`/api/tasks/changes?limit=1000&cursor=${res.body.cursor}`).set('Authorization', auth);
  return res.body.cursor;
}

describe(`reminders (${dbKind})`, () => {
  it('three workers on two connection pools fire each of 20 reminders exactly once, as feed events with ids to deduplicate on', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const from = await feedNow(auth);
    const at = soon(30 * 60_000);
    const tasks = [];
    for (let i = 0; i < 20; i++) {
      tasks.push(
        await create(auth, {
          title: `t${i}`,
          due_at: soon(3_600_000),
          reminders: [{ at }, { before_minutes: 120 }, { before_minutes: 59 }],
        }),
      );
    }
    // 59 minutes before a due time an hour away: 1 minute from now, not yet; 120 before: past, never.
    await arrive(user);
    instance(ctx.database.db);
    instance(other ?? ctx.database.db);
    instance(other ?? ctx.database.db);
    const events = await until('20 reminders', async () => {
      const got = await fired(auth, from);
      return got.length >= 20 ? got : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    const again = await fired(auth, from);
    stopWorkers();
    expect(again).toHaveLength(20);
    expect(new Set(again.map((e) => e.id)).size).toBe(20);
    expect(new Set(events.map((e) => e.task_id))).toEqual(new Set(tasks.map((t) => t.id)));
    for (const e of again) {
      expect(e.reminder).toEqual({ at: at.replace('Z', '000Z') });
      // Per task and instant: a reminder at an instant fires once, whatever the due date.
      expect(e.id).toBe(`rem_${e.task_id}_a${Date.parse(at) * 1000}`);
      expect(Date.parse(e.fired_at)).toBeGreaterThanOrEqual(Date.parse(e.remind_at));
      expect(e.title).toMatch(/^t\d+$/);
    }
    // What is still to come: the relative reminder one minute away, nothing for the one already past.
    expect(await schedule(tasks[0]!.id)).toEqual([{ reminder_key: 'b59', fire_at: expect.any(String) }]);
  });

  it("an instance's own write that schedules a reminder wakes its worker, however long it would otherwise sleep", async () => {
    const auth = await bearer(newUser());
    const from = await feedNow(auth);
    // Started with nothing to fire: it would look again only after 600 s.
    const worker = startReminderWorker(createTaskService(ctx.database.db, { tasksPerUser: 5000 }), { pollSeconds: 600 });
    poke = worker.poke;
    try {
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      // Real time here, since the wake-up is the point: due 2.5 s after it is sent.
      await create(auth, { title: 'soon', reminders: [{ at: soon(2500) }] });
      const [event] = await until('the reminder', async () => {
        const got = await fired(auth, from);
        return got.length ? got : undefined;
      });
      expect(event!.title).toBe('soon');
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      worker.stop();
      poke = () => {};
    }
  });

  it('a reminder that fell due while no server ran is delivered once when one starts, later than it was due', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const from = await feedNow(auth);
    const task = await create(auth, { title: 'while down', reminders: [{ at: soon(30 * 60_000) }] });
    // Due 5 s ago, while no worker ran.
    await arrive(user, '5 seconds');
    expect(await fired(auth, from)).toEqual([]);
    instance(ctx.database.db);
    const [event] = await until('the late reminder', async () => {
      const got = await fired(auth, from);
      return got.length ? got : undefined;
    });
    stopWorkers();
    expect(event).toMatchObject({ task_id: task.id, due_at: null });
    expect(Date.parse(event!.fired_at) - Date.parse(event!.remind_at)).toBeGreaterThanOrEqual(5000);
    expect(await fired(auth, from)).toHaveLength(1);
  });

  it('a write just after a reminder fell due neither drops it nor, once fired, fires it again', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const from = await feedNow(auth);
    const at = soon(30 * 60_000);
    const task = await create(auth, { title: 'race', due_at: soon(3_600_000), reminders: [{ at }] });
    // Due, and not yet fired, when the task is written: it stays, and fires once.
    await arrive(user);
    await request(ctx.app)
      .patch(`/api/tasks/${task.id}`)
      .set('Authorization', auth)
      .send({ due_at: soon(7_200_000), reminders: [{ at }, { at: soon(60 * 60_000) }] });
    instance(ctx.database.db);
    await until('the reminder', async () => ((await fired(auth, from)).length ? true : undefined));
    // Fired, then the task written again (the instant is still ahead by the real clock, so it is
    // scheduled once more) and that copy made due: its id is the same, so nothing new is delivered.
    await request(ctx.app)
      .patch(`/api/tasks/${task.id}`)
      .set('Authorization', auth)
      .send({ due_at: soon(10_800_000) });
    await ctx.database.db.query(`UPDATE reminder_schedule SET fire_at = now() WHERE task_id = $1 AND reminder_key = $2`, [
      task.id,
      `a${Date.parse(at) * 1000}`,
    ]);
    await until('the copy fired', async () => ((await schedule(task.id)).length === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    stopWorkers();
    expect((await fired(auth, from)).map((e) => e.id)).toEqual([`rem_${task.id}_a${Date.parse(at) * 1000}`]);
  });

  it('a relative reminder follows the due date when it changes and when the task recurs; completion and deletion unschedule', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Stand-up',
      due_at: '2027-03-01T08:30:00Z',
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'Europe/Berlin' },
      reminders: [{ before_minutes: 15 }, { before_minutes: 15 }, { at: '2027-03-01T07:00:00Z' }],
    });
    expect((await request(ctx.app).get(`/api/tasks/${task.id}`).set('Authorization', auth)).body.reminders).toEqual([
      { before_minutes: 15 },
      { at: '2027-03-01T07:00:00.000000Z' },
    ]);
    expect(await schedule(task.id)).toEqual([
      { reminder_key: AT_KEY, fire_at: '2027-03-01T07:00:00Z' },
      { reminder_key: 'b15', fire_at: '2027-03-01T08:15:00Z' },
    ]);
    await request(ctx.app).patch(`/api/tasks/${task.id}`).set('Authorization', auth).send({ due_at: '2027-03-02T08:30:00Z' });
    expect((await schedule(task.id)).find((r) => r.reminder_key === 'b15')?.fire_at).toBe('2027-03-02T08:15:00Z');
    // Completed: it moves to the next day, and so does its reminder (the absolute one stays where it was).
    await request(ctx.app).patch(`/api/tasks/${task.id}/complete`).set('Authorization', auth);
    expect(await schedule(task.id)).toEqual([
      { reminder_key: AT_KEY, fire_at: '2027-03-01T07:00:00Z' },
      { reminder_key: 'b15', fire_at: '2027-03-03T08:15:00Z' },
    ]);
    await request(ctx.app).patch(`/api/tasks/${task.id}`).set('Authorization', auth).send({ recurrence: null, completed: true });
    expect(await schedule(task.id)).toEqual([]);
    await request(ctx.app).patch(`/api/tasks/${task.id}`).set('Authorization', auth).send({ completed: false });
    expect(await schedule(task.id)).toHaveLength(2);
    await request(ctx.app).delete(`/api/tasks/${task.id}`).set('Authorization', auth);
    expect(await schedule(task.id)).toEqual([]);
  });

  it('refuses a reminder that is neither or both kinds, or at an instant out of range; keeps one before a due time the task lacks', async () => {
    const auth = await bearer(newUser());
    const res = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({
        title: 'x',
        reminders: [{}, { before_minutes: 5, at: soon(60_000) }, { at: '2027-06-30T23:59:60Z' }, { at: '9999-12-31T23:59:59-15:00' }],
      });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([
      { path: '/body/reminders/0', message: 'must give before_minutes (minutes before the due time) or at (an instant)' },
      { path: '/body/reminders/1', message: 'must give before_minutes or at, not both' },
      {
        path: '/body/reminders/2/at',
        message: 'must not be a leap second (:60), which this API does not keep; use :59 or the next minute',
      },
      { path: '/body/reminders/3/at', message: 'must be an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z (in UTC)' },
    ]);
    const ok = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title: 'x', reminders: [{ at: '2027-03-01T08:00:00.1234567+01:00' }] });
    expect(ok.body.reminders).toEqual([{ at: '2027-03-01T07:00:00.123457Z' }]); // rounded, as the database rounds
    // Before a due time the task does not have: kept, and scheduled once it has one.
    const noDue = await create(auth, { title: 'x', reminders: [{ before_minutes: 5 }] });
    expect(await schedule(noDue.id)).toEqual([]);
    await request(ctx.app).patch(`/api/tasks/${noDue.id}`).set('Authorization', auth).send({ due_at: '2027-03-01T08:00:00Z' });
    expect(await schedule(noDue.id)).toEqual([{ reminder_key: 'b5', fire_at: '2027-03-01T07:55:00Z' }]);
    const tooMany = await request(ctx.app)
      .post('/api/tasks')
      .set('Authorization', auth)
      .send({ title: 'x', due_at: soon(3_600_000), reminders: Array.from({ length: 11 }, (_, i) => ({ before_minutes: i })) });
    expect(tooMany.status).toBe(422);
  });

  it('an event stream gets each reminder as `event: reminder`, and a resumed one replays it', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const server = ctx.app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/events`;
    const named = (name: string) => (e: { event: string }) => e.event === name;
    const sse = await openSse(url, { Authorization: auth });
    try {
      await sse.next(named('ready'));
      const task = await create(auth, { title: 'ping', reminders: [{ at: soon(30 * 60_000) }] });
      await arrive(user);
      instance(ctx.database.db);
      const change = await sse.next(named('change'));
      const reminder = await sse.next(named('reminder'));
      stopWorkers();
      expect(JSON.parse(reminder.data)).toMatchObject({ task_id: task.id, title: 'ping' });
      const resumed = await openSse(url, { Authorization: auth, 'Last-Event-ID': change.id! });
      try {
        await resumed.next(named('ready'));
        expect(JSON.parse((await resumed.next(named('reminder'))).data).id).toBe(JSON.parse(reminder.data).id);
      } finally {
        resumed.close();
      }
    } finally {
      sse.close();
      server.close();
    }
  });
});
