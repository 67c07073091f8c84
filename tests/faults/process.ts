// The real server as a child process (the compiled one, as `npm start` runs it; see global-setup),
// configured like production, for the fault tests: kill it, stop it, cut its database.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { TEST_SECRET } from '../helpers/app.js';
import { createTestDatabase, dbKind, type TestDatabase } from '../helpers/db.js';

const root = path.resolve(import.meta.dirname, '..', '..');

export interface ServerProcess {
  child: ChildProcess;
  base: string;
  output(): string;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  exited: Promise<number | string>;
}

/** `onOutput` sees the output so far each time more arrives, while the server starts too. */
export function startServer(env: Record<string, string>, onOutput?: (output: string) => void): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['dist/server.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      JWT_SECRET: TEST_SECRET,
      WORKERS: '1',
      PORT: '0',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_USER: '0',
      RATE_LIMIT_IP_FAILURES: '0',
      WARM_UP_REQUESTS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    onOutput?.(out);
  });
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    void exited.then((code) => reject(new Error(`server exited with ${code} while starting:\n${out}`)));
    const onData = () => {
      const port = /"port":(\d+),.*"msg":"listening"/.exec(out)?.[1];
      if (!port) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ child, base: `http://127.0.0.1:${port}`, output: () => out, exited });
    };
    child.stdout!.on('data', onData);
  });
}

/** Log lines of the process as parsed JSON (non-JSON lines skipped). */
export function logLines(p: ServerProcess): Record<string, unknown>[] {
  return p
    .output()
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Cleanups run after the file's tests, last registered first. */
export function cleanupsAfterAll(): (() => unknown)[] {
  const cleanups: (() => unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });
  return cleanups;
}

/** Storage for a server process: a fresh migrated PostgreSQL database, or an embedded data folder. */
export async function storageEnv(cleanups: (() => unknown)[]): Promise<Record<string, string>> {
  if (dbKind === 'postgres') {
    const t: TestDatabase = await createTestDatabase();
    await t.db.close();
    cleanups.push(() => t.drop());
    return { DATABASE_URL: t.url! };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'todo-faults-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return { DATA_DIR: dir };
}
