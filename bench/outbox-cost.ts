// What the webhook outbox's triggers cost a write of a user without endpoints (nearly every write):
// the same single-row insert, update and delete on a scratch PostgreSQL database, with the
// webhook triggers enabled and disabled in alternating rounds of one run, timed on the database's
// side (the statements' execution, from pg_stat_statements-free wall time over one connection).
//
//   npx tsx bench/outbox-cost.ts        # BENCH_DATABASE_URL: another server; OUTBOX_ROUNDS, OUTBOX_WRITES
import { migrate } from '../src/db/migrate.js';
import { scratchDatabase } from './scratch-database.js';

const ROUNDS = Number(process.env.OUTBOX_ROUNDS ?? 6);
const WRITES = Number(process.env.OUTBOX_WRITES ?? 2000);
const TRIGGERS = ['tasks_webhooks_inserted', 'tasks_webhooks_updated', 'tasks_webhooks_deleted'];

const scratch = await scratchDatabase('bench_outbox', { poolMax: 1 });
try {
  await migrate(scratch.db);
  const db = scratch.db;
  // Other users have endpoints, as on a server where webhooks are in use.
  await db.query(
    `INSERT INTO webhook_endpoints (user_id, url, events, secret)
     SELECT 'other-' || i, 'https://hooks.example.com/' || i, '{task.created,task.updated,task.deleted}', 's' FROM generate_series(1, 1000) i`,
  );
  const round = async (): Promise<number> => {
    const began = performance.now();
    for (let i = 0; i < WRITES; i++) {
      const { rows } = await db.query<{ id: string }>("INSERT INTO tasks (user_id, title) VALUES ('bench', 'a') RETURNING id");
      await db.query("UPDATE tasks SET title = 'b' WHERE id = $1 AND user_id = 'bench'", [rows[0]!.id]);
      await db.query("DELETE FROM tasks WHERE id = $1 AND user_id = 'bench'", [rows[0]!.id]);
    }
    return ((performance.now() - began) * 1000) / (WRITES * 3);
  };
  const on: number[] = [];
  const off: number[] = [];
  await round();
  for (let r = 0; r < ROUNDS; r++) {
    for (const enabled of r % 2 === 0 ? [true, false] : [false, true]) {
      for (const t of TRIGGERS) await db.query(`ALTER TABLE tasks ${enabled ? 'ENABLE' : 'DISABLE'} TRIGGER ${t}`);
      (enabled ? on : off).push(await round());
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(
    `per write statement (insert, update, delete; one connection): triggers on ${median(on).toFixed(1)} µs, off ${median(off).toFixed(1)} µs, ratio ${(median(on) / median(off)).toFixed(3)} (${ROUNDS} alternating rounds of ${WRITES * 3})`,
  );
} finally {
  await scratch.drop();
}
