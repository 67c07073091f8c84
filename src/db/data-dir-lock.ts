// One process per embedded database folder. PGlite has no postmaster to stop a second process
// from opening the same files; two would each keep their own copy in memory and overwrite each
// other's writes. Like PostgreSQL's postmaster.pid: a file naming the owner's pid, taken over only
// when that process is gone (after a crash or kill -9, so a restart never needs a manual clean-up).
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';

export class DataDirInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(
      `Another process (pid ${pid}) is using the embedded database in ${dir}. ` +
        'Stop it first, use another DATA_DIR, or set DATABASE_URL so several processes can share a PostgreSQL server.',
    );
    this.name = 'DataDirInUseError';
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false; // ours: a previous life of this pid
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

const heldHere = new Set<string>();

/** Takes the lock file for `dir`, or throws DataDirInUseError. Returns its release. */
export function lockDataDir(dir: string): () => void {
  const file = `${dir}.pid`;
  if (heldHere.has(file)) throw new DataDirInUseError(dir, process.pid);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      heldHere.add(file);
      return () => {
        heldHere.delete(file);
        try {
          if (Number(readFileSync(file, 'utf8')) === process.pid) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: number;
    try {
      owner = Number.parseInt(readFileSync(file, 'utf8'), 10);
    } catch {
      continue; // removed meanwhile: try again
    }
    if (alive(owner)) throw new DataDirInUseError(dir, owner);
    try {
      unlinkSync(file); // its owner died without releasing it
    } catch {
      // another starter removed it first
    }
  }
  throw new Error(`Could not lock ${dir}: the lock file ${dir}.pid keeps changing.`);
}
