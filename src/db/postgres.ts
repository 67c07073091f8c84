import pg from 'pg';
import type { Logger } from 'pino';
import type { Database, Queryable, QueryResult, Session } from './types.js';

export interface PostgresOptions {
  connectionString: string;
  poolMax: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  /** Named (server-side prepared) statements: parsed and planned once per connection. */
  preparedStatements?: boolean;
  logger?: Logger;
}

function result<R>(res: pg.QueryResult): QueryResult<R> {
  return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
}

export function createPostgresDatabase(opts: PostgresOptions): Database {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    // The client-side guard covers a server that stops answering; it fires a little after the
    // server-side statement_timeout so the server's own, clearer error usually wins.
    query_timeout: opts.statementTimeoutMs + 1000,
    idleTimeoutMillis: 30_000,
    allowExitOnIdle: true,
    // statement_timeout is set per connection with SET, before the connection is handed out:
    // Neon's pooler rejects it as a startup parameter.
    onConnect: async (client) => {
      await client.query(`SET statement_timeout = ${Number(opts.statementTimeoutMs)}`);
      // Plan each execution for its own parameters. A generic plan for the list statement, costed
      // for an average user, sorts all of a user's tasks: fine for 50, ruinous for 100 000.
      await client.query('SET plan_cache_mode = force_custom_plan');
    },
  });
  // An idle client that loses its connection emits 'error' on the pool; unhandled, it kills the process.
  pool.on('error', (err) => opts.logger?.warn({ err: { message: err.message } }, 'idle database client error'));
  let closing: Promise<void> | undefined;
  // The app's SQL is a small fixed set of texts, so naming each text once bounds the statements a
  // connection keeps. Off for poolers that cannot keep protocol-level prepared statements.
  const names = new Map<string, string>();
  const named = (text: string) => {
    let name = names.get(text);
    if (!name) names.set(text, (name = `todo_${names.size + 1}`));
    return name;
  };
  const query = async <R>(text: string, params?: readonly unknown[]) =>
    result<R>(
      await (opts.preparedStatements
        ? pool.query({ name: named(text), text, values: params as unknown[] })
        : pool.query(text, params as unknown[])),
    );

  return {
    kind: 'postgres',
    query,
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const value = await fn({
          query: async <R>(text: string, params?: readonly unknown[]) =>
            result<R>(await client.query(text, params as unknown[])),
        });
        await client.query('COMMIT');
        return value;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        return await fn({
          query: async <R>(text: string, params?: readonly unknown[]) =>
            result<R>(await client.query(text, params as unknown[])),
          exec: async (script: string) => {
            // Without parameters node-postgres uses the simple protocol, which allows many statements.
            await client.query(script);
          },
        });
      } catch (err) {
        broken = err as Error;
        throw err;
      } finally {
        // A session may end inside a failed transaction or holding locks: discard it rather than reuse it.
        client.release(broken ?? true);
      }
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => (closing ??= pool.end()),
  };
}
