// Webhooks (contract 1.6): endpoints per user, deliveries signed by the Standard Webhooks spec and
// verified here with its official library, the outbox written with each change, retries, 410,
// Retry-After, redirects, rotation, attempts and redelivery, through the app as it ships and a
// dispatcher as serve.ts starts it, delivering to a real receiver on loopback (allowed by the
// development setting WEBHOOK_ALLOWED_HOSTS).
import pg from 'pg';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { webhookPolicy } from '../src/app.js';
import { loadConfig, type WebhooksConfig } from '../src/config.js';
import { startWebhookDispatcher, type WebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { purgeMessages } from '../src/webhooks/queries.js';
import { createTaskService } from '../src/tasks/service.js';
import { startReminderWorker } from '../src/reminders/worker.js';
import type { Database } from '../src/db/types.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { bearer, buildApp, newUser } from './helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';
import { validatorFor } from './helpers/contract.js';
import { type Receiver, startReceiver, verified } from './helpers/receiver.js';

const config: WebhooksConfig = {
  ...loadConfig({ NODE_ENV: 'test' }).webhooks,
  allowedHosts: ['127.0.0.1'],
  retrySchedule: [1, 1, 1],
  timeoutMs: 2000,
  endpointsPerUser: 3,
  // The default: every delivery here must come from a write's, a redelivery's or a retry's own
  // wake-up, never from a look that happens to come soon.
  pollSeconds: 600,
};

let database: TestDatabase;
let app: ReturnType<typeof buildApp>['app'];
let dispatcher: WebhookDispatcher;
let receiver: Receiver;
beforeAll(async () => {
  database = await createTestDatabase();
  dispatcher = startWebhookDispatcher(database.db, config, { policy: webhookPolicy(config), userAgent: 'todo-api-webhooks/test' });
  app = buildApp(database.db, { webhooks: config, written: () => dispatcher.poke() }).app;
  receiver = await startReceiver();
});
afterAll(async () => {
  await dispatcher.stop();
  await receiver.close();
  await database.drop();
});
afterEach(() => {
  receiver.answer = () => ({ status: 204 });
});

interface Endpoint {
  id: number;
  url: string;
  events: string[];
  enabled: boolean;
  disabled_reason: string | null;
  secret?: string;
}
interface Attempt {
  message_id: string;
  event_type: string;
  status: number | null;
  error: string | null;
  message_state: string;
}

async function register(auth: string, body: Record<string, unknown>): Promise<Endpoint & { secret: string }> {
  const res = await request(app).post('/api/webhooks').set('Authorization', auth).send(body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** The requests that reached the receiver for `secret`'s endpoint, each verified (others do not verify with it). */
function deliveriesFor(secret: string) {
  return receiver.received.filter((r) => {
    try {
      verified(secret, r);
      return true;
    } catch {
      return false;
    }
  });
}

/** Waits until `check` passes (a delivery is asynchronous), failing with its last error after 20 s. */
async function eventually<T>(check: () => Promise<T> | T, ms = 20_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function attempts(auth: string, id: number): Promise<Attempt[]> {
  const res = await request(app).get(`/api/webhooks/${id}/attempts`).set('Authorization', auth);
  expect(res.status).toBe(200);
  return res.body;
}

describe(`webhook endpoints (${dbKind})`, () => {
  it('are created with a secret shown once, listed, read, changed and deleted; only by their user', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const created = await request(app)
      .post('/api/webhooks')
      .set('Authorization', auth)
      .send({ url: receiver.url, events: ['task.deleted', 'task.created'], description: 'bridge' });
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe(`/api/webhooks/${created.body.id}`);
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    // In the contract's order, whatever order they were sent in.
    expect(created.body).toMatchObject({
      url: receiver.url,
      events: ['task.created', 'task.deleted'],
      enabled: true,
      disabled_reason: null,
    });
    const id = created.body.id as number;
    // Instants as tasks write them: UTC, six fractional digits.
    expect(created.body.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    const read = await request(app).get(`/api/webhooks/${id}`).set('Authorization', auth);
    expect(read.status).toBe(200);
    expect(read.body).not.toHaveProperty('secret');
    expect(JSON.stringify(read.body)).not.toContain(created.body.secret.slice(6));
    const list = await request(app).get('/api/webhooks').set('Authorization', auth);
    expect(list.body.map((e: Endpoint) => e.id)).toEqual([id]);
    expect(JSON.stringify(list.body)).not.toContain('whsec_');

    const changed = await request(app)
      .patch(`/api/webhooks/${id}`)
      .set('Authorization', auth)
      .send({ events: ['reminder.due'], enabled: false });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ events: ['reminder.due'], enabled: false, disabled_reason: 'user' });
    const again = await request(app).patch(`/api/webhooks/${id}`).set('Authorization', auth).send({ enabled: true });
    expect(again.body).toMatchObject({ enabled: true, disabled_reason: null, disabled_at: null });

    // Another user sees none of it, by either family of paths.
    const other = await bearer(newUser());
    for (const res of [
      await request(app).get(`/api/webhooks/${id}`).set('Authorization', other),
      await request(app).patch(`/api/webhooks/${id}`).set('Authorization', other).send({ enabled: false }),
      await request(app).delete(`/api/webhooks/${id}`).set('Authorization', other),
      await request(app).post(`/api/webhooks/${id}/rotate-secret`).set('Authorization', other),
      await request(app).get(`/api/webhooks/${id}/attempts`).set('Authorization', other),
    ]) {
      expect(res.status).toBe(404);
      expect(res.body.code).toBe('webhook_not_found');
    }
    expect((await request(app).get('/api/webhooks').set('Authorization', other)).body).toEqual([]);
    expect((await request(app).get(`/api/${user}/webhooks/${id}`).set('Authorization', other)).status).toBe(403);
    const twin = await request(app).get(`/api/${user}/webhooks/${id}`).set('Authorization', auth);
    expect(twin.status).toBe(200);
    expect(twin.body.id).toBe(id);

    expect((await request(app).delete(`/api/webhooks/${id}`).set('Authorization', auth)).status).toBe(204);
    const gone = await request(app).get(`/api/webhooks/${id}`).set('Authorization', auth);
    expect(gone.status).toBe(404);
    expect(gone.body.detail).toBe(`No webhook endpoint with id ${id} exists for this user.`);
  });

  it('are limited per user (409 webhook_limit_reached) and refuse bad input with 422', async () => {
    const auth = await bearer(newUser());
    for (let i = 0; i < config.endpointsPerUser; i++) await register(auth, { url: `${receiver.url}/${i}` });
    const over = await request(app).post('/api/webhooks').set('Authorization', auth).send({ url: receiver.url });
    expect(over.status).toBe(409);
    expect(over.body.code).toBe('webhook_limit_reached');
    expect((await request(app).get('/api/webhooks').set('Authorization', auth)).body).toHaveLength(config.endpointsPerUser);

    const fresh = await bearer(newUser());
    for (const [body, path] of [
      [{ url: 'ftp://example.com/x' }, '/body/url'],
      [{ url: 'not a url' }, '/body/url'],
      [{ url: 'https://user:pw@example.com/x' }, '/body/url'],
      [{ url: 'https://93.184.216.34/#' }, '/body/url'],
      [{ url: receiver.url, events: ['task.exploded'] }, '/body/events/0'],
      [{ url: receiver.url, events: [] }, '/body/events'],
      [{ url: receiver.url, secret: 'mine' }, '/body/secret'],
    ] as const) {
      const res = await request(app).post('/api/webhooks').set('Authorization', fresh).send(body);
      expect(res.status, JSON.stringify(body)).toBe(422);
      expect(res.body.code).toBe('validation_failed');
      expect(res.body.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    const badId = await request(app).get('/api/webhooks/0x1').set('Authorization', fresh);
    expect(badId.status).toBe(422);
  });
});

describe(`webhook deliveries (${dbKind})`, () => {
  it('carry every change of the user, signed with the endpoint secret (verified with standardwebhooks)', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const all = await register(auth, { url: receiver.url });
    const deletesOnly = await register(auth, { url: `${receiver.url}/deletes`, events: ['task.deleted'] });
    const start = receiver.received.length;

    const a = (await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'a' })).body;
    const b = (await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'b' })).body;
    await request(app).patch(`/api/tasks/${a.id}`).set('Authorization', auth).send({ title: 'a2' }).expect(200);
    // A write that changes nothing is no event.
    await request(app).patch(`/api/tasks/${a.id}`).set('Authorization', auth).send({ title: 'a2' }).expect(200);
    await request(app).patch(`/api/tasks/${b.id}/complete`).set('Authorization', auth).send({ completed: true }).expect(200);
    await request(app).delete('/api/tasks?status=completed').set('Authorization', auth).expect(200);
    await request(app).delete(`/api/tasks/${a.id}`).set('Authorization', auth).expect(204);
    // Another user's changes go to nobody here.
    const stranger = await bearer(newUser());
    await request(app).post('/api/tasks').set('Authorization', stranger).send({ title: 'not yours' }).expect(201);

    // 6 events for the first endpoint, 2 deletes for the second.
    await receiver.until(start + 8);
    const mine = deliveriesFor(all.secret).map((r) => ({ r, e: verified(all.secret, r) }));
    const types = mine.map(({ e }) => `${e.type}:${e.data.task_id}`).sort();
    expect(types).toEqual(
      [
        `task.created:${a.id}`,
        `task.created:${b.id}`,
        `task.updated:${a.id}`,
        `task.completed:${b.id}`,
        `task.deleted:${b.id}`,
        `task.deleted:${a.id}`,
      ].sort(),
    );
    // Each as the contract's createWebhook callback describes it.
    const asContract = validatorFor('#/components/schemas/WebhookEvent');
    for (const { r, e } of mine) {
      expect(asContract(e), JSON.stringify(asContract.errors)).toBe(true);
      expect(r.headers['webhook-id']).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(r.headers['content-type']).toBe('application/json');
      expect(Math.abs(Number(r.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(300);
      expect(e.data.user_id).toBe(user);
      expect(e.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    }
    const created = mine.find(({ e }) => e.type === 'task.updated')!.e;
    expect(created.data).toEqual({ task_id: a.id, user_id: user, version: 2 });
    // Each event its own id; the deletes endpoint got the same ids for the same deletes.
    const ids = mine.map(({ r }) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(6);
    const deletes = deliveriesFor(deletesOnly.secret);
    expect(deletes.map((r) => verified(deletesOnly.secret, r).type)).toEqual(['task.deleted', 'task.deleted']);
    for (const r of deletes) expect(ids).toContain(r.headers['webhook-id']);
    // Nothing verifies with a wrong secret, nor with the payload changed.
    expect(() => verified(deletesOnly.secret, mine[0]!.r)).toThrow();
    expect(() => verified(all.secret, { ...mine[0]!.r, body: mine[0]!.r.body.replace('task', 'tusk') })).toThrow();
    await eventually(async () => {
      const list = await attempts(auth, all.id);
      expect(list).toHaveLength(6);
      for (const at of list) expect(at).toMatchObject({ status: 204, error: null, message_state: 'delivered' });
    });
  });

  it('are retried, with the same webhook-id, until the receiver recovers', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: receiver.url, events: ['task.created'] });
    let failures = 2;
    receiver.answer = () => (failures-- > 0 ? { status: 500 } : { status: 200 });
    const start = receiver.received.length;
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'flaky' }).expect(201);
    await receiver.until(start + 3);
    const got = receiver.received.slice(start, start + 3);
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const r of got) expect(verified(endpoint.secret, r).type).toBe('task.created');
    const list = await eventually(async () => {
      const l = await attempts(auth, endpoint.id);
      expect(l).toHaveLength(3);
      return l;
    });
    expect(list.map((x) => x.status)).toEqual([200, 500, 500]);
    expect(list[2]!.error).toBe('the receiver answered 500');
    expect(list.every((x) => x.message_state === 'delivered')).toBe(true);
    expect((await request(app).get(`/api/webhooks/${endpoint.id}`).set('Authorization', auth)).body.failing_since).toBeNull();
  });

  it("honour a 429's Retry-After", async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: receiver.url, events: ['task.created'] });
    let first = true;
    receiver.answer = () => {
      if (!first) return { status: 204 };
      first = false;
      return { status: 429, headers: { 'Retry-After': '3' } };
    };
    const start = receiver.received.length;
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'slow down' }).expect(201);
    await receiver.until(start + 2);
    const [one, two] = receiver.received.slice(start);
    // The schedule alone would retry after 0.8–1.2 s.
    expect(two!.at - one!.at).toBeGreaterThanOrEqual(2900);
    expect(verified(endpoint.secret, two!).type).toBe('task.created');
  });

  it('do not follow redirects', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: `${receiver.url}/moved`, events: ['task.created'] });
    receiver.answer = (r) =>
      r.headers['webhook-id'] && !r.headers.redirected ? { status: 302, headers: { Location: `${receiver.url}/new` } } : { status: 204 };
    const start = receiver.received.length;
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'moved' }).expect(201);
    const [first] = await eventually(async () => {
      const l = await attempts(auth, endpoint.id);
      expect(l.length).toBeGreaterThanOrEqual(1);
      return l;
    });
    expect(first).toMatchObject({ status: 302, message_state: 'pending' });
    expect(first!.error).toContain('redirect (302) not followed');
    // Only requests to the registered URL; none to where it pointed.
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.received.slice(start).every((r) => verified(endpoint.secret, r).type === 'task.created')).toBe(true);
    await request(app).delete(`/api/webhooks/${endpoint.id}`).set('Authorization', auth).expect(204);
  });

  it('stop at a 410, which disables the endpoint until the user enables it again', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: receiver.url, events: ['task.created'] });
    receiver.answer = () => ({ status: 410 });
    const start = receiver.received.length;
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'gone' }).expect(201);
    const disabled = await eventually(async () => {
      const res = await request(app).get(`/api/webhooks/${endpoint.id}`).set('Authorization', auth);
      expect(res.body.enabled).toBe(false);
      return res.body;
    });
    expect(disabled).toMatchObject({ disabled_reason: 'gone' });
    expect(disabled.disabled_at).not.toBeNull();
    const [attempt] = await attempts(auth, endpoint.id);
    expect(attempt).toMatchObject({ status: 410, message_state: 'failed' });
    // Events while it is disabled are not queued for it.
    receiver.answer = () => ({ status: 204 });
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'unheard' }).expect(201);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received.length).toBe(start + 1);
    // Enabled again, the next event arrives.
    await request(app).patch(`/api/webhooks/${endpoint.id}`).set('Authorization', auth).send({ enabled: true }).expect(200);
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'heard' }).expect(201);
    await receiver.until(start + 2);
    expect(verified(endpoint.secret, receiver.received[start + 1]!).type).toBe('task.created');
  });

  it('disable an endpoint that fails every attempt of the retry schedule', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: `${receiver.url}/broken`, events: ['task.created'] });
    receiver.answer = (r) => (r.body.includes('"task.created"') ? { status: 500 } : { status: 204 });
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'doomed' }).expect(201);
    const disabled = await eventually(async () => {
      const res = await request(app).get(`/api/webhooks/${endpoint.id}`).set('Authorization', auth);
      expect(res.body.enabled).toBe(false);
      return res.body;
    });
    expect(disabled.disabled_reason).toBe('failing');
    expect(disabled.failing_since).not.toBeNull();
    const list = await attempts(auth, endpoint.id);
    // The first attempt and one per entry of the schedule.
    expect(list).toHaveLength(config.retrySchedule.length + 1);
    expect(list.every((a) => a.message_state === 'failed')).toBe(true);
  });

  it('are signed with both secrets during a rotation, and can be redelivered with the same id', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: receiver.url, events: ['task.created'] });
    const rotated = await request(app).post(`/api/webhooks/${endpoint.id}/rotate-secret`).set('Authorization', auth);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    expect(rotated.body.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.body.previous_secret_expires_at) - Date.now()).toBeGreaterThan(config.secretOverlapSeconds * 1000 - 60_000);
    const start = receiver.received.length;
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'rotated' }).expect(201);
    await receiver.until(start + 1);
    const got = receiver.received[start]!;
    expect(got.headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(verified(rotated.body.secret, got).type).toBe('task.created');
    expect(verified(endpoint.secret, got).type).toBe('task.created');

    const [attempt] = await eventually(async () => {
      const l = await attempts(auth, endpoint.id);
      expect(l[0]?.message_state).toBe('delivered');
      return l;
    });
    const again = await request(app)
      .post(`/api/webhooks/${endpoint.id}/messages/${attempt!.message_id}/redeliver`)
      .set('Authorization', auth);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ message_id: attempt!.message_id, state: 'pending' });
    await receiver.until(start + 2);
    expect(receiver.received[start + 1]!.headers['webhook-id']).toBe(got.headers['webhook-id']);
    expect(verified(rotated.body.secret, receiver.received[start + 1]!)).toEqual(verified(rotated.body.secret, got));

    const unknown = await request(app)
      .post(`/api/webhooks/${endpoint.id}/messages/msg_00000000000000000000000000000000/redeliver`)
      .set('Authorization', auth);
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('webhook_message_not_found');
    const stranger = await request(app)
      .post(`/api/webhooks/${endpoint.id}/messages/${attempt!.message_id}/redeliver`)
      .set('Authorization', await bearer(newUser()));
    expect(stranger.status).toBe(404);
  });

  it('are written in the transaction of the change: a rolled-back write leaves no message', async () => {
    const user = newUser();
    const auth = await bearer(user);
    await register(auth, { url: `${receiver.url}/tx`, events: ['task.created'] });
    await expect(
      database.db.transaction(async (tx) => {
        await tx.query("INSERT INTO tasks (user_id, title) VALUES ($1, 'never')", [user]);
        const { rows } = await tx.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id WHERE e.user_id = $1',
          [user],
        );
        expect(rows[0]!.n).toBe(1);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    const { rows } = await database.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM webhook_messages m JOIN webhook_endpoints e ON e.id = m.endpoint_id WHERE e.user_id = $1',
      [user],
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('are forgotten a retention after they were delivered or given up (not after they were made), never while pending', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const endpoint = await register(auth, { url: `${receiver.url}/kept`, events: ['task.created'] });
    await request(app).patch(`/api/webhooks/${endpoint.id}`).set('Authorization', auth).send({ enabled: false }).expect(200);
    const { rows } = await database.db.query<{ id: string }>(
      `INSERT INTO webhook_messages (endpoint_id, message_id, event_type, data, created_at, state, finished_at)
       VALUES ($1, 'msg_' || md5('a'), 'task.created', '{}', now() - interval '3 hours', 'delivered', now() - interval '2 hours'),
              ($1, 'msg_' || md5('b'), 'task.created', '{}', now() - interval '3 hours', 'failed', now() - interval '2 hours'),
              ($1, 'msg_' || md5('c'), 'task.created', '{}', now() - interval '3 hours', 'pending', NULL),
              ($1, 'msg_' || md5('d'), 'task.created', '{}', now() - interval '3 hours', 'failed', now())
       RETURNING message_id AS id`,
      [endpoint.id],
    );
    expect(rows).toHaveLength(4);
    expect(await purgeMessages(database.db, 3600, 1000)).toBeGreaterThanOrEqual(2);
    const left = await database.db.query<{ message_id: string }>(
      'SELECT message_id FROM webhook_messages WHERE endpoint_id = $1 ORDER BY id',
      [endpoint.id],
    );
    expect(left.rows.map((r) => r.message_id)).toEqual([rows[2]!.id, rows[3]!.id]);
  });

  it('carry a recurring completion as task.completed and a reminder as reminder.due, with its id', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const endpoint = await register(auth, { url: `${receiver.url}/time`, events: ['task.completed', 'reminder.due'] });
    const start = receiver.received.length;
    const task = (
      await request(app)
        .post('/api/tasks')
        .set('Authorization', auth)
        .send({
          title: 'water the plants',
          due_at: '2030-01-01T09:00:00Z',
          recurrence: { rule: 'FREQ=DAILY;INTERVAL=3', time_zone: 'Europe/Berlin' },
          reminders: [{ at: '2029-12-31T08:00:00Z' }],
        })
        .expect(201)
    ).body;
    // Completing an occurrence moves the task on (it stays pending): a completion all the same.
    const moved = await request(app)
      .patch(`/api/tasks/${task.id}/complete`)
      .set('Authorization', auth)
      .send({ completed: true })
      .expect(200);
    expect(moved.body.completed).toBe(false);
    await receiver.until(start + 1);
    expect(verified(endpoint.secret, receiver.received[start]!)).toMatchObject({
      type: 'task.completed',
      data: { task_id: task.id, user_id: user, version: moved.body.version ?? expect.any(Number) },
    });
    const from = (await request(app).get('/api/tasks/changes').set('Authorization', auth)).body.cursor as string;
    // The reminder falls due (made due by the database's clock) and a worker fires it.
    await database.db.query("UPDATE reminder_schedule SET fire_at = now() - interval '1 second' WHERE user_id = $1", [user]);
    await createTaskService(database.db, { tasksPerUser: 5000, changed: () => dispatcher.poke() }).fireReminders();
    await receiver.until(start + 2);
    const reminder = verified(endpoint.secret, receiver.received[start + 1]!);
    expect(validatorFor('#/components/schemas/WebhookEvent')(reminder)).toBe(true);
    expect(reminder).toMatchObject({
      type: 'reminder.due',
      data: { task_id: task.id, user_id: user, remind_at: expect.any(String), due_at: '2030-01-04T09:00:00.000000Z' },
    });
    expect(reminder.data.reminder_id).toMatch(new RegExp(`^rem_${task.id}_a`));
    // The same id the feed gives it.
    const feed = await request(app).get(`/api/tasks/changes?reminders=true&cursor=${from}`).set('Authorization', auth);
    const fired = feed.body.changes.find((c: { op: string }) => c.op === 'reminder');
    expect(fired.reminder.id).toBe(reminder.data.reminder_id);
  });

  it('give up when the schedule runs out, however often the receiver asks to wait (Retry-After)', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: `${receiver.url}/busy`, events: ['task.created'] });
    receiver.answer = (r) => (r.body.includes('"task.created"') ? { status: 503, headers: { 'Retry-After': '0' } } : { status: 204 });
    await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'never now' }).expect(201);
    const list = await eventually(async () => {
      const l = await attempts(auth, endpoint.id);
      expect(l[0]?.message_state).toBe('failed');
      return l;
    });
    expect(list).toHaveLength(config.retrySchedule.length + 1);
    expect(list.every((a) => a.status === 503)).toBe(true);
  });

  it('count the status alone: a receiver that never ends its answer holds nothing', async () => {
    const endless = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      const tick = setInterval(() => res.write('x'.repeat(1024)), 5);
      res.on('close', () => clearInterval(tick));
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    try {
      const auth = await bearer(newUser());
      const endpoint = await register(auth, {
        url: `http://127.0.0.1:${(endless.address() as AddressInfo).port}/`,
        events: ['task.created'],
      });
      await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'endless' }).expect(201);
      const [attempt] = await eventually(async () => {
        const l = await attempts(auth, endpoint.id);
        expect(l[0]?.message_state).toBe('delivered');
        return l;
      });
      expect(attempt).toMatchObject({ status: 200, error: null });
      // Well within the attempt's time limit: the body was not waited for.
      expect((attempt as Attempt & { duration_ms: number }).duration_ms).toBeLessThan(config.timeoutMs);
    } finally {
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });

  it('list endpoints oldest first, by number (10 after 9)', async () => {
    const user = newUser();
    const auth = await bearer(user);
    // More than the per-user limit lets a request make (a server whose limit was lowered keeps them).
    const { rows } = await database.db.query<{ id: string }>(
      `INSERT INTO webhook_endpoints (user_id, url, events, secret)
       SELECT $1, 'https://93.184.216.34/' || i, '{task.created}', 'whsec_x' FROM generate_series(1, 12) i RETURNING id::text`,
      [user],
    );
    const listed = await request(app).get('/api/webhooks').set('Authorization', auth);
    expect(listed.body.map((e: Endpoint) => e.id)).toEqual(rows.map((r) => Number(r.id)).sort((a, b) => a - b));
  });

  it('answer a secret with Cache-Control: no-store, and change updated_at only when something changed', async () => {
    const auth = await bearer(newUser());
    const created = await request(app)
      .post('/api/webhooks')
      .set('Authorization', auth)
      .send({ url: `${receiver.url}/x` });
    expect(created.headers['cache-control']).toBe('no-store');
    const rotated = await request(app).post(`/api/webhooks/${created.body.id}/rotate-secret`).set('Authorization', auth);
    expect(rotated.headers['cache-control']).toBe('no-store');
    // Every answer that names an endpoint's URL too.
    for (const path of ['/api/webhooks', `/api/webhooks/${created.body.id}`, `/api/webhooks/${created.body.id}/attempts`]) {
      expect((await request(app).get(path).set('Authorization', auth)).headers['cache-control'], path).toBe('no-store');
    }
    const before = (await request(app).get(`/api/webhooks/${created.body.id}`).set('Authorization', auth)).body;
    const same = await request(app).patch(`/api/webhooks/${created.body.id}`).set('Authorization', auth).send({ enabled: true });
    expect(same.body.updated_at).toBe(before.updated_at);
    const nul = await request(app).patch(`/api/webhooks/${created.body.id}`).set('Authorization', auth).send({ description: 'a\u0000b' });
    expect(nul.status).toBe(422);
    expect(nul.body.errors).toEqual([{ path: '/body/description', message: 'must not contain NUL characters' }]);
    const long = await request(app)
      .post('/api/webhooks')
      .set('Authorization', auth)
      .send({ url: `${receiver.url}/${'€'.repeat(1000)}` });
    expect(long.status).toBe(422);
    expect(long.body.errors).toEqual([{ path: '/body/url', message: 'must be at most 2048 characters once percent-encoded' }]);
  });

  it('send what was pending at once when a disabled endpoint is enabled again, not at its next retry', async () => {
    const auth = await bearer(newUser());
    const endpoint = await register(auth, { url: `${receiver.url}/later`, events: ['task.created'] });
    await request(app).patch(`/api/webhooks/${endpoint.id}`).set('Authorization', auth).send({ enabled: false }).expect(200);
    const user = (await database.db.query<{ user_id: string }>('SELECT user_id FROM webhook_endpoints WHERE id = $1', [endpoint.id]))
      .rows[0]!.user_id;
    // A message that failed once and is due again in an hour, as if the endpoint had failed before it was disabled.
    await database.db.query(
      `INSERT INTO webhook_messages (endpoint_id, message_id, event_type, data, attempts, next_attempt_at)
       VALUES ($1, 'msg_' || md5($2), 'task.created', jsonb_build_object('task_id', 1, 'user_id', $2::text, 'version', 1), 1, now() + interval '1 hour')`,
      [endpoint.id, user],
    );
    const start = receiver.received.length;
    await request(app).patch(`/api/webhooks/${endpoint.id}`).set('Authorization', auth).send({ enabled: true }).expect(200);
    await receiver.until(start + 1);
    expect(verified(endpoint.secret, receiver.received[start]!).type).toBe('task.created');
  });

  it('leave a message being delivered to its attempt when it is redelivered (never two at once), then send it again if that attempt failed', async () => {
    let open = 0;
    let most = 0;
    let requests = 0;
    const releases: ((status: number) => void)[] = [];
    const hanging = http.createServer((req, res) => {
      open++;
      requests++;
      most = Math.max(most, open);
      req.resume();
      // The first request waits for the test; later ones are answered at once.
      if (requests === 1) releases.push((status) => res.writeHead(status).end());
      else res.writeHead(204).end();
      res.on('close', () => open--);
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const auth = await bearer(newUser());
      const endpoint = await register(auth, {
        url: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/`,
        events: ['task.created'],
      });
      await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'slow' }).expect(201);
      await eventually(() => expect(open).toBe(1));
      const { rows } = await database.db.query<{ message_id: string }>('SELECT message_id FROM webhook_messages WHERE endpoint_id = $1', [
        endpoint.id,
      ]);
      const again = await request(app)
        .post(`/api/webhooks/${endpoint.id}/messages/${rows[0]!.message_id}/redeliver`)
        .set('Authorization', auth)
        .expect(202);
      // Due when the attempt's lease ends, not now.
      expect(Date.parse(again.body.next_attempt_at)).toBeGreaterThan(Date.now());
      await new Promise((r) => setTimeout(r, 300));
      expect(most).toBe(1);
      // The attempt fails: the redelivery asked for meanwhile sends it again, with a fresh schedule.
      for (const release of releases.splice(0)) release(500);
      await eventually(async () => expect((await attempts(auth, endpoint.id))[0]?.message_state).toBe('delivered'));
      expect(most).toBe(1);
      const { rows: after } = await database.db.query<{ attempts: number }>(
        'SELECT attempts FROM webhook_messages WHERE endpoint_id = $1',
        [endpoint.id],
      );
      expect(after[0]!.attempts).toBe(1);
    } finally {
      for (const release of releases.splice(0)) release(204);
      hanging.closeAllConnections();
      await new Promise((resolve) => hanging.close(resolve));
    }
  });

  it("do not let one user's endpoints that never answer hold every attempt an instance makes", async () => {
    // An instance of its own: 4 attempts at once, at most 2 per user.
    const own = await createTestDatabase();
    const small: WebhooksConfig = { ...config, concurrency: 4, concurrencyPerUser: 2, concurrencyPerEndpoint: 4, timeoutMs: 5000 };
    const worker = startWebhookDispatcher(own.db, small, { policy: webhookPolicy(small), userAgent: 'test' });
    const ownApp = buildApp(own.db, { webhooks: small, written: () => worker.poke() }).app;
    let hung = 0;
    const hanging = http.createServer((req) => {
      hung++;
      req.resume();
    });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    try {
      const greedy = await bearer(newUser());
      const port = (hanging.address() as AddressInfo).port;
      for (let i = 0; i < 3; i++) {
        await request(ownApp)
          .post('/api/webhooks')
          .set('Authorization', greedy)
          .send({ url: `http://127.0.0.1:${port}/${i}` })
          .expect(201);
      }
      for (let i = 0; i < 4; i++)
        await request(ownApp)
          .post('/api/tasks')
          .set('Authorization', greedy)
          .send({ title: `g${i}` })
          .expect(201);
      await eventually(() => expect(hung).toBe(2));
      const other = await bearer(newUser());
      const theirs = await request(ownApp)
        .post('/api/webhooks')
        .set('Authorization', other)
        .send({ url: `${receiver.url}/fair` })
        .expect(201);
      const start = receiver.received.length;
      await request(ownApp).post('/api/tasks').set('Authorization', other).send({ title: 'mine' }).expect(201);
      await receiver.until(start + 1);
      expect(verified(theirs.body.secret, receiver.received[start]!).type).toBe('task.created');
      // Delivered while the greedy user's attempts still hang, and those never exceeded their share.
      expect(hung).toBe(2);
    } finally {
      await worker.stop(0);
      hanging.closeAllConnections();
      await new Promise((resolve) => hanging.close(resolve));
      await own.drop();
    }
  });
});

describe('an endpoint deleted while its user writes (PostgreSQL: two connections)', () => {
  it.skipIf(dbKind !== 'postgres')('the write waits for the delete and succeeds, without a message for the deleted endpoint', async () => {
    const user = newUser();
    const auth = await bearer(user);
    const endpoint = await register(auth, { url: `${receiver.url}/doomed`, events: ['task.created'] });
    const deleter = new pg.Client({ connectionString: database.url! });
    await deleter.connect();
    try {
      await deleter.query('BEGIN');
      await deleter.query('DELETE FROM webhook_endpoints WHERE id = $1', [endpoint.id]);
      const write = request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'while deleting' });
      const answered = write.then((res) => res);
      // The write is waiting for the delete (its trigger locks the endpoint it would write for).
      await eventually(async () => {
        const { rows } = await deleter.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        );
        expect(rows[0].n).toBeGreaterThan(0);
      });
      await deleter.query('COMMIT');
      const res = await answered;
      expect(res.status, res.text).toBe(201);
      const { rows } = await database.db.query<{ n: number }>('SELECT count(*)::int AS n FROM webhook_messages WHERE endpoint_id = $1', [
        endpoint.id,
      ]);
      expect(rows[0]!.n).toBe(0);
    } finally {
      await deleter.query('ROLLBACK').catch(() => {});
      await deleter.end();
    }
  });
});

describe(`an idle instance (${dbKind})`, () => {
  it('looks for webhook messages and reminders when told to, or at its poll, not in a loop', async () => {
    const own = await createTestDatabase();
    let statements = 0;
    const counted: Database = {
      ...own.db,
      query: (...args: Parameters<Database['query']>) => {
        statements++;
        return own.db.query(...args);
      },
    } as Database;
    const idle = { ...config, pollSeconds: 600 };
    const worker = startWebhookDispatcher(counted, idle, { policy: webhookPolicy(idle), userAgent: 'test' });
    const reminders = startReminderWorker(createTaskService(counted, { tasksPerUser: 5000 }), { pollSeconds: 600 });
    try {
      await new Promise((r) => setTimeout(r, 1500));
      // One look each at start: a claim or a firing, then when the next is due (none is).
      expect(statements).toBeLessThanOrEqual(4);
      expect(statements).toBeGreaterThanOrEqual(2);
      // A message due but held back by the per-endpoint limit (another instance's attempt holds
      // the endpoint's one slot for 5 s more): the instance waits for that lease, not in a loop.
      await own.db.query(
        `WITH e AS (INSERT INTO webhook_endpoints (user_id, url, events, secret) VALUES ('idle', 'https://93.184.216.34/', '{task.created}', 'whsec_x') RETURNING id)
         INSERT INTO webhook_messages (endpoint_id, message_id, event_type, data, leased_until, next_attempt_at)
         SELECT id, 'msg_' || md5(n::text), 'task.created', '{}', CASE WHEN n = 1 THEN now() + interval '5 seconds' END,
                CASE WHEN n = 1 THEN now() + interval '5 seconds' ELSE now() END
           FROM e, generate_series(1, 2) n`,
      );
      await worker.stop(0);
      const limited = startWebhookDispatcher(
        counted,
        { ...idle, concurrencyPerEndpoint: 1 },
        { policy: webhookPolicy(idle), userAgent: 'test' },
      );
      statements = 0;
      await new Promise((r) => setTimeout(r, 1500));
      await limited.stop(0);
      expect(statements).toBeLessThanOrEqual(4);
    } finally {
      reminders.stop();
      await worker.stop(0);
      await own.drop();
    }
  });
});
