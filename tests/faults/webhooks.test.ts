// Webhooks across kill -9: a burst of writes on the shipped server (two instances on PostgreSQL,
// writers on both), a receiver on loopback that verifies every delivery with the official
// `standardwebhooks` library and answers slowly, so deliveries are in flight when an instance is
// killed. The instance is started again on the same storage; in the end the receiver has every
// event, each id at least once, each signature the endpoint's.
import { describe, expect, it } from 'vitest';
import { bearer, newUser } from '../helpers/app.js';
import { dbKind } from '../helpers/db.js';
import { startReceiver, verified } from '../helpers/receiver.js';
import { cleanupsAfterAll, type ServerProcess, startServer, storageEnv } from './process.js';

const cleanups = cleanupsAfterAll();
const WRITES = 240;

describe(`webhooks survive kill -9 (${dbKind})`, () => {
  it('every event of a burst of writes reaches the receiver, signed, after an instance is killed mid-delivery', {
    timeout: 120_000,
  }, async () => {
    const storage = await storageEnv(cleanups);
    const env = {
      ...storage,
      // A receiver on loopback needs the development setting, which production refuses.
      NODE_ENV: 'development',
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_TIMEOUT_MS: '2000',
      WEBHOOK_RETRY_SCHEDULE: '1,1,1,1,1,1,1,1,1,1',
      WEBHOOK_POLL_SECONDS: '1',
    };
    const servers: ServerProcess[] = [];
    cleanups.push(async () => {
      for (const s of servers) s.child.kill('SIGKILL');
      await Promise.all(servers.map((s) => s.exited));
    });
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    // Slow answers: the killed instance has deliveries in flight.
    receiver.answer = () => new Promise((resolve) => setTimeout(() => resolve({ status: 204 }), 100));

    const first = await startServer(env);
    servers.push(first);
    const second = dbKind === 'postgres' ? await startServer(env) : undefined;
    if (second) servers.push(second);
    const auth = await bearer(newUser(), { ttlSec: 600 });
    const headers = { Authorization: auth, 'Content-Type': 'application/json' };
    const registered = await fetch(`${first.base}/api/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: receiver.url, events: ['task.created'] }),
    });
    expect(registered.status).toBe(201);
    const { secret } = (await registered.json()) as { secret: string };

    // Writers on every instance; the first is killed once the receiver has some of the burst.
    const bases = [first.base, ...(second ? [second.base] : [])];
    const created = new Set<number>();
    let next = 0;
    let killed = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      while (next < WRITES) {
        const i = next++;
        const base = bases[w % bases.length]!;
        if (killed && base === first.base) {
          next--;
          return;
        }
        try {
          const res = await fetch(`${base}/api/tasks`, { method: 'POST', headers, body: JSON.stringify({ title: `w${i}` }) });
          if (res.status === 201) created.add(((await res.json()) as { id: number }).id);
        } catch {
          // The killed instance's open requests fail: those writes were not acknowledged (and
          // may or may not have committed), and are not counted.
          if (!killed) throw new Error('a write failed before the kill');
          next = Math.min(next, i);
          return;
        }
      }
    });
    await receiver.until(20);
    killed = true;
    first.child.kill('SIGKILL');
    await first.exited;
    await Promise.all(writers);
    // The rest of the burst goes to whichever instance is up.
    const restarted = await startServer(env);
    servers.push(restarted);
    while (next < WRITES) {
      const i = next++;
      const res = await fetch(`${restarted.base}/api/tasks`, { method: 'POST', headers, body: JSON.stringify({ title: `w${i}` }) });
      expect(res.status).toBe(201);
      created.add(((await res.json()) as { id: number }).id);
    }
    expect(created.size).toBeGreaterThanOrEqual(WRITES - 8);

    // Every acknowledged write's event arrives (writes the kill cut off may add a few more).
    const received = new Map<number, string>();
    const until = Date.now() + 60_000;
    for (;;) {
      for (const r of receiver.received) {
        const event = verified(secret, r);
        expect(event.type).toBe('task.created');
        received.set(event.data.task_id as number, r.headers['webhook-id']!);
      }
      if ([...created].every((id) => received.has(id)) || Date.now() > until) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect([...created].filter((id) => !received.has(id))).toEqual([]);
    // One id per event: a redelivery after the kill repeats an id, never makes a new one.
    const idsPerTask = new Map<number, Set<string>>();
    for (const r of receiver.received) {
      const id = verified(secret, r).data.task_id as number;
      idsPerTask.set(id, (idsPerTask.get(id) ?? new Set()).add(r.headers['webhook-id']!));
    }
    expect([...idsPerTask.values()].every((s) => s.size === 1)).toBe(true);
    console.log(
      `webhooks: ${created.size} acknowledged writes, ${receiver.received.length} deliveries of ${idsPerTask.size} events (${receiver.received.length - idsPerTask.size} repeated after the kill)`,
    );
  });

  it('the shipped server in production refuses loopback, link-local and private URLs, and plain http', { timeout: 60_000 }, async () => {
    const storage = await storageEnv(cleanups);
    const server = await startServer(storage);
    cleanups.push(async () => {
      server.child.kill('SIGKILL');
      await server.exited;
    });
    const headers = { Authorization: await bearer(newUser()), 'Content-Type': 'application/json' };
    for (const url of [
      'http://127.0.0.1/hook',
      'http://[::1]/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://10.0.0.1/hook',
      'https://[::ffff:10.0.0.1]/hook',
      'https://localhost/hook',
      'http://93.184.216.34/hook',
    ]) {
      const res = await fetch(`${server.base}/api/webhooks`, { method: 'POST', headers, body: JSON.stringify({ url }) });
      expect(res.status, url).toBe(422);
      const problem = (await res.json()) as { code: string; errors: { path: string }[] };
      expect(problem.code).toBe('validation_failed');
      expect(problem.errors.map((e) => e.path)).toEqual(['/body/url']);
    }
    // A public https address is accepted (nothing is resolved for an address).
    const ok = await fetch(`${server.base}/api/webhooks`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ url: 'https://93.184.216.34/hook' }),
    });
    expect(ok.status).toBe(201);
  });
});
