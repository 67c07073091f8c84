// Recurring tasks through HTTP (contract 1.5): completing an occurrence moves the task to the next
// one in one transaction, on the wall clock of its zone; a retried or raced completion moves it
// once; rules outside the subset are refused naming the part. Stored rows are checked too.
import request from 'supertest';
import { Temporal } from 'temporal-polyfill';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { dbKind } from './helpers/db.js';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await setupApp();
});
afterAll(() => ctx.close());

interface Task {
  id: number;
  title: string;
  completed: boolean;
  due_at: string | null;
  recurrence: { rule: string; time_zone: string; from: string; occurrence: number } | null;
  reminders: unknown[];
  updated_at: string;
}

async function create(auth: string, body: Record<string, unknown>): Promise<Task> {
  const res = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send(body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as Task;
}
const toggle = (auth: string, id: number, headers: Record<string, string> = {}) =>
  request(ctx.app).patch(`/api/tasks/${id}/complete`).set('Authorization', auth).set(headers);
const patch = (auth: string, id: number, body: object, headers: Record<string, string> = {}) =>
  request(ctx.app).patch(`/api/tasks/${id}`).set('Authorization', auth).set(headers).send(body);
const get = async (auth: string, id: number) => (await request(ctx.app).get(`/api/tasks/${id}`).set('Authorization', auth)).body as Task;
const local = (instant: string, zone: string) => Temporal.Instant.from(instant).toZonedDateTimeISO(zone);
const completions = async (id: number) =>
  (
    await ctx.database.db.query<{ occurrence: number }>('SELECT occurrence FROM task_occurrences WHERE task_id = $1 ORDER BY occurrence', [
      id,
    ])
  ).rows.map((r) => r.occurrence);

const WEEKDAYS = { rule: 'FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR', time_zone: 'Europe/Berlin' };

describe(`recurring tasks (${dbKind})`, () => {
  it('"every weekday at 09:30 Europe/Berlin" completed 60 times from 2027-03-01 lands on 09:30 local each time and skips weekends', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, { title: 'Stand-up', due_at: '2027-03-01T08:30:00Z', recurrence: WEEKDAYS });
    expect(task.recurrence).toEqual({ ...WEEKDAYS, from: 'due', occurrence: 1 });
    let previous = local(task.due_at!, 'Europe/Berlin').toPlainDate();
    const offsets = new Set<string>();
    for (let i = 1; i <= 60; i++) {
      const res = await toggle(auth, task.id);
      expect(res.status).toBe(200);
      const moved = res.body as Task;
      // One task, one id, still pending: only its due date and occurrence move.
      expect(moved).toMatchObject({ id: task.id, completed: false, recurrence: { occurrence: i + 1 } });
      const at = local(moved.due_at!, 'Europe/Berlin');
      expect(at.toPlainTime().toString()).toBe('09:30:00');
      expect(at.dayOfWeek).toBeLessThan(6);
      expect(previous.until(at.toPlainDate()).days).toBe(previous.dayOfWeek === 5 ? 3 : 1);
      offsets.add(at.offset);
      previous = at.toPlainDate();
    }
    // Both sides of the change of clocks on 2027-03-28 were crossed.
    expect([...offsets].sort()).toEqual(['+01:00', '+02:00']);
    expect(previous.toString()).toBe('2027-05-24');
    expect(await completions(task.id)).toHaveLength(60);
  });

  it('"monthly on the 31st" skips the months without one, and a time lost to the spring change is read as RFC 5545 says', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Invoice',
      due_at: '2027-01-31T15:00:00Z',
      recurrence: { rule: 'FREQ=MONTHLY;BYMONTHDAY=31', time_zone: 'America/New_York' },
    });
    const seen: string[] = [];
    for (let i = 0; i < 4; i++)
      seen.push(
        local((await toggle(auth, task.id)).body.due_at, 'America/New_York')
          .toPlainDate()
          .toString(),
      );
    expect(seen).toEqual(['2027-03-31', '2027-05-31', '2027-07-31', '2027-08-31']);

    const early = await create(auth, {
      title: 'Night job',
      due_at: '2027-03-27T01:30:00Z', // 02:30 in Berlin
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'Europe/Berlin' },
    });
    const onTheDay = (await toggle(auth, early.id)).body as Task;
    // 02:30 does not exist on 2027-03-28 in Berlin: 03:30 CEST, the offset before the gap.
    expect(onTheDay.due_at).toBe('2027-03-28T01:30:00.000000Z');
    const dayAfter = (await toggle(auth, early.id)).body as Task;
    expect(local(dayAfter.due_at!, 'Europe/Berlin').toPlainTime().toString()).toBe('02:30:00');
  });

  it('a due date sent back as it is (a PUT of the whole task) does not restart the schedule', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'gap',
      due_at: '2027-03-27T02:30:00+01:00',
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'europe/berlin' },
    });
    // The zone as Temporal names it.
    expect(task.recurrence?.time_zone).toBe('Europe/Berlin');
    const moved = await toggle(auth, task.id);
    expect(moved.body.due_at).toBe('2027-03-28T01:30:00.000000Z'); // 02:30 does not exist: 03:30 CEST
    const put = await request(ctx.app)
      .put(`/api/tasks/${task.id}`)
      .set('Authorization', auth)
      .send({ title: 'gap', due_at: '2027-03-28T03:30:00+02:00' });
    expect(put.headers.etag).toBe(moved.headers.etag);
    // Still 02:30 local the day after, not 03:30.
    expect((await toggle(auth, task.id)).body.due_at).toBe('2027-03-29T00:30:00.000000Z');
  });

  it('edge inputs from the attacks: a completion-based restart that misses BYMONTH goes on by the schedule; early completions each count; digits past the microsecond round as stored', async () => {
    const auth = await bearer(newUser());
    // Restarted on today's date, every third month from now misses January/April/July/October.
    const quarterly = await create(auth, {
      title: 'Quarterly',
      due_at: '2027-01-04T09:00:00Z',
      recurrence: { rule: 'FREQ=MONTHLY;INTERVAL=3;BYMONTH=1,4,7,10;BYMONTHDAY=4', time_zone: 'UTC', from: 'completion' },
    });
    const moved = (await toggle(auth, quarterly.id)).body as Task;
    expect(moved.completed).toBe(false);
    expect(moved.due_at).toBe('2027-04-04T09:00:00.000000Z');

    // every! day, due tomorrow, completed three times today: each completion recorded, COUNT spent.
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const daily = await create(auth, {
      title: 'Early',
      due_at: `${tomorrow}T12:00:00Z`,
      recurrence: { rule: 'FREQ=DAILY;COUNT=3', time_zone: 'UTC', from: 'completion' },
    });
    for (let i = 0; i < 3; i++) await toggle(auth, daily.id);
    expect((await get(auth, daily.id)).completed).toBe(true);
    expect(await completions(daily.id)).toEqual([1, 2, 3]);

    // Ten fractional digits: read, and rounded to the microsecond as the database keeps it, for the rule too.
    const sub = await create(auth, {
      title: 'Sub',
      due_at: '2027-01-04T08:59:59.9999999999Z',
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'UTC' },
    });
    expect(sub.due_at).toBe('2027-01-04T09:00:00.000000Z');
    expect((await toggle(auth, sub.id)).body.due_at).toBe('2027-01-05T09:00:00.000000Z');

    // A batch that would give a recurring task a due date its zone cannot hold: refused, named, not a 500.
    const east = await create(auth, {
      title: 'East',
      due_at: '2027-01-04T09:00:00Z',
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'Pacific/Kiritimati' },
    });
    const batch = await request(ctx.app)
      .patch('/api/tasks')
      .set('Authorization', auth)
      .send({ ids: [east.id], due_at: '9999-12-31T20:00:00Z' });
    expect(batch.status).toBe(422);
    expect(batch.body.errors).toEqual([
      { path: '/body/due_at', message: `lies on a local date outside the years 0001 to 9999 in Pacific/Kiritimati (task ${east.id})` },
    ]);
    // A leap second is refused as one.
    const leap = await patch(auth, sub.id, { due_at: '2026-12-31T23:59:60Z' });
    expect(leap.body.errors).toEqual([
      { path: '/body/due_at', message: 'must not be a leap second (:60), which this API does not keep; use :59 or the next minute' },
    ]);
  });

  it('ends after COUNT occurrences; uncompleting reopens the last one without moving it back', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Physio',
      due_at: '2027-01-04T09:00:00Z',
      recurrence: { rule: 'freq=weekly;count=3', time_zone: 'UTC' },
    });
    expect(task.recurrence?.rule).toBe('FREQ=WEEKLY;COUNT=3');
    expect((await toggle(auth, task.id)).body).toMatchObject({ completed: false, due_at: '2027-01-11T09:00:00.000000Z' });
    expect((await toggle(auth, task.id)).body).toMatchObject({ completed: false, due_at: '2027-01-18T09:00:00.000000Z' });
    // The third and last occurrence: done for good, where it was.
    expect((await toggle(auth, task.id)).body).toMatchObject({ completed: true, due_at: '2027-01-18T09:00:00.000000Z' });
    const reopened = (await patch(auth, task.id, { completed: false })).body as Task;
    expect(reopened).toMatchObject({ completed: false, due_at: '2027-01-18T09:00:00.000000Z', recurrence: { occurrence: 3 } });
    expect(await completions(task.id)).toEqual([1, 2, 3]);

    const until = await create(auth, {
      title: 'Until',
      due_at: '2027-01-04T09:00:00Z',
      recurrence: { rule: 'FREQ=DAILY;UNTIL=20270105', time_zone: 'UTC' },
    });
    expect((await toggle(auth, until.id)).body).toMatchObject({ completed: false, due_at: '2027-01-05T09:00:00.000000Z' });
    expect((await toggle(auth, until.id)).body).toMatchObject({ completed: true, due_at: '2027-01-05T09:00:00.000000Z' });

    // A series whose next occurrence would pass year 9999 (the last an RFC 3339 date writes) ends there.
    const far = await create(auth, {
      title: 'Far',
      due_at: '9995-06-01T00:00:00Z',
      recurrence: { rule: 'FREQ=YEARLY;INTERVAL=10', time_zone: 'UTC' },
    });
    expect((await toggle(auth, far.id)).body).toMatchObject({ completed: true, due_at: '9995-06-01T00:00:00.000000Z' });
    // Also when only its local date would (14 hours ahead of UTC).
    const east = await create(auth, {
      title: 'East',
      due_at: '9999-12-30T11:00:00Z',
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'Pacific/Kiritimati' },
    });
    expect((await toggle(auth, east.id)).body).toMatchObject({ completed: true, due_at: '9999-12-30T11:00:00.000000Z' });
  });

  it('"every! 3 days" counts from the day it is completed, at its time of day', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Water the plants',
      due_at: '2027-06-01T16:00:00Z',
      recurrence: { rule: 'FREQ=DAILY;INTERVAL=3', time_zone: 'Europe/Berlin', from: 'completion' },
    });
    const moved = (await toggle(auth, task.id)).body as Task;
    // updated_at is the database's clock at the completion.
    const completedOn = local(moved.updated_at, 'Europe/Berlin').toPlainDate();
    const due = local(moved.due_at!, 'Europe/Berlin');
    expect(due.toPlainDate().toString()).toBe(completedOn.add({ days: 3 }).toString());
    expect(due.toPlainTime().toString()).toBe('18:00:00');
  });

  it('a completion retried with its Idempotency-Key moves the task once, also when the retries race', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Rent',
      due_at: '2027-02-01T09:00:00Z',
      recurrence: { rule: 'FREQ=MONTHLY', time_zone: 'UTC' },
    });
    const first = await toggle(auth, task.id, { 'Idempotency-Key': 'complete-feb' });
    const retry = await toggle(auth, task.id, { 'Idempotency-Key': 'complete-feb' });
    expect(first.status).toBe(200);
    expect(retry.status).toBe(200);
    expect(retry.headers['idempotent-replayed']).toBe('true');
    // The same bytes: fields in the contract's order, though the kept copy is jsonb.
    expect(retry.text).toBe(first.text);
    expect(retry.headers.etag).toBe(first.headers.etag);
    expect((await get(auth, task.id)).due_at).toBe('2027-03-01T09:00:00.000000Z');

    const raced = await Promise.all(Array.from({ length: 6 }, () => toggle(auth, task.id, { 'Idempotency-Key': 'complete-mar' })));
    expect(raced.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(raced.map((r) => r.body.due_at))).toEqual(new Set(['2027-04-01T09:00:00.000000Z']));
    expect(raced.filter((r) => r.headers['idempotent-replayed'] !== 'true')).toHaveLength(1);
    expect(await get(auth, task.id)).toMatchObject({ due_at: '2027-04-01T09:00:00.000000Z', recurrence: { occurrence: 3 } });
    expect(await completions(task.id)).toEqual([1, 2]);

    // The same key for another request is refused, and PATCH takes keys as the toggle does.
    expect((await patch(auth, task.id, { completed: true }, { 'Idempotency-Key': 'complete-mar' })).body.code).toBe(
      'idempotency_key_reused',
    );
    const viaPatch = await patch(auth, task.id, { completed: true }, { 'Idempotency-Key': 'complete-apr' });
    const again = await patch(auth, task.id, { completed: true }, { 'Idempotency-Key': 'complete-apr' });
    expect(again.body).toEqual(viaPatch.body);
    expect(again.body.due_at).toBe('2027-05-01T09:00:00.000000Z');
  });

  it('a completion retried with If-Match on the old version moves it once: racing ones get 412', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Review',
      due_at: '2027-02-01T09:00:00Z',
      recurrence: { rule: 'FREQ=WEEKLY', time_zone: 'UTC' },
    });
    const etag = (await request(ctx.app).get(`/api/tasks/${task.id}`).set('Authorization', auth)).headers.etag as string;
    const raced = await Promise.all(Array.from({ length: 5 }, () => toggle(auth, task.id, { 'If-Match': etag })));
    expect(raced.map((r) => r.status).sort()).toEqual([200, 412, 412, 412, 412]);
    expect((await get(auth, task.id)).due_at).toBe('2027-02-08T09:00:00.000000Z');
    expect(await completions(task.id)).toEqual([1]);
  });

  it('refuses rules outside the subset with 422, naming the part in plain words, and keeps the due date a recurring task needs', async () => {
    const auth = await bearer(newUser());
    const refused = async (body: Record<string, unknown>) => {
      const res = await request(ctx.app)
        .post('/api/tasks')
        .set('Authorization', auth)
        .send({ title: 't', ...body });
      expect(res.status).toBe(422);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      return res.body as { code: string; detail: string; errors: { path: string; message: string }[] };
    };
    const due = '2027-01-01T09:00:00Z';
    const byday = await refused({ due_at: due, recurrence: { rule: 'FREQ=WEEKLY;BYDAY=XX', time_zone: 'UTC' } });
    expect(byday.code).toBe('validation_failed');
    expect(byday.errors).toEqual([{ path: '/body/recurrence/rule', message: expect.stringMatching(/^BYDAY: "XX" is not a weekday/) }]);
    const hourly = await refused({ due_at: due, recurrence: { rule: 'FREQ=HOURLY', time_zone: 'Mars/Olympus' } });
    expect(hourly.errors.map((e) => e.path)).toEqual(['/body/recurrence/rule', '/body/recurrence/time_zone']);
    expect(hourly.errors[0]!.message).toMatch(/FREQ.*at most daily/);
    expect((await refused({ recurrence: WEEKDAYS })).errors).toEqual([
      { path: '/body/recurrence', message: 'needs a due date: give due_at as well' },
    ]);
    expect((await refused({ due_at: due, recurrence: { rule: 'FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30', time_zone: 'UTC' } })).errors).toEqual([
      { path: '/body/recurrence/rule', message: 'no month in BYMONTH has day 30: the longest has 29 days' },
    ]);
    // Every twelfth month from an April: never a 31st.
    expect(
      (await refused({ due_at: '2027-04-15T09:00:00Z', recurrence: { rule: 'FREQ=MONTHLY;INTERVAL=12;BYMONTHDAY=31', time_zone: 'UTC' } }))
        .errors[0]!.message,
    ).toMatch(/^never falls on a date after the due date/);
    // A due date whose local date in the zone is past year 9999, or before year 1: named, not a 500.
    expect(
      (await refused({ due_at: '9999-12-31T23:00:00Z', recurrence: { rule: 'FREQ=DAILY', time_zone: 'Pacific/Kiritimati' } })).errors,
    ).toEqual([{ path: '/body/due_at', message: 'lies on a local date outside the years 0001 to 9999 in Pacific/Kiritimati' }]);
    expect(
      (await refused({ due_at: '0001-01-01T00:00:00Z', recurrence: { rule: 'FREQ=DAILY', time_zone: 'America/New_York' } })).errors[0]!
        .path,
    ).toBe('/body/due_at');
    expect((await refused({ due_at: due, recurrence: { rule: 'FREQ=DAILY;COUNT=2;UNTIL=20270301', time_zone: 'UTC' } })).detail).toMatch(
      /COUNT/,
    );

    const task = await create(auth, { title: 'Daily', due_at: due, recurrence: { rule: 'FREQ=DAILY', time_zone: 'UTC' } });
    const cleared = await patch(auth, task.id, { due_at: null });
    expect(cleared.status).toBe(422);
    expect(cleared.body.errors).toEqual([
      { path: '/body/due_at', message: 'cannot be cleared while the task recurs; set recurrence to null as well' },
    ]);
    expect((await get(auth, task.id)).due_at).toBe('2027-01-01T09:00:00.000000Z');
    // Stopping it: an ordinary task again, done for good when completed.
    const stopped = await patch(auth, task.id, { recurrence: null, due_at: null });
    expect(stopped.body).toMatchObject({ recurrence: null, due_at: null });
    expect((await toggle(auth, task.id)).body.completed).toBe(true);
  });

  it('a new due date or rule starts the schedule again from it; the batch completes recurring tasks as one task would', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Every other Monday',
      due_at: '2027-01-04T08:00:00Z',
      recurrence: { rule: 'FREQ=WEEKLY;INTERVAL=2;BYDAY=MO', time_zone: 'Europe/Berlin' },
    });
    expect((await toggle(auth, task.id)).body.due_at).toBe('2027-01-18T08:00:00.000000Z');
    // Moved by hand to a Monday a week later: the fortnights count from there.
    await patch(auth, task.id, { due_at: '2027-01-25T08:00:00Z' });
    expect((await toggle(auth, task.id)).body.due_at).toBe('2027-02-08T08:00:00.000000Z');

    const plain = await create(auth, { title: 'plain' });
    const batch = await request(ctx.app)
      .patch('/api/tasks')
      .set('Authorization', auth)
      .send({ ids: [task.id, plain.id], completed: true, add_tags: ['Work'] });
    expect(batch.status).toBe(200);
    expect(batch.body.tasks).toMatchObject([
      { id: task.id, completed: false, due_at: '2027-02-22T08:00:00.000000Z', tags: ['work'] },
      { id: plain.id, completed: true, tags: ['work'] },
    ]);
    const clearing = await request(ctx.app)
      .patch('/api/tasks')
      .set('Authorization', auth)
      .send({ ids: [plain.id, task.id], due_at: null });
    expect(clearing.status).toBe(422);
    expect(clearing.body.errors[0]).toMatchObject({ path: '/body/due_at' });
    expect((await get(auth, plain.id)).due_at).toBe(null);
    expect((await get(auth, task.id)).due_at).toBe('2027-02-22T08:00:00.000000Z');
  });

  it('the feed carries each move as the task in full', async () => {
    const auth = await bearer(newUser());
    const task = await create(auth, {
      title: 'Feed',
      due_at: '2027-01-01T09:00:00Z',
      recurrence: { rule: 'FREQ=DAILY', time_zone: 'UTC' },
    });
    const start = await request(ctx.app).get('/api/tasks/changes').set('Authorization', auth);
    await toggle(auth, task.id);
    const after = await request(ctx.app).get(`/api/tasks/changes?cursor=${start.body.cursor}`).set('Authorization', auth);
    expect(after.body.changes).toEqual([
      { op: 'upsert', task: expect.objectContaining({ id: task.id, due_at: '2027-01-02T09:00:00.000000Z' }) },
    ]);
  });
});
