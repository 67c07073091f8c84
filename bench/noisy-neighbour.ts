// npm run bench:neighbour -- <server.js> [<server.js> ...] — one user tries to slow everyone down
// (security finding 3): it fills its list with 5,000 tasks of 2.5 KB, then runs 8 searches at a
// time for text of 200 `%` signs. Meanwhile another user reads its /stats, one call after another.
// Reported: that other user's latency before and during the attack, per build and database, and
// what the attacker's creates and searches got. Loopback only, bounded in count and time.
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && ln -s "$PWD/node_modules" . && npx tsc -p tsconfig.build.json)
//   npm run build && npm run bench:neighbour -- /tmp/before/dist/server.js dist/server.js
//
// Settings: BENCH_DATABASE_URL (PostgreSQL, default the local one), NEIGHBOUR_TASKS (5000),
// NEIGHBOUR_SECONDS (10), NEIGHBOUR_DATABASES (embedded,postgres).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { mintToken } from '../src/auth/mint-token.js';
import { startProcess, stopProcess } from './run.js';

const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const TASKS = Number(process.env.NEIGHBOUR_TASKS ?? 5000);
const SECONDS = Number(process.env.NEIGHBOUR_SECONDS ?? 10);
const DATABASES = (process.env.NEIGHBOUR_DATABASES ?? 'embedded,postgres').split(',');
const SECRET = 'neighbour-bench-secret-3f9a1c07b2e84d6695a0c4e1f7d2';
const PORT = 8095;

const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
};

async function timed(url: string, auth: string): Promise<{ ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { Authorization: auth } });
  await res.arrayBuffer();
  return { ms: performance.now() - t0, status: res.status };
}

async function run(server: string, kind: string) {
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    JWT_SECRET: SECRET,
    WORKERS: '1',
    RATE_LIMIT_PER_USER: '0',
    RATE_LIMIT_IP_FAILURES: '0',
    LOG_LEVEL: 'warn',
    WARM_UP_REQUESTS: '0',
  };
  let cleanup = async () => {};
  if (kind === 'postgres') {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query('DROP DATABASE IF EXISTS todo_neighbour WITH (FORCE)');
    await admin.query('CREATE DATABASE todo_neighbour');
    env.DATABASE_URL = Object.assign(new URL(adminUrl), { pathname: '/todo_neighbour' }).toString();
    cleanup = async () => {
      await admin.query('DROP DATABASE IF EXISTS todo_neighbour WITH (FORCE)');
      await admin.end();
    };
  } else {
    const dir = mkdtempSync(path.join(tmpdir(), 'todo-neighbour-'));
    env.DATA_DIR = dir;
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  }
  const child = await startProcess([server], env, PORT, '/ready');
  const base = `http://127.0.0.1:${PORT}/api/tasks`;
  try {
    const attacker = `Bearer ${await mintToken({ secret: SECRET, userId: 'attacker', ttlSec: 3600 })}`;
    const victim = `Bearer ${await mintToken({ secret: SECRET, userId: 'victim', ttlSec: 3600 })}`;
    const created = { ok: 0, refused: 0 };
    let i = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (i < TASKS) {
          const n = i++;
          const res = await fetch(base, {
            method: 'POST',
            headers: { Authorization: attacker, 'Content-Type': 'application/json' },
            body: JSON.stringify({ title: `t${n} ${'x'.repeat(490)}`, description: 'y'.repeat(2000) }),
          });
          await res.arrayBuffer();
          if (res.status === 201) created.ok++;
          else created.refused++;
        }
      }),
    );
    const createSec = (performance.now() - t0) / 1000;
    const quiet: number[] = [];
    for (let k = 0; k < 50; k++) quiet.push((await timed(`${base}/stats`, victim)).ms);

    const searches: { ms: number; status: number }[] = [];
    const underAttack: { ms: number; status: number }[] = [];
    const until = performance.now() + SECONDS * 1000;
    const q = encodeURIComponent('%'.repeat(200));
    await Promise.all([
      ...Array.from({ length: 8 }, async () => {
        while (performance.now() < until && searches.length < 10_000) searches.push(await timed(`${base}?q=${q}`, attacker));
      }),
      (async () => {
        while (performance.now() < until && underAttack.length < 10_000) underAttack.push(await timed(`${base}/stats`, victim));
      })(),
    ]);
    const ms = (xs: number[]) => `p50 ${percentile(xs, 50).toFixed(1)} / p95 ${percentile(xs, 95).toFixed(1)} ms`;
    const statuses = (rs: { status: number }[]) => [...new Set(rs.map((r) => r.status))].join(',');
    console.log(
      `${server} on ${kind}: attacker created ${created.ok} (refused ${created.refused}) in ${createSec.toFixed(1)} s; ` +
        `victim /stats quiet ${ms(quiet)}, under attack ${ms(underAttack.map((r) => r.ms))} (${underAttack.length} calls, status ${statuses(underAttack)}); ` +
        `attacker searches ${searches.length}, ${ms(searches.map((r) => r.ms))}, status ${statuses(searches)}`,
    );
  } finally {
    await stopProcess(child);
    await cleanup();
  }
}

const servers = process.argv.slice(2);
if (servers.length === 0) throw new Error('name at least one server build: npm run bench:neighbour -- dist/server.js');
for (const kind of DATABASES) for (const server of servers) await run(server, kind);
