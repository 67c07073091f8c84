// The baseline the app is measured against: bare node:http + pg, the same SQL (src/tasks/queries.ts)
// and the same JSON, and nothing else — no framework, validation, token verification or logging.
// The user is read from the token's payload unverified. Never deploy this.
// Started with the app's V8 flags (bench/node-flags.ts): the two differ by the framework only.
import { createServer, type ServerResponse } from 'node:http';
import { createPostgresDatabase } from '../src/db/postgres.js';
import * as q from '../src/tasks/queries.js';
import { jsonBody, userOf } from './bare-http.js';

const db = createPostgresDatabase({
  connectionString: process.env.DATABASE_URL!,
  poolMax: Number(process.env.DB_POOL_MAX ?? 10),
  statementTimeoutMs: 5000,
  connectTimeoutMs: 5000,
  preparedStatements: process.env.DB_PREPARED_STATEMENTS !== 'false',
});

function send(res: ServerResponse, status: number, value?: unknown, version?: number) {
  const headers: Record<string, string> = value === undefined ? {} : { 'Content-Type': 'application/json' };
  if (version !== undefined) headers.ETag = `"${version}"`;
  res.writeHead(status, headers);
  res.end(value === undefined ? undefined : JSON.stringify(value));
}

const ITEM = /^\/api\/tasks\/(\d+)(\/complete)?$/;

createServer(async (req, res) => {
  try {
    const user = userOf(req);
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/api/tasks' && req.method === 'GET') {
      const page = await q.listTasks(db, user, { status: 'all', sort: 'created_at', order: 'desc', limit: 100 });
      return send(res, 200, page.tasks);
    }
    if (path === '/api/tasks' && req.method === 'POST') {
      const b = await jsonBody<Record<string, unknown>>(req);
      const created = await q.createTask(
        db,
        user,
        {
          title: String(b.title).trim(),
          description: (b.description as string) ?? null,
          completed: false,
          dueAt: null,
          priority: 'none',
          tags: [],
          position: undefined,
        },
        2_147_483_647,
      );
      if (!created) return send(res, 409, { detail: 'quota' });
      return send(res, 201, created.task, created.version);
    }
    const m = ITEM.exec(path);
    if (!m) return send(res, 404, { detail: 'not found' });
    const id = Number(m[1]);
    let task: q.VersionedTask | undefined;
    if (m[2] && req.method === 'PATCH')
      task = await q.setCompletion(db, user, id, (await jsonBody<Record<string, unknown>>(req)).completed as boolean | undefined);
    else if (req.method === 'GET') task = await q.getTask(db, user, id);
    else if (req.method === 'PATCH') task = await q.updateTask(db, user, id, await jsonBody<Record<string, unknown>>(req));
    else if (req.method === 'DELETE') return send(res, (await q.deleteTask(db, user, id)) ? 204 : 404);
    return task ? send(res, 200, task.task, task.version) : send(res, 404, { detail: 'not found' });
  } catch {
    send(res, 500, { detail: 'error' });
  }
}).listen(Number(process.env.PORT ?? 8100), '127.0.0.1');

// Exit normally on SIGTERM, so `--cpu-prof` can write its profile.
process.on('SIGTERM', () => process.exit(0));
