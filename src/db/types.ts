// The one database interface the rest of the app sees. Two implementations: node-postgres
// (a server such as Neon) and PGlite (embedded). Both run the same SQL and the same migrations.

export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

/** A statement and its parameters. */
export interface Statement {
  text: string;
  values: readonly unknown[];
}

export interface QueryOptions {
  /**
   * Plan this statement for its own parameters every time it runs (no cached generic plan), where
   * a plan made for an average user could be ruinous for a large one: a sorted page, say.
   */
  planEach?: boolean;
}

export interface Queryable {
  /** One parameterized statement. */
  query<R = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: QueryOptions): Promise<QueryResult<R>>;
}

/** One connection held from start to end, for work that must not hop between connections. */
export interface Session extends Queryable {
  /** A script of several statements with no parameters (migrations). */
  exec(script: string): Promise<void>;
}

/**
 * On PostgreSQL every `query` runs in a transaction of its own (it carries its timeouts with it), so
 * a statement that cannot run in one (VACUUM, CREATE INDEX CONCURRENTLY) goes through
 * `withSession(s => s.exec(...))`.
 */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /**
   * True when statements run one at a time on the one connection there is (PGlite): none is ever in
   * flight beside another, so one statement sees every write that came before it.
   */
  readonly serial: boolean;
  /**
   * Runs `first` (its result unused), then one statement, in one transaction and, on PostgreSQL, one
   * round trip. The statement reads after `first` has finished (each statement of a read-committed
   * transaction takes its own snapshot), so a lock `first` takes covers everything it reads.
   */
  queryAfter<R = Record<string, unknown>>(first: Statement, text: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** Runs fn in one transaction on one connection: committed if it resolves, rolled back if it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Runs fn on one dedicated connection (for migrations, which need session-level locks). */
  withSession<T>(fn: (session: Session) => Promise<T>): Promise<T>;
  /** Connection counts, for metrics. */
  poolStats(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}
