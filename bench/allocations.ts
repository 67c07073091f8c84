// npm run check:allocations — the guard on the hot path's cost (issue 18): the JavaScript heap
// bytes the server allocates per request of the list (one user's 50 tasks) and of a get, measured
// in this process, compared with bench/allocations.json. Allocation counts do not depend on the
// machine's speed or load, so this is a check CI can run beside anything, where a timing cannot.
//
// How: the real app (createApp, createHttpServer, production settings, request logs written to
// /dev/null) on 127.0.0.1 and a bare keep-alive socket client that sends fixed bytes. Young-gen
// space is made larger than a batch, so no garbage collection runs inside one: the growth of the
// used heap across a batch is what it allocated. A batch a collection interrupted anyway is run
// again; the smallest of three clean batches counts. The client's own share is fixed and small.
//
// Database: PostgreSQL at ALLOCATIONS_DATABASE_URL (a scratch database is made beside the one
// named), else the embedded one, whose work happens on its own thread and heap. Each has its own
// baseline. ALLOCATIONS_UPDATE=1 writes the measured figures as the new baseline;
// ALLOCATIONS_PROFILE=1 also samples where the measured batches allocate and lists the top sites.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { pino } from 'pino';
import { createApp } from '../src/app.js';
import { mintToken } from '../src/auth/mint-token.js';
import { cachedVerifier } from '../src/auth/token-cache.js';
import { createTokenVerifier } from '../src/auth/verify-token.js';
import { loadConfig } from '../src/config.js';
import { migrate } from '../src/db/migrate.js';
import { createPGliteDatabase } from '../src/db/pglite.js';
import type { Database } from '../src/db/types.js';
import { createHttpServer } from '../src/http/graceful-server.js';
import { scratchDatabase } from './scratch-database.js';
import { seedLister } from './run.js';

const BASELINE_FILE = new URL('./allocations.json', import.meta.url);
const SECRET = 'allocations-secret-allocations-secret-0123';
const WARM_UP = 1500;
const BATCH = 100;
const gc = (globalThis as { gc?: () => void }).gc;

interface Baseline {
  /** A measurement may exceed its baseline by this fraction before the check fails. */
  margin: number;
  bytesPerRequest: Record<string, Record<string, number>>;
}

async function openDb(): Promise<{ db: Database; kind: string; drop: () => Promise<void> }> {
  const adminUrl = process.env.ALLOCATIONS_DATABASE_URL;
  if (!adminUrl) {
    const db = await createPGliteDatabase({ dataDir: undefined });
    return { db, kind: 'embedded', drop: () => db.close() };
  }
  const { db, drop } = await scratchDatabase('todo_allocations', { adminUrl, poolMax: 2, statementTimeoutMs: 5000 });
  return { db, kind: 'postgres', drop };
}

/** One keep-alive connection that sends a fixed request and waits for each whole response. */
function client(port: number) {
  const socket: Socket = connect({ port, host: '127.0.0.1', noDelay: true });
  let pending: { resolve: (status: number) => void; buffered: number; need: number; status: number } | undefined;
  socket.on('data', (chunk: Buffer) => {
    const p = pending!;
    if (p.need < 0) {
      // The first chunk of a response holds its whole head (small, and sent in one write).
      const head = chunk.indexOf('\r\n\r\n');
      const text = chunk.toString('latin1', 0, head);
      p.status = Number(text.slice(9, 12));
      p.need = Number(/\r\ncontent-length: (\d+)/i.exec(text)?.[1] ?? 0);
      p.buffered = chunk.length - head - 4;
    } else p.buffered += chunk.length;
    if (p.buffered >= p.need) {
      pending = undefined;
      p.resolve(p.status);
    }
  });
  return {
    send: (request: Buffer) =>
      new Promise<number>((resolve) => {
        pending = { resolve, buffered: 0, need: -1, status: 0 };
        socket.write(request);
      }),
    close: () => socket.destroy(),
  };
}

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  selfSize: number;
  children: ProfileNode[];
}

/** Allocation sites of whatever runs between start() and stop(), including since-collected objects. */
async function allocationSampler() {
  const session = new Session();
  session.connect();
  return {
    start: () =>
      session.post('HeapProfiler.startSampling', {
        samplingInterval: 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      } as never),
    stop: async () => {
      const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: ProfileNode } };
      const sites = new Map<string, number>();
      let total = 0;
      const walk = (n: ProfileNode) => {
        const { functionName, url, lineNumber } = n.callFrame;
        const site = `${functionName || '(anonymous)'} ${url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(src|dist)\//, '$1/')}:${lineNumber + 1}`;
        sites.set(site, (sites.get(site) ?? 0) + n.selfSize);
        total += n.selfSize;
        for (const c of n.children) walk(c);
      };
      walk(profile.head);
      session.disconnect();
      return [...sites]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 30)
        .map(([site, bytes]) => `${((100 * bytes) / total).toFixed(1).padStart(5)} %  ${site}`)
        .join('\n');
    },
  };
}

async function main() {
  if (!gc) throw new Error('run with --expose-gc (npm run check:allocations)');
  const { db, kind, drop } = await openDb();
  const config = loadConfig({ NODE_ENV: 'production', JWT_SECRET: SECRET, RATE_LIMIT_PER_USER: '0', TASKS_PER_USER_MAX: '1000000' });
  const server = createHttpServer(
    createApp({
      db,
      verifier: cachedVerifier(createTokenVerifier({ secret: SECRET, clockToleranceSec: 0 }), { maxEntries: 1000 }),
      logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: true })),
      config,
    }),
    config.timeouts,
  );
  try {
    await migrate(db);
    await seedLister(db);
    const { rows } = await db.query<{ id: string }>(`SELECT max(id) AS id FROM tasks`);
    await new Promise<void>((resolve) => server.listen({ port: 0, host: '127.0.0.1' }, resolve));
    const { port } = server.address() as AddressInfo;
    const token = await mintToken({ secret: SECRET, userId: 'lister', ttlSec: 3600 });
    const request = (path: string) =>
      Buffer.from(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nAccept: application/json\r\n\r\n`);
    const paths = { list: request('/api/tasks'), get: request(`/api/tasks/${rows[0]!.id}`) };

    let collections = 0;
    const observer = new PerformanceObserver((list) => (collections += list.getEntries().length));
    observer.observe({ entryTypes: ['gc'] });
    const c = client(port);
    const measured: Record<string, number> = {};
    for (const [name, bytes] of Object.entries(paths)) {
      for (let i = 0; i < WARM_UP; i++) if ((await c.send(bytes)) !== 200) throw new Error(`${name}: not 200`);
      const sampler = process.env.ALLOCATIONS_PROFILE === '1' ? await allocationSampler() : undefined;
      await sampler?.start();
      const clean: number[] = [];
      for (let attempt = 0; clean.length < 3 && attempt < 20; attempt++) {
        const before = collections + 1;
        gc();
        // The forced collection's entry arrives asynchronously: wait for it, so it is not counted below.
        while (collections < before) await new Promise((r) => setTimeout(r, 1));
        const start = getHeapStatistics().used_heap_size;
        for (let i = 0; i < BATCH; i++) await c.send(bytes);
        const grown = getHeapStatistics().used_heap_size - start;
        await new Promise((r) => setTimeout(r, 5));
        if (collections === before) clean.push(grown / BATCH);
      }
      if (clean.length < 3) throw new Error(`${name}: no batch ran without a garbage collection; is --max-semi-space-size set?`);
      measured[name] = Math.round(Math.min(...clean));
      if (sampler) console.log(`--- ${name}: where the bytes are allocated\n${await sampler.stop()}`);
    }
    observer.disconnect();
    c.close();

    const baseline = JSON.parse(readFileSync(BASELINE_FILE, 'utf8')) as Baseline;
    if (process.env.ALLOCATIONS_UPDATE === '1') {
      baseline.bytesPerRequest = { ...baseline.bytesPerRequest, [kind]: measured };
      writeFileSync(BASELINE_FILE, `${JSON.stringify(baseline, null, 2)}\n`);
      console.log(`allocations (${kind}): baseline written`, measured);
      return;
    }
    let failed = false;
    for (const [name, bytes] of Object.entries(measured)) {
      const base = baseline.bytesPerRequest[kind]?.[name];
      if (base === undefined) throw new Error(`no ${kind} baseline for ${name}: run with ALLOCATIONS_UPDATE=1`);
      const ratio = bytes / base;
      const verdict = ratio > 1 + baseline.margin ? 'REGRESSED' : ratio < 1 - baseline.margin ? 'better: lower the baseline' : 'ok';
      console.log(`allocations (${kind}) ${name}: ${bytes} bytes/request, baseline ${base} (${(100 * ratio).toFixed(1)} %): ${verdict}`);
      if (ratio > 1 + baseline.margin) failed = true;
    }
    if (failed) process.exitCode = 1;
  } finally {
    server.close();
    await drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
