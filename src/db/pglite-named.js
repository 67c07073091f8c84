// @ts-check
// Named statements on PGlite, as the PostgreSQL side has them (src/db/postgres.ts): PGlite's
// query() parses, describes and plans its statement on every call, in six round trips into its
// WebAssembly; a statement parsed once under a name is then bound and executed in one. It is still
// planned for its own parameters on every run, as query()'s unnamed statements were: a page of tasks
// must be (QueryOptions.planEach), and one setting for the one connection keeps that true of all.
// It runs as query() does (PGlite 0.5's own query path, which this follows step for step): under
// the same two locks, so it never runs inside another caller's open transaction; its parameters
// serialized for the types the server inferred, by PGlite's own serializers; its result parsed by
// PGlite's own parser; the data folder synced afterwards. Plain JavaScript, like the thread.
import { Buffer } from 'node:buffer';
import { parse, protocol } from '@electric-sql/pglite';

const { serialize } = protocol;

/**
 * PGlite's internals query() runs under. Not in its published types; if a later version drops
 * them, `namedStatements` answers undefined and the thread keeps to query().
 * @typedef {{
 *   _runExclusiveTransaction<T>(fn: () => Promise<T>): Promise<T>,
 *   _runExclusiveQuery<T>(fn: () => Promise<T>): Promise<T>,
 *   serializers: Record<number, (value: unknown) => string>,
 *   parsers: Record<number, (value: string, type: number) => unknown>,
 * }} Internals
 */

/**
 * A query function over named statements, one per distinct text, or undefined when this PGlite
 * lacks the internals it needs.
 * @param {import('@electric-sql/pglite').PGlite} db
 * @returns {((text: string, params?: readonly unknown[]) => Promise<{ rows: unknown[], affectedRows?: number }>) | undefined}
 */
export function namedStatements(db) {
  const pg = /** @type {import('@electric-sql/pglite').PGlite & Internals} */ (db);
  if (typeof pg._runExclusiveTransaction !== 'function' || typeof pg._runExclusiveQuery !== 'function') return undefined;
  /** @type {Map<string, { name: string, paramTypes: number[] }>} */
  const statements = new Map();
  /** @param {Uint8Array[]} parts */
  const send = async (parts) => (await db.execProtocol(Buffer.concat(parts), { syncToFs: false })).messages;

  /** @param {string} text */
  async function prepare(text) {
    if (statements.size === 0) await send([serialize.query('SET plan_cache_mode = force_custom_plan')]);
    const name = `todo_${statements.size + 1}`;
    try {
      const described = await send([serialize.parse({ name, text }), serialize.describe({ type: 'S', name }), serialize.sync()]);
      const statement = { name, paramTypes: parse.parseDescribeStatementResults(described) };
      statements.set(text, statement);
      return statement;
    } catch (err) {
      // Nothing is kept for a statement that failed to parse (closing a name that does not exist is
      // no error), so the name can be used again.
      await send([serialize.close({ type: 'S', name }), serialize.sync()]).catch(() => {});
      throw err;
    }
  }

  return (text, params = []) =>
    pg._runExclusiveTransaction(() =>
      pg._runExclusiveQuery(async () => {
        const statement = statements.get(text) ?? (await prepare(text));
        const values = params.map((value, i) => {
          if (value === null || value === undefined) return null;
          const type = /** @type {number} */ (statement.paramTypes[i]);
          const write = pg.serializers[type];
          return write ? write(value) : String(value);
        });
        const messages = await send([
          serialize.bind({ statement: statement.name, values }),
          serialize.describe({ type: 'P' }),
          serialize.execute({}),
          serialize.sync(),
        ]);
        await db.syncToFs();
        return /** @type {{ rows: unknown[], affectedRows?: number }} */ (parse.parseResults(messages, pg.parsers)[0]);
      }),
    );
}
