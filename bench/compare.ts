// npm run bench:compare -- <server.js> [<server.js> ...] — scenario B (64 connections, saturation)
// against several builds of the server and the bare baseline, alternating, round after round, with
// the server's own CPU time per request (from /proc/<pid>/stat) and the local PostgreSQL's: the
// figures that show what one change bought, where throughput alone moves by ±5 % between runs on a
// shared machine. Each round runs the builds in turn, every other round in reverse order; the last
// line gives each build's median CPU time per request.
//
//   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && ln -s "$PWD/node_modules" . && npx tsc -p tsconfig.build.json)
//   npm run build && npm run bench:compare -- /tmp/before/dist/server.js dist/server.js
//
// A server may carry Node options before it: "--max-semi-space-size=64 dist/server.js".
// Settings: BENCH_DATABASE_URL, COMPARE_ROUNDS (default 3), COMPARE_SECONDS (default 10);
// COMPARE_PATH=list|get|create|toggle drives that one path alone for one user instead (the paths
// benchmark's load, per-user limit and quota off): the figure for a change to one path.
// COMPARE_DATABASE=embedded runs the servers on the embedded database (a data folder seeded once
// and reset before each run) instead, without the bare baseline, which needs PostgreSQL; the CPU
// time per request then includes the database's, on the server's own thread.
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { migrate } from '../src/db/migrate.js';
import { createPGliteDatabase } from '../src/db/pglite.js';
import { APP_ENV, load, median, ONE_USER_LIMITS_OFF, resetToSeed, seed, startProcess, stopProcess, type Seeded } from './run.js';
import { scratchDatabase } from './scratch-database.js';
import { SERVER_NODE_FLAGS } from './node-flags.js';

const rounds = Number(process.env.COMPARE_ROUNDS ?? 3);
const seconds = Number(process.env.COMPARE_SECONDS ?? 10);
const servers = process.argv.slice(2);
const onePath = process.env.COMPARE_PATH as 'list' | 'get' | 'create' | 'toggle' | undefined;
if (onePath && !['list', 'get', 'create', 'toggle'].includes(onePath))
  throw new Error(`COMPARE_PATH: list, get, create or toggle, not ${onePath}`);
const embedded = process.env.COMPARE_DATABASE === 'embedded';
if (!embedded && (process.env.COMPARE_DATABASE ?? 'postgres') !== 'postgres')
  throw new Error(`COMPARE_DATABASE: postgres or embedded, not ${process.env.COMPARE_DATABASE}`);

/** One path for the first seeded user, at saturation (64 connections). */
async function loadPath(url: string, seeded: Seeded, duration: number) {
  const user = seeded.users[0]!;
  const id = seeded.ids.get(user)!.min;
  const spec = {
    list: { method: 'GET', path: '/api/tasks' },
    get: { method: 'GET', path: `/api/tasks/${id}` },
    create: { method: 'POST', path: '/api/tasks', body: JSON.stringify({ title: 'Benchmark task' }) },
    toggle: { method: 'PATCH', path: `/api/tasks/${id}/complete` },
  }[onePath!] as { method: 'GET' | 'POST' | 'PATCH'; path: string; body?: string };
  const r = await autocannon({
    url: `${url}${spec.path}`,
    method: spec.method,
    connections: 64,
    duration,
    headers: { authorization: `Bearer ${seeded.tokens[0]!}`, 'content-type': 'application/json' },
    ...(spec.body ? { body: spec.body } : {}),
  });
  return { rate: Math.round(r.requests.total / r.duration), requests: r.requests.total, non2xx: r.non2xx, errors: r.errors + r.timeouts };
}

const drive = (url: string, seeded: Seeded, duration: number) =>
  onePath ? loadPath(url, seeded, duration) : load(url, { connections: 64, duration, seeded, onePerConnection: false });

/** CPU time (user + system) the process has used, in ms; Linux clock ticks are 10 ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time of every PostgreSQL process on this machine, in ms: what the server's statements cost
 * the database (0 when it runs elsewhere). Processes come and go; the pool's connections stay. */
function databaseCpuMs(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.includes(' (postgres) ')) total += cpuMs(Number(entry));
    } catch {
      /* gone meanwhile */
    }
  }
  return total;
}

async function measure(child: ChildProcess, port: number, seeded: Seeded) {
  const url = `http://127.0.0.1:${port}`;
  await drive(url, seeded, 3); // warm
  const [before, dbBefore] = [cpuMs(child.pid!), databaseCpuMs()];
  const r = await drive(url, seeded, seconds);
  const perRequest = (ms: number) => Math.round((ms * 1000) / r.requests);
  return {
    rate: r.rate,
    cpuUs: perRequest(cpuMs(child.pid!) - before),
    dbUs: perRequest(databaseCpuMs() - dbBefore),
    failed: r.non2xx + r.errors,
  };
}

/** The seeded data the servers run on: its settings for a server, and a reset to the seed. */
interface Store {
  env: Record<string, string>;
  seeded: Seeded;
  reset(): Promise<void>;
  drop(): Promise<void>;
}

async function postgresStore(): Promise<Store> {
  const scratch = await scratchDatabase('todo_compare', { poolMax: 4 });
  await migrate(scratch.db);
  const seeded = await seed(scratch.db);
  return { env: { DATABASE_URL: scratch.url }, seeded, reset: await resetToSeed(scratch.db), drop: () => scratch.drop() };
}

/** A data folder that only one process may open at a time: the reset opens it between runs. */
async function embeddedStore(): Promise<Store> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'todo-compare-'));
  const open = () => createPGliteDatabase({ dataDir: path.join(dataDir, 'pglite') });
  const lite = await open();
  await migrate(lite);
  const seeded = await seed(lite);
  const { rows } = await lite.query<{ max: string }>('SELECT max(id) AS max FROM tasks');
  await lite.close();
  return {
    env: { DATA_DIR: dataDir },
    seeded,
    reset: async () => {
      const db = await open();
      try {
        await (await resetToSeed(db, rows[0]!.max))();
      } finally {
        await db.close();
      }
    },
    drop: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

async function main() {
  if (servers.length === 0) throw new Error('name at least one server build: npm run bench:compare -- dist/server.js');
  const store = embedded ? await embeddedStore() : await postgresStore();
  const { seeded } = store;
  const cpu = new Map<string, number[]>(servers.map((s) => [s, []]));
  try {
    for (let round = 1; round <= rounds; round++) {
      const line: string[] = [];
      let baselineRate: number | undefined;
      if (!embedded) {
        await store.reset();
        const baselineProcess = await startProcess(
          [...SERVER_NODE_FLAGS, '--import', 'tsx', 'bench/baseline.ts'],
          store.env,
          8100,
          '/api/tasks',
        );
        const baseline = await measure(baselineProcess, 8100, seeded);
        await stopProcess(baselineProcess);
        baselineRate = baseline.rate;
        line.push(`baseline ${baseline.rate} req/s, ${baseline.cpuUs} µs CPU/request (database ${baseline.dbUs})`);
      }
      // Every other round in reverse: on a shared host the build measured second did better in
      // most rounds whichever build it was, an order effect as large as the changes compared.
      const order = round % 2 === 1 ? servers : [...servers].reverse();
      const results = new Map<string, Awaited<ReturnType<typeof measure>>>();
      for (const server of order) {
        await store.reset();
        const env = { ...APP_ENV, ...store.env, WORKERS: '1', ...(onePath ? ONE_USER_LIMITS_OFF : {}) };
        const app = await startProcess([...SERVER_NODE_FLAGS, ...server.split(' ')], env, 8090, '/ready');
        results.set(server, await measure(app, 8090, seeded));
        await stopProcess(app);
      }
      for (const server of servers) {
        const r = results.get(server)!;
        cpu.get(server)!.push(r.cpuUs);
        const share = baselineRate ? ` (${Math.round((100 * r.rate) / baselineRate)} %)` : '';
        const database = embedded ? ', database included' : ` (database ${r.dbUs})`;
        line.push(`${server} ${r.rate} req/s${share}, ${r.cpuUs} µs CPU/request${database}${r.failed ? `, ${r.failed} failed` : ''}`);
      }
      console.log(`round ${round}${order === servers ? '' : ' (reverse order)'}: ${line.join(' | ')}`);
    }
    console.log(`median CPU per request: ${servers.map((s) => `${s} ${Math.round(median(cpu.get(s)!))} µs`).join(' | ')}`);
  } finally {
    await store.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
