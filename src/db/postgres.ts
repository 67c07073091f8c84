// node-postgres behind the Database interface, safe for a transaction pooler (Neon's pooled URL is
// PgBouncer in transaction mode): consecutive statements of one client may run on different server
// connections, so the app keeps no session state. Every statement runs inside a transaction that
// carries its own settings (set_config(..., true), as SET LOCAL): a standalone statement with a
// prelude in the same round trip (preluded-query.ts), a transaction right after its BEGIN. Nothing
// outlives the transaction.
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { ChannelBoundClient } from './channel-binding.js';
import { connectOptions, describeConnectError, parsePostgresUrl, wantsFallback } from './connection-url.js';
import { type Prelude, PreludedQuery } from './preluded-query.js';
import { DatabaseBusyError, DatabaseConnectError, isPreparedStatementLost, isServerError } from './errors.js';
import type { Database, Queryable, QueryOptions, QueryResult, Session, Statement } from './types.js';

export interface PostgresOptions {
  connectionString: string;
  poolMax: number;
  statementTimeoutMs: number;
  connectTimeoutMs: number;
  /** Named (server-side prepared) statements: parsed and planned once per server connection. */
  preparedStatements?: boolean;
  logger?: Logger;
}

function result<R>(res: pg.QueryResult): QueryResult<R> {
  return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
}

// A lock wait ends before the statement's own limit, so a blocked write says so promptly.
const lockTimeoutMs = (statementMs: number) => Math.max(100, Math.floor(statementMs / 2));

export function createPostgresDatabase(opts: PostgresOptions): Database {
  const settings = parsePostgresUrl(opts.connectionString);
  const connect = connectOptions(settings);
  const poolConfig: pg.PoolConfig & { enableChannelBinding: boolean } = {
    connectionString: connect.connectionString,
    ssl: connect.ssl,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.connectTimeoutMs,
    // A guard for a server that stops answering altogether; the server's own statement_timeout
    // (below) fires first and cancels the statement on the server.
    query_timeout: opts.statementTimeoutMs + 2000,
    idleTimeoutMillis: 30_000,
    allowExitOnIdle: true,
    enableChannelBinding: connect.channelBinding !== 'disable',
    ...(connect.channelBinding === 'require' ? { Client: ChannelBoundClient as unknown as typeof pg.Client } : {}),
  };
  const pool = new pg.Pool(poolConfig);
  // An idle client that loses its connection emits 'error' on the pool; unhandled, it kills the process.
  pool.on('error', (err) => opts.logger?.warn({ err: { message: err.message } }, 'idle database client error'));
  let closing: Promise<void> | undefined;
  let fellBack = false;
  let prepared = opts.preparedStatements ?? false;

  // Transaction-local settings: in force for this transaction's statements only.
  const settingsSql = "SELECT set_config('statement_timeout', $1, true), set_config('lock_timeout', $2, true)";
  // The statement's limits are what is left of the operation's time once it has a connection, so
  // waiting for a pooled connection and running the statement together take at most
  // DB_STATEMENT_TIMEOUT_MS (and never 0, which would mean no limit at all).
  const settingsParams = (remainingMs: number) => [String(remainingMs), String(lockTimeoutMs(remainingMs))];
  const localSettings: Statement = { text: settingsSql, values: [] };
  // A named statement that must be planned for its own parameters says so for its transaction.
  const planEachSettings: Statement = { text: `${settingsSql}, set_config('plan_cache_mode', 'force_custom_plan', true)`, values: [] };

  /** When an operation started now must be answered: its settings and pool wait count down to it. */
  const deadlineFromNow = () => performance.now() + opts.statementTimeoutMs;
  /** What is left until the deadline, in whole ms; none left is the same 503 as a statement timeout. */
  function remainingUntil(deadline: number): number {
    const left = Math.floor(deadline - performance.now());
    if (left < 1) throw new DatabaseBusyError(opts.statementTimeoutMs);
    return left;
  }

  /**
   * pool.connect(), given up at the deadline: while every connection is busy (a lock held, a slow
   * statement), a request waits for one only as long as the statement itself could have run. A
   * client that arrives after that goes straight back to the pool.
   */
  function connectBy(deadline: number): Promise<pg.PoolClient> {
    // With an idle connection the pool answers at once: no timer needed.
    if (pool.idleCount > 0) return pool.connect();
    const pending = pool.connect();
    return new Promise((resolve, reject) => {
      let late = false;
      const timer = setTimeout(
        () => {
          late = true;
          pending.then(
            (client) => client.release(),
            () => {},
          );
          reject(new DatabaseBusyError(opts.statementTimeoutMs));
        },
        Math.max(0, deadline - performance.now()),
      );
      pending.then(
        (client) => {
          if (late) return;
          clearTimeout(timer);
          resolve(client);
        },
        (err: unknown) => {
          if (late) return;
          clearTimeout(timer);
          reject(err as Error);
        },
      );
    });
  }

  /** A client from the pool, listened to while it is out: its 'error' (the connection died under a
   * query, which fails by itself) would otherwise be unhandled and end the process. */
  async function checkout(deadline?: number): Promise<{ client: pg.PoolClient; release: (err?: Error | boolean) => void }> {
    const client = await connectClient(false, deadline);
    const onError = (err: Error) => opts.logger?.warn({ err: { message: err.message } }, 'database connection lost during a query');
    client.on('error', onError);
    return {
      client,
      release: (err) => {
        client.off('error', onError);
        client.release(err);
      },
    };
  }

  async function connectClient(retried = false, deadline?: number): Promise<pg.PoolClient> {
    try {
      return await (deadline === undefined ? pool.connect() : connectBy(deadline));
    } catch (err) {
      if (err instanceof DatabaseBusyError) throw err;
      if (!retried && connect.fallback !== undefined && wantsFallback(connect, err)) {
        // sslmode=prefer met a server without TLS (or allow met one that insists on it): from now
        // on every connection takes the other way, as libpq would for each of them. Connections
        // being opened meanwhile fail the same way and are retried too.
        if (!fellBack) {
          fellBack = true;
          (pool as unknown as { options: pg.PoolConfig }).options.ssl = connect.fallback;
          opts.logger?.info({ sslmode: settings.sslMode, tls: connect.fallback !== false }, 'database connection: TLS fallback');
        }
        return connectClient(true, deadline);
      }
      throw new DatabaseConnectError(`cannot connect to PostgreSQL: ${describeConnectError(err, settings)}`, err);
    }
  }

  // A named statement is parsed once per connection, and after five runs PostgreSQL may keep a
  // generic plan for it; an unnamed one is parsed and planned for its parameters every time.
  const statement = (text: string, params?: readonly unknown[]): pg.QueryConfig => {
    const values = params as unknown[] | undefined;
    if (!prepared) return { text, ...(values ? { values } : {}) };
    return { name: named(text), text, ...(values ? { values } : {}) };
  };
  // The app's SQL is a small fixed set of texts, so naming each text once bounds the statements a
  // connection keeps. The name is the text's digest, the same in every process: through a pooler
  // that hands one server connection to several clients, a name another process prepared there is
  // always the same statement, never another one run with this one's parameters.
  const names = new Map<string, string>();
  const named = (text: string) => {
    let name = names.get(text);
    if (!name) {
      name = `todo_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
      names.set(text, name);
    }
    return name;
  };

  // The settings are named like the statement they precede, and parsed once per connection too.
  const withName = (s: Statement): Prelude => ({ ...s, name: named(s.text) });
  const unnamedSettings: Prelude = localSettings;
  const namedSettings = withName(localSettings);
  const namedPlanEachSettings = withName(planEachSettings);

  /** One statement in its own transaction, its settings (and `first`, if given) in front of it. */
  async function standalone<R>(
    text: string,
    params: readonly unknown[] | undefined,
    options: QueryOptions | undefined,
    first?: Statement,
    deadline = deadlineFromNow(),
  ): Promise<QueryResult<R>> {
    const { client, release } = await checkout(deadline);
    let values: string[];
    try {
      values = settingsParams(remainingUntil(deadline));
    } catch (err) {
      release();
      throw err;
    }
    const config = statement(text, params);
    const settings = {
      ...(config.name === undefined ? unnamedSettings : options?.planEach ? namedPlanEachSettings : namedSettings),
      values,
    };
    const before = first ? [settings, config.name === undefined ? first : withName(first)] : [settings];
    let query: PreludedQuery | undefined;
    try {
      const res = await new Promise<pg.QueryResult>((resolve, reject) => {
        query = new PreludedQuery(config, before, (err, r) => (err ? reject(err) : resolve(r!)));
        client.query(query);
      });
      release();
      return result<R>(res);
    } catch (err) {
      // An error the server answered leaves the connection idle (the failed implicit transaction
      // ended at Sync), unless that round trip parsed named statements (PreludedQuery.parsesNamed);
      // anything else may leave it mid-protocol. Those connections are discarded.
      release(isServerError(err) && !query?.parsesNamed ? undefined : (err as Error));
      if (config.name === undefined || !isPreparedStatementLost(err)) throw err;
      // A pooler that hands each transaction another server connection cannot keep them. The
      // statement never ran (Parse or Bind failed), so running it again unnamed is safe.
      if (!prepared) return standalone(text, params, options, first, deadline); // a request in flight beside the first to find out
      prepared = false;
      opts.logger?.error(
        { err: { message: (err as Error).message, code: (err as { code?: string }).code } },
        'the database connection cannot keep prepared statements (a transaction pooler such as PgBouncer before 1.21?): using unnamed statements from now on; set DB_PREPARED_STATEMENTS=false',
      );
      return standalone(text, params, options, first, deadline);
    }
  }

  return {
    kind: 'postgres',
    serial: false,
    query: (text, params, options) => standalone(text, params, options),
    queryAfter: (first, text, params) => standalone(text, params, undefined, first),
    async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
      const deadline = deadlineFromNow();
      const { client, release } = await checkout(deadline);
      let broken: Error | undefined;
      try {
        await client.query('BEGIN');
        await client.query(settingsSql, settingsParams(remainingUntil(deadline)));
        const value = await fn({
          query: async <R>(text: string, params?: readonly unknown[]) => result<R>(await client.query(text, params as unknown[])),
        });
        await client.query('COMMIT');
        return value;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      } finally {
        release(broken);
      }
    },
    async withSession<T>(fn: (session: Session) => Promise<T>): Promise<T> {
      const { client, release } = await checkout();
      let broken: Error | undefined;
      try {
        return await fn({
          query: async <R>(text: string, params?: readonly unknown[]) => result<R>(await client.query(text, params as unknown[])),
          // Without parameters node-postgres uses the simple protocol, which allows many statements.
          exec: async (script: string) => {
            await client.query(script);
          },
        });
      } catch (err) {
        broken = err as Error;
        throw err;
      } finally {
        // A session may end inside a failed transaction: discard it rather than reuse it.
        release(broken ?? true);
      }
    },
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => (closing ??= pool.end()),
  };
}
