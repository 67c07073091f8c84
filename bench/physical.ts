// The physical limit the app is measured against (issue 18): bare node:http + pg, the simplest
// statement that produces each response body the app sends — the same tasks, the same ten fields,
// the same RFC 3339 text — and a plain JSON.stringify. No framework, validation, token
// verification, limits or logging; the user is read from the token's payload unverified. It serves
// the four paths bench/paths.ts measures. Its statements are unnamed (parsed and planned each time,
// the simplest way), or with PHYSICAL_PREPARED=true named (parsed once per connection, a cached
// generic plan after five runs), as the app's are by default. Never deploy this.
import { createServer, type ServerResponse } from 'node:http';
import pg from 'pg';
import { jsonBody, userOf } from './bare-http.js';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: Number(process.env.DB_POOL_MAX ?? 10) });
const PRIORITIES = ['none', 'low', 'medium', 'high'];
const prepared = process.env.PHYSICAL_PREPARED === 'true';
const statement = (name: string, text: string, values: unknown[]) => (prepared ? { name, text, values } : { text, values });
const utc = (c: string) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS ${c}`;
const COLUMNS = `id, title, description, completed, ${utc('due_at')}, priority, tags, position, recurrence, occurrence, reminders, ${utc('created_at')}, ${utc('updated_at')}`;

interface Row {
  id: string;
  title: string;
  description: string | null;
  completed: boolean;
  due_at: string | null;
  priority: number;
  tags: string[];
  position: string;
  recurrence: { rule: string; time_zone: string; from: string } | null;
  occurrence: number;
  reminders: unknown[];
  created_at: string;
  updated_at: string;
  version?: number;
}

const task = (r: Row) => ({
  id: Number(r.id),
  title: r.title,
  description: r.description,
  completed: r.completed,
  due_at: r.due_at,
  priority: PRIORITIES[r.priority],
  tags: r.tags,
  position: Number(r.position),
  recurrence: r.recurrence && {
    rule: r.recurrence.rule,
    time_zone: r.recurrence.time_zone,
    from: r.recurrence.from,
    occurrence: r.occurrence,
  },
  reminders: r.reminders,
  created_at: r.created_at,
  updated_at: r.updated_at,
});

function send(res: ServerResponse, status: number, value: unknown, etag?: number) {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    ...(etag === undefined ? {} : { ETag: `"${etag}"` }),
  });
  res.end(text);
}

const ITEM = /^\/api\/tasks\/(\d+)(\/complete)?$/;

createServer(async (req, res) => {
  try {
    const user = userOf(req);
    const path = (req.url ?? '').split('?')[0]!;
    if (path === '/api/tasks' && req.method === 'GET') {
      const { rows } = await pool.query<Row>(
        statement('physical_list', `SELECT ${COLUMNS} FROM tasks WHERE user_id = $1 ORDER BY created_at DESC, id DESC LIMIT 100`, [user]),
      );
      return send(res, 200, rows.map(task));
    }
    if (path === '/api/tasks' && req.method === 'POST') {
      const { title } = await jsonBody<{ title: string }>(req);
      const { rows } = await pool.query<Row>(
        statement(
          'physical_create',
          `INSERT INTO tasks (user_id, title, position)
           VALUES ($1, $2, COALESCE((SELECT max(position) FROM tasks WHERE user_id = $1), 0) + 1024)
           RETURNING ${COLUMNS}, version`,
          [user, String(title).trim()],
        ),
      );
      return send(res, 201, task(rows[0]!), rows[0]!.version);
    }
    const m = ITEM.exec(path);
    if (m && req.method === 'GET' && !m[2]) {
      const { rows } = await pool.query<Row>(
        statement('physical_get', `SELECT ${COLUMNS}, version FROM tasks WHERE user_id = $1 AND id = $2`, [user, m[1]]),
      );
      return rows[0] ? send(res, 200, task(rows[0]), rows[0].version) : send(res, 404, { detail: 'not found' });
    }
    if (m?.[2] && req.method === 'PATCH') {
      const { rows } = await pool.query<Row>(
        // The table's trigger moves version and updated_at, for the app and this alike.
        statement(
          'physical_toggle',
          `UPDATE tasks SET completed = NOT completed WHERE user_id = $1 AND id = $2 RETURNING ${COLUMNS}, version`,
          [user, m[1]],
        ),
      );
      return rows[0] ? send(res, 200, task(rows[0]), rows[0].version) : send(res, 404, { detail: 'not found' });
    }
    send(res, 404, { detail: 'not found' });
  } catch {
    send(res, 500, { detail: 'error' });
  }
}).listen(Number(process.env.PORT ?? 8110), '127.0.0.1');

process.on('SIGTERM', () => process.exit(0));
