// The embedded database: PGlite, run on a thread of its own (src/db/pglite-thread.js). Executing a
// statement in PGlite is most of what an embedded request costs; on the HTTP thread it would stall
// every other request meanwhile, and the process could use only one core.
//
// PGlite ignores statement_timeout (it never interrupts its own WebAssembly), so the limit is kept
// here: a statement that runs past it fails with SQLSTATE 57014, as on PostgreSQL, and the thread
// that is still executing it is stopped and a new one opens the same data folder. Every statement
// that was waiting behind it fails as unavailable, and so does an open transaction, which the
// database's crash recovery rolls back (what PostgreSQL does when a backend is terminated). In
// memory (tests) there is no folder to reopen: the caller gets its timeout; the statement finishes.
import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { lockDataDir } from './data-dir-lock.js';
import { DatabaseClosedError } from './errors.js';
import type { Database, Queryable, QueryResult, Session } from './types.js';

export interface PGliteOptions {
  /** A folder to keep the data in; undefined keeps it in memory (tests). */
  dataDir: string | undefined;
  /** The longest a statement may run, as DB_STATEMENT_TIMEOUT_MS; undefined: no limit. */
  statementTimeoutMs?: number | undefined;
  /**
   * In memory only: a data folder dumped by PGlite's dumpDataDir() (a tarball) to start from, which
   * skips creating a cluster (initdb in WebAssembly, about 2 s; tests start from one made once).
   */
  template?: string | undefined;
  /** Told when a statement ran too long and the thread was replaced. */
  onRestart?: (reason: string) => void;
}

interface Reply {
  id: number;
  result?: unknown;
  error?: { message: string } & Record<string, unknown>;
}

type Call = { resolve: (value: unknown) => void; reject: (err: Error) => void };

/** One PGlite thread; replaced as a whole when a statement overruns. */
interface Thread {
  /** Set once the thread has been started (a replacement waits for its predecessor to end). */
  worker: Worker | undefined;
  ready: Promise<void>;
  pending: Map<number, Call>;
  stopped: Error | undefined;
}

/** The thread's error as an Error again, with the database's fields (`code` is the SQLSTATE). */
function revive(error: NonNullable<Reply['error']>): Error {
  return Object.assign(new Error(error.message), error);
}

function statementTimeout(ms: number): Error {
  return Object.assign(new Error(`canceling statement due to statement timeout (${ms} ms, embedded database)`), { code: '57014' });
}

export async function createPGliteDatabase(opts: PGliteOptions): Promise<Database> {
  let release = () => {};
  if (opts.dataDir) {
    mkdirSync(opts.dataDir, { recursive: true });
    release = lockDataDir(opts.dataDir);
  }
  let nextId = 1;
  let closed = false;

  function start(after: Promise<unknown> = Promise.resolve()): Thread {
    const thread: Thread = { worker: undefined, pending: new Map(), stopped: undefined, ready: Promise.resolve() };
    // The thread is gone (a crash inside PGlite, close, or a restart): every call waiting on it
    // fails, and so does every later one, with an error the HTTP layer reports as
    // `503 database_unavailable`.
    const fail = (err: Error) => {
      thread.stopped ??= new DatabaseClosedError(`PGlite is closed: ${err.message}`, { cause: err });
      for (const call of thread.pending.values()) call.reject(thread.stopped);
      thread.pending.clear();
    };
    thread.ready = after.then(
      () =>
        new Promise<void>((resolve, reject) => {
          thread.pending.set(0, { resolve: () => resolve(), reject });
          const worker = new Worker(new URL('./pglite-thread.js', import.meta.url), {
            workerData: { dataDir: opts.dataDir, template: opts.dataDir ? undefined : opts.template },
          });
          thread.worker = worker;
          worker.on('message', (m: Reply) => {
            const call = thread.pending.get(m.id);
            if (!call) return;
            thread.pending.delete(m.id);
            if (m.error) call.reject(revive(m.error));
            else call.resolve(m.result);
          });
          worker.on('error', fail);
          worker.on('exit', (code) => fail(new Error(`the database thread exited (code ${code})`)));
        }),
    );
    return thread;
  }

  let current = start();
  try {
    await current.ready;
  } catch (err) {
    await current.worker?.terminate();
    release();
    throw err;
  }

  /** Replaces a thread that is stuck in a statement with a fresh one on the same folder. */
  function restart(stuck: Thread, reason: string): void {
    if (current !== stuck || closed || !opts.dataDir) return;
    stuck.stopped ??= new DatabaseClosedError('The embedded database is restarting after a statement ran too long.');
    for (const call of stuck.pending.values()) call.reject(stuck.stopped);
    stuck.pending.clear();
    // The new thread opens the folder only once the old one has stopped touching it.
    current = start(stuck.worker?.terminate() ?? Promise.resolve());
    current.ready.catch(() => {}); // a thread that cannot reopen the folder fails every call instead
    opts.onRestart?.(reason);
  }

  const call = async <T>(message: Record<string, unknown>, thread: Thread = current, limitMs?: number): Promise<T> => {
    try {
      await thread.ready;
    } catch (err) {
      throw new DatabaseClosedError(`The embedded database could not be opened again: ${(err as Error).message}`, { cause: err });
    }
    if (thread.stopped) throw thread.stopped;
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = {
        resolve: (v: unknown) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      thread.pending.set(id, done);
      if (limitMs !== undefined && Number.isFinite(limitMs)) {
        timer = setTimeout(() => {
          if (!thread.pending.delete(id)) return;
          reject(statementTimeout(limitMs));
          restart(thread, `a statement ran past ${limitMs} ms`);
        }, limitMs);
      }
      thread.worker!.postMessage({ ...message, id });
    });
  };

  // `named`: parsed once and kept by the database (src/db/pglite-named.js), as the app's own
  // statements are on PostgreSQL; a session's and a transaction's statements are not.
  const queryOn =
    (tx: number | undefined, thread: Thread, limitMs = opts.statementTimeoutMs, named = false) =>
    async <R>(text: string, params?: readonly unknown[]): Promise<QueryResult<R>> => {
      const res = await call<{ rows: R[]; affectedRows?: number }>({ op: 'query', text, params, tx, named }, thread, limitMs);
      return { rows: res.rows, rowCount: res.affectedRows || res.rows.length };
    };
  let nextTx = 1;

  const db: Database = {
    kind: 'pglite',
    serial: true,
    query: (text, params) => queryOn(undefined, current, opts.statementTimeoutMs, true)(text, params),
    queryAfter: (first, text, params) =>
      db.transaction(async (tx) => {
        await tx.query(first.text, first.values);
        return tx.query(text, params);
      }),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      // PGlite is one connection: an open transaction holds it, and other statements wait. The
      // transaction lives and dies with the thread it began on.
      const tx = nextTx++;
      const thread = current;
      await call({ op: 'begin', tx }, thread);
      let value: T;
      try {
        value = await fn({ query: queryOn(tx, thread) });
      } catch (err) {
        await call({ op: 'end', tx, commit: false }, thread).catch(() => {});
        throw err;
      }
      await call({ op: 'end', tx, commit: true }, thread);
      return value;
    },
    async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
      // The only connection is the session. Callers use this before serving traffic; migrations
      // take as long as they take.
      const thread = current;
      return fn({
        query: queryOn(undefined, thread, Infinity),
        exec: (script: string) => call<void>({ op: 'exec', script }, thread),
      });
    },
    poolStats: () => ({ total: 1, idle: 1, waiting: 0 }),
    close: async () => {
      closed = true;
      const thread = current;
      try {
        if (!thread.stopped) await call({ op: 'close' }, thread);
      } finally {
        await thread.worker?.terminate();
        release();
      }
    },
  };
  return db;
}
