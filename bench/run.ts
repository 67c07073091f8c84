// npm run bench — the load benchmark (loopback only, bounded in time). Seeds 1000 users × 50 tasks
// plus a heavy user, mints a token per user, and drives the real server with autocannon:
//   A  "1000 users": 1000 connections, one user each, a fixed offered rate (default 1000 req/s),
//      open loop with arrivals spread over each second (bench/open-loop.ts says why not autocannon);
//   B  saturation: 64 connections, as fast as possible — the app and the bare baseline in the same
//      run, then the app with one layer changed at a time;
//   growth: first-page latency for users with 10 … 100 000 tasks among ≥ 1 000 000 rows;
//   the embedded database, A and B.
// Results go to bench/results/latest.{json,md}. Settings: BENCH_DATABASE_URL, BENCH_DURATION (A, s),
// BENCH_RATE, BENCH_QUICK=1 (shorter runs), BENCH_NODE_OPTIONS (e.g. --cpu-prof for the servers).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { mintToken } from '../src/auth/mint-token.js';
import { migrate } from '../src/db/migrate.js';
import { createPGliteDatabase } from '../src/db/pglite.js';
import type { Database, Queryable } from '../src/db/types.js';
import { listQuery } from '../src/tasks/queries.js';
import { openLoop, type LoadResult, type PlannedRequest } from './open-loop.js';
import { scratchDatabase } from './scratch-database.js';
import { SERVER_NODE_FLAGS } from './node-flags.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const quick = process.env.BENCH_QUICK === '1';
const durationA = Number(process.env.BENCH_DURATION ?? (quick ? 10 : 30));
const durationB = quick ? 6 : 15;
const durationVariant = quick ? 5 : 10;
const offeredRate = Number(process.env.BENCH_RATE ?? 1000);
/** Seconds of scenario A run first and reported apart, as the cold start. */
const WARM_UP_A = 5;
const SECRET = 'bench-secret-bench-secret-bench-secret-0123';
const USERS = 1000;
const TASKS_PER_USER = 50;

export interface Seeded {
  users: string[];
  tokens: string[];
  ids: Map<string, { min: number; max: number }>;
}

/**
 * Every measured run starts from the seeded data: without this, the tasks each run creates (15 %
 * of its requests) pile up, every list page grows, and later runs measure a heavier workload than
 * earlier ones. Call right after seed(), or pass the seed's last task id (a database opened again
 * later); returns the reset.
 */
export async function resetToSeed(db: Database, seededMax?: string): Promise<() => Promise<void>> {
  seededMax ??= (await db.query<{ max: string }>('SELECT max(id) AS max FROM tasks')).rows[0]!.max;
  return async () => {
    await db.query('DELETE FROM tasks WHERE id > $1', [seededMax]);
    await db.query(
      "UPDATE tasks SET completed = (id % 4 = 0), description = CASE WHEN id % 3 = 0 THEN 'Some details' END WHERE user_id LIKE 'bench-user-%'",
    );
    // VACUUM cannot run inside a transaction, which every db.query is (src/db/postgres.ts): a session's
    // plain script runs it on its own.
    await db.withSession((s) => s.exec('VACUUM ANALYZE tasks'));
    // Write the dirty pages now: a checkpoint that falls due during a measured run (after the seed's
    // bulk insert, say) stalls PostgreSQL's writes and shows up as the app's or the baseline's tail.
    await db.withSession((s) => s.exec('CHECKPOINT')).catch(() => {}); // needs superuser or pg_checkpoint; best effort
  };
}

export async function seed(db: Queryable): Promise<Seeded> {
  await db.query(
    `INSERT INTO tasks (user_id, title, description, completed)
     SELECT 'bench-user-' || u, 'Task ' || t || ' of user ' || u, CASE WHEN t % 3 = 0 THEN 'Some details' END, t % 4 = 0
     FROM generate_series(1, $1::int) u, generate_series(1, $2::int) t ORDER BY u, t`,
    [USERS, TASKS_PER_USER],
  );
  await db.query(`INSERT INTO tasks (user_id, title) SELECT 'bench-heavy', 'Heavy task ' || t FROM generate_series(1, 20000) t`);
  const { rows } = await db.query<{ user_id: string; min: string; max: string }>(
    "SELECT user_id, min(id) AS min, max(id) AS max FROM tasks WHERE user_id LIKE 'bench-user-%' GROUP BY user_id",
  );
  const ids = new Map(rows.map((r) => [r.user_id, { min: Number(r.min), max: Number(r.max) }]));
  const users = Array.from({ length: USERS }, (_, i) => `bench-user-${i + 1}`);
  const tokens = await Promise.all(users.map((u) => mintToken({ secret: SECRET, userId: u, ttlSec: 6 * 3600 })));
  return { users, tokens, ids };
}

/** One user, `lister`, with 50 tasks of every kind: the list the paths benchmark and the allocations guard measure. */
export async function seedLister(db: Queryable): Promise<void> {
  await db.query(
    `INSERT INTO tasks (user_id, title, description, tags, priority, position)
     SELECT 'lister', 'Task ' || n, CASE WHEN n % 2 = 0 THEN 'Some words about task ' || n END,
            CASE WHEN n % 3 = 0 THEN ARRAY['home'] ELSE '{}' END, n % 4, n * 1024
     FROM generate_series(1, 50) AS n`,
  );
}

interface Context {
  user?: number;
  created?: number[];
}

/** The workload: 60% list, 10% get, 15% create, 10% toggle, 5% update or delete. */
function workload(seeded: Seeded, onePerConnection: boolean) {
  let next = 0;
  return {
    setupRequest(req: autocannon.Request, context: Context): autocannon.Request {
      if (context.user === undefined || !onePerConnection) {
        context.user = onePerConnection ? next++ % USERS : Math.floor(Math.random() * USERS);
      }
      const user = seeded.users[context.user]!;
      const { min, max } = seeded.ids.get(user)!;
      const id = min + Math.floor(Math.random() * (max - min + 1));
      const headers = { authorization: `Bearer ${seeded.tokens[context.user]!}`, 'content-type': 'application/json' };
      const r = Math.random();
      if (r < 0.6) return { ...req, method: 'GET', path: '/api/tasks', headers, body: undefined };
      if (r < 0.7) return { ...req, method: 'GET', path: `/api/tasks/${id}`, headers, body: undefined };
      if (r < 0.85) return { ...req, method: 'POST', path: '/api/tasks', headers, body: JSON.stringify({ title: 'Benchmark task' }) };
      if (r < 0.95) return { ...req, method: 'PATCH', path: `/api/tasks/${id}/complete`, headers, body: undefined };
      const own = context.created?.pop();
      if (own !== undefined && r < 0.975) return { ...req, method: 'DELETE', path: `/api/tasks/${own}`, headers, body: undefined };
      return { ...req, method: 'PATCH', path: `/api/tasks/${id}`, headers, body: JSON.stringify({ description: 'updated' }) };
    },
    onResponse(status: number, body: string, context: Context) {
      if (status === 201) context.created = [...(context.created ?? []), (JSON.parse(body) as { id: number }).id];
    },
  };
}

type Result = LoadResult;

/**
 * Scenario A: every user on its own connection, once per interval, open loop (bench/open-loop.ts).
 * The first `warmUp` seconds run at the same rate and are reported apart (`coldStart`): a fresh
 * Node process runs unoptimised code until the JIT has seen it, for the app and the baseline alike.
 */
export async function loadA(
  url: string,
  opts: { duration: number; rate: number; seeded: Seeded; warmUp?: number },
): Promise<Result & { coldStart?: Result }> {
  const w = workload(opts.seeded, true);
  const contexts = Array.from({ length: USERS }, (_, user): Context => ({ user }));
  const run = (durationSec: number) =>
    openLoop({
      url,
      users: USERS,
      intervalMs: (USERS * 1000) / opts.rate,
      durationSec,
      plan: (user) => {
        const r = w.setupRequest({} as autocannon.Request, contexts[user]!) as unknown as PlannedRequest;
        return { method: r.method, path: r.path, headers: r.headers, body: r.body };
      },
      onResponse: (user, status, body) => w.onResponse(status, body, contexts[user]!),
    });
  const coldStart = opts.warmUp ? await run(opts.warmUp) : undefined;
  return { ...(await run(opts.duration)), ...(coldStart ? { coldStart } : {}) };
}

export async function load(
  url: string,
  opts: { connections: number; duration: number; rate?: number; seeded: Seeded; onePerConnection: boolean },
): Promise<Result> {
  const w = workload(opts.seeded, opts.onePerConnection);
  const r = await autocannon({
    url,
    connections: opts.connections,
    duration: opts.duration,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    timeout: 10,
    requests: [{ setupRequest: w.setupRequest as never, onResponse: w.onResponse as never }],
  });
  return {
    requests: r.requests.total,
    seconds: r.duration,
    rate: Math.round(r.requests.total / r.duration),
    p50: r.latency.p50,
    p95: r.latency.p97_5 === undefined ? NaN : percentile(r, 95),
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}

/** The middle value, or the mean of the two middle ones: what bench:compare and bench:paths report per server. */
export function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return (sorted[Math.floor((sorted.length - 1) / 2)]! + sorted[Math.ceil((sorted.length - 1) / 2)]!) / 2;
}

// autocannon reports p90 and p97.5; p95 is interpolated between them.
function percentile(r: autocannon.Result, _p: 95): number {
  return Math.round((r.latency.p90 + (r.latency.p97_5 - r.latency.p90) * (5 / 7.5)) * 100) / 100;
}

async function latencyOf(url: string, token: string, seconds: number): Promise<{ p50: number; p95: number; rate: number }> {
  const r = await autocannon({ url: `${url}/api/tasks`, connections: 4, duration: seconds, headers: { authorization: `Bearer ${token}` } });
  return { p50: r.latency.p50, p95: percentile(r, 95), rate: Math.round(r.requests.total / r.duration) };
}

const children: ChildProcess[] = [];
export async function startProcess(args: string[], env: Record<string, string>, port: number, readyPath: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      JWT_SECRET: SECRET,
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${readyPath}`, { headers: { authorization: 'Bearer x.eyJzdWIiOiJ4In0.x' } });
      if (res.status < 500) return child;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${args.join(' ')} did not start`);
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise((resolve) => {
    child.once('exit', resolve);
    child.kill('SIGTERM');
  });
}

/** The app as every benchmark runs it: production, request lines logged, migrated beforehand. */
export const APP_ENV = { NODE_ENV: 'production', LOG_LEVEL: 'info', MIGRATE_ON_START: 'false' } as const;

/** One user driving one path at saturation would otherwise measure its own per-user limit and quota. */
export const ONE_USER_LIMITS_OFF = { RATE_LIMIT_PER_USER: '0', TASKS_PER_USER_MAX: '10000000' } as const;

const server = (env: Record<string, string>, port: number) =>
  startProcess([...SERVER_NODE_FLAGS, 'dist/server.js'], { ...APP_ENV, ...env }, port, '/ready');

async function main() {
  const results: Record<string, unknown> = { startedAt: new Date().toISOString(), quick, offeredRate, durationA };
  const scratch = await scratchDatabase('todo_bench', { poolMax: 4 });
  const { db, url: benchUrl } = scratch;
  await migrate(db);
  console.log('seeding 1000 users × 50 tasks and a heavy user');
  const seeded = await seed(db);
  const reset = await resetToSeed(db);
  const pgEnv = { DATABASE_URL: benchUrl, WORKERS: '1' };
  const url = 'http://127.0.0.1:8090';

  // ---- Scenario A: 1000 users, fixed rate.
  await reset();
  let app = await server(pgEnv, 8090);
  console.log(`scenario A: 1000 connections at ${offeredRate} req/s for ${durationA}s`);
  results.A = { offered: offeredRate, ...(await loadA(url, { duration: durationA, rate: offeredRate, seeded, warmUp: WARM_UP_A })) };
  console.log(results.A);

  // ---- Scenario B: saturation, app then baseline.
  console.log('scenario B: 64 connections, maximum throughput');
  // App and baseline alternate twice and each keeps its better run, so neither is favoured by
  // running first (a growing table, autovacuum, a warming cache).
  const B: Record<string, Result> = {};
  await stopProcess(app);
  const better = (a: Result | undefined, b: Result) => (a && a.rate >= b.rate ? a : b);
  for (let round = 0; round < 2; round++) {
    await reset();
    app = await server(pgEnv, 8090);
    B.app = better(B.app, await load(url, { connections: 64, duration: durationB, seeded, onePerConnection: false }));
    await stopProcess(app);
    await reset();
    const baseline = await startProcess(
      [...SERVER_NODE_FLAGS, '--import', 'tsx', 'bench/baseline.ts'],
      { DATABASE_URL: benchUrl },
      8100,
      '/api/tasks',
    );
    B.baseline = better(
      B.baseline,
      await load('http://127.0.0.1:8100', { connections: 64, duration: durationB, seeded, onePerConnection: false }),
    );
    if (round === 0) {
      // The same scenario A against the baseline: what this machine allows at all.
      console.log('scenario A against the baseline');
      await reset();
      results.baselineA = {
        offered: offeredRate,
        ...(await loadA('http://127.0.0.1:8100', { duration: durationA, rate: offeredRate, seeded, warmUp: WARM_UP_A })),
      };
    }
    await stopProcess(baseline);
  }

  // ---- One layer at a time (B, shorter).
  const variants: [string, Record<string, string>][] = [
    ['app, same run length', {}],
    ['no request logging (LOG_LEVEL=silent)', { LOG_LEVEL: 'silent' }],
    ['with response validation (VALIDATE_RESPONSES=true)', { VALIDATE_RESPONSES: 'true' }],
    ['no verified-token cache (TOKEN_CACHE_SIZE=0)', { TOKEN_CACHE_SIZE: '0' }],
    ['no prepared statements (DB_PREPARED_STATEMENTS=false)', { DB_PREPARED_STATEMENTS: 'false' }],
    ['no rate limits', { RATE_LIMIT_PER_USER: '0', RATE_LIMIT_IP_FAILURES: '0' }],
    // Workers share the rate-limit counters through Redis (required above one worker).
    ['2 workers (WORKERS=2, Redis)', { WORKERS: '2', REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' }],
  ];
  for (const [name, env] of variants) {
    await reset();
    app = await server({ ...pgEnv, ...env }, 8090);
    B[name] = await load(url, { connections: 64, duration: durationVariant, seeded, onePerConnection: false });
    await stopProcess(app);
    console.log(name, B[name].rate, 'req/s');
  }
  results.B = B;

  // ---- Growth: one user's first page as their task count grows, among ≥ 1 000 000 rows.
  console.log('growth: users with 10, 1 000, 10 000 and 100 000 tasks');
  const sizes = [10, 1000, 10_000, 100_000];
  for (const n of sizes) {
    await db.query(`INSERT INTO tasks (user_id, title) SELECT $1, 'Growth task ' || t FROM generate_series(1, $2::int) t`, [
      `growth-${n}`,
      n,
    ]);
  }
  const { rows: countRows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM tasks');
  const filler = Math.max(0, 1_000_000 - Number(countRows[0]!.n));
  await db.query(`INSERT INTO tasks (user_id, title) SELECT 'filler-' || (g % 5000), 'Filler ' || g FROM generate_series(1, $1::int) g`, [
    filler,
  ]);
  await db.query('ANALYZE tasks');
  const { rows: total } = await db.query<{ n: string }>('SELECT count(*) AS n FROM tasks');
  app = await server(pgEnv, 8090);
  const growth: Record<string, unknown> = { totalRows: Number(total[0]!.n) };
  for (const n of sizes) {
    const token = await mintToken({ secret: SECRET, userId: `growth-${n}`, ttlSec: 3600 });
    growth[String(n)] = await latencyOf(url, token, quick ? 3 : 5);
  }
  await stopProcess(app);
  const first = listQuery('growth-100000', { status: 'all', sort: 'created_at', order: 'desc', limit: 100 });
  const { rows: plan } = await db.query<{ 'QUERY PLAN': string }>(`EXPLAIN ANALYZE ${first.text}`, first.values);
  growth.explain = plan.map((r) => r['QUERY PLAN']);
  results.growth = growth;
  console.log(growth);
  await scratch.drop();

  // ---- Embedded database: same workload.
  console.log('embedded database (PGlite): scenarios A and B');
  const dataDir = mkdtempSync(path.join(tmpdir(), 'todo-bench-'));
  const lite = await createPGliteDatabase({ dataDir: path.join(dataDir, 'pglite') });
  await migrate(lite);
  const liteSeeded = await seed(lite);
  await lite.close();
  app = await server({ DATA_DIR: dataDir }, 8091);
  const embedded: Record<string, Result> = {};
  embedded.A = await loadA('http://127.0.0.1:8091', { duration: quick ? 5 : 15, rate: offeredRate, seeded: liteSeeded, warmUp: WARM_UP_A });
  // Below the embedded database's saturation rate (B), for the latency it gives when not overloaded.
  embedded.A_half = await loadA('http://127.0.0.1:8091', {
    duration: quick ? 5 : 15,
    rate: offeredRate / 2,
    seeded: liteSeeded,
    warmUp: WARM_UP_A,
  });
  embedded.B = await load('http://127.0.0.1:8091', {
    connections: 64,
    duration: durationVariant,
    seeded: liteSeeded,
    onePerConnection: false,
  });
  await stopProcess(app);
  rmSync(dataDir, { recursive: true, force: true });
  results.embedded = embedded;

  results.finishedAt = new Date().toISOString();
  mkdirSync(path.join(root, 'bench', 'results'), { recursive: true });
  writeFileSync(path.join(root, 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
  const md = markdown(results as never);
  writeFileSync(path.join(root, 'bench', 'results', 'latest.md'), md);
  console.log(`\n${md}`);
}

function markdown(r: {
  A: Result & { offered: number; coldStart?: Result };
  baselineA: Result & { coldStart?: Result };
  B: Record<string, Result>;
  growth: Record<string, { p50: number; p95: number }> & { totalRows: number; explain: string[] };
  embedded: Record<string, Result>;
  startedAt: string;
  quick: boolean;
}): string {
  const row = (name: string, x: Result) =>
    `| ${name} | ${x.rate} | ${x.p50} | ${x.p95} | ${x.p99} | ${x.max} | ${x.non2xx} | ${x.errors} |`;
  const head =
    '| run | req/s | p50 ms | p95 ms | p99 ms | max ms | non-2xx | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |';
  const base = r.B.baseline!.rate;
  const lines = [
    `# Benchmark (${r.startedAt}${r.quick ? ', quick' : ''})`,
    '',
    'Loopback, load generator on the same 2-core machine. PostgreSQL mode, one process, NODE_ENV=production, unless stated.',
    '',
    `## A: 1000 users, one connection each, ${r.A.offered} req/s offered`,
    '',
    'Open loop: each user sends once per interval from a random phase; latency counts from when a request was due.',
    '',
    head,
    row('app', r.A),
    row('baseline (bare node:http + pg)', r.baselineA),
    '',
    `The app achieved ${((100 * r.A.rate) / r.A.offered).toFixed(1)}% of the offered rate; the baseline ${((100 * r.baselineA.rate) / r.A.offered).toFixed(1)}%.`,
    '',
    `Measured after the first ${WARM_UP_A} s of load, which are reported here apart: a freshly started process (after its own start-up warm-up, \`WARM_UP_REQUESTS\`):`,
    '',
    head,
    ...(r.A.coldStart ? [row('app, cold start', r.A.coldStart)] : []),
    ...(r.baselineA.coldStart ? [row('baseline, cold start', r.baselineA.coldStart)] : []),
    '',
    '## B: saturation, 64 connections',
    '',
    '| run | req/s | vs baseline | p50 ms | p95 ms | p99 ms | non-2xx | errors |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...Object.entries(r.B).map(
      ([name, x]) =>
        `| ${name} | ${x.rate} | ${((100 * x.rate) / base).toFixed(0)}% | ${x.p50} | ${x.p95} | ${x.p99} | ${x.non2xx} | ${x.errors} |`,
    ),
    '',
    `## Growth: first page (100 tasks) for one user, ${r.growth.totalRows.toLocaleString('en')} rows in all`,
    '',
    'autocannon counts whole milliseconds: 0 is under one.',
    '',
    '| tasks of the user | p50 ms | p95 ms |\n| ---: | ---: | ---: |',
    ...['10', '1000', '10000', '100000'].map((n) => `| ${Number(n).toLocaleString('en')} | ${r.growth[n]!.p50} | ${r.growth[n]!.p95} |`),
    '',
    '```',
    ...r.growth.explain,
    '```',
    '',
    '## Embedded database (PGlite)',
    '',
    head,
    row('A (1000 connections, offered rate)', r.embedded.A!),
    ...((r.embedded.A as Result & { coldStart?: Result }).coldStart
      ? [row('A, cold start', (r.embedded.A as Result & { coldStart: Result }).coldStart)]
      : []),
    ...(r.embedded.A_half ? [row(`A at half the rate (${Math.round(r.A.offered / 2)} req/s offered)`, r.embedded.A_half)] : []),
    row('B (64 connections, saturation)', r.embedded.B!),
    '',
  ];
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await main();
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    for (const c of children) await stopProcess(c).catch(() => {});
  }
}
