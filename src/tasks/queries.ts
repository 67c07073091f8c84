// All task SQL. Every statement is parameterized and scoped by user_id: a task of another user is
// indistinguishable from one that does not exist.
import type { components } from '../../generated/openapi.js';
import type { Database, Queryable } from '../db/types.js';
import { enumOf, type Query } from '../http/contract.js';
import { utc } from '../db/utc-text.js';

/** A task as the contract shows it. */
export type TaskRow = components['schemas']['Task'];
export type TaskPriority = components['schemas']['TaskPriority'];

/** A task and its version, the ETag's content; the version never appears in a body. */
export interface VersionedTask {
  task: TaskRow;
  version: number;
}

export type TaskStatus = NonNullable<Query<'listTasks'>['status']>;
export type TaskSort = NonNullable<Query<'listTasks'>['sort']>;
export type SortOrder = NonNullable<Query<'listTasks'>['order']>;

/** Priorities in the contract's order, lowest first. */
export const PRIORITIES = enumOf<TaskPriority>('TaskPriority');

/**
 * What the database stores for each priority (a smallint it sorts by, checked 0–3 by migration
 * 002): a table of its own, so reordering or extending the contract's enum can never change what
 * stored rows mean. tests/priority.test.ts checks it names exactly the contract's values, in order.
 */
export const STORED_PRIORITY: Readonly<Record<TaskPriority, number>> = { none: 0, low: 1, medium: 2, high: 3 };
const PRIORITY_STORED_AS: readonly TaskPriority[] = Object.entries(STORED_PRIORITY).reduce<TaskPriority[]>((byValue, [name, n]) => {
  byValue[n] = name as TaskPriority;
  return byValue;
}, []);
const storedPriority = (p: TaskPriority) => STORED_PRIORITY[p];

/** The position after which a page starts: the sort key of the last task seen (as text) and its id. */
export interface Position {
  key: string;
  id: number;
}

/** Narrowing filters; each absent one matches every task. */
export interface ListFilters {
  status: TaskStatus;
  priority?: TaskPriority | undefined;
  /** Tasks carrying all of these tags. */
  tags?: string[] | undefined;
  /** due_at < dueBefore (RFC 3339). */
  dueBefore?: string | undefined;
  /** due_at >= dueAfter (RFC 3339). */
  dueAfter?: string | undefined;
  overdue?: boolean | undefined;
  /** Text search over title and description. */
  q?: string | undefined;
  /** Whether every word of `q` must match, or any one. */
  match?: SearchMatch | undefined;
}

export type SearchMatch = NonNullable<Query<'listTasks'>['match']>;

export interface ListOptions extends ListFilters {
  sort: TaskSort;
  order: SortOrder;
  limit: number;
  after?: Position | undefined;
}

// A recurrence with its occurrence's number, in one column: every column is a field the driver
// builds for each row of a page (measured: a page of 50 allocated 3 % less on PostgreSQL than with two).
const RECURRENCE = "CASE WHEN recurrence IS NULL THEN NULL ELSE recurrence || jsonb_build_object('occurrence', occurrence) END";
const COLUMNS = `id, title, description, completed, ${utc('due_at')} AS due_at,
  priority, tags, position, ${RECURRENCE} AS recurrence, nullif(reminders, '[]') AS reminders, version,
  ${utc('created_at')} AS created_at, ${utc('updated_at')} AS updated_at`;

// Sort keys and their SQL: a closed set, so list statements are built once, here, from constants
// (identifiers and directions cannot be parameters). Each matches an index in migrations/.
// Qualified with the table: in ORDER BY a bare `created_at` would mean the formatted output
// column of that name, and sorting by it cannot use the index. A page's cursor needs the sort key
// of its last task only, as text that reads back as the same value: taken from that row in
// JavaScript where the row already holds it exactly, and computed by the database (a `sort_key`
// column) only for the title, whose key is PostgreSQL's own lower-casing.
const SORT_KEYS: Record<TaskSort, { expr: string; type: string; keyColumn?: string; keyOf?: (row: RawTask) => string }> = {
  created_at: { expr: 'tasks.created_at', type: 'timestamptz', keyOf: (row) => row.created_at },
  updated_at: { expr: 'tasks.updated_at', type: 'timestamptz', keyOf: (row) => row.updated_at },
  title: { expr: '(lower(tasks.title) COLLATE "C")', type: 'text', keyColumn: '(lower(tasks.title) COLLATE "C")' },
  due_at: { expr: "(coalesce(tasks.due_at, 'infinity'::timestamptz))", type: 'timestamptz', keyOf: (row) => row.due_at ?? 'infinity' },
  priority: { expr: 'tasks.priority', type: 'smallint', keyOf: (row) => String(row.priority) },
  // A float8 read into a JavaScript number and written back as its shortest text is the same number.
  position: { expr: 'tasks.position', type: 'double precision', keyOf: (row) => String(row.position) },
};

/** The narrowing filters besides status, each switched off by a NULL parameter. */
const FILTERS = [
  (p: string) => `(${p}::smallint IS NULL OR tasks.priority = ${p})`,
  (p: string) => `(${p}::text[] IS NULL OR tasks.tags @> ${p})`,
  (p: string) => `(${p}::timestamptz IS NULL OR tasks.due_at < ${p})`,
  (p: string) => `(${p}::timestamptz IS NULL OR tasks.due_at >= ${p})`,
  (p: string) => `(${p}::boolean IS NULL OR ${p} = (NOT tasks.completed AND coalesce(tasks.due_at < now(), false)))`,
  (p: string) => `(${p}::text IS NULL OR tasks.search @@ to_tsquery('simple', ${p}))`,
  (p: string) => `(${p}::text IS NULL OR strpos(tasks.title, ${p}) > 0 OR strpos(tasks.description, ${p}) > 0)`,
];

/** What decides a list statement's text; everything else is a parameter. */
interface ListShape {
  sort: TaskSort;
  order: SortOrder;
  /** Only pending or only completed tasks (a parameter says which). */
  byStatus: boolean;
  /** Any filter besides status. */
  filtered: boolean;
  cursor: boolean;
}

// Each part is in the statement only when the request uses it: most pages are a user's tasks in
// the default order, and a condition that is there but switched off still costs the database
// planning and a test per row (measured: the unfiltered first page as one statement for every
// combination ran at 60 % of the rate of this one; docs/performance.md, "Hand-made speed-ups"). Plans are made
// per execution (custom plans), so within the filtered statements the planner folds the
// switched-off filters away and uses the index of the ones that are on.
function listStatement({ sort, order, byStatus, filtered, cursor }: ListShape): string {
  const { expr, type, keyColumn } = SORT_KEYS[sort];
  const dir = order === 'asc' ? 'ASC' : 'DESC';
  let n = 2; // $1 user, $2 limit
  const where = ['user_id = $1'];
  if (byStatus) where.push(`completed = $${++n}::boolean`);
  if (filtered) for (const filter of FILTERS) where.push(filter(`$${++n}`));
  if (cursor) where.push(`(${expr}, id) ${order === 'asc' ? '>' : '<'} ($${++n}::${type}, $${++n}::bigint)`);
  return `SELECT ${COLUMNS}${keyColumn ? `, ${keyColumn} AS sort_key` : ''}
    FROM tasks
    WHERE ${where.join('\n      AND ')}
    ORDER BY ${expr} ${dir}, id ${dir}
    LIMIT $2`;
}

const LIST_STATEMENTS = new Map<string, string>();
const shapeKey = (s: ListShape) => `${s.sort}:${s.order}:${s.byStatus}:${s.filtered}:${s.cursor}`;
for (const sort of Object.keys(SORT_KEYS) as TaskSort[]) {
  for (const order of ['asc', 'desc'] as const) {
    for (const byStatus of [false, true]) {
      for (const filtered of [false, true]) {
        for (const cursor of [false, true]) {
          const shape = { sort, order, byStatus, filtered, cursor };
          LIST_STATEMENTS.set(shapeKey(shape), listStatement(shape));
        }
      }
    }
  }
}

/**
 * The text search as a tsquery of word prefixes (`mil` finds "milk"), built from letters and
 * digits only, so to_tsquery cannot fail on it; or, for input without any, a plain substring.
 * The substring is found with strpos, not ILIKE: a pattern of 200 `%` signs made ILIKE's matching
 * quadratic in each row's text (one user's searches slowed everyone's requests); text without
 * letters has no case to ignore.
 */
export function searchTerms(q: string | undefined, match: SearchMatch = 'all'): { tsquery: string | null; substring: string | null } {
  if (q === undefined) return { tsquery: null, substring: null };
  const words = q.toLowerCase().match(/[\p{L}\p{N}]+/gu);
  if (words) return { tsquery: words.map((w) => `${w}:*`).join(match === 'any' ? ' | ' : ' & '), substring: null };
  return { tsquery: null, substring: q };
}

/** The list statement for these options and its parameters (also for EXPLAIN in tests and the benchmark). */
export function listQuery(userId: string, opts: ListOptions): { text: string; values: unknown[] } {
  const values: unknown[] = [userId, opts.limit + 1];
  const byStatus = opts.status !== 'all';
  if (byStatus) values.push(opts.status === 'completed');
  const filtered =
    opts.priority !== undefined ||
    Boolean(opts.tags?.length) ||
    opts.dueBefore !== undefined ||
    opts.dueAfter !== undefined ||
    opts.overdue !== undefined ||
    opts.q !== undefined;
  if (filtered) {
    const search = searchTerms(opts.q, opts.match);
    values.push(
      opts.priority === undefined ? null : storedPriority(opts.priority),
      opts.tags?.length ? opts.tags : null,
      opts.dueBefore ?? null,
      opts.dueAfter ?? null,
      opts.overdue ?? null,
      search.tsquery,
      search.substring,
    );
  }
  if (opts.after) values.push(opts.after.key, opts.after.id);
  const shape = { sort: opts.sort, order: opts.order, byStatus, filtered, cursor: opts.after !== undefined };
  return { text: LIST_STATEMENTS.get(shapeKey(shape))!, values };
}

/** A recurrence as stored (migrations/006); the occurrence's number is a column of its own. */
export type StoredRecurrence = Omit<NonNullable<TaskRow['recurrence']>, 'occurrence'>;
export type TaskReminder = TaskRow['reminders'][number];

// Most tasks have no reminders: the database sends NULL for them rather than a '[]' each row would
// be parsed from (2 % of a page's allocations on the embedded database, measured), and they share this.
const NO_REMINDERS: TaskReminder[] = Object.freeze([]) as unknown as TaskReminder[];

interface RawTask extends Omit<TaskRow, 'id' | 'position' | 'priority' | 'reminders'> {
  id: number | string;
  priority: number;
  position: number | string;
  reminders: TaskReminder[] | null;
  version: number;
}

/** A recurrence with its fields in the contract's order (jsonb keeps keys in an order of its own). */
const recurrenceInOrder = (r: TaskRow['recurrence']): TaskRow['recurrence'] =>
  r && { rule: r.rule, time_zone: r.time_zone, from: r.from, occurrence: r.occurrence };

// pg returns bigint as a string; ids stay far below 2^53, so a JSON number is exact.
function toTask(row: RawTask): TaskRow {
  return {
    id: Number(row.id),
    title: row.title,
    description: row.description,
    completed: row.completed,
    due_at: row.due_at,
    priority: PRIORITY_STORED_AS[row.priority]!,
    tags: row.tags,
    position: Number(row.position),
    recurrence: recurrenceInOrder(row.recurrence),
    reminders: row.reminders ?? NO_REMINDERS,
    created_at: row.created_at,
    updated_at: row.updated_at,
  };
}

/** A task with its fields in the contract's order: a copy kept as jsonb (a replayed response) comes back in jsonb's. */
export function taskInOrder(t: TaskRow): TaskRow {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    completed: t.completed,
    due_at: t.due_at,
    priority: t.priority,
    tags: t.tags,
    position: t.position,
    // A response kept before 1.5 has neither field: the task had none then.
    recurrence: recurrenceInOrder(t.recurrence ?? null),
    reminders: t.reminders ?? [],
    created_at: t.created_at,
    updated_at: t.updated_at,
  };
}

const versioned = (row: RawTask | undefined): VersionedTask | undefined => row && { task: toTask(row), version: row.version };

export interface TaskPage {
  tasks: TaskRow[];
  /** Where the next page starts, when there is one. */
  next: Position | undefined;
}

export async function listTasks(db: Queryable, userId: string, opts: ListOptions): Promise<TaskPage> {
  const { text, values } = listQuery(userId, opts);
  // A generic plan, costed for an average user, would sort all of a large user's tasks for a page.
  const { rows } = await db.query<RawTask & { sort_key?: string }>(text, values, { planEach: true });
  const more = rows.length > opts.limit;
  const page = more ? rows.slice(0, opts.limit) : rows;
  const last = page.at(-1);
  const { keyOf } = SORT_KEYS[opts.sort];
  return {
    tasks: page.map(toTask),
    next: more && last ? { key: keyOf ? keyOf(last) : last.sort_key!, id: Number(last.id) } : undefined,
  };
}

export async function getTask(db: Queryable, userId: string, id: number): Promise<VersionedTask | undefined> {
  const { rows } = await db.query<RawTask>(`SELECT ${COLUMNS} FROM tasks WHERE user_id = $1 AND id = $2`, [userId, id]);
  return versioned(rows[0]);
}

/** The current version of a task, when the caller has it (to tell a stale If-Match from a 404). */
export async function taskVersion(db: Queryable, userId: string, id: number): Promise<number | undefined> {
  const { rows } = await db.query<{ version: number }>('SELECT version FROM tasks WHERE user_id = $1 AND id = $2', [userId, id]);
  return rows[0]?.version;
}

export interface NewTask {
  title: string;
  description: string | null;
  completed: boolean;
  dueAt: string | null;
  priority: TaskPriority;
  tags: string[];
  /** undefined: after the user's last task. */
  position: number | undefined;
  /** Absent: none. */
  recurrence?: StoredRecurrence | null | undefined;
  /** The due date's wall-clock time in the recurrence's zone (recurrence_anchor), with a recurrence. */
  anchor?: string | null | undefined;
  reminders?: TaskReminder[] | undefined;
}

/** How far past the user's last task a new one is placed: room for many moves in between. */
export const POSITION_GAP = 1024;

/** Rows a user's task count is spread over: more than the connections a process keeps, mostly. */
const COUNT_SHARDS = 16;

// A create claims a slot in its user's count and inserts the task in one statement; either both
// happen or neither (see migrations/004 for the counts and the lock). `$10` says how far under the
// quota the count it reads must be: by the creates that may be in flight unseen (fewer than the
// server's connections) when it holds the quota lock shared, by nothing when it holds it alone. Each
// server connection raises its own row (shard) of the count, so creates on different connections
// do not wait for each other's commits.
const CREATE_SQL = `WITH slot AS (
     INSERT INTO task_counts AS c (user_id, shard, tasks)
     SELECT $1, pg_backend_pid() % ${COUNT_SHARDS}, 1
     WHERE (SELECT coalesce(sum(tasks), 0) FROM task_counts WHERE user_id = $1) < $9::integer - CASE WHEN $10::boolean
       THEN current_setting('max_connections')::integer + current_setting('max_prepared_transactions')::integer ELSE 0 END
     ON CONFLICT (user_id, shard) DO UPDATE SET tasks = c.tasks + 1
     RETURNING 1
   )
   INSERT INTO tasks (user_id, title, description, completed, due_at, priority, tags, position, recurrence, recurrence_anchor, reminders)
   SELECT $1, $2, $3, $4, $5, $6, $7,
     coalesce($8, (SELECT coalesce(max(position), 0) + ${POSITION_GAP} FROM tasks WHERE user_id = $1)),
     $11::jsonb, $12::timestamp, $13::jsonb
   FROM slot
   RETURNING ${COLUMNS}`;

const createParams = (userId: string, task: NewTask, quota: number, shared: boolean) => [
  userId,
  task.title,
  task.description,
  task.completed,
  task.dueAt,
  storedPriority(task.priority),
  task.tags,
  task.position ?? null,
  quota,
  shared,
  task.recurrence ? JSON.stringify(task.recurrence) : null,
  task.anchor ?? null,
  JSON.stringify(task.reminders ?? []),
];

/**
 * Inserts the task when the user has fewer than `quota` tasks; undefined when the quota is full.
 * Far from the quota, under the quota lock shared, beside the user's other creates; near it (or
 * past it), alone, counting exactly. On a serial database (PGlite) no create is ever in flight
 * unseen, so one statement counts exactly without the lock, whose transaction would cost the
 * embedded database a fifth of its throughput (docs/performance.md, "Embedded database").
 */
export async function createTask(db: Database, userId: string, task: NewTask, quota: number): Promise<VersionedTask | undefined> {
  if (db.serial) return versioned((await db.query<RawTask>(CREATE_SQL, createParams(userId, task, quota, false))).rows[0]);
  const shared = { text: 'SELECT task_quota_lock_shared($1)', values: [userId] };
  const { rows } = await db.queryAfter<RawTask>(shared, CREATE_SQL, createParams(userId, task, quota, true));
  return rows[0] ? versioned(rows[0]) : db.transaction((tx) => createTaskAlone(tx, userId, task, quota));
}

/** createTask inside a transaction of the caller's: holds the user's quota lock until that commits. */
export async function createTaskAlone(tx: Queryable, userId: string, task: NewTask, quota: number): Promise<VersionedTask | undefined> {
  await tx.query('SELECT task_quota_lock($1)', [userId]);
  const { rows } = await tx.query<RawTask>(CREATE_SQL, createParams(userId, task, quota, false));
  return versioned(rows[0]);
}

export interface TaskChanges {
  title?: string | undefined;
  /** undefined: unchanged; null: cleared. */
  description?: string | null | undefined;
  completed?: boolean | undefined;
  /** undefined: unchanged; null: cleared. */
  dueAt?: string | null | undefined;
  priority?: TaskPriority | undefined;
  tags?: string[] | undefined;
  position?: number | undefined;
  /** undefined: unchanged. */
  reminders?: TaskReminder[] | undefined;
}

/**
 * The versions a write is allowed to apply to (If-Match): undefined for any. A write whose task
 * exists under another version changes nothing.
 */
export type ExpectedVersions = number[] | undefined;

/**
 * Changes the given fields only; one fixed statement whatever the subset. A recurring task is
 * left alone (undefined, as for a missing one): its writes go through writeTask, under its lock.
 */
export async function updateTask(
  db: Queryable,
  userId: string,
  id: number,
  changes: TaskChanges,
  expected?: ExpectedVersions,
): Promise<VersionedTask | undefined> {
  const { rows } = await db.query<RawTask>(
    `UPDATE tasks SET
       title = COALESCE($3, title),
       description = CASE WHEN $4::boolean THEN $5 ELSE description END,
       completed = COALESCE($6, completed),
       due_at = CASE WHEN $7::boolean THEN $8::timestamptz ELSE due_at END,
       priority = COALESCE($9::smallint, priority),
       tags = COALESCE($10::text[], tags),
       position = COALESCE($11::double precision, position),
       reminders = COALESCE($13::jsonb, reminders)
     WHERE user_id = $1 AND id = $2 AND ($12::integer[] IS NULL OR version = ANY($12)) AND recurrence IS NULL
     RETURNING ${COLUMNS}`,
    [
      userId,
      id,
      changes.title ?? null,
      changes.description !== undefined,
      changes.description ?? null,
      changes.completed ?? null,
      changes.dueAt !== undefined,
      changes.dueAt ?? null,
      changes.priority === undefined ? null : storedPriority(changes.priority),
      changes.tags ?? null,
      changes.position ?? null,
      expected ?? null,
      changes.reminders === undefined ? null : JSON.stringify(changes.reminders),
    ],
  );
  return versioned(rows[0]);
}

/** Sets completion to `completed`, or flips it when undefined; atomic, so concurrent toggles all count. Not for a recurring task (as updateTask). */
export async function setCompletion(
  db: Queryable,
  userId: string,
  id: number,
  completed: boolean | undefined,
  expected?: ExpectedVersions,
): Promise<VersionedTask | undefined> {
  const { rows } = await db.query<RawTask>(
    `UPDATE tasks SET completed = COALESCE($3, NOT completed)
     WHERE user_id = $1 AND id = $2 AND ($4::integer[] IS NULL OR version = ANY($4)) AND recurrence IS NULL
     RETURNING ${COLUMNS}`,
    [userId, id, completed ?? null, expected ?? null],
  );
  return versioned(rows[0]);
}

/** A task locked for a write that needs its current state (a recurring task's, or a keyed write). */
export interface LockedTask extends VersionedTask {
  recurrence: StoredRecurrence | null;
  /** The current occurrence's wall-clock date and time in the recurrence's zone ('YYYY-MM-DDTHH:MM:SS'). */
  anchor: string | null;
  occurrence: number;
  /** The database's clock now (RFC 3339, UTC): when a completion happens. */
  now: string;
}

/** The user's task, locked until the transaction ends; undefined when the user has none with that id. */
export async function lockTask(tx: Queryable, userId: string, id: number): Promise<LockedTask | undefined> {
  const { rows } = await tx.query<RawTask & { anchor: string | null; now: string; occurrence_n: number }>(
    `SELECT ${COLUMNS}, occurrence AS occurrence_n, to_char(recurrence_anchor, 'YYYY-MM-DD"T"HH24:MI:SS') AS anchor, ${utc('now()')} AS now
       FROM tasks WHERE user_id = $1 AND id = $2 FOR UPDATE`,
    [userId, id],
  );
  const row = rows[0];
  if (!row) return undefined;
  const task = versioned(row)!;
  const { occurrence: _n, ...recurrence } = task.task.recurrence ?? { occurrence: 0 };
  return {
    ...task,
    recurrence: task.task.recurrence ? (recurrence as StoredRecurrence) : null,
    anchor: row.anchor,
    occurrence: row.occurrence_n,
    now: row.now,
  };
}

/** A task's whole writable state, as writeTask stores it. */
export interface TaskState {
  title: string;
  description: string | null;
  completed: boolean;
  dueAt: string | null;
  priority: TaskPriority;
  tags: string[];
  position: number;
  recurrence: StoredRecurrence | null;
  anchor: string | null;
  occurrence: number;
  reminders: TaskReminder[];
}

/** Stores a locked task's whole state (lockTask first); the task as written. */
export async function writeTask(tx: Queryable, userId: string, id: number, state: TaskState): Promise<VersionedTask> {
  const { rows } = await tx.query<RawTask>(
    `UPDATE tasks SET title = $3, description = $4, completed = $5, due_at = $6::timestamptz, priority = $7::smallint,
       tags = $8::text[], position = $9::double precision, recurrence = $10::jsonb, recurrence_anchor = $11::timestamp,
       occurrence = $12::integer, reminders = $13::jsonb
     WHERE user_id = $1 AND id = $2
     RETURNING ${COLUMNS}`,
    [
      userId,
      id,
      state.title,
      state.description,
      state.completed,
      state.dueAt,
      storedPriority(state.priority),
      state.tags,
      state.position,
      state.recurrence === null ? null : JSON.stringify(state.recurrence),
      state.anchor,
      state.occurrence,
      JSON.stringify(state.reminders),
    ],
  );
  return versioned(rows[0])!;
}

/** Records that occurrence `occurrence` (due `dueAt`) of a recurring task was completed. */
export async function recordOccurrence(tx: Queryable, userId: string, taskId: number, occurrence: number, dueAt: string): Promise<void> {
  await tx.query('INSERT INTO task_occurrences (task_id, due_at, occurrence, user_id) VALUES ($1, $4, $2, $3)', [
    taskId,
    occurrence,
    userId,
    dueAt,
  ]);
}

export async function deleteTask(db: Queryable, userId: string, id: number, expected?: ExpectedVersions): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM tasks WHERE user_id = $1 AND id = $2 AND ($3::integer[] IS NULL OR version = ANY($3))', [
    userId,
    id,
    expected ?? null,
  ]);
  return rowCount > 0;
}

/** Deletes every completed task of the user; returns how many. */
export async function deleteCompleted(db: Queryable, userId: string): Promise<number> {
  // Locked in id order, as the batches lock theirs (lockForBatch), so the two cannot deadlock.
  const { rowCount } = await db.query(
    `WITH locked AS (SELECT id FROM tasks WHERE user_id = $1 AND completed ORDER BY id FOR UPDATE)
     DELETE FROM tasks WHERE user_id = $1 AND id IN (SELECT id FROM locked)`,
    [userId],
  );
  return rowCount;
}

/** For the security log only: which of `ids` are other users' tasks (probes of someone else's data). */
export async function ownedByOthers(db: Queryable, userId: string, ids: number[]): Promise<number[]> {
  const { rows } = await db.query<{ id: string | number }>('SELECT id FROM tasks WHERE id = ANY($1::bigint[]) AND user_id <> $2', [
    ids,
    userId,
  ]);
  return rows.map((r) => Number(r.id));
}

/** One change made to several tasks (updateTasks); absent fields are left as they are. */
export interface BatchChanges {
  completed?: boolean | undefined;
  /** undefined: unchanged; null: cleared. */
  dueAt?: string | null | undefined;
  priority?: TaskPriority | undefined;
  addTags?: string[] | undefined;
  removeTags?: string[] | undefined;
}

// A task's tags after a batch: its own, then the added ones, each once, less the removed ones.
const BATCH_TAGS = `CASE WHEN $3::text[] IS NULL AND $4::text[] IS NULL THEN tags ELSE ARRAY(
     SELECT t FROM unnest(tags || coalesce($3::text[], '{}')) WITH ORDINALITY AS u(t, n)
     WHERE t <> ALL(coalesce($4::text[], '{}')) GROUP BY t ORDER BY min(n)) END`;

/**
 * Locks the user's tasks among `ids` for a batch, in id order, so two batches over the same tasks
 * queue behind each other instead of deadlocking; each with how many tags the batch would leave it.
 */
export async function lockForBatch(
  tx: Queryable,
  userId: string,
  ids: number[],
  changes: Pick<BatchChanges, 'addTags' | 'removeTags'>,
): Promise<{ id: number; tags: number; recurring: boolean; completed: boolean }[]> {
  const { rows } = await tx.query<{ id: string | number; tags: number; recurring: boolean; completed: boolean }>(
    `SELECT id, cardinality(${BATCH_TAGS}) AS tags, recurrence IS NOT NULL AS recurring, completed
       FROM tasks WHERE user_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR UPDATE`,
    [userId, ids, changes.addTags ?? null, changes.removeTags ?? null],
  );
  return rows.map((row) => ({ id: Number(row.id), tags: row.tags, recurring: row.recurring, completed: row.completed }));
}

/**
 * Applies one change to each of the user's tasks among `ids` (locked first by lockForBatch); the
 * tasks written. Not for recurring tasks, whose completion moves them (writeTask, one by one).
 */
export async function updateTasks(tx: Queryable, userId: string, ids: number[], changes: BatchChanges): Promise<VersionedTask[]> {
  const { rows } = await tx.query<RawTask>(
    `UPDATE tasks SET
       tags = ${BATCH_TAGS},
       completed = COALESCE($5, completed),
       due_at = CASE WHEN $6::boolean THEN $7::timestamptz ELSE due_at END,
       priority = COALESCE($8::smallint, priority)
     WHERE user_id = $1 AND id = ANY($2::bigint[])
     RETURNING ${COLUMNS}`,
    [
      userId,
      ids,
      changes.addTags ?? null,
      changes.removeTags ?? null,
      changes.completed ?? null,
      changes.dueAt !== undefined,
      changes.dueAt ?? null,
      changes.priority === undefined ? null : storedPriority(changes.priority),
    ],
  );
  return rows.map((row) => versioned(row)!);
}

/** Deletes the user's tasks among `ids` (locked in id order, as updateTasks locks them); the ids deleted. */
export async function deleteTasks(db: Queryable, userId: string, ids: number[]): Promise<number[]> {
  const { rows } = await db.query<{ id: string | number }>(
    `WITH locked AS (SELECT id FROM tasks WHERE user_id = $1 AND id = ANY($2::bigint[]) ORDER BY id FOR UPDATE)
     DELETE FROM tasks WHERE user_id = $1 AND id IN (SELECT id FROM locked) RETURNING id`,
    [userId, ids],
  );
  return rows.map((row) => Number(row.id));
}

export type TagCounts = components['schemas']['TagCounts']['tags'];

/** Every tag on the user's tasks with how many carry it and how many of those are pending; most used first. */
export async function tagCounts(db: Queryable, userId: string): Promise<TagCounts> {
  const { rows } = await db.query<TagCounts[number]>(
    `SELECT tag, count(*)::integer AS tasks, count(*) FILTER (WHERE NOT completed)::integer AS pending
     FROM tasks CROSS JOIN LATERAL unnest(tags) AS tag
     WHERE user_id = $1
     GROUP BY tag
     ORDER BY count(*) DESC, tag COLLATE "C"`,
    [userId],
  );
  return rows;
}

export type ReminderDue = components['schemas']['ReminderDue'];

/** A fired reminder with its fields in the contract's order (it is kept as jsonb, which has its own). */
const reminderInOrder = (r: ReminderDue): ReminderDue => ({
  id: r.id,
  task_id: r.task_id,
  title: r.title,
  due_at: r.due_at,
  remind_at: r.remind_at,
  fired_at: r.fired_at,
  reminder: r.reminder,
});

/** One change in a user's feed: a task as it is now, the tombstone of a deleted one, or a reminder that fell due. */
export type FeedChange =
  | { op: 'upsert'; xid: string; seq: string; task: TaskRow }
  | { op: 'delete'; xid: string; seq: string; id: number; deletedAt: string }
  | { op: 'reminder'; xid: string; seq: string; reminder: ReminderDue };

export interface FeedPage {
  changes: FeedChange[];
  /** Whether changes beyond the limit are ready to read. */
  more: boolean;
  /** Every transaction below this id has ended: the reader's horizon (its snapshot's xmin). */
  horizon: string;
  /** Whether the user has changes at or beyond the horizon, still being written (read again soon). */
  pending: boolean;
  /** The newest position whose tombstone was purged, when any was. */
  purged: { xid: string; seq: string } | undefined;
}

// The reader's horizon: the oldest transaction of this snapshot still running, leaving out those
// known to run in another database (they cannot write this one's tasks: another database on the
// same server, busy with a long transaction, must not hold this feed back); or, with none, the
// snapshot's xmax. A transaction whose database is not known (it ended meanwhile, say) counts.
const HORIZON_SQL = `WITH s AS (SELECT pg_current_snapshot() AS snap)
  SELECT coalesce(
    (SELECT min(x) FROM s, pg_snapshot_xip(s.snap) AS x
      WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                         WHERE a.backend_xid = x::xid
                           AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
    (SELECT pg_snapshot_xmax(snap) FROM s)) AS xmin`;

// The user's changes after a position, in feed order, up to the reader's horizon: a transaction
// still running (xid >= the horizon) may commit later, so nothing at or past it is read yet (see
// migrations/005). Tasks and events (tombstones, and with $6 fired reminders) each come from their
// own index range, merged.
const FEED_SQL = `WITH h AS (${HORIZON_SQL}),
  c AS (
    (SELECT change_xid, change_seq, 'upsert'::text AS op, NULL::text AS deleted_at, NULL::jsonb AS payload, ${COLUMNS}
       FROM tasks, h
      WHERE user_id = $1 AND (change_xid, change_seq) > ($2::xid8, $3::bigint) AND change_xid < h.xmin
      ORDER BY change_xid, change_seq LIMIT $5)
    UNION ALL
    (SELECT change_xid, change_seq, kind, ${utc('happened_at')}, payload, task_id, NULL::text, NULL::text, NULL::boolean,
            NULL::text, NULL::smallint, NULL::text[], NULL::double precision, NULL::jsonb, NULL::jsonb,
            NULL::integer, NULL::text, NULL::text
       FROM task_events, h
      WHERE user_id = $1 AND (change_xid, change_seq) > ($2::xid8, $3::bigint) AND change_xid < h.xmin AND change_xid >= $4::xid8
        AND (kind = 'delete' OR $6::boolean)
      ORDER BY change_xid, change_seq LIMIT $5)
    ORDER BY change_xid, change_seq LIMIT $5
  ),
  m AS (
    SELECT h.xmin::text AS horizon,
           EXISTS (SELECT 1 FROM tasks WHERE user_id = $1 AND change_xid >= h.xmin)
             OR EXISTS (SELECT 1 FROM task_events WHERE user_id = $1 AND change_xid >= h.xmin) AS pending,
           ch.change_xid::text AS purged_xid, ch.change_seq::text AS purged_seq
      FROM h LEFT JOIN change_horizons ch ON ch.user_id = $1
  )
SELECT m.horizon, m.pending, m.purged_xid, m.purged_seq, c.change_xid::text AS xid, c.change_seq::text AS seq, c.op, c.deleted_at,
       c.payload, c.id, c.title, c.description, c.completed, c.due_at, c.priority, c.tags, c.position, c.recurrence,
       c.reminders, c.version, c.created_at, c.updated_at
  FROM m LEFT JOIN c ON true
 ORDER BY c.change_xid, c.change_seq`;

interface RawFeedRow extends Partial<RawTask> {
  horizon: string;
  pending: boolean;
  purged_xid: string | null;
  purged_seq: string | null;
  xid: string | null;
  seq: string | null;
  op: 'upsert' | 'delete' | 'reminder' | null;
  deleted_at: string | null;
  payload: ReminderDue | null;
}

/**
 * Up to `limit` of the user's changes after `after`, in feed order, skipping tombstones (and
 * fired reminders) of transactions below `floorXid`; with the reader's horizon and whether more
 * are being written.
 */
export async function feedPage(
  db: Queryable,
  userId: string,
  after: { xid: string; seq: string },
  floorXid: string,
  limit: number,
  withReminders = false,
): Promise<FeedPage> {
  const { rows } = await db.query<RawFeedRow>(FEED_SQL, [userId, after.xid, after.seq, floorXid, limit + 1, withReminders]);
  const first = rows[0]!;
  const changes: FeedChange[] = [];
  for (const row of rows) {
    if (row.op === 'upsert') changes.push({ op: 'upsert', xid: row.xid!, seq: row.seq!, task: toTask(row as RawTask) });
    else if (row.op === 'delete')
      changes.push({ op: 'delete', xid: row.xid!, seq: row.seq!, id: Number(row.id), deletedAt: row.deleted_at! });
    else if (row.op === 'reminder') changes.push({ op: 'reminder', xid: row.xid!, seq: row.seq!, reminder: reminderInOrder(row.payload!) });
  }
  const more = changes.length > limit;
  return {
    changes: more ? changes.slice(0, limit) : changes,
    more,
    horizon: first.horizon,
    pending: first.pending,
    purged: first.purged_xid === null ? undefined : { xid: first.purged_xid, seq: first.purged_seq! },
  };
}

/** The reader's horizon now: every transaction below it has ended. */
export async function feedHorizon(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ horizon: string }>(`SELECT xmin::text AS horizon FROM (${HORIZON_SQL}) h`);
  return rows[0]!.horizon;
}

/**
 * Deletes up to `limit` tombstones older than `retentionSeconds` (oldest first), recording per user
 * the newest position purged; returns how many were deleted.
 */
export async function purgeTombstones(db: Queryable, retentionSeconds: number, limit: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `WITH gone AS (
       DELETE FROM task_events WHERE (user_id, change_xid, change_seq) IN (
         SELECT user_id, change_xid, change_seq FROM task_events
          WHERE happened_at < now() - make_interval(secs => $1) ORDER BY happened_at LIMIT $2)
       RETURNING user_id, change_xid, change_seq),
     newest AS (
       SELECT DISTINCT ON (user_id) user_id, change_xid, change_seq FROM gone ORDER BY user_id, change_xid DESC, change_seq DESC),
     kept AS (
       INSERT INTO change_horizons AS h (user_id, change_xid, change_seq) SELECT user_id, change_xid, change_seq FROM newest
       ON CONFLICT (user_id) DO UPDATE SET change_xid = excluded.change_xid, change_seq = excluded.change_seq
         WHERE (h.change_xid, h.change_seq) < (excluded.change_xid, excluded.change_seq)
       RETURNING 1)
     SELECT (SELECT count(*) FROM gone)::integer AS n`,
    [retentionSeconds, limit],
  );
  return rows[0]!.n;
}

// Reminders that fell due (by the database's clock), each taken by one server only (SKIP LOCKED:
// several instances, or one through a transaction pooler, never take the same row) and turned into
// an event of the feed in the same statement, so a reminder fires exactly once or, when the
// statement does not commit, stays scheduled. The event's id is the receiver's deduplication key,
// unique per user: for a reminder before the due time, per task, occurrence (its due time) and
// minutes; for one at an instant, per task and instant (it fires once, whatever the due date).
const FIRE_SQL = `WITH due AS (
     SELECT task_id, reminder_key, fire_at FROM reminder_schedule WHERE fire_at <= now()
      ORDER BY fire_at LIMIT $1 FOR UPDATE SKIP LOCKED),
   gone AS (
     DELETE FROM reminder_schedule s USING due
      WHERE s.task_id = due.task_id AND s.reminder_key = due.reminder_key AND s.fire_at = due.fire_at
     RETURNING s.*),
   named AS (
     SELECT g.*, 'rem_' || g.task_id || '_' || CASE WHEN g.reminder_key LIKE 'a%' THEN g.reminder_key
       ELSE coalesce((extract(epoch FROM g.occurrence_due) * 1000000)::bigint::text, 'none') || '_' || g.reminder_key END AS event_id
       FROM gone g),
   fired AS (
     INSERT INTO task_events (user_id, task_id, kind, event_id, payload)
     SELECT g.user_id, g.task_id, 'reminder', g.event_id,
            jsonb_build_object(
              'id', g.event_id,
              'task_id', g.task_id, 'title', t.title, 'due_at', ${utc('g.occurrence_due')}, 'remind_at', ${utc('g.fire_at')},
              'fired_at', ${utc('clock_timestamp()')}, 'reminder', g.reminder)
       FROM named g JOIN tasks t ON t.id = g.task_id
     ON CONFLICT (user_id, event_id) DO NOTHING
     RETURNING user_id)
SELECT user_id, count(*)::integer AS n FROM fired GROUP BY user_id`;

/** Fires up to `limit` reminders that fell due; how many each user got. */
export async function fireReminders(db: Queryable, limit: number): Promise<{ userId: string; fired: number }[]> {
  const { rows } = await db.query<{ user_id: string; n: number }>(FIRE_SQL, [limit]);
  return rows.map((r) => ({ userId: r.user_id, fired: r.n }));
}

/** Seconds until the next scheduled reminder falls due (0 when one already has), or undefined when none is scheduled. */
export async function nextReminderIn(db: Queryable): Promise<number | undefined> {
  // Not greatest(0, …) in SQL: greatest ignores a NULL, so "none scheduled" would read as "one due now".
  const { rows } = await db.query<{ s: number | null }>(
    'SELECT extract(epoch FROM min(fire_at) - now())::float8 AS s FROM reminder_schedule',
  );
  const s = rows[0]?.s;
  return s === null || s === undefined ? undefined : Math.max(0, s);
}

/** Keeps a ticket (its hash) for the user until `expiresAt`, and until when its stream may last. */
export async function storeTicket(
  db: Queryable,
  userId: string,
  hash: string,
  ttlSeconds: number,
  tokenValidUntil: number,
): Promise<string> {
  const { rows } = await db.query<{ expires_at: string }>(
    `INSERT INTO event_tickets (ticket_hash, user_id, expires_at, token_valid_until)
     VALUES ($1, $2, now() + make_interval(secs => $3), to_timestamp($4))
     RETURNING ${utc('expires_at')} AS expires_at`,
    [hash, userId, ttlSeconds, tokenValidUntil],
  );
  return rows[0]!.expires_at;
}

/** Uses a ticket up: its user and until when the stream may last, if it was valid; never twice. */
export async function takeTicket(db: Queryable, hash: string): Promise<{ userId: string; tokenValidUntil: number } | undefined> {
  const { rows } = await db.query<{ user_id: string; valid_until: number }>(
    `DELETE FROM event_tickets WHERE ticket_hash = $1
     RETURNING user_id, extract(epoch FROM token_valid_until)::float8 AS valid_until, expires_at > now() AS fresh`,
    [hash],
  );
  const row = rows[0] as { user_id: string; valid_until: number; fresh: boolean } | undefined;
  return row?.fresh ? { userId: row.user_id, tokenValidUntil: row.valid_until } : undefined;
}

/** Deletes expired tickets; how many. */
export async function purgeTickets(db: Queryable): Promise<number> {
  const { rowCount } = await db.query('DELETE FROM event_tickets WHERE expires_at < now()');
  return rowCount;
}

export type TaskStats = components['schemas']['TaskStats'];

/** Counts by status, overdue and due today (the calendar day in `timeZone`), in one statement. */
export async function taskStats(db: Queryable, userId: string, timeZone: string): Promise<TaskStats> {
  const { rows } = await db.query<TaskStats>(
    `WITH today AS (
       SELECT date_trunc('day', now() AT TIME ZONE $2) AT TIME ZONE $2 AS starts,
              (date_trunc('day', now() AT TIME ZONE $2) + interval '1 day') AT TIME ZONE $2 AS ends
     )
     SELECT count(*)::integer AS total,
            count(*) FILTER (WHERE NOT completed)::integer AS pending,
            count(*) FILTER (WHERE completed)::integer AS completed,
            count(*) FILTER (WHERE NOT completed AND due_at < now())::integer AS overdue,
            count(*) FILTER (WHERE NOT completed AND due_at >= today.starts AND due_at < today.ends)::integer AS due_today
     FROM tasks, today
     WHERE user_id = $1`,
    [userId, timeZone],
  );
  return rows[0]!;
}

/**
 * For the security log only, never for an answer: whether a task the caller asked for exists under
 * another user (a probe of someone else's data). The caller's response stays a plain 404 either way.
 */
export async function ownedByAnotherUser(db: Queryable, userId: string, id: number): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 FROM tasks WHERE id = $1 AND user_id <> $2', [id, userId]);
  return rows.length > 0;
}

// Idempotency keys (src/tasks/idempotency.ts): kept 24 hours per user, with the response they got.
const KEY_TTL = "interval '24 hours'";

export interface StoredResponse {
  status: number;
  etag: string;
  location: string;
  body: unknown;
}

/** Expired keys of one user, so an old key can be used afresh. */
export async function deleteExpiredKeysOf(db: Queryable, userId: string): Promise<void> {
  await db.query(`DELETE FROM idempotency_keys WHERE user_id = $1 AND created_at < now() - ${KEY_TTL}`, [userId]);
}

/** Claims a key for a create; false when it is already taken (a concurrent claim waits for the first). */
export async function claimKey(db: Queryable, userId: string, key: string, hash: string): Promise<boolean> {
  const { rows } = await db.query(
    `INSERT INTO idempotency_keys (user_id, key, request_hash, status, etag, location, body)
     VALUES ($1, $2, $3, 0, '', '', 'null') ON CONFLICT DO NOTHING RETURNING 1`,
    [userId, key, hash],
  );
  return rows.length > 0;
}

export async function storedResponse(
  db: Queryable,
  userId: string,
  key: string,
): Promise<(StoredResponse & { request_hash: string }) | undefined> {
  const { rows } = await db.query<StoredResponse & { request_hash: string }>(
    'SELECT request_hash, status, etag, location, body FROM idempotency_keys WHERE user_id = $1 AND key = $2',
    [userId, key],
  );
  return rows[0];
}

export async function storeResponse(db: Queryable, userId: string, key: string, response: StoredResponse): Promise<void> {
  await db.query('UPDATE idempotency_keys SET status = $3, etag = $4, location = $5, body = $6::jsonb WHERE user_id = $1 AND key = $2', [
    userId,
    key,
    response.status,
    response.etag,
    response.location,
    JSON.stringify(response.body),
  ]);
}

/** Deletes up to `limit` expired keys of any user (oldest first, by idempotency_keys_created_idx); returns how many. */
export async function purgeExpiredKeys(db: Queryable, limit: number): Promise<number> {
  const { rowCount } = await db.query(
    `DELETE FROM idempotency_keys WHERE (user_id, key) IN (
       SELECT user_id, key FROM idempotency_keys WHERE created_at < now() - ${KEY_TTL} ORDER BY created_at LIMIT $1)`,
    [limit],
  );
  return rowCount;
}
