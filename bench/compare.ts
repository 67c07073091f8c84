// npm run bench:compare -- <server.js> [<server.js> ...] — scenario B (64 connections, saturation)
// against several builds of the server and the bare baseline, alternating, round after round, with
// the server's own CPU time per request (from /proc/<pid>/stat) and the local PostgreSQL's: the
// figures that show what one change bought, where throughput alone moves by ±5 % between runs on a
// shared machine.
//
//   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && ln -s "$PWD/node_modules" . && npx tsc -p tsconfig.build.json)
//   npm run build && npm run bench:compare -- /tmp/before/dist/server.js dist/server.js
//
// A server may carry Node options before it: "--max-semi-space-size=64 dist/server.js".
// Settings: BENCH_DATABASE_URL, COMPARE_ROUNDS (default 3), COMPARE_SECONDS (default 10);
// COMPARE_PATH=list|get|create|toggle drives that one path alone for one user instead (the paths
// benchmark's load, per-user limit and quota off): the figure for a change to one path.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { migrate } from '../src/db/migrate.js';
import { APP_ENV, load, ONE_USER_LIMITS_OFF, resetToSeed, seed, startProcess, stopProcess, type Seeded } from './run.js';
import { scratchDatabase } from './scratch-database.js';

const rounds = Number(process.env.COMPARE_ROUNDS ?? 3);
const seconds = Number(process.env.COMPARE_SECONDS ?? 10);
const servers = process.argv.slice(2);
const onePath = process.env.COMPARE_PATH as 'list' | 'get' | 'create' | 'toggle' | undefined;
if (onePath && !['list', 'get', 'create', 'toggle'].includes(onePath))
  throw new Error(`COMPARE_PATH: list, get, create or toggle, not ${onePath}`);

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

async function main() {
  if (servers.length === 0) throw new Error('name at least one server build: npm run bench:compare -- dist/server.js');
  const scratch = await scratchDatabase('todo_compare', { poolMax: 4 });
  const { db, url: dbUrl } = scratch;
  try {
    await migrate(db);
    const seeded = await seed(db);
    const reset = await resetToSeed(db);
    for (let round = 1; round <= rounds; round++) {
      await reset();
      const baselineProcess = await startProcess(['--import', 'tsx', 'bench/baseline.ts'], { DATABASE_URL: dbUrl }, 8100, '/api/tasks');
      const baseline = await measure(baselineProcess, 8100, seeded);
      await stopProcess(baselineProcess);
      const line = [`round ${round}: baseline ${baseline.rate} req/s, ${baseline.cpuUs} µs CPU/request (database ${baseline.dbUs})`];
      for (const server of servers) {
        await reset();
        const env = { ...APP_ENV, DATABASE_URL: dbUrl, WORKERS: '1', ...(onePath ? ONE_USER_LIMITS_OFF : {}) };
        const app = await startProcess(server.split(' '), env, 8090, '/ready');
        const r = await measure(app, 8090, seeded);
        await stopProcess(app);
        line.push(
          `${server} ${r.rate} req/s (${Math.round((100 * r.rate) / baseline.rate)} %), ${r.cpuUs} µs CPU/request (database ${r.dbUs})${r.failed ? `, ${r.failed} failed` : ''}`,
        );
      }
      console.log(line.join(' | '));
    }
  } finally {
    await scratch.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
