// Schema migrations: plain SQL files in migrations/ (`NNN.do.name.sql` / `NNN.undo.name.sql`), run
// by postgrator, which records each applied version with its checksum and refuses to go on when an
// applied file has changed. One run is one transaction, opened by a transaction-scoped advisory lock:
//   - instances starting at once queue on the lock; the next one in sees the new version and has
//     nothing left to do, so each migration is applied exactly once;
//   - the lock ends with the transaction, on whichever server connection a transaction pooler
//     (PgBouncer, Neon's pooled URL) gave it: nothing is left held if the process dies;
//   - a migration that fails rolls the whole run back, leaving the version the run started from.
// So a migration must be transactional SQL (no CREATE INDEX CONCURRENTLY, no VACUUM).
import { fileURLToPath } from 'node:url';
import Postgrator from 'postgrator';
import type { Database, Session } from './types.js';

export const defaultMigrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

/** An arbitrary constant: every instance of this app takes the same lock. */
const MIGRATION_LOCK_KEY = 7_362_518_041;

export interface MigrationStatus {
  current: number;
  latest: number;
  pending: number[];
}

export interface AppliedMigration {
  version: number;
  action: 'do' | 'undo';
  name: string;
}

function createMigrator(session: Session, dir: string): Postgrator {
  return new Postgrator({
    driver: 'pg',
    migrationPattern: `${dir.replace(/\\/g, '/')}/*`,
    schemaTable: 'schemaversion',
    validateChecksums: true,
    newline: 'LF',
    execSqlScript: (script: string) => session.exec(script),
    execQuery: (text: string) => session.query(text),
  } as Postgrator.PostgreSQLOptions & { newline: string });
}

async function locked<T>(db: Database, fn: (session: Session) => Promise<T>): Promise<T> {
  return db.withSession(async (session) => {
    await session.exec('BEGIN');
    try {
      // A migration may take as long as it takes; the app's own statement limits are not for it.
      await session.query("SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true)");
      await session.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
      const value = await fn(session);
      await session.exec('COMMIT');
      return value;
    } catch (err) {
      await session.exec('ROLLBACK').catch(() => {});
      throw err;
    }
  });
}

function applied(list: Postgrator.Migration[]): AppliedMigration[] {
  return list.map((m) => ({ version: m.version, action: m.action, name: m.name }));
}

/** Moves the schema to `target` (default: the latest version). Returns what ran, in order. */
export function migrate(db: Database, opts: { target?: number; dir?: string } = {}): Promise<AppliedMigration[]> {
  return locked(db, async (session) => {
    const migrator = createMigrator(session, opts.dir ?? defaultMigrationsDir);
    return applied(await migrator.migrate(opts.target === undefined ? 'max' : String(opts.target)));
  });
}

/** Undoes the latest applied migration (or down to `target`). */
export function migrateDown(db: Database, opts: { target?: number; dir?: string } = {}) {
  return locked(db, async (session) => {
    const migrator = createMigrator(session, opts.dir ?? defaultMigrationsDir);
    const current = await migrator.getDatabaseVersion();
    const target = opts.target ?? Math.max(0, current - 1);
    return applied(await migrator.migrate(String(target)));
  });
}

export function migrationStatus(db: Database, opts: { dir?: string } = {}): Promise<MigrationStatus> {
  return locked(db, async (session) => {
    const migrator = createMigrator(session, opts.dir ?? defaultMigrationsDir);
    const migrations = await migrator.getMigrations();
    const current = await migrator.getDatabaseVersion();
    const versions = [...new Set(migrations.filter((m) => m.action === 'do').map((m) => m.version))].sort((a, b) => a - b);
    return {
      current,
      latest: versions.at(-1) ?? 0,
      pending: versions.filter((v) => v > current),
    };
  });
}
