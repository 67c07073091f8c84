// npm run migrate | migrate:down | migrate:status — against DATABASE_URL, or the embedded database.
import 'dotenv/config';
import { ConfigError, loadConfig } from '../config.js';
import { describeDatabase, openDatabase } from '../db/open.js';
import { migrate, migrateDown, migrationStatus } from '../db/migrate.js';

const command = process.argv[2] ?? 'up';
const target = process.argv[3] === undefined ? undefined : Number(process.argv[3]);

async function run(): Promise<void> {
  if (!['up', 'down', 'status'].includes(command) || (target !== undefined && !Number.isInteger(target))) {
    console.error('usage: migrate up|down|status [targetVersion]');
    process.exit(64);
  }
  const config = loadConfig();
  const db = await openDatabase(config);
  try {
    console.log(`Database: ${describeDatabase(config)}`);
    if (command === 'status') {
      const s = await migrationStatus(db);
      console.log(`Schema version ${s.current} of ${s.latest}; pending: ${s.pending.length ? s.pending.join(', ') : 'none'}`);
      return;
    }
    const ran = command === 'up' ? await migrate(db, { target }) : await migrateDown(db, { target });
    if (!ran.length) console.log('Nothing to do.');
    for (const m of ran) console.log(`${m.action === 'do' ? 'applied' : 'undone'} ${m.version} ${m.name}`);
  } finally {
    await db.close();
  }
}

run().catch((err: unknown) => {
  console.error(err instanceof ConfigError ? `Configuration error: ${err.message}` : `Migration failed: ${(err as Error).message}`);
  process.exit(1);
});
