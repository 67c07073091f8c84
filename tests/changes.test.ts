// The change feed (GET /api/tasks/changes) and the live stream (GET /api/events): a full sync and
// what follows, deletes as tombstones, cursors bound to their user and expiring, tickets, the
// stream's replay and resume; then writers on two instances of the app while one client follows
// the feed and another the stream (dropped and resumed), both ending with exactly the server's
// tasks. On PostgreSQL the two instances wake each other through LISTEN/NOTIFY.
import type { Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintToken } from '../src/auth/mint-token.js';
import { createLiveChanges, type LiveChanges } from '../src/changes/live.js';
import { createTaskService } from '../src/tasks/service.js';
import { bearer, buildApp, newUser, TEST_SECRET, type TestAppOptions } from './helpers/app.js';
import { createTestDatabase, dbKind, serverUrl, type TestDatabase } from './helpers/db.js';
import { walkPages } from './helpers/pages.js';
import { openSse, type SseStream } from './helpers/sse.js';

type Task = { id: number; title: string; completed: boolean; tags: string[]; updated_at: string };
type Change = { op: 'upsert'; task: Task } | { op: 'delete'; id: number; deleted_at: string };

let database: TestDatabase;
const servers: Server[] = [];
const lives: LiveChanges[] = [];
const streams: SseStream[] = [];

interface Instance {
  base: string;
  app: ReturnType<typeof buildApp>['app'];
  live: LiveChanges;
}

let embeddedLive: LiveChanges | undefined;

async function instance(opts: TestAppOptions = {}, own = false): Promise<Instance> {
  // Instances on PostgreSQL each have their own, woken through LISTEN/NOTIFY; the embedded
  // database lives in one process, so its apps share the process's.
  let live: LiveChanges;
  if (database.url || own) {
    live = createLiveChanges(database.db, { listenUrl: database.url });
    lives.push(live);
  } else {
    embeddedLive ??= createLiveChanges(database.db, { listenUrl: undefined });
    if (!lives.includes(embeddedLive)) lives.push(embeddedLive);
    live = embeddedLive;
  }
  const { app, server } = buildApp(database.db, { ...opts, live });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, app, live };
}

let a: Instance;
let b: Instance;
beforeAll(async () => {
  database = await createTestDatabase();
  a = await instance();
  b = await instance();
});
afterAll(async () => {
  for (const s of streams) s.close();
  for (const l of lives) await l.close();
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
  await database.drop();
});

async function sse(base: string, auth: string | undefined, query = '', headers: Record<string, string> = {}): Promise<SseStream> {
  const s = await openSse(`${base}/api/events${query}`, { ...(auth ? { Authorization: auth } : {}), ...headers });
  streams.push(s);
  return s;
}

async function feed(app: Instance['app'], auth: string, cursor?: string, limit?: number) {
  const q = new URLSearchParams();
  if (cursor) q.set('cursor', cursor);
  if (limit) q.set('limit', String(limit));
  return request(app).get(`/api/tasks/changes?${q}`).set('Authorization', auth);
}

/** A local copy kept by applying changes in order, as a client does. */
function apply(replica: Map<number, Task>, changes: Change[]): void {
  for (const c of changes) {
    if (c.op === 'upsert') replica.set(c.task.id, c.task);
    else replica.delete(c.id);
  }
}

/** Follows the feed from `cursor` to its end; the cursor to continue from. */
async function sync(app: Instance['app'], auth: string, replica: Map<number, Task>, cursor?: string, limit = 7): Promise<string> {
  let next = cursor;
  for (;;) {
    const res = await feed(app, auth, next, limit);
    expect(res.status, res.text.slice(0, 300)).toBe(200);
    apply(replica, res.body.changes);
    next = res.body.cursor;
    if (!res.body.has_more) return next!;
  }
}

async function serverState(auth: string): Promise<Map<number, Task>> {
  const { items } = await walkPages<Task>(a.app, auth, '/api/tasks?limit=500');
  return new Map(items.map((t) => [t.id, t]));
}

const sorted = (m: Map<number, Task>) => [...m.values()].sort((x, y) => x.id - y.id);

describe(`the change feed (${dbKind})`, () => {
  it('a full sync pages through every task, then gives the changes since, deletes as tombstones', async () => {
    const auth = await bearer(newUser());
    const ids: number[] = [];
    for (let i = 0; i < 12; i++)
      ids.push(
        (
          await request(a.app)
            .post('/api/tasks')
            .set('Authorization', auth)
            .send({ title: `t${i}` })
        ).body.id,
      );
    await request(a.app).delete(`/api/tasks/${ids[0]}`).set('Authorization', auth);
    const replica = new Map<number, Task>();
    let cursor = await sync(a.app, auth, replica);
    // The task deleted before the sync leaves nothing to apply; the others are all there.
    expect(sorted(replica)).toEqual(sorted(await serverState(auth)));
    await request(a.app).patch(`/api/tasks/${ids[1]}/complete`).set('Authorization', auth);
    await request(a.app)
      .post('/api/tasks/batch-delete')
      .set('Authorization', auth)
      .send({ ids: [ids[2], ids[3]] });
    const res = await feed(a.app, auth, cursor);
    expect(res.body.changes).toEqual([
      { op: 'upsert', task: expect.objectContaining({ id: ids[1], completed: true }) },
      { op: 'delete', id: ids[2], deleted_at: expect.any(String) },
      { op: 'delete', id: ids[3], deleted_at: expect.any(String) },
    ]);
    apply(replica, res.body.changes);
    cursor = res.body.cursor;
    // Nothing new: no changes, and the cursor still works.
    const quiet = await feed(a.app, auth, cursor);
    expect(quiet.body).toMatchObject({ changes: [], has_more: false });
    expect(sorted(replica)).toEqual(sorted(await serverState(auth)));
  });

  it('a write made while a full sync pages is never lost, nor a delete of a task already sent', async () => {
    const auth = await bearer(newUser());
    const ids: number[] = [];
    for (let i = 0; i < 10; i++)
      ids.push(
        (
          await request(a.app)
            .post('/api/tasks')
            .set('Authorization', auth)
            .send({ title: `t${i}` })
        ).body.id,
      );
    const replica = new Map<number, Task>();
    const first = await feed(a.app, auth, undefined, 3);
    apply(replica, first.body.changes);
    expect(first.body.has_more).toBe(true);
    const sent = (first.body.changes as Change[]).map((c) => (c.op === 'upsert' ? c.task.id : c.id));
    // While paging: a task already sent is deleted, one already sent is changed, one is created.
    await request(a.app).delete(`/api/tasks/${sent[0]}`).set('Authorization', auth);
    await request(a.app).patch(`/api/tasks/${sent[1]}`).set('Authorization', auth).send({ title: 'changed' });
    await request(b.app).post('/api/tasks').set('Authorization', auth).send({ title: 'new' });
    await sync(a.app, auth, replica, first.body.cursor, 3);
    expect(sorted(replica)).toEqual(sorted(await serverState(auth)));
  });

  it.runIf(dbKind === 'postgres')('is not held back by a long transaction in another database of the same server', async () => {
    const other = new pg.Client({ connectionString: serverUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query('SELECT pg_current_xact_id()');
      const auth = await bearer(newUser());
      const cursor = (await feed(a.app, auth)).body.cursor;
      await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'right away' });
      const res = await feed(a.app, auth, cursor);
      expect(res.body.changes).toEqual([{ op: 'upsert', task: expect.objectContaining({ title: 'right away' }) }]);
    } finally {
      await other.query('ROLLBACK');
      await other.end();
    }
  });

  it("refuses another user's cursor, and one it never issued, as invalid_cursor", async () => {
    const alice = await bearer(newUser());
    const bob = await bearer(newUser());
    const cursor = (await feed(a.app, alice)).body.cursor;
    const res = await feed(a.app, bob, cursor);
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'invalid_cursor', errors: [{ path: '/query/cursor' }] });
    expect((await feed(a.app, alice, 'bm90LW91cnM')).body.code).toBe('invalid_cursor');
  });

  it('answers 410 cursor_expired for a cursor older than the retention, and after its tombstones were purged', async () => {
    const short = await instance({ changes: { retentionSeconds: 1 } });
    const auth = await bearer(newUser());
    const t = (await request(short.app).post('/api/tasks').set('Authorization', auth).send({ title: 'x' })).body;
    const cursor = (await feed(short.app, auth)).body.cursor;
    await request(short.app).delete(`/api/tasks/${t.id}`).set('Authorization', auth);
    await new Promise((r) => setTimeout(r, 2100));
    const old = await feed(short.app, auth, cursor);
    expect(old.status).toBe(410);
    expect(old.body).toMatchObject({ code: 'cursor_expired', status: 410 });
    expect(old.body.detail).toMatch(/1 second.*full sync/);
    // Purged: the tombstone is gone; a full sync still gives the right state.
    const service = createTaskService(database.db, { tasksPerUser: 5000, changesRetentionSeconds: 1 });
    expect(await service.purgeChanges()).toBeGreaterThanOrEqual(1);
    const replica = new Map<number, Task>();
    await sync(short.app, auth, replica);
    expect(replica.size).toBe(0);
  });

  it("never shows another user's changes", async () => {
    const alice = await bearer(newUser());
    const bob = await bearer(newUser());
    await request(a.app).post('/api/tasks').set('Authorization', bob).send({ title: 'secret' });
    const replica = new Map<number, Task>();
    await sync(a.app, alice, replica);
    expect(replica.size).toBe(0);
  });

  it('is on the /api/{userId} family too', async () => {
    const user = newUser();
    const auth = await bearer(user);
    await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'x' });
    const res = await request(a.app).get(`/api/${user}/tasks/changes`).set('Authorization', auth);
    expect(res.status).toBe(200);
    expect(res.body.changes).toHaveLength(1);
    expect((await request(a.app).get(`/api/${newUser()}/tasks/changes`).set('Authorization', auth)).status).toBe(403);
  });
});

describe(`the event stream (${dbKind})`, () => {
  it('streams each change with a feed cursor as its id, and resumes from Last-Event-ID', async () => {
    const auth = await bearer(newUser());
    const s = await sse(a.base, auth);
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(s.headers.get('cache-control')).toBe('no-cache');
    expect(s.headers.get('x-accel-buffering')).toBe('no');
    expect(s.headers.get('content-encoding')).toBeNull();
    const ready = await s.next((e) => e.event === 'ready');
    expect(ready.id).toEqual(expect.any(String));
    expect(s.retry).toBeGreaterThanOrEqual(2000);
    const created = (await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'live' })).body;
    const change = await s.next((e) => e.event === 'change');
    expect(JSON.parse(change.data)).toEqual({ op: 'upsert', task: created });
    s.close();
    // While away: a change, and a task created and deleted. Resuming replays the task as it is
    // now and the tombstone (a task created and deleted meanwhile is its tombstone alone).
    await request(a.app).patch(`/api/tasks/${created.id}`).set('Authorization', auth).send({ title: 'renamed' });
    const other = (await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'gone' })).body;
    await request(a.app).delete(`/api/tasks/${other.id}`).set('Authorization', auth);
    const resumed = await sse(a.base, auth, '', { 'Last-Event-ID': change.id! });
    await resumed.next((e) => e.event === 'change' && JSON.parse(e.data).op === 'delete');
    const replayed: Change[] = resumed.events.filter((e) => e.event === 'change').map((e) => JSON.parse(e.data));
    expect(replayed).toEqual([
      { op: 'upsert', task: expect.objectContaining({ id: created.id, title: 'renamed' }) },
      { op: 'delete', id: other.id, deleted_at: expect.any(String) },
    ]);
    const replica = new Map<number, Task>([[created.id, created]]);
    apply(replica, replayed);
    expect(sorted(replica)).toEqual(sorted(await serverState(auth)));
    // The event id is a cursor the feed accepts.
    const lastId = resumed.events.filter((e) => e.event === 'change').at(-1)!.id!;
    expect((await feed(a.app, auth, lastId)).body.changes).toEqual([]);
  });

  it('a client gone during setup frees its slot, and streams opened at once still count against the limit', async () => {
    const limited = await instance({ changes: { streamsPerUser: 2 } }, true);
    const user = newUser();
    const auth = await bearer(user);
    const { port } = new URL(limited.base);
    // Ten clients that send their request and leave at once, while the server sets their streams up.
    await Promise.all(
      Array.from(
        { length: 10 },
        () =>
          new Promise<void>((resolve) => {
            const socket = connect(Number(port), '127.0.0.1', () => {
              socket.write(`GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth}\r\n\r\n`);
              socket.destroy();
              resolve();
            });
          }),
      ),
    );
    // However late the server gets to them, none keeps a slot: settle, then count.
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 250 && limited.live.hub.count(user) > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(limited.live.hub.count(user)).toBe(0);
    // Six at once against a limit of two: two open, four are refused.
    const opened = await Promise.all(Array.from({ length: 6 }, () => sse(limited.base, auth)));
    expect(opened.map((o) => o.status).sort()).toEqual([200, 200, 429, 429, 429, 429]);
    for (const o of opened) o.close();
  });

  it('sends a heartbeat comment, at most every EVENTS_HEARTBEAT_SECONDS', async () => {
    const beating = await instance({ changes: { heartbeatSeconds: 1 } }, true);
    const s = await sse(beating.base, await bearer(newUser()));
    await s.next((e) => e.event === 'ready');
    await new Promise((r) => setTimeout(r, 2300));
    expect(s.comments).toBeGreaterThanOrEqual(2);
    s.close();
  });

  it('refuses a ticket whose token has expired, and a cursor whose numbers the database cannot hold', async () => {
    const user = newUser();
    const service = createTaskService(database.db, { tasksPerUser: 5000 });
    const { ticket } = await service.issueTicket(user, Math.floor(Date.now() / 1000) - 1);
    const late = await sse(a.base, undefined, `?ticket=${ticket}`);
    expect(late.status).toBe(401);
    expect(JSON.parse(await late.text())).toMatchObject({ code: 'token_expired' });
    const auth = await bearer(user);
    const real = JSON.parse(Buffer.from((await feed(a.app, auth)).body.cursor, 'base64url').toString());
    for (const field of ['x', 'f', 's']) {
      const forged = Buffer.from(JSON.stringify({ ...real, [field]: '99999999999999999999' })).toString('base64url');
      const res = await feed(a.app, auth, forged);
      expect(res.status, field).toBe(422);
      expect(res.body).toMatchObject({
        code: 'invalid_cursor',
        errors: [{ path: '/query/cursor', message: 'is not a cursor this API issued' }],
      });
    }
  });

  it('answers 503 server_busy past the instance limit, whoever asks', async () => {
    // Its own streams only: the embedded instances of this file otherwise share one process's.
    const full = await instance({ changes: { streamsMax: 1 } }, true);
    const first = await sse(full.base, await bearer(newUser()));
    await first.next((e) => e.event === 'ready');
    const second = await sse(full.base, await bearer(newUser()));
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('10');
    expect(JSON.parse(await second.text())).toMatchObject({ code: 'server_busy', status: 503 });
    first.close();
  });

  it('answers HEAD with the head alone, and ends', async () => {
    const res = await fetch(`${a.base}/api/events`, { method: 'HEAD', headers: { Authorization: await bearer(newUser()) } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(await res.text()).toBe('');
  });

  it('takes a single-use ticket in the query, bound to its user; never a token', async () => {
    const user = newUser();
    const token = await mintToken({ secret: TEST_SECRET, userId: user });
    const auth = `Bearer ${token}`;
    const issued = await request(a.app).post('/api/events/tickets').set('Authorization', auth);
    expect(issued.status).toBe(201);
    expect(issued.body).toEqual({ ticket: expect.stringMatching(/^[A-Za-z0-9_-]{20,}$/), expires_at: expect.any(String) });
    expect(Date.parse(issued.body.expires_at) - Date.now()).toBeLessThan(60_000);
    // Usable on the other instance: a reconnect may land anywhere.
    const s = await sse(b.base, undefined, `?ticket=${issued.body.ticket}`);
    expect(s.status).toBe(200);
    await s.next((e) => e.event === 'ready');
    await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'mine' });
    expect(JSON.parse((await s.next((e) => e.event === 'change')).data).task.title).toBe('mine');
    const again = await sse(b.base, undefined, `?ticket=${issued.body.ticket}`);
    expect(again.status).toBe(401);
    expect(JSON.parse(await again.text())).toMatchObject({ code: 'token_invalid' });
    for (const q of [`?access_token=${token}`, `?token=${token}`]) {
      const refused = await sse(a.base, undefined, q);
      expect(refused.status).toBe(401);
      expect(JSON.parse(await refused.text()).detail).toMatch(/token in the URL is refused/);
    }
    // Even beside a valid header, a token in the URL is refused.
    expect((await request(a.app).get(`/api/tasks?access_token=${token}`).set('Authorization', auth)).status).toBe(401);
  });

  it('an expired ticket opens nothing', async () => {
    const user = newUser();
    const service = createTaskService(database.db, { tasksPerUser: 5000 });
    const { ticket } = await service.issueTicket(user, Math.floor(Date.now() / 1000) + 600, 1);
    await new Promise((r) => setTimeout(r, 1200));
    expect((await sse(a.base, undefined, `?ticket=${ticket}`)).status).toBe(401);
  });

  it("never carries another user's change", async () => {
    const alice = await bearer(newUser());
    const bob = await bearer(newUser());
    const s = await sse(a.base, alice);
    await s.next((e) => e.event === 'ready');
    await request(a.app).post('/api/tasks').set('Authorization', bob).send({ title: 'bob' });
    await request(a.app).post('/api/tasks').set('Authorization', alice).send({ title: 'alice' });
    const change = await s.next((e) => e.event === 'change');
    expect(JSON.parse(change.data).task.title).toBe('alice');
    await new Promise((r) => setTimeout(r, 200));
    expect(s.events.filter((e) => e.event === 'change')).toHaveLength(1);
  });

  it('an open stream outlives the retention: its own position never expires by age', async () => {
    const short = await instance({ changes: { retentionSeconds: 1 } });
    const auth = await bearer(newUser());
    const s = await sse(short.base, auth);
    await s.next((e) => e.event === 'ready');
    await new Promise((r) => setTimeout(r, 2100));
    await request(short.app).post('/api/tasks').set('Authorization', auth).send({ title: 'after a quiet while' });
    const change = await s.next((e) => e.event === 'change' || e.event === 'cursor_expired');
    expect(change.event).toBe('change');
    expect(JSON.parse(change.data).task.title).toBe('after a quiet while');
  });

  it('says cursor_expired, with an empty id, for a Last-Event-ID older than the retention', async () => {
    const short = await instance({ changes: { retentionSeconds: 1 } });
    const auth = await bearer(newUser());
    const cursor = (await feed(short.app, auth)).body.cursor;
    await new Promise((r) => setTimeout(r, 2100));
    const s = await sse(short.base, auth, '', { 'Last-Event-ID': cursor });
    const expired = await s.next((e) => e.event === 'cursor_expired');
    expect(expired.id).toBe('');
    expect(JSON.parse(expired.data)).toMatchObject({ code: 'cursor_expired', status: 410 });
    await s.ended;
  });

  it('limits streams per user, ends them when the token expires and at shutdown', async () => {
    // Its own streams only: the shutdown below must not end the other instances' in this process.
    const limited = await instance({ changes: { streamsPerUser: 2 } }, true);
    const user = newUser();
    const auth = await bearer(user);
    const open = [await sse(limited.base, auth), await sse(limited.base, auth)];
    for (const s of open) await s.next((e) => e.event === 'ready');
    const third = await sse(limited.base, auth);
    expect(third.status).toBe(429);
    expect(third.headers.get('retry-after')).toBe('10');
    // A token about to expire: its stream ends with it.
    const brief = `Bearer ${await mintToken({ secret: TEST_SECRET, userId: newUser(), ttlSec: 2 })}`;
    const short = await sse(limited.base, brief);
    await short.next((e) => e.event === 'ready');
    await short.ended;
    // Shutdown ends the rest.
    limited.live.endStreams();
    await Promise.all(open.map((s) => s.ended));
  });
});

describe(`two instances, writers on both, a feed follower and a stream follower (${dbKind})`, () => {
  it('both end with exactly the server tasks; a change on one instance reaches a stream on the other within 1 s', async () => {
    const auth = await bearer(newUser());
    // Within a second, across instances.
    const watcher = await sse(b.base, auth);
    await watcher.next((e) => e.event === 'ready');
    const started = Date.now();
    await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'across' });
    await watcher.next((e) => e.event === 'change', 1000);
    expect(Date.now() - started).toBeLessThan(1000);
    watcher.close();

    const feedReplica = new Map<number, Task>();
    let feedCursor = await sync(a.app, auth, feedReplica);
    // The stream follower starts as a client does: a full sync, then the stream from its cursor.
    const streamReplica = new Map<number, Task>();
    let lastId: string | undefined = await sync(b.app, auth, streamReplica);
    const follow = async (s: SseStream, upTo: () => boolean) => {
      let seen = 0;
      while (!upTo()) {
        try {
          await s.next(() => s.events.length > seen, 500);
        } catch {
          continue;
        }
        for (; seen < s.events.length; seen++) {
          const e = s.events[seen]!;
          if (e.event === 'change') {
            apply(streamReplica, [JSON.parse(e.data)]);
            lastId = e.id;
          } else if (e.event === 'ready') lastId = e.id;
        }
      }
    };

    let writing = true;
    const writers = [a, b, a, b].map(async (inst, w) => {
      const mine: number[] = [];
      for (let i = 0; i < 25; i++) {
        const roll = (i * 7 + w * 3) % 5;
        if (roll < 2 || mine.length === 0) {
          const res = await request(inst.app)
            .post('/api/tasks')
            .set('Authorization', auth)
            .send({ title: `w${w}-${i}` });
          mine.push(res.body.id);
        } else if (roll === 2) {
          await request(inst.app)
            .patch(`/api/tasks/${mine[i % mine.length]}/complete`)
            .set('Authorization', auth);
        } else if (roll === 3) {
          await request(inst.app)
            .patch('/api/tasks')
            .set('Authorization', auth)
            .send({ ids: mine.slice(0, 3), add_tags: [`r${i}`] });
        } else {
          const id = mine.splice(i % mine.length, 1)[0]!;
          await request(inst.app).delete(`/api/tasks/${id}`).set('Authorization', auth);
        }
      }
    });
    // The feed follower reads while they write.
    const feeding = (async () => {
      while (writing) {
        feedCursor = await sync(a.app, auth, feedReplica, feedCursor);
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    // The stream follower is dropped and resumes with Last-Event-ID, alternating instances.
    const streaming = (async () => {
      let round = 0;
      while (writing) {
        const inst = round++ % 2 ? a : b;
        const s = await sse(inst.base, auth, '', lastId ? { 'Last-Event-ID': lastId } : {});
        const until = Date.now() + 150;
        await follow(s, () => Date.now() > until || !writing);
        s.close();
      }
    })();
    await Promise.all(writers);
    writing = false;
    await Promise.all([feeding, streaming]);
    // The last reads after the writes: both copies equal the server's tasks.
    feedCursor = await sync(a.app, auth, feedReplica, feedCursor);
    const final = await sse(b.base, auth, '', lastId ? { 'Last-Event-ID': lastId } : {});
    const truth = await serverState(auth);
    const deadline = Date.now() + 5000;
    await follow(final, () => JSON.stringify(sorted(streamReplica)) === JSON.stringify(sorted(truth)) || Date.now() > deadline);
    final.close();
    const diff = (m: Map<number, Task>) => ({
      missing: [...truth.keys()].filter((id) => !m.has(id)),
      extra: [...m.keys()].filter((id) => !truth.has(id)),
    });
    expect({ feed: diff(feedReplica), stream: diff(streamReplica) }).toEqual({
      feed: { missing: [], extra: [] },
      stream: { missing: [], extra: [] },
    });
    expect(sorted(feedReplica)).toEqual(sorted(truth));
    expect(sorted(streamReplica)).toEqual(sorted(truth));
  });

  it.runIf(dbKind === 'postgres')('recovers from a dead listener connection: changes from the other instance still arrive', async () => {
    const auth = await bearer(newUser());
    const s = await sse(b.base, auth);
    await s.next((e) => e.event === 'ready');
    for (let i = 0; i < 50 && !b.live.wakeups!.listening; i++) await new Promise((r) => setTimeout(r, 100));
    const pid = await b.live.wakeups!.listenerPid();
    expect(pid).toEqual(expect.any(Number));
    await database.db.query('SELECT pg_terminate_backend($1)', [pid]);
    // Reconnected (a new backend), it re-reads, and wake-ups flow again.
    let next: number | undefined;
    for (let i = 0; i < 100; i++) {
      next = await b.live.wakeups!.listenerPid();
      if (next !== undefined && next !== pid) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(next).toEqual(expect.any(Number));
    expect(next).not.toBe(pid);
    const started = Date.now();
    await request(a.app).post('/api/tasks').set('Authorization', auth).send({ title: 'after' });
    await s.next((e) => e.event === 'change', 1000);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
