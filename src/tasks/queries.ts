// All task SQL. Every statement is parameterized and scoped by user_id: a task of another user is
// indistinguishable from one that does not exist.
import type { components } from '../../generated/openapi.js';
import type { Queryable } from '../db/types.js';

/** A task row as the SQL below returns it: exactly the contract's Task. */
export type TaskRow = components['schemas']['Task'];

export type TaskStatus = 'all' | 'pending' | 'completed';
export type TaskSort = 'created_at' | 'updated_at' | 'title';
export type SortOrder = 'asc' | 'desc';

/** The position after which a page starts: the sort key of the last task seen (as text) and its id. */
export interface Position {
  key: string;
  id: number;
}

export interface ListOptions {
  status: TaskStatus;
  sort: TaskSort;
  order: SortOrder;
  limit: number;
  after?: Position | undefined;
}

// Timestamps leave the database as RFC 3339 UTC strings with microseconds: exact (so a cursor
// built from them loses nothing) and already in the contract's shape.
const utc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
const COLUMNS = `id, title, description, completed, ${utc('created_at')} AS created_at, ${utc('updated_at')} AS updated_at`;

// Sort keys and their SQL: a closed set, so list statements are built once, here, from constants
// (identifiers and directions cannot be parameters). Each matches an index in migrations/.
// Qualified with the table: in ORDER BY a bare `created_at` would mean the formatted output
// column of that name, and sorting by it cannot use the index.
const SORT_KEYS: Record<TaskSort, { expr: string; type: string }> = {
  created_at: { expr: 'tasks.created_at', type: 'timestamptz' },
  updated_at: { expr: 'tasks.updated_at', type: 'timestamptz' },
  title: { expr: '(lower(tasks.title) COLLATE "C")', type: 'text' },
};

const STATUS_FILTER: Record<TaskStatus, boolean[]> = {
  all: [false, true],
  pending: [false],
  completed: [true],
};

function listStatement(sort: TaskSort, order: SortOrder, withCursor: boolean): string {
  const { expr, type } = SORT_KEYS[sort];
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  const cmp = order === 'asc' ? '>' : '<';
  const keyText = type === 'timestamptz' ? utc(expr) : `${expr}::text`;
  return `SELECT ${COLUMNS}, ${keyText} AS sort_key
    FROM tasks
    WHERE user_id = $1 AND completed = ANY($2::boolean[])
    ${withCursor ? `AND (${expr}, id) ${cmp} ($4::${type}, $5::bigint)` : ''}
    ORDER BY ${expr} ${dir}, id ${dir}
    LIMIT $3`;
}

const LIST_STATEMENTS = new Map<string, string>();
for (const sort of Object.keys(SORT_KEYS) as TaskSort[]) {
  for (const order of ['asc', 'desc'] as const) {
    for (const withCursor of [false, true]) {
      LIST_STATEMENTS.set(`${sort}:${order}:${withCursor}`, listStatement(sort, order, withCursor));
    }
  }
}

/** The list statement for a sort and order, for EXPLAIN in tests and the benchmark. */
export function listStatementFor(sort: TaskSort, order: SortOrder, withCursor: boolean): string {
  return LIST_STATEMENTS.get(`${sort}:${order}:${withCursor}`)!;
}

interface RawTask extends Omit<TaskRow, 'id'> {
  id: number | string;
}

// pg returns bigint as a string; ids stay far below 2^53, so a JSON number is exact.
function toTask(row: RawTask): TaskRow {
  return {
    id: Number(row.id),
    title: row.title,
    description: row.description,
    completed: row.completed,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

export interface TaskPage {
  tasks: TaskRow[];
  /** Where the next page starts, when there is one. */
  next: Position | undefined;
}

export async function listTasks(db: Queryable, userId: string, opts: ListOptions): Promise<TaskPage> {
  const text = LIST_STATEMENTS.get(`${opts.sort}:${opts.order}:${opts.after !== undefined}`)!;
  const params: unknown[] = [userId, STATUS_FILTER[opts.status], opts.limit + 1];
  if (opts.after) params.push(opts.after.key, opts.after.id);
  const { rows } = await db.query<RawTask & { sort_key: string }>(text, params);
  const more = rows.length > opts.limit;
  const page = more ? rows.slice(0, opts.limit) : rows;
  const last = page.at(-1);
  return {
    tasks: page.map(toTask),
    next: more && last ? { key: last.sort_key, id: Number(last.id) } : undefined,
  };
}

export async function getTask(db: Queryable, userId: string, id: number): Promise<TaskRow | undefined> {
  const { rows } = await db.query<RawTask>(`SELECT ${COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2`, [
    userId,
    id,
  ]);
  return rows[0] && toTask(rows[0]);
}

export interface NewTask {
  title: string;
  description: string | null;
  completed: boolean;
}

export async function createTask(db: Queryable, userId: string, task: NewTask): Promise<TaskRow> {
  const { rows } = await db.query<RawTask>(
    `INSERT INTO tasks (user_id, title, description, completed) VALUES ($1, $2, $3, $4) RETURNING ${COLUMNS}`,
    [userId, task.title, task.description, task.completed],
  );
  return toTask(rows[0]!);
}

export interface TaskChanges {
  title?: string | undefined;
  /** undefined: unchanged; null: cleared. */
  description?: string | null | undefined;
  completed?: boolean | undefined;
}

/** Changes the given fields only; one fixed statement whatever the subset. */
export async function updateTask(
  db: Queryable,
  userId: string,
  id: number,
  changes: TaskChanges,
): Promise<TaskRow | undefined> {
  const { rows } = await db.query<RawTask>(
    `UPDATE tasks SET
       title = COALESCE($3, title),
       description = CASE WHEN $4::boolean THEN $5 ELSE description END,
       completed = COALESCE($6, completed)
     WHERE user_id = $1 AND id = $2
     RETURNING ${COLUMNS}`,
    [
      userId,
      id,
      changes.title ?? null,
      changes.description !== undefined,
      changes.description ?? null,
      changes.completed ?? null,
    ],
  );
  return rows[0] && toTask(rows[0]);
}

/** Sets completion to `completed`, or flips it when undefined; atomic, so concurrent toggles all count. */
export async function setCompletion(
  db: Queryable,
  userId: string,
  id: number,
  completed: boolean | undefined,
): Promise<TaskRow | undefined> {
  const { rows } = await db.query<RawTask>(
    `UPDATE tasks SET completed = COALESCE($3, NOT completed)
     WHERE user_id = $1 AND id = $2
     RETURNING ${COLUMNS}`,
    [userId, id, completed ?? null],
  );
  return rows[0] && toTask(rows[0]);
}

export async function deleteTask(db: Queryable, userId: string, id: number): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM tasks WHERE user_id = $1 AND id = $2', [userId, id]);
  return rowCount > 0;
}

/**
 * For the security log only, never for an answer: whether a task the caller asked for exists under
 * another user (a probe of someone else's data). The caller's response stays a plain 404 either way.
 */
export async function ownedByAnotherUser(db: Queryable, userId: string, id: number): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM tasks WHERE id = $1 AND user_id <> $2', [id, userId]);
  return rows.length > 0;
}
