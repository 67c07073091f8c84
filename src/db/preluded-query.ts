// One statement with others in front of it (transaction-local settings, a lock), in one round trip
// and one transaction, with nothing left on the connection afterwards. In the extended protocol
// every message up to a Sync is one implicit transaction: Parse/Bind/Describe/Execute of
// `SELECT set_config(name, value, true), …` and of any other prelude, then the statement's own,
// then Sync. A transaction pooler keeps the whole of it on one server connection, and the settings
// end with it. A named prelude is parsed once per connection, as node-postgres does for a named
// statement.
import pg from 'pg';
import type { Statement } from './types.js';

/** A prelude; with a name, the server keeps it parsed (and may keep its plan) on the connection. */
export interface Prelude extends Statement {
  name?: string | undefined;
}

interface Connection {
  /** node-postgres's record of the named statements this connection has parsed. */
  parsedStatements: Record<string, string>;
  parse(m: { text: string; name?: string }): void;
  bind(m: { portal: string; statement: string; values: unknown[]; valueMapper?: unknown }): void;
  describe(m: { type: 'P'; name: string }): void;
  execute(m: { portal: string }): void;
}

/** pg.Query's internals this class builds on; they are not in its published types. */
interface QueryInternals {
  name?: string;
  hasBeenParsed(connection: Connection): boolean;
  prepare(connection: Connection): void;
  callback: ((err: Error | null, res?: unknown) => void) | undefined;
}

const Base = pg.Query as unknown as new (text: string, values?: unknown[]) => pg.Query & QueryInternals;

export class PreludedQuery extends Base {
  /**
   * Whether this round trip asked the server to keep a named statement. If it then fails, which of
   * them the server kept is unknown (everything after an error is skipped up to Sync), while
   * node-postgres records them as kept: the connection is no longer certain and must be discarded.
   */
  parsesNamed = false;

  constructor(
    config: pg.QueryConfig,
    private readonly preludes: readonly Prelude[],
    done: (err: Error | null, res?: pg.QueryResult) => void,
  ) {
    // From text and values, not the config object: node-postgres copies a config object property
    // by property through its descriptors (2.2 µs a statement, against 0.12 µs this way). So only
    // text, values and name reach the query: all that postgres.ts's statements carry.
    super(config.text, config.values);
    if (config.name !== undefined) this.name = config.name;
    // The preludes' results come first; the caller sees only the statement's.
    this.callback = (err, res) => (err ? done(err) : done(null, (res as pg.QueryResult[])[preludes.length]));
  }

  override prepare(connection: Connection): void {
    for (const prelude of this.preludes) {
      const name = prelude.name ?? '';
      if (!name) connection.parse({ text: prelude.text });
      else if (connection.parsedStatements[name] === undefined) {
        connection.parse({ text: prelude.text, name });
        connection.parsedStatements[name] = prelude.text;
        this.parsesNamed = true;
      }
      connection.bind({ portal: '', statement: name, values: prelude.values as unknown[] });
      connection.describe({ type: 'P', name: '' });
      connection.execute({ portal: '' });
    }
    if (this.name && !this.hasBeenParsed(connection)) this.parsesNamed = true;
    super.prepare(connection);
  }

  // Always the extended protocol: the simple one would end the transaction before the statement.
  requiresPreparation(): boolean {
    return true;
  }
}
