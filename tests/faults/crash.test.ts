// kill -9 in the middle of a write load, then a restart on the same storage: every task that got a
// 201 is there, every acknowledged replacement is there (or a later one that was in flight), and no
// task shows half of an update.
import { describe, expect, it } from 'vitest';
import { bearer, newUser } from '../helpers/app.js';
import { dbKind } from '../helpers/db.js';
import { cleanupsAfterAll, startServer, storageEnv, type ServerProcess } from './process.js';

const cleanups = cleanupsAfterAll();

interface Tracked {
  id: number;
  /** The version of the last acknowledged write (0 = the create). */
  acked: number;
  /** The highest version sent, acknowledged or not. */
  sent: number;
}

// Version n of a task: title, description and completion all say n, so a torn update would show.
const content = (name: string, n: number) => ({ title: `${name} v${n}`, description: `v${n}`, completed: n % 2 === 1 });

/** One client: creates tasks and replaces its own, one request at a time, until told to stop. */
async function writer(
  base: string,
  auth: string,
  name: string,
  stop: { now: boolean },
  created: Map<string, Tracked>,
  unacked: Set<string>,
) {
  const headers = { Authorization: auth, 'Content-Type': 'application/json' };
  for (let i = 0; !stop.now; i++) {
    try {
      const mine = [...created.entries()].filter(([k]) => k.startsWith(`${name}-`));
      if (i % 3 === 0 || mine.length === 0) {
        const key = `${name}-${i}`;
        unacked.add(key);
        const res = await fetch(`${base}/api/tasks`, { method: 'POST', headers, body: JSON.stringify(content(key, 0)) });
        if (res.status !== 201) throw new Error(`create answered ${res.status}`);
        const task = (await res.json()) as { id: number };
        unacked.delete(key);
        created.set(key, { id: task.id, acked: 0, sent: 0 });
      } else {
        const [key, t] = mine[i % mine.length]!;
        const n = t.sent + 1;
        t.sent = n;
        const res = await fetch(`${base}/api/tasks/${t.id}`, { method: 'PUT', headers, body: JSON.stringify(content(key, n)) });
        if (res.status !== 200) throw new Error(`replace answered ${res.status}`);
        await res.json();
        t.acked = n;
      }
    } catch (err) {
      if (stop.now) return; // the kill: this request's fate is unknown, which the checks allow
      throw err;
    }
  }
}

async function allTasks(base: string, auth: string) {
  const tasks: { id: number; title: string; description: string | null; completed: boolean }[] = [];
  let url: string | undefined = `${base}/api/tasks?limit=500&sort=created_at&order=asc`;
  while (url) {
    const res: Response = await fetch(url, { headers: { Authorization: auth } });
    expect(res.status).toBe(200);
    tasks.push(...((await res.json()) as typeof tasks));
    const next: string | undefined = /<([^>]+)>; rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
    url = next ? new URL(next, base).toString() : undefined;
  }
  return tasks;
}

describe(`kill -9 during writes (${dbKind})`, () => {
  it('loses no acknowledged write and shows no torn update', { timeout: 180_000 }, async () => {
    const env = await storageEnv(cleanups);
    const users = [newUser(), newUser(), newUser(), newUser()];
    const auths = await Promise.all(users.map((u) => bearer(u)));
    const created = users.map(() => new Map<string, Tracked>());
    const unacked = users.map(() => new Set<string>());

    for (let round = 0; round < 3; round++) {
      const server: ServerProcess = await startServer(env);
      const stop = { now: false };
      const writers = users.flatMap((_, u) =>
        [0, 1].map((w) => writer(server.base, auths[u]!, `r${round}w${w}`, stop, created[u]!, unacked[u]!)),
      );
      // Enough writes to be mid-flight, then the kill with requests outstanding.
      const before = created.reduce((n, m) => n + [...m.values()].reduce((a, t) => a + 1 + t.acked, 0), 0);
      for (let waited = 0; waited < 30_000; waited += 50) {
        const now = created.reduce((n, m) => n + [...m.values()].reduce((a, t) => a + 1 + t.acked, 0), 0);
        if (now - before >= 150) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      stop.now = true;
      server.child.kill('SIGKILL');
      expect(await server.exited).toBe('SIGKILL');
      await Promise.all(writers);
    }

    const server = await startServer(env);
    try {
      let acknowledged = 0;
      for (let u = 0; u < users.length; u++) {
        const stored = new Map((await allTasks(server.base, auths[u]!)).map((t) => [t.id, t]));
        for (const [key, t] of created[u]!) {
          acknowledged += 1 + t.acked;
          const row = stored.get(t.id);
          expect(row, `task ${key} (id ${t.id}) was acknowledged`).toBeDefined();
          const version = Number(/ v(\d+)$/.exec(row!.title)![1]);
          // Whole: the title, description and completion of one version, never a mix.
          expect(row).toMatchObject({ id: t.id, ...content(key, version) });
          // Durable: at least the acknowledged version; at most the last one sent.
          expect(version).toBeGreaterThanOrEqual(t.acked);
          expect(version).toBeLessThanOrEqual(t.sent);
          stored.delete(t.id);
        }
        // Anything else is a create that was in flight at a kill: whole, if it exists at all.
        for (const row of stored.values()) {
          const key = /^(\S+) v0$/.exec(row.title)?.[1];
          expect(key && unacked[u]!.has(key), `unexpected task ${row.title}`).toBe(true);
          expect(row).toMatchObject(content(key!, 0));
        }
      }
      console.log(`crash test (${dbKind}): 3 kills, ${acknowledged} acknowledged writes, all present`);
      expect(acknowledged).toBeGreaterThanOrEqual(450);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
