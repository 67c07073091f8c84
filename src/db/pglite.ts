// The embedded database: PGlite, run on a thread of its own (src/db/pglite-thread.js). Executing a
// statement in PGlite is most of what an embedded request costs; on the HTTP thread it would stall
// every other request meanwhile, and the process could use only one core.
import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { lockDataDir } from './data-dir-lock.js';
import { DatabaseClosedError } from './errors.js';
import type { Database, Queryable, QueryResult, Session } from './types.js';

export interface PGliteOptions {
  /** A folder to keep the data in; undefined keeps it in memory (tests). */
  dataDir: string | undefined;
}

interface Reply {
  id: number;
  result?: unknown;
  error?: { message: string } & Record<string, unknown>;
}

/** The thread's error as an Error again, with the database's fields (`code` is the SQLSTATE). */
function revive(error: NonNullable<Reply['error']>): Error {
  return Object.assign(new Error(error.message), error);
}

export async function createPGliteDatabase(opts: PGliteOptions): Promise<Database> {
  let release = () => {};
  if (opts.dataDir) {
    mkdirSync(opts.dataDir, { recursive: true });
    release = lockDataDir(opts.dataDir);
  }
  const worker = new Worker(new URL('./pglite-thread.js', import.meta.url), { workerData: { dataDir: opts.dataDir } });
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  let nextId = 1;
  let stopped: Error | undefined;

  const ready = new Promise<void>((resolve, reject) => pending.set(0, { resolve: () => resolve(), reject }));
  worker.on('message', (m: Reply) => {
    const call = pending.get(m.id);
    if (!call) return;
    pending.delete(m.id);
    if (m.error) call.reject(revive(m.error));
    else call.resolve(m.result);
  });
  // The thread is gone (a crash inside PGlite, or close): every call waiting on it fails, and so
  // does every later one, with a message the HTTP layer reports as `503 database_unavailable`.
  const fail = (err: Error) => {
    stopped ??= new DatabaseClosedError(`PGlite is closed: ${err.message}`, { cause: err });
    for (const call of pending.values()) call.reject(stopped);
    pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the database thread exited (code ${code})`)));

  const call = <T>(message: Record<string, unknown>): Promise<T> => {
    if (stopped) return Promise.reject(stopped);
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...message, id });
    });
  };

  try {
    await ready;
  } catch (err) {
    await worker.terminate();
    release();
    throw err;
  }

  const queryOn =
    (tx?: number) =>
    async <R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
      const res = await call<{ rows: R[]; affectedRows?: number }>({ op: 'query', text, params, tx });
      return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
    };
  const query = queryOn();
  let nextTx = 1;

  return {
    kind: 'pglite',
    query,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      // PGlite is one connection: an open transaction holds it, and other statements wait.
      const tx = nextTx++;
      await call({ op: 'begin', tx });
      let value: T;
      try {
        value = await fn({ query: queryOn(tx) });
      } catch (err) {
        await call({ op: 'end', tx, commit: false }).catch(() => {});
        throw err;
      }
      await call({ op: 'end', tx, commit: true });
      return value;
    },
    async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
      // The only connection is the session. Callers use this before serving traffic.
      return fn({ query, exec: (script: string) => call<void>({ op: 'exec', script }) });
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    close: async () => {
      try {
        if (!stopped) await call({ op: 'close' });
      } finally {
        await worker.terminate();
        release();
      }
    },
  };
}
