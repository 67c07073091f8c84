// npm run bench:paths — each of four paths (a list of 50 tasks, a get, a create, a toggle) at
// saturation (64 connections, autocannon) against four servers in the same run, alternating,
// round after round, every other round in reverse order: the app (compiled, production, one
// worker, per-user limit off), the baseline (bench/baseline.ts: the app's own SQL, no framework)
// and the physical limit (bench/physical.ts: the simplest statement and a plain JSON.stringify),
// twice: its statements unnamed (parsed and planned each time, the limit) and prepared (as
// the app's are by default). Before measuring, the list and get bodies of the app and the physical
// limit are compared: same tasks, same fields, same size.
// Writes bench/results/paths.{json,md}. Settings: BENCH_DATABASE_URL, PATHS_ROUNDS (3), PATHS_SECONDS (5),
// PATHS_ONLY (a comma-separated subset of list, get, create, toggle; results then go to stdout only),
// PATHS_BEFORE (another build's server.js, e.g. /tmp/before/dist/server.js: measured as a fifth
// server in the same rounds, so a change is judged against the same limits in the same run).
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { mintToken } from '../src/auth/mint-token.js';
import { migrate } from '../src/db/migrate.js';
import { APP_ENV, median, ONE_USER_LIMITS_OFF, seedLister, startProcess, stopProcess } from './run.js';
import { scratchDatabase } from './scratch-database.js';
import { SERVER_NODE_FLAGS } from './node-flags.js';

const rounds = Number(process.env.PATHS_ROUNDS ?? 3);
const seconds = Number(process.env.PATHS_SECONDS ?? 5);
const only = process.env.PATHS_ONLY?.split(',').map((p) => p.trim());
const SECRET = 'paths-bench-secret-paths-bench-secret-0123';

interface PathLoad {
  name: string;
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  user: string;
  body?: string;
}

const before = process.env.PATHS_BEFORE;
const SERVERS = {
  ...(before ? { before: { args: [...SERVER_NODE_FLAGS, before], port: 8130, ready: '/ready' } } : {}),
  app: { args: [...SERVER_NODE_FLAGS, 'dist/server.js'], port: 8090, ready: '/ready' },
  baseline: { args: [...SERVER_NODE_FLAGS, '--import', 'tsx', 'bench/baseline.ts'], port: 8100, ready: '/api/tasks' },
  physical: { args: ['--import', 'tsx', 'bench/physical.ts'], port: 8110, ready: '/api/tasks' },
  physicalPrepared: { args: ['--import', 'tsx', 'bench/physical.ts'], port: 8120, ready: '/api/tasks', env: { PHYSICAL_PREPARED: 'true' } },
} as const;
type ServerName = 'before' | 'app' | 'baseline' | 'physical' | 'physicalPrepared';

async function start(name: ServerName, dbUrl: string): Promise<ChildProcess> {
  const s = (SERVERS as Record<string, { args: readonly string[]; port: number; ready: string; env?: Record<string, string> }>)[name]!;
  const env = {
    ...s.env,
    ...APP_ENV,
    ...ONE_USER_LIMITS_OFF,
    DATABASE_URL: dbUrl,
    WORKERS: '1',
    WARM_UP_REQUESTS: '0',
    JWT_SECRET: SECRET,
    PORT: String(s.port),
  };
  return startProcess([...s.args], env, s.port, s.ready);
}

async function measure(port: number, load: PathLoad, token: string, duration = seconds) {
  const r = await autocannon({
    url: `http://127.0.0.1:${port}${load.path}`,
    method: load.method,
    connections: 64,
    duration,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(load.body ? { body: load.body } : {}),
  });
  return { rate: Math.round(r.requests.total / r.duration), failed: r.non2xx + r.errors + r.timeouts };
}

/** The app's and the physical limit's bodies of one request: same JSON, same size. */
async function sameBody(path: string, token: string): Promise<string> {
  const [a = '', p = ''] = await Promise.all(
    [SERVERS.app.port, SERVERS.physical.port].map(async (port) =>
      (await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } })).text(),
    ),
  );
  if (a !== p) throw new Error(`bodies differ for ${path}:\napp:      ${a.slice(0, 300)}\nphysical: ${p.slice(0, 300)}`);
  return `${path}: ${JSON.parse(a).length ?? 1} task(s), ${Buffer.byteLength(a)} bytes, identical`;
}

async function main() {
  const scratch = await scratchDatabase('todo_paths', { poolMax: 2 });
  const { db, url: dbUrl } = scratch;
  const children: ChildProcess[] = [];
  try {
    await migrate(db);
    // One user with 50 tasks for the list; one task of another user for get and toggle.
    await seedLister(db);
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO tasks (user_id, title, position) VALUES ('getter', 'One task', 1024) RETURNING id`,
    );
    const taskId = rows[0]!.id;
    const tokens = Object.fromEntries(
      await Promise.all(
        ['lister', 'getter', 'creator'].map(async (u) => [u, await mintToken({ secret: SECRET, userId: u, ttlSec: 3600 })]),
      ),
    ) as Record<string, string>;
    const allLoads: PathLoad[] = [
      { name: 'list (50 tasks)', method: 'GET', path: '/api/tasks', user: 'lister' },
      { name: 'get', method: 'GET', path: `/api/tasks/${taskId}`, user: 'getter' },
      { name: 'create', method: 'POST', path: '/api/tasks', user: 'creator', body: JSON.stringify({ title: 'Benchmark task' }) },
      { name: 'toggle', method: 'PATCH', path: `/api/tasks/${taskId}/complete`, user: 'getter' },
    ];
    const loads = only ? allLoads.filter((l) => only.includes(l.name.split(' ')[0]!)) : allLoads;

    children.push(await start('app', dbUrl), await start('physical', dbUrl));
    const checks = [await sameBody('/api/tasks', tokens.lister!), await sameBody(`/api/tasks/${taskId}`, tokens.getter!)];
    for (const c of children.splice(0)) await stopProcess(c);
    console.log(checks.join('\n'));

    const results: Record<string, Record<ServerName, number[]>> = {};
    const names = Object.keys(SERVERS) as ServerName[];
    for (let round = 1; round <= rounds; round++) {
      // Every other round in reverse, so no server is always the one measured first (bench/compare.ts says why).
      for (const name of round % 2 === 1 ? names : [...names].reverse()) {
        const child = await start(name, dbUrl);
        children.push(child);
        for (const load of loads) {
          await measure((SERVERS as Record<string, { port: number }>)[name]!.port, load, tokens[load.user]!, 3); // warm-up, not counted
          const r = await measure((SERVERS as Record<string, { port: number }>)[name]!.port, load, tokens[load.user]!);
          if (r.failed) throw new Error(`${name} ${load.name}: ${r.failed} failed requests`);
          if (!results[load.name]) results[load.name] = { before: [], app: [], baseline: [], physical: [], physicalPrepared: [] };
          results[load.name]![name].push(r.rate);
        }
        await stopProcess(children.pop()!);
      }
      console.log(`round ${round} done`);
    }
    const lines = [
      '| path | app req/s | baseline req/s | physical limit req/s | physical, prepared req/s | app / baseline | app / physical limit | app / physical, prepared |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...Object.entries(results).map(([path, r]) => {
        const [app, base, phys, prep] = [median(r.app), median(r.baseline), median(r.physical), median(r.physicalPrepared)];
        const ratio = (x: number) => (app / x).toFixed(2);
        return `| ${path} | ${app} | ${base} | ${phys} | ${prep} | ${ratio(base)} | ${ratio(phys)} | ${ratio(prep)} |`;
      }),
      ...(before
        ? [
            '',
            `Before (${before}), in the same rounds:`,
            '',
            '| path | before req/s | app req/s | before / physical, prepared | app / physical, prepared |',
            '| --- | ---: | ---: | ---: | ---: |',
            ...Object.entries(results).map(([path, r]) => {
              const [b, app, prep] = [median(r.before), median(r.app), median(r.physicalPrepared)];
              return `| ${path} | ${b} | ${app} | ${(b / prep).toFixed(2)} | ${(app / prep).toFixed(2)} |`;
            }),
          ]
        : []),
    ];
    const md = [
      `# Paths against the physical limit (${new Date().toISOString()})`,
      '',
      `64 connections, ${seconds} s a measurement after 3 s of warm-up, median of ${rounds} alternating rounds; app in production, one worker, per-user limit off; PostgreSQL on loopback.`,
      '',
      ...checks.map((c) => `- ${c}`),
      '',
      ...lines,
      '',
    ].join('\n');
    if (only || before) return void console.log(md);
    writeFileSync('bench/results/paths.md', md);
    writeFileSync('bench/results/paths.json', `${JSON.stringify({ seconds, rounds, checks, results }, null, 2)}\n`);
    console.log(md);
  } finally {
    for (const c of children) await stopProcess(c);
    await scratch.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
