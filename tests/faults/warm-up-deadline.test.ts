// The start-up warm-up (src/warm-up.ts) keeps to its budget however slow the database is: a hard
// deadline, after which the requests still in flight are dropped and the port opens. Here the
// database hangs (a blackhole) from the moment the warm-up begins; with statements allowed 30 s, a
// warm-up that waited for its requests would hold the port closed for 30 s.
import { describe, expect, it } from 'vitest';
import { WARM_UP_BUDGET_MS } from '../../src/warm-up.js';
import { createTestDatabase, dbKind, serverUrl, type TestDatabase } from '../helpers/db.js';
import { cleanupsAfterAll, logLines, startServer } from './process.js';
import { startProxy } from './proxy.js';

// Room for a loaded machine between the deadline and the port opening; a warm-up that overran its
// budget would take the statement timeout, 30 s.
const SLACK_MS = 2500;

const cleanups = cleanupsAfterAll();

describe(`the warm-up's deadline (${dbKind === 'postgres' ? 'postgres' : 'skipped: a PostgreSQL-mode test'})`, () => {
  it.skipIf(dbKind !== 'postgres')(
    'opens the port within the budget when the database hangs during the warm-up',
    { timeout: 120_000 },
    async () => {
      const t: TestDatabase = await createTestDatabase();
      await t.db.close();
      cleanups.push(() => t.drop());
      const target = new URL(serverUrl!);
      const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
      cleanups.push(() => proxy.close());
      const viaProxy = new URL(t.url!);
      viaProxy.host = `127.0.0.1:${proxy.port}`;

      let hung: Promise<void> | undefined;
      const server = await startServer(
        {
          DATABASE_URL: viaProxy.toString(),
          // More requests than any machine sends within the budget: only the deadline ends it.
          WARM_UP_REQUESTS: '100000',
          DB_STATEMENT_TIMEOUT_MS: '30000',
          DB_CONNECT_TIMEOUT_MS: '30000',
        },
        (output) => {
          if (!hung && output.includes('"msg":"warming up"')) hung = proxy.set('blackhole');
        },
      );
      cleanups.push(async () => {
        server.child.kill('SIGKILL');
        await server.exited;
      });
      expect(hung, 'the warm-up began').toBeDefined();
      await hung;

      const lines = logLines(server) as { msg: string; time: number; deadline?: boolean }[];
      const at = (msg: string) => lines.find((l) => l.msg === msg);
      const began = at('warming up');
      // Cut off with answers or before any (then it says it starts cold).
      const warmed = lines.find((l) => l.msg === 'warmed up' || l.msg === 'warm-up answered nothing before its deadline; starting cold');
      const listening = at('listening');
      expect(began && listening, server.output()).toBeTruthy();
      expect(listening!.time - began!.time, 'ms from "warming up" to "listening"').toBeLessThan(WARM_UP_BUDGET_MS + SLACK_MS);
      // Its requests were cut off at the deadline, not failed by the database's timeouts.
      expect(warmed, server.output()).toMatchObject({ deadline: true });
      // And the port is open: liveness answers while the database still hangs.
      expect((await fetch(`${server.base}/health`, { signal: AbortSignal.timeout(5000) })).status).toBe(200);
    },
  );
});
