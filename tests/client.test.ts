// The SDK against the real server on an ephemeral port: every operation, pagination through the
// Link header, and each error kind as a TodoApiError.
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyChanges,
  cachedToken,
  createTodoClient,
  MissingETagError,
  nextCursorFromLink,
  TodoApiError,
  type Task,
} from '../packages/client/src/index.js';
import { createLiveChanges } from '../src/changes/live.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { startReminderWorker } from '../src/reminders/worker.js';
import { createTaskService } from '../src/tasks/service.js';
import { webhookPolicy } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { startWebhookDispatcher } from '../src/webhooks/dispatcher.js';
import { startReceiver, verified } from './helpers/receiver.js';
import { mintToken } from '../src/auth/mint-token.js';
import { buildApp, newUser, TEST_SECRET } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let database: TestDatabase;
const servers: Server[] = [];

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let baseUrl: string;
beforeAll(async () => {
  database = await createTestDatabase();
  baseUrl = await listen(buildApp(database.db, { bodyLimitBytes: 8192 }).server);
});
afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await database.drop();
});

function clientFor(userId: string) {
  // Async, like Better Auth's authClient.token().
  return createTodoClient({ baseUrl, getToken: async () => mintToken({ secret: TEST_SECRET, userId }) });
}

async function caught(p: Promise<unknown>): Promise<TodoApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TodoApiError);
  return err as TodoApiError;
}

describe('createTodoClient, contract 1.1', () => {
  it('filters, sorts, counts, clears, and writes with ETags and idempotency keys', async () => {
    const client = clientFor(newUser());
    const key = 'sdk-key-1';
    const milk = await client.createTask(
      { title: 'Buy milk', tags: ['home', 'groceries'], priority: 'high', position: 10 },
      { idempotencyKey: key },
    );
    const again = await client.createTask(
      { title: 'Buy milk', tags: ['home', 'groceries'], priority: 'high', position: 10 },
      { idempotencyKey: key },
    );
    expect(again.id).toBe(milk.id);
    const reused = await caught(client.createTask({ title: 'Other' }, { idempotencyKey: key }));
    expect(reused).toMatchObject({ status: 422, code: 'idempotency_key_reused' });
    const bread = await client.createTask({ title: 'Buy bread', tags: ['groceries'], position: 5, completed: true });

    // Repeated query parameters (tag) and the new sorts and search go through the SDK's serializer.
    expect((await client.listTasks({ tag: ['home', 'groceries'] })).tasks.map((t) => t.id)).toEqual([milk.id]);
    expect((await client.listTasks({ sort: 'position' })).tasks.map((t) => t.id)).toEqual([bread.id, milk.id]);
    expect((await client.listTasks({ q: 'buy mil' })).tasks.map((t) => t.id)).toEqual([milk.id]);
    expect(await client.getTaskStats({ tz: 'Europe/Paris' })).toEqual({ total: 2, pending: 1, completed: 1, overdue: 0, due_today: 0 });

    const read = (await client.getTaskWithETag(milk.id))!;
    expect(read.task).toEqual(milk);
    expect(await client.getTaskWithETag(milk.id, { ifNoneMatch: read.etag })).toBeUndefined();
    const written = await client.updateTaskIfMatch(milk.id, read.etag, { title: 'Buy oat milk' });
    expect(written.task.title).toBe('Buy oat milk');
    expect(written.etag).not.toBe(read.etag);
    const stale = await caught(client.replaceTaskIfMatch(milk.id, read.etag, { title: 'lost update' }));
    expect(stale).toMatchObject({ status: 412, code: 'precondition_failed' });
    expect((await client.getTask(milk.id)).title).toBe('Buy oat milk');
    await caught(client.deleteTaskIfMatch(milk.id, read.etag));
    await client.deleteTaskIfMatch(milk.id, written.etag);

    expect(await client.clearCompletedTasks()).toBe(1);
    expect((await client.listTasks()).tasks).toEqual([]);
  });
});

describe('createTodoClient', () => {
  it('runs every operation', async () => {
    const client = clientFor(newUser());
    expect((await client.listTasks()).tasks).toEqual([]);

    const task = await client.createTask({ title: 'From the SDK', description: 'typed' });
    expect(task).toMatchObject({ title: 'From the SDK', description: 'typed', completed: false });
    expect(await client.getTask(task.id)).toEqual(task);

    const replaced = await client.replaceTask(task.id, { title: 'Replaced' });
    expect(replaced).toMatchObject({ title: 'Replaced', description: null });

    const updated = await client.updateTask(task.id, { description: 'again' });
    expect(updated).toMatchObject({ title: 'Replaced', description: 'again' });

    expect((await client.setTaskCompletion(task.id)).completed).toBe(true);
    expect((await client.setTaskCompletion(task.id)).completed).toBe(false);
    expect((await client.setTaskCompletion(task.id, true)).completed).toBe(true);
    expect((await client.setTaskCompletion(task.id, true)).completed).toBe(true);

    expect((await client.listTasks({ status: 'completed' })).tasks.map((t) => t.id)).toEqual([task.id]);
    await client.deleteTask(task.id);
    expect((await caught(client.getTask(task.id))).code).toBe('task_not_found');
  });

  it('follows the change feed page by page, and keeps a copy current with subscribe(), across drops', async () => {
    const client = clientFor(newUser());
    const first = await client.createTask({ title: 'one' });
    await client.createTask({ title: 'two' });
    // The feed, as an iterator of pages, to its end.
    const copy = new Map<number, { id: number; title: string }>();
    let cursor: string | undefined;
    for await (const page of client.changes(undefined, 1)) {
      applyChanges(copy as never, page.changes);
      cursor = page.cursor;
    }
    expect([...copy.values()].map((t) => t.title).sort()).toEqual(['one', 'two']);
    await client.deleteTask(first.id);
    const after = await client.listChanges({ cursor: cursor! });
    expect(after.changes).toEqual([{ op: 'delete', id: first.id, deleted_at: expect.any(String) }]);

    // A live copy: a full sync, then the stream.
    const seen: string[] = [];
    const sub = client.subscribe({ onChange: (c) => seen.push(c.op) });
    await sub.ready;
    expect([...sub.tasks.values()].map((t) => t.title)).toEqual(['two']);
    const three = await client.createTask({ title: 'three' });
    const until = async (ok: () => boolean) => {
      // A dropped stream comes back after the server's retry (2 to 4 s), spread.
      for (let i = 0; i < 300 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(ok()).toBe(true);
    };
    await until(() => sub.tasks.has(three.id));
    // Dropped (the server ends every stream, as at a shutdown): it resumes from its last event.
    for (const s of servers) s.closeAllConnections();
    await client.updateTask(three.id, { title: 'three, renamed' });
    await until(() => sub.tasks.get(three.id)?.title === 'three, renamed');
    sub.close();
    expect(seen).toContain('upsert');
  });

  it('subscribe() calls onReminder for a reminder that falls due, once', async () => {
    // An app whose event streams the reminder worker wakes, as serve.ts wires them.
    const live = createLiveChanges(database.db, { listenUrl: undefined });
    const base = await listen(buildApp(database.db, { live }).server);
    const userId = newUser();
    const client = createTodoClient({ baseUrl: base, getToken: async () => mintToken({ secret: TEST_SECRET, userId }) });
    const reminded: string[] = [];
    const sub = client.subscribe({ onReminder: (r) => reminded.push(`${r.task_id} ${r.title}`) });
    await sub.ready;
    const worker = startReminderWorker(createTaskService(database.db, { tasksPerUser: 5000, changed: live.published }), { pollSeconds: 1 });
    try {
      const task = await client.createTask({ title: 'call mum', reminders: [{ at: new Date(Date.now() + 3_600_000).toISOString() }] });
      // The time comes.
      await database.db.query('UPDATE reminder_schedule SET fire_at = now() WHERE user_id = $1', [userId]);
      worker.poke();
      for (let i = 0; i < 200 && reminded.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 500));
      expect(reminded).toEqual([`${task.id} call mum`]);
      // A reminder changes no task of the copy.
      expect([...sub.tasks.values()].map((t) => t.title)).toEqual(['call mum']);
    } finally {
      worker.stop();
      sub.close();
    }
  });

  it('changes, deletes and counts several tasks at once', async () => {
    const client = clientFor(newUser());
    const a = await client.createTask({ title: 'a', tags: ['Home'] });
    const b = await client.createTask({ title: 'b', due_at: '2027-01-05' });
    expect(b.due_at).toBe('2027-01-05T00:00:00.000000Z');
    const done = await client.updateTasks({ ids: [b.id, a.id], completed: true, add_tags: ['errand'] });
    expect(done.map((t) => [t.id, t.completed, t.tags])).toEqual([
      [b.id, true, ['errand']],
      [a.id, true, ['home', 'errand']],
    ]);
    expect(await client.listTags()).toEqual([
      { tag: 'errand', tasks: 2, pending: 0 },
      { tag: 'home', tasks: 1, pending: 0 },
    ]);
    const missing = await caught(client.updateTasks({ ids: [a.id, 987_654_321], completed: false }));
    expect(missing).toMatchObject({ status: 404, code: 'task_not_found' });
    expect(await client.deleteTasks([a.id, 987_654_321])).toEqual({ deleted: [a.id], not_found: [987_654_321] });
    expect((await client.listTasks()).tasks.map((t) => t.id)).toEqual([b.id]);
  });

  it('pages through the Link header', async () => {
    const client = clientFor(newUser());
    const created: Task[] = [];
    for (let i = 0; i < 7; i++) created.push(await client.createTask({ title: `task ${i}` }));

    const first = await client.listTasks({ limit: 3, sort: 'created_at', order: 'asc' });
    expect(first.tasks.map((t) => t.id)).toEqual(created.slice(0, 3).map((t) => t.id));
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await client.listTasks({ limit: 3, sort: 'created_at', order: 'asc', cursor: first.nextCursor });
    expect(second.tasks.map((t) => t.id)).toEqual(created.slice(3, 6).map((t) => t.id));

    const all: Task[] = [];
    for await (const t of client.listAllTasks({ limit: 2, sort: 'created_at', order: 'asc' })) all.push(t);
    expect(all.map((t) => t.id)).toEqual(created.map((t) => t.id));
  });

  it('manages webhook endpoints: register, verify a delivery with the secret, rotate, read attempts, redeliver', async () => {
    const receiver = await startReceiver();
    const webhooks = { ...loadConfig({ NODE_ENV: 'test' }).webhooks, allowedHosts: ['127.0.0.1'] };
    const dispatcher = startWebhookDispatcher(database.db, webhooks, { policy: webhookPolicy(webhooks), userAgent: 'test' });
    try {
      const url = await listen(buildApp(database.db, { webhooks, written: () => dispatcher.poke() }).server);
      const user = newUser();
      const client = createTodoClient({ baseUrl: url, getToken: async () => mintToken({ secret: TEST_SECRET, userId: user }) });
      const endpoint = await client.createWebhook({ url: receiver.url, events: ['task.created'] });
      expect(endpoint.secret).toMatch(/^whsec_/);
      expect(await client.listWebhooks()).toEqual([expect.objectContaining({ id: endpoint.id, url: receiver.url })]);
      const task = await client.createTask({ title: 'pushed' });
      await receiver.until(1);
      expect(verified(endpoint.secret, receiver.received[0]!)).toMatchObject({ type: 'task.created', data: { task_id: task.id } });
      const rotated = await client.rotateWebhookSecret(endpoint.id);
      expect(rotated.secret).not.toBe(endpoint.secret);
      const [attempt] = await client.listWebhookAttempts(endpoint.id, { limit: 5 });
      expect(attempt).toMatchObject({ event_type: 'task.created', status: 204 });
      expect(await client.redeliverWebhookMessage(endpoint.id, attempt!.message_id)).toMatchObject({ state: 'pending' });
      await receiver.until(2);
      // Redelivered with the same id, signed with both secrets now.
      expect(receiver.received[1]!.headers['webhook-id']).toBe(receiver.received[0]!.headers['webhook-id']);
      expect(verified(rotated.secret, receiver.received[1]!).type).toBe('task.created');
      expect((await client.updateWebhook(endpoint.id, { enabled: false })).disabled_reason).toBe('user');
      expect((await client.getWebhook(endpoint.id)).enabled).toBe(false);
      await client.deleteWebhook(endpoint.id);
      expect((await caught(client.getWebhook(endpoint.id))).code).toBe('webhook_not_found');
    } finally {
      await dispatcher.stop();
      await receiver.close();
    }
  });

  it('reaches the user-scoped paths through raw', async () => {
    const user = newUser();
    const client = clientFor(user);
    const { data } = await client.raw.GET('/api/{userId}/tasks', { params: { path: { userId: user } } });
    expect(data).toEqual([]);
  });

  describe('turns problems into TodoApiError', () => {
    it('401 without a token', async () => {
      const anonymous = createTodoClient({ baseUrl, getToken: () => null });
      const err = await caught(anonymous.listTasks());
      expect(err).toMatchObject({ status: 401, code: 'token_missing', title: 'Unauthorized' });
      expect(err.detail).toMatch(/Bearer/);
      expect(err.requestId).toEqual(expect.any(String));
    });

    it('401 token_expired for an expired token', async () => {
      const expired = createTodoClient({ baseUrl, getToken: () => mintToken({ secret: TEST_SECRET, userId: 'u', ttlSec: -60 }) });
      expect((await caught(expired.listTasks())).code).toBe('token_expired');
    });

    it('403 for another user’s path', async () => {
      const client = clientFor(newUser());
      const { error, response } = await client.raw.GET('/api/{userId}/tasks', { params: { path: { userId: 'someone-else' } } });
      expect(response.status).toBe(403);
      expect(error?.code).toBe('user_mismatch');
    });

    it('404 for a missing task', async () => {
      const err = await caught(clientFor(newUser()).updateTask(123456789, { title: 'x' }));
      expect(err).toMatchObject({ status: 404, code: 'task_not_found' });
    });

    it('413 for a body over the limit', async () => {
      const err = await caught(clientFor(newUser()).createTask({ title: 'big', description: 'x'.repeat(2000).repeat(5) }));
      expect(err).toMatchObject({ status: 413, code: 'payload_too_large' });
    });

    it('422 with field errors', async () => {
      const err = await caught(clientFor(newUser()).createTask({ title: '   ' }));
      expect(err).toMatchObject({ status: 422, code: 'validation_failed' });
      expect(err.errors).toEqual([{ path: '/body/title', message: expect.any(String) }]);
    });

    it('503 with retryAfterSeconds when the database is down', async () => {
      const down = createPostgresDatabase({
        connectionString: 'postgres://x@127.0.0.1:1/x',
        poolMax: 1,
        statementTimeoutMs: 500,
        connectTimeoutMs: 500,
      });
      const url = await listen(buildApp(down).server);
      const client = createTodoClient({ baseUrl: url, getToken: () => mintToken({ secret: TEST_SECRET, userId: 'u' }) });
      const err = await caught(client.listTasks());
      expect(err).toMatchObject({ status: 503, code: 'database_unavailable' });
      expect(err.retryAfterSeconds).toBeGreaterThan(0);
      await down.close();
    });
  });

  it('parses next links', () => {
    expect(nextCursorFromLink('</api/tasks?limit=2&cursor=abc_-1>; rel="next"')).toBe('abc_-1');
    expect(nextCursorFromLink(null)).toBeUndefined();
    expect(nextCursorFromLink('</api/tasks?limit=2>; rel="prev"')).toBeUndefined();
  });

  it('refuses clearly when a response carries no ETag, instead of sending an empty one', async () => {
    const userId = newUser();
    const task = await clientFor(userId).createTask({ title: 'behind a proxy' });
    // What a browser sees when a proxy strips the header, or CORS does not expose it.
    const stripping: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      const headers = new Headers(res.headers);
      headers.delete('ETag');
      return new Response(res.body, { status: res.status, headers });
    };
    const client = createTodoClient({ baseUrl, getToken: () => mintToken({ secret: TEST_SECRET, userId }), fetch: stripping });
    const err = await client.getTaskWithETag(task.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingETagError);
    expect((err as Error).message).toMatch(/no ETag header.*Access-Control-Expose-Headers: ETag/);
  });

  it('is browser-safe: imports nothing but openapi-fetch, generated types and its own modules', () => {
    for (const file of ['index.ts', 'live.ts']) {
      const source = readFileSync(new URL(`../packages/client/src/${file}`, import.meta.url), 'utf8');
      const imports = [...source.matchAll(/^(?:import|export)[^'"]*from '([^']+)'/gm)].map((m) => m[1]);
      for (const name of imports) expect(['openapi-fetch', './openapi.js', './live.js'], `${file}: ${name}`).toContain(name);
      expect(source, file).not.toMatch(/\bprocess\.|\bBuffer\b|require\(/);
    }
  });
});

describe('cachedToken', () => {
  // A clock the test moves; tokens are real JWTs (iat and exp in seconds, as Better Auth's).
  function clock(start = Date.now()) {
    let t = start;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  }
  function counting(fetch: () => Promise<string | null>) {
    const calls = { n: 0 };
    return {
      calls,
      fetch: () => {
        calls.n++;
        return fetch();
      },
    };
  }

  it('fetches once for many calls, concurrent ones included, until 30 s before exp', async () => {
    const c = clock();
    const { calls, fetch } = counting(() => mintToken({ secret: TEST_SECRET, userId: 'u', ttlSec: 900 }));
    const token = cachedToken(fetch, { now: c.now });
    const first = await Promise.all([token(), token(), token()]);
    for (let i = 0; i < 5; i++) expect(await token()).toBe(first[0]);
    expect(new Set(first).size).toBe(1);
    expect(calls.n).toBe(1);
    c.advance((900 - 30) * 1000 - 1);
    await token();
    expect(calls.n).toBe(1);
    c.advance(1);
    await token();
    expect(calls.n).toBe(2);
  });

  it('counts the lifetime from exp - iat on its own clock, so a clock an hour off still caches', async () => {
    for (const offset of [3_600_000, -3_600_000]) {
      const c = clock(Date.now() + offset);
      const { calls, fetch } = counting(() => mintToken({ secret: TEST_SECRET, userId: 'u', ttlSec: 900 }));
      const token = cachedToken(fetch, { now: c.now });
      for (let i = 0; i < 3; i++) await token();
      expect(calls.n).toBe(1);
      c.advance(900_000);
      await token();
      expect(calls.n).toBe(2);
    }
  });

  it('keeps no failure, no empty answer, no token without exp, and nothing after clear()', async () => {
    let answer: () => Promise<string | null> = () => Promise.reject(new Error('network down'));
    const { calls, fetch } = counting(() => answer());
    const token = cachedToken(fetch);
    await expect(token()).rejects.toThrow('network down');
    answer = () => Promise.resolve(null);
    expect(await token()).toBeUndefined();
    const noExp = `e30.${Buffer.from(JSON.stringify({ sub: 'u' })).toString('base64url')}.sig`;
    answer = () => Promise.resolve(noExp);
    expect(await token()).toBe(noExp);
    expect(await token()).toBe(noExp);
    expect(calls.n).toBe(4);

    answer = () => mintToken({ secret: TEST_SECRET, userId: 'u' });
    await token();
    await token();
    expect(calls.n).toBe(5);
    token.clear();
    await token();
    expect(calls.n).toBe(6);

    // A fetch under way when clear() is called (a sign-out) is not kept.
    let release!: (t: string) => void;
    answer = () => new Promise<string>((resolve) => (release = resolve));
    token.clear();
    const during = token();
    token.clear();
    release(await mintToken({ secret: TEST_SECRET, userId: 'before-sign-out' }));
    expect(await during).toEqual(expect.any(String)); // the caller that asked before the sign-out gets it
    answer = () => mintToken({ secret: TEST_SECRET, userId: 'u' });
    await token();
    expect(calls.n).toBe(8);
  });

  it('is cleared by a 401 from the API, so the next call gets a new token', async () => {
    const userId = newUser();
    // The first token is signed with a key the API does not know: 401 token_invalid.
    const secrets = ['another-secret-that-is-long-enough-0123', TEST_SECRET];
    const { calls, fetch } = counting(() => mintToken({ secret: secrets[Math.min(calls.n, 2) - 1]!, userId }));
    const client = createTodoClient({ baseUrl, getToken: cachedToken(fetch) });
    expect((await caught(client.listTasks())).code).toBe('token_invalid');
    expect((await client.listTasks()).tasks).toEqual([]);
    await client.createTask({ title: 'with the second token' });
    expect(calls.n).toBe(2);
  });
});
