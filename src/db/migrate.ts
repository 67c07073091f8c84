// Schema migrations: plain SQL files in migrations/ (`NNN.do.name.sql` / `NNN.undo.name.sql`), run
// by postgrator, which records each applied version with its checksum and refuses to go on when an
// applied file has changed. Postgrator leaves two things to its caller, and this module adds them:
//   - one migration, one transaction: a migration that fails halfway leaves the previous version;
//   - a session-level advisory lock, so two instances starting at once cannot both migrate.
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
  // Postgrator runs a migration as runSqlScript(file) followed by runQuery(record the version).
  // The script opens the transaction and the bookkeeping query that follows it closes it, so the
  // schema change and its version row commit together or not at all.
  let open = false;
  return new Postgrator({
    driver: 'pg',
    migrationPattern: `${dir.replace(/\\/g, '/')}/*`,
    schemaTable: 'schemaversion',
    validateChecksums: true,
    newline: 'LF',
    execSqlScript: async (script: string) => {
      await session.exec('BEGIN');
      open = true;
      try {
        await session.exec(script);
      } catch (err) {
        open = false;
        await session.exec('ROLLBACK');
        throw err;
      }
    },
    execQuery: async (text: string) => {
      if (!open) return session.query(text);
      open = false;
      try {
        const res = await session.query(text);
        await session.exec('COMMIT');
        return res;
      } catch (err) {
        await session.exec('ROLLBACK');
        throw err;
      }
    },
  } as Postgrator.PostgreSQLOptions & { newline: string });
}

async function locked<T>(db: Database, fn: (session: Session) => Promise<T>): Promise<T> {
  return db.withSession(async (session) => {
    await session.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      return await fn(session);
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}

function applied(list: Postgrator.Migration[]): AppliedMigration[] {
  return list.map((m) => ({ version: m.version, action: m.action, name: m.name }));
}

/** Moves the schema to `target` (default: the latest version). Returns what ran, in order. */
export function migrate(
  db: Database,
  opts: { target?: number; dir?: string } = {},
): Promise<AppliedMigration[]> {
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
    const versions = [...new Set(migrations.filter((m) => m.action === 'do').map((m) => m.version))].sort(
      (a, b) => a - b,
    );
    return {
      current,
      latest: versions.at(-1) ?? 0,
      pending: versions.filter((v) => v > current),
    };
  });
}
