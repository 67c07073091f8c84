// The database goes away under load — refused outright, then hanging in a blackhole — and comes
// back. Throughout: answers are fast 503 problems with Retry-After (no hung sockets), /ready says
// 503, the process stays up; afterwards it recovers by itself, and every acknowledged write is there.
import { describe, expect, it } from 'vitest';
import { bearer, newUser } from '../helpers/app.js';
import { createTestDatabase, dbKind, serverUrl, type TestDatabase } from '../helpers/db.js';
import { cleanupsAfterAll, startServer, type ServerProcess } from './process.js';
import { startProxy, type CuttableProxy, type ProxyMode } from './proxy.js';

const CONNECT_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 1000;
// The longest a request may take while the database is away: a connection attempt or a statement
// timing out (the client-side guard fires a second after the statement timeout), plus slack for a
// loaded machine.
const FAIL_FAST_MS = STATEMENT_TIMEOUT_MS + 1000 + 2000;

interface Outcome {
  phase: ProxyMode | 'recovered';
  status: number | 'error';
  ms: number;
  problem?: { contentType: string | null; retryAfter: string | null; code?: string };
}

const cleanups = cleanupsAfterAll();

// PostgreSQL only: the embedded database runs inside the process and cannot go away alone.
describe(`database outage under load (${dbKind === 'postgres' ? 'postgres' : 'skipped: a PostgreSQL-mode test'})`, () => {
  it.skipIf(dbKind !== 'postgres')(
    'fails fast with 503 while PostgreSQL is gone or hanging, recovers by itself, keeps every acknowledged write',
    { timeout: 120_000 },
    async () => {
      const t: TestDatabase = await createTestDatabase();
      cleanups.push(() => t.drop());
      const target = new URL(serverUrl!);
      const proxy: CuttableProxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
      cleanups.push(() => proxy.close());
      const viaProxy = new URL(t.url!);
      viaProxy.host = `127.0.0.1:${proxy.port}`;

      const server: ServerProcess = await startServer({
        DATABASE_URL: viaProxy.toString(),
        DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
        DB_POOL_MAX: '4',
      });
      cleanups.push(async () => {
        server.child.kill('SIGKILL');
        await server.exited;
      });

      const user = newUser();
      const auth = await bearer(user);
      let phase: Outcome['phase'] = 'forward';
      const outcomes: Outcome[] = [];
      const acked = new Map<number, string>();
      let stop = false;

      async function call(path: string, init: RequestInit = {}): Promise<Response | undefined> {
        const started = performance.now();
        const at = phase;
        try {
          // A hung socket would show as this abort, which the checks below count as a failure.
          const res = await fetch(`${server.base}${path}`, { ...init, signal: AbortSignal.timeout(15_000) });
          const outcome: Outcome = { phase: at, status: res.status, ms: performance.now() - started };
          if (res.status >= 400) {
            const body = (await res.json()) as { code?: string };
            outcome.problem = {
              contentType: res.headers.get('content-type'),
              retryAfter: res.headers.get('retry-after'),
              ...(body.code ? { code: body.code } : {}),
            };
          }
          outcomes.push(outcome);
          return res;
        } catch {
          outcomes.push({ phase: at, status: 'error', ms: performance.now() - started });
          return undefined;
        }
      }

      async function writer(w: number) {
        for (let i = 0; !stop; i++) {
          const title = `w${w}-${i}`;
          const res = await call('/api/tasks', {
            method: 'POST',
            headers: { Authorization: auth, 'Content-Type': 'application/json' },
            body: JSON.stringify({ title }),
          });
          if (res?.status === 201) acked.set(((await res.json()) as { id: number }).id, title);
          else if (res?.status === 503) await new Promise((r) => setTimeout(r, 50));
        }
      }
      async function reader() {
        while (!stop) {
          const res = await call('/api/tasks?limit=5', { headers: { Authorization: auth } });
          if (res?.status === 200) await res.json();
        }
      }
      const load = [...[0, 1, 2, 3, 4, 5].map(writer), reader(), reader()];
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      const ready = async () => (await fetch(`${server.base}/ready`)).status;

      await sleep(1500);
      expect(await ready()).toBe(200);

      for (const cut of ['refuse', 'blackhole'] as const) {
        await proxy.set(cut);
        phase = cut;
        await sleep(FAIL_FAST_MS + 1500);
        const started = performance.now();
        const readiness = await fetch(`${server.base}/ready`).catch((err: Error) => {
          throw new Error(`the server is gone (${err.message}):\n${server.output().slice(-3000)}`);
        });
        expect(readiness.status, `/ready during ${cut}`).toBe(503);
        expect(Number(readiness.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(performance.now() - started).toBeLessThan(FAIL_FAST_MS);
        expect(server.child.exitCode, 'the process is still up').toBeNull();
        expect((await fetch(`${server.base}/health`)).status).toBe(200);
      }

      await proxy.set('forward');
      phase = 'recovered';
      const restored = performance.now();
      while ((await ready()) !== 200) {
        expect(performance.now() - restored, 'recovers within 15 s without a restart').toBeLessThan(15_000);
        await sleep(100);
      }
      const ackedBeforeRecovery = acked.size;
      await sleep(1500);
      stop = true;
      await Promise.all(load);

      const summary = Object.fromEntries(
        (['forward', 'refuse', 'blackhole', 'recovered'] as const).map((p) => {
          const of = outcomes.filter((o) => o.phase === p);
          const count = (pred: (o: Outcome) => boolean) => of.filter(pred).length;
          return [
            p,
            {
              requests: of.length,
              ok: count((o) => o.status === 200 || o.status === 201),
              unavailable: count((o) => o.status === 503),
              maxMs: Math.round(Math.max(0, ...of.map((o) => o.ms))),
            },
          ];
        }),
      );
      console.log(`outage test: ${JSON.stringify(summary)}; ${acked.size} creates acknowledged`);

      // Every answer is a success or a documented 503; nothing hung, nothing else went wrong.
      const odd = outcomes.filter((o) => o.status !== 200 && o.status !== 201 && o.status !== 503);
      expect(odd).toEqual([]);
      for (const o of outcomes.filter((o) => o.status === 503)) {
        expect(o.problem).toMatchObject({
          contentType: expect.stringMatching(/^application\/problem\+json/),
          code: 'database_unavailable',
        });
        expect(Number(o.problem!.retryAfter)).toBeGreaterThan(0);
      }
      for (const cut of ['refuse', 'blackhole'] as const) {
        const during = outcomes.filter((o) => o.phase === cut);
        expect(during.filter((o) => o.status === 503).length, `503s during ${cut}`).toBeGreaterThan(5);
        expect(Math.max(...during.map((o) => o.ms)), `slowest answer during ${cut}`).toBeLessThan(FAIL_FAST_MS);
      }
      // Writes went on after the recovery, and every acknowledged one is stored as acknowledged.
      expect(acked.size).toBeGreaterThan(ackedBeforeRecovery);
      const { rows } = await t.db.query<{ id: string; title: string }>('SELECT id, title FROM tasks WHERE user_id = $1', [user]);
      const stored = new Map(rows.map((r) => [Number(r.id), r.title]));
      for (const [id, title] of acked) expect(stored.get(id), `acknowledged task ${id}`).toBe(title);
      expect(server.child.exitCode).toBeNull();
    },
  );
});
