// Temporary: profile app and baseline under scenario B.
import { spawn } from 'node:child_process';
import pg from 'pg';
import { migrate } from '../src/db/migrate.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { load, seed } from './run.js';

const adminUrl = 'postgres://postgres@127.0.0.1:5432/postgres';
const SECRET = 'bench-secret-bench-secret-bench-secret-0123';
const mode = process.argv[2] ?? 'app';
const duration = Number(process.argv[3] ?? 15);
const extraEnv = Object.fromEntries((process.argv[4] ?? '').split(',').filter(Boolean).map((kv) => kv.split('=')));
const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
const url = Object.assign(new URL(adminUrl), { pathname: '/todo_prof' }).toString();
const exists = (await admin.query("SELECT 1 FROM pg_database WHERE datname = 'todo_prof'")).rows.length > 0;
if (!exists) await admin.query('CREATE DATABASE todo_prof');
const db = createPostgresDatabase({ connectionString: url, poolMax: 4, statementTimeoutMs: 600000, connectTimeoutMs: 5000 });
if (!exists) { await migrate(db); }
await db.query("DELETE FROM tasks WHERE user_id LIKE 'bench-%'");
const seeded = await seed(db);
await db.query('VACUUM ANALYZE tasks');
await db.close();
const args = mode === 'baseline' ? ['--import', 'tsx', 'bench/baseline.ts'] : [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), 'dist/server.js'];
const port = mode === 'baseline' ? 8100 : 8095;
const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH!, PORT: String(port), HOST: '127.0.0.1', JWT_SECRET: SECRET, NODE_ENV: 'production', LOG_LEVEL: 'info', MIGRATE_ON_START: 'false', DATABASE_URL: url, WORKERS: '1', ...extraEnv }, stdio: ['ignore', 'ignore', 'inherit'] });
await new Promise((r) => setTimeout(r, 2500));
await load(`http://127.0.0.1:${port}`, { connections: 64, duration: 3, seeded, onePerConnection: false });
const r = await load(`http://127.0.0.1:${port}`, { connections: 64, duration, seeded, onePerConnection: false });
const { readFileSync } = await import('node:fs');
const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
const cpuMs = (Number(stat[11]) + Number(stat[12])) * 10;
console.log(mode, JSON.stringify(extraEnv), JSON.stringify(r), `cpu ${cpuMs} ms, ${(cpuMs * 1000 / (r.requests + 1)).toFixed(0)} us/request (incl. warm-up)`);
await new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
await admin.end();
