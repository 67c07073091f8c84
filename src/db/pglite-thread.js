// @ts-check
// The embedded database's own thread: PGlite (PostgreSQL compiled to WebAssembly) runs here, so the
// HTTP thread never waits while it executes a statement. Plain JavaScript, not TypeScript, so that
// Node can start it as it is from src/ (tests) and from dist/ (the server).
//
// Messages in: { id, op: 'query', text, params, tx?, named? } | { id, op: 'exec', script }
//            | { id, op: 'begin', tx } | { id, op: 'end', tx, commit } | { id, op: 'close' }
// Messages out: { id, result? } or { id, error: { message, ...fields } }; id 0 says it is ready.
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { namedStatements } from './pglite-named.js';

const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

/**
 * An error as plain data: the message and the database's own fields (`code` is the SQLSTATE),
 * which a structured clone of an Error would drop.
 * @param {unknown} err
 */
function describe(err) {
  if (!(err instanceof Error)) return { message: String(err) };
  return { ...Object.fromEntries(Object.entries(err)), name: err.name, message: err.message };
}

/** @type {PGlite} */
let db;
/** @type {ReturnType<typeof namedStatements>} */
let named;
try {
  db = workerData.template
    ? await PGlite.create({ loadDataDir: new Blob([readFileSync(workerData.template)]) })
    : await PGlite.create(workerData.dataDir);
  named = namedStatements(db);
  port.postMessage({ id: 0, result: 'ready' });
} catch (err) {
  port.postMessage({ id: 0, error: describe(err) });
  process.exit(1);
}

/**
 * Open transactions by id: the PGlite transaction, how to end it, and its outcome. PGlite holds its
 * one connection for a transaction until the callback settles; other queries wait for it.
 * @type {Map<number, { tx: import('@electric-sql/pglite').Transaction, end: (commit: boolean) => void, settled: Promise<void> }>}
 */
const transactions = new Map();
const ROLLED_BACK = new Error('rolled back on request');

/** @param {{ rows: unknown[], affectedRows?: number }} res */
const result = (res) => ({ rows: res.rows, affectedRows: res.affectedRows });

/** @param {any} m */
async function handle(m) {
  switch (m.op) {
    case 'query': {
      if (m.named && m.tx === undefined && named) return result(await named(m.text, m.params));
      const on = m.tx === undefined ? db : transactions.get(m.tx)?.tx;
      if (!on) throw new Error('the transaction has already ended');
      return result(await on.query(m.text, m.params));
    }
    case 'exec':
      await db.exec(m.script);
      return undefined;
    case 'begin':
      await new Promise((begun, failed) => {
        const settled = db
          .transaction(
            (tx) =>
              new Promise((resolve, reject) => {
                const end = (/** @type {boolean} */ commit) => (commit ? resolve(undefined) : reject(ROLLED_BACK));
                transactions.set(m.tx, { tx, end, settled });
                begun(undefined);
              }),
          )
          .then(
            () => undefined,
            (err) => {
              if (err !== ROLLED_BACK) throw err;
            },
          )
          .finally(() => transactions.delete(m.tx));
        // A transaction that could not begin at all (the database is closed) fails the begin.
        settled.catch(failed);
      });
      return undefined;
    case 'end': {
      const open = transactions.get(m.tx);
      if (!open) throw new Error('the transaction has already ended');
      open.end(m.commit);
      await open.settled;
      return undefined;
    }
    case 'close':
      await db.close();
      return undefined;
    default:
      throw new Error(`unknown operation ${m.op}`);
  }
}

port.on('message', (m) => {
  handle(m).then(
    (res) => port.postMessage({ id: m.id, result: res }),
    (err) => port.postMessage({ id: m.id, error: describe(err) }),
  );
});
