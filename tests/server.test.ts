// The real process, as `npm start` runs it with no configuration: it starts, prints a curl that
// works, keeps data across a restart, stops cleanly on SIGTERM, and refuses bad configuration.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../src/auth/verify-token.js';
import { createPGliteDatabase } from '../src/db/pglite.js';
import { createPostgresDatabase } from '../src/db/postgres.js';
import { createTestDatabase, dbKind, serverUrl, type TestDatabase } from './helpers/db.js';

const root = path.resolve(import.meta.dirname, '..');
// The compiled server, as `npm start` runs it (tests/global-setup.ts builds it when src/ changed).
const node = process.execPath;
const dataDir = mkdtempSync(path.join(tmpdir(), 'todo-server-'));
let database: TestDatabase | undefined;

/** A Redis for the WORKERS test (workers share their limits through it), if one answers. */
const redisUrl = await (async () => {
  const url = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const { hostname, port } = new URL(url);
  const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) });
  const reachable = await new Promise<boolean>((resolve) => {
    socket.once('connect', () => resolve(true)).once('error', () => resolve(false));
    socket.setTimeout(1000, () => resolve(false));
  });
  socket.destroy();
  return reachable ? url : undefined;
})();

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  await database?.drop();
});

interface Started {
  child: ChildProcess;
  base: string;
  token: string;
  output: () => string;
}

/** The compiled server with `npm start`'s defaults on a port of its own, overridden by `env`. */
function spawnServer(env: Record<string, string>): ChildProcess {
  return spawn(node, ['dist/server.js'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      PORT: '0',
      DATA_DIR: dataDir,
      WARM_UP_REQUESTS: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function start(env: Record<string, string>): Promise<Started> {
  const child = spawnServer(env);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
    child.stdout!.on('data', () => {
      const listening = /listening on (http:\/\/\S+:\d+)/.exec(out);
      const curl = /curl -H "Authorization: Bearer ([^"]+)" (\S+)\/api\/tasks\n/.exec(out);
      if (listening && curl) {
        clearTimeout(timer);
        resolve({ child, base: listening[1]!, token: curl[1]!, output: () => out });
      }
    });
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

describe(`the server process (${dbKind})`, () => {
  // Two starts of the embedded database with a warm-up each: about 15 s on an idle 2-core machine,
  // and well over 30 s beside a CPU hog; the bound is for a hang, not a measure of speed.
  it('starts with no configuration, warms up, its printed curl works, data survives a restart, SIGTERM exits 0', {
    timeout: 180_000,
  }, async () => {
    // The warm-up as configured by default, only shorter; its log line is an info line.
    const env: Record<string, string> = { WARM_UP_REQUESTS: '400', LOG_LEVEL: 'info' };
    if (dbKind === 'postgres') {
      database = await createTestDatabase();
      await database.db.close();
      env.DATABASE_URL = database.url!;
    }
    const first = await start(env);
    const lines = first
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; sent?: number });
    const warmed = lines.findIndex((l) => l.msg === 'warmed up');
    expect(warmed, first.output()).toBeGreaterThanOrEqual(0);
    // Sent, if not all answered: on a loaded machine the deadline may cut off the first ones.
    expect(lines[warmed]!.sent).toBeGreaterThan(0);
    const auth = { Authorization: `Bearer ${first.token}` };
    expect(await (await fetch(`${first.base}/api/tasks`, { headers: auth })).json()).toEqual([]);
    const created = await fetch(`${first.base}/api/tasks`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({ title: 'Survive a restart' }),
    });
    expect(created.status).toBe(201);
    const task = (await created.json()) as { id: number };
    // The warm-up wrote nothing, so it used up no ids either: the first task is the first id.
    expect(task.id).toBe(1);
    expect(await stop(first.child)).toBe(0);

    const second = await start(env);
    try {
      // The development secret is kept in DATA_DIR, so the first token still works.
      const listed = await fetch(`${second.base}/api/tasks`, { headers: auth });
      expect(await listed.json()).toEqual([task]);
      expect((await fetch(`${second.base}/ready`)).status).toBe(200);
      const next = await fetch(`${second.base}/api/tasks`, {
        method: 'POST',
        headers: { ...auth, 'Content-Type': 'application/json' },
        body: JSON.stringify({ title: 'After a second warm-up' }),
      });
      expect(((await next.json()) as { id: number }).id).toBe(2);
    } finally {
      expect(await stop(second.child)).toBe(0);
    }
    // The warm-up's throwaway user left nothing behind, not even a zero count.
    const storage =
      dbKind === 'postgres'
        ? createPostgresDatabase({ connectionString: database!.url!, poolMax: 1, statementTimeoutMs: 5000, connectTimeoutMs: 5000 })
        : await createPGliteDatabase({ dataDir: path.join(dataDir, 'pglite') });
    try {
      const { rows } = await storage.query("SELECT count(*)::int AS n FROM tasks WHERE user_id LIKE 'warm-up:%'");
      expect(rows).toEqual([{ n: 0 }]);
      const counted = await storage.query("SELECT count(*)::int AS n FROM task_counts WHERE user_id LIKE 'warm-up:%'");
      expect(counted.rows).toEqual([{ n: 0 }]);
    } finally {
      await storage.close();
    }
  });

  it.skipIf(dbKind !== 'postgres' || !redisUrl)(
    `serves from several workers with WORKERS=2 and stops them all on SIGTERM${redisUrl ? '' : ' (skipped: no Redis at TEST_REDIS_URL or 127.0.0.1:6379 to share the limits)'}`,
    async () => {
      const workersDb = await createTestDatabase();
      await workersDb.db.close();
      try {
        // Each worker warms up on a private port first; the banner and the log name the real one.
        const port = await freePort();
        const started = await start({
          DATABASE_URL: workersDb.url!,
          WORKERS: '2',
          LOG_LEVEL: 'info',
          PORT: String(port),
          WARM_UP_REQUESTS: '16',
          REDIS_URL: redisUrl!,
        });
        expect(started.base).toBe(`http://127.0.0.1:${port}`);
        // The banner comes with the first worker listening; the second may still be warming up.
        for (let waited = 0; (started.output().match(/"msg":"listening"/g)?.length ?? 0) < 2 && waited < 30_000; waited += 50) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        const auth = { Authorization: `Bearer ${started.token}` };
        const results = await Promise.all(Array.from({ length: 20 }, () => fetch(`${started.base}/api/tasks`, { headers: auth })));
        expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
        // Each worker's private listeners (warm-up, MCP dispatch) are its own: every worker warmed
        // up, and tool calls answered by either worker reach their own app.
        expect(started.output().match(/"msg":"warmed up"/g)?.length).toBe(2);
        expect(started.output()).not.toContain('warm-up failed');
        const calls = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            fetch(`${started.base}/mcp`, {
              method: 'POST',
              headers: { ...auth, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
              body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: 'list_tasks', arguments: {} } }),
            }).then((r) => r.json() as Promise<{ result?: { isError?: boolean; structuredContent?: unknown } }>),
          ),
        );
        expect(calls.map((c) => c.result?.isError ?? false)).toEqual(Array(20).fill(false));
        expect(calls.map((c) => c.result?.structuredContent)).toEqual(
          Array(20).fill({ tasks: [], next_cursor: null, now: expect.any(String) }),
        );
        expect(started.output().match(/"msg":"listening"/g)?.length).toBe(2);
        expect(started.output()).toMatch(new RegExp(`"port":${port},"workers":2,"msg":"workers listening"`));
        expect(started.output()).toContain(
          '"workers":2,"poolMax":10,"connections":20,"msg":"database connection budget: workers × DB_POOL_MAX"',
        );
        expect(await stop(started.child)).toBe(0);
      } finally {
        await workersDb.drop();
      }
    },
  );

  it('starts cold, quickly, when the database is down during the warm-up', async () => {
    const begun = performance.now();
    const started = await start({
      DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
      MIGRATE_ON_START: 'false',
      DB_CONNECT_TIMEOUT_MS: '1000',
      WARM_UP_REQUESTS: '2000',
      LOG_LEVEL: 'info',
    });
    try {
      expect(performance.now() - begun).toBeLessThan(20_000);
      // Failed at once, or cut off by its deadline before an answer (on a loaded machine the
      // connection attempt can outlast it): either way it starts cold and says so.
      expect(started.output()).toMatch(/"msg":"(warm-up failed|warm-up answered nothing before its deadline); starting cold"/);
      expect((await fetch(`${started.base}/ready`)).status).toBe(503);
    } finally {
      expect(await stop(started.child)).toBe(0);
    }
  });

  /** Runs the server with env and returns how it ended: for start-up refusals. */
  async function runToExit(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
    const child = spawn(node, ['dist/server.js'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, WARM_UP_REQUESTS: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let stdout = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    return { code, stderr, stdout };
  }

  it('prints no token for a configured secret, only for the generated development one (security item 5)', async () => {
    const child = spawnServer({ JWT_SECRET: 'a-configured-secret-that-works-elsewhere-too' });
    let out = '';
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no banner:\n${out}`)), 60_000);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (/Mint one for a user|mint one for a user/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    expect(await stop(child)).toBe(0);
    expect(out).toContain('Tokens:   HS256 with JWT_SECRET');
    expect(out).not.toMatch(/Bearer ey|curl -H "Authorization/);
  });

  it('npm run token signs with the secret the server uses, and refuses when the server takes Better Auth tokens only', async () => {
    const cli = (env: Record<string, string>) =>
      spawnSync(node, ['dist/cli/token.js', 'alice', '600'], {
        cwd: root,
        env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, ...env },
        encoding: 'utf8',
      });
    const configured = cli({ JWT_SECRET: 'a-configured-secret-that-works-elsewhere-too' });
    expect(configured.status).toBe(0);
    const token = configured.stdout.trim();
    expect(token).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/); // the token alone: `T=$(npm run -s token -- alice)` captures it
    const verifier = createTokenVerifier({ secret: 'a-configured-secret-that-works-elsewhere-too', clockToleranceSec: 5 });
    expect((await verifier.verify(token)).userId).toBe('alice');
    const jwksOnly = cli({ BETTER_AUTH_URL: 'http://localhost:3000' });
    expect(jwksOnly.status).toBe(1);
    expect(jwksOnly.stderr).toMatch(/verifies Better Auth tokens only .*get a token from Better Auth/);
  });

  it('reports a port in use before migrating or warming up', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, resolve));
    try {
      const { port } = taken.address() as AddressInfo;
      const { code, stderr, stdout } = await runToExit({ PORT: String(port), LOG_LEVEL: 'info', WARM_UP_REQUESTS: '500' });
      expect(code).toBe(1);
      expect(stderr).toContain(`Failed to start: port ${port} is already in use (set PORT to another one)`);
      expect(stdout).not.toMatch(/migrating|warmed up/);
    } finally {
      taken.close();
    }
  });

  it.runIf(dbKind === 'postgres')(
    'restarts dying workers with a growing pause, and stops with their error when they keep dying before they listen',
    { timeout: 90_000 },
    async () => {
      // Workers that cannot reach Redis fail their start; the primary itself never needs it.
      const { code, stderr, stdout } = await runToExit({
        DATABASE_URL: serverUrl!,
        MIGRATE_ON_START: 'false',
        WORKERS: '2',
        PORT: '0',
        REDIS_URL: 'redis://127.0.0.1:1',
        LOG_LEVEL: 'info',
      });
      expect(code).toBe(1);
      expect(stderr).toContain('Failed to start: Redis at REDIS_URL cannot be reached');
      const pauses = [...stdout.matchAll(/"restartInMs":(\d+)/g)].map((m) => Number(m[1]));
      expect(pauses.length).toBeGreaterThanOrEqual(3);
      expect(pauses.slice(0, 3)).toEqual([250, 500, 1000]);
      expect(stdout).toContain('workers keep dying before they listen; stopping');
    },
  );

  it('refuses a bad variable at start, naming it', async () => {
    const { code, stderr } = await runToExit({ PORT: 'eighty' });
    expect(code).toBe(78);
    expect(stderr).toMatch(/PORT must be/);
  });

  it('refuses to start in production without configured token verification', async () => {
    const { code, stderr } = await runToExit({ NODE_ENV: 'production' });
    expect(code).toBe(78);
    expect(stderr).toMatch(/JWKS_URL or JWT_SECRET/);
  });

  it.runIf(dbKind === 'pglite')(
    'refuses a second process on the same embedded data folder, and takes over after a kill -9',
    { timeout: 120_000 },
    async () => {
      const ownDir = mkdtempSync(path.join(tmpdir(), 'todo-lock-'));
      try {
        const first = await start({ DATA_DIR: ownDir });
        const second = await runToExit({ DATA_DIR: ownDir, PORT: '0', NODE_ENV: 'development' });
        expect(second.code).toBe(1);
        expect(second.stderr).toMatch(new RegExp(`Another process \\(pid ${first.child.pid}\\) is using the embedded database`));
        // The first one is unharmed.
        const res = await fetch(`${first.base}/api/tasks`, { headers: { Authorization: `Bearer ${first.token}` } });
        expect(res.status).toBe(200);
        // A crash leaves the lock file behind; the next start sees its owner is gone and takes over.
        first.child.removeAllListeners('exit');
        const killed = new Promise((resolve) => first.child.on('exit', resolve));
        first.child.kill('SIGKILL');
        await killed;
        const third = await start({ DATA_DIR: ownDir });
        expect(await stop(third.child)).toBe(0);
      } finally {
        rmSync(ownDir, { recursive: true, force: true });
      }
    },
  );
});
