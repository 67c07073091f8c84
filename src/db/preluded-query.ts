// One statement with others in front of it (transaction-local settings, a lock), in one round trip
// and one transaction, with nothing left on the connection afterwards. In the extended protocol
// every message up to a Sync is one implicit transaction: Parse/Bind/Describe/Execute of
// `SELECT set_config(name, value, true), …` and of any other prelude, then the statement's own,
// then Sync. A transaction
// pooler keeps the whole of it on one server connection, and the settings end with it.
import pg from 'pg';
import type { Statement } from './types.js';

interface Connection {
  parse(m: { text: string; name?: string }): void;
  bind(m: { portal: string; statement: string; values: unknown[]; valueMapper?: unknown }): void;
  describe(m: { type: 'P'; name: string }): void;
  execute(m: { portal: string }): void;
}

/** pg.Query's internals this class builds on; they are not in its published types. */
interface QueryInternals {
  prepare(connection: Connection): void;
  callback: ((err: Error | null, res?: unknown) => void) | undefined;
}

const Base = pg.Query as unknown as new (config: pg.QueryConfig) => pg.Query & QueryInternals;

export class PreludedQuery extends Base {
  constructor(
    config: pg.QueryConfig,
    private readonly preludes: readonly Statement[],
    done: (err: Error | null, res?: pg.QueryResult) => void,
  ) {
    super(config);
    // The preludes' results come first; the caller sees only the statement's.
    this.callback = (err, res) => (err ? done(err) : done(null, (res as pg.QueryResult[])[preludes.length]));
  }

  override prepare(connection: Connection): void {
    for (const prelude of this.preludes) {
      connection.parse({ text: prelude.text });
      connection.bind({ portal: '', statement: '', values: prelude.values as unknown[] });
      connection.describe({ type: 'P', name: '' });
      connection.execute({ portal: '' });
    }
    super.prepare(connection);
  }

  // Always the extended protocol: the simple one would end the transaction before the statement.
  requiresPreparation(): boolean {
    return true;
  }
}
