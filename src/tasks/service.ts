// The task service: every task operation as a function of the user, its typed input and its
// preconditions, returning a typed outcome. The rules live here — If-Match against a missing task,
// idempotent creates, the quota, cursors bound to their query — and the SQL in queries.ts. The
// REST routes and the MCP tools only translate their requests into calls and outcomes into answers.
import { createHash, randomBytes } from 'node:crypto';
import { isRejectedValue } from '../db/errors.js';
import type { Database, Queryable } from '../db/types.js';
import { loadContract } from '../http/contract.js';
import { instantProblem } from '../http/storable-input.js';
import { etagOf, ifMatchVersions } from '../http/etag.js';
import { type CursorScope, decodeCursor, encodeCursor, InvalidCursorError } from './cursor.js';
import { createOnce, requestHash } from './idempotency.js';
import { canonicalZone, checkRule, nextOccurrence, recursAfter, wallClockOf } from './recurrence.js';
import {
  decodeFeedCursor,
  encodeFeedCursor,
  type FeedCursor,
  type FeedPosition,
  InvalidFeedCursorError,
  isBefore,
  START,
} from '../changes/cursor.js';
import { instantOf, storedInstant, storedTags, utcMicros } from './input-forms.js';
import * as queries from './queries.js';

export type Task = queries.TaskRow;
export type TaskPriority = queries.TaskPriority;
export type TaskStats = queries.TaskStats;

/** A task as stored now, with its ETag. */
export interface TaskWithEtag {
  task: Task;
  etag: string;
}

/** A field of the request and what is wrong with it, in the contract's words (a 422). */
export interface FieldProblem {
  path: string;
  message: string;
}

/** A write's outcome: the task written, or why nothing was. */
export type WriteOutcome =
  | ({ kind: 'written'; replayed?: boolean } & TaskWithEtag)
  | { kind: 'not_found'; taskId: number }
  | { kind: 'precondition_failed'; taskId: number; currentEtag: string }
  | { kind: 'invalid'; errors: FieldProblem[] }
  | { kind: 'key_reused' };

export type DeleteOutcome =
  | { kind: 'deleted' }
  | { kind: 'not_found'; taskId: number }
  | { kind: 'precondition_failed'; taskId: number; currentEtag: string };

export type CreateOutcome =
  | { kind: 'created'; task: Task; etag: string; location: string; replayed: boolean }
  | { kind: 'quota_exceeded'; max: number }
  | { kind: 'invalid'; errors: FieldProblem[] }
  | { kind: 'key_reused' };

export interface ListInput extends queries.ListFilters {
  sort: queries.TaskSort;
  /** Absent: the sort's own default order. */
  order?: queries.SortOrder | undefined;
  limit: number;
  cursor?: string | undefined;
}

export type ListOutcome =
  | {
      kind: 'page';
      tasks: Task[];
      /** The cursor of the next page, when there is one. */
      nextCursor: string | undefined;
      /** The order the page is in (the sort's default when none was given). */
      order: queries.SortOrder;
    }
  | { kind: 'invalid_cursor'; message: string };

/** A single task's write: If-Match and Idempotency-Key, when the request has them. */
export interface WriteOptions {
  ifMatch?: string | undefined;
  idempotencyKey?: string | undefined;
}

/** One change to several tasks, as the contract's updateTasks body gives it. */
export interface BatchUpdateInput {
  ids: number[];
  completed?: boolean | undefined;
  due_at?: string | null | undefined;
  priority?: TaskPriority | undefined;
  add_tags?: string[] | undefined;
  remove_tags?: string[] | undefined;
}

export type BatchUpdateOutcome =
  | { kind: 'written'; tasks: Task[]; replayed?: boolean }
  | { kind: 'invalid'; errors: FieldProblem[] }
  | { kind: 'key_reused' }
  /** Ids that name no task of the user's; nothing was changed. */
  | { kind: 'not_found'; ids: number[] }
  /** The change would leave these tasks with more tags than a task may carry; nothing was changed. */
  | { kind: 'too_many_tags'; ids: number[]; max: number }
  /** Tags both added and removed. */
  | { kind: 'tags_conflict'; tags: string[] };

/** A change as the contract shows it. */
export type TaskChange =
  | { op: 'upsert'; task: Task }
  | { op: 'delete'; id: number; deleted_at: string }
  | { op: 'reminder'; reminder: queries.ReminderDue };

export type ChangesOutcome =
  | {
      kind: 'page';
      /** Each change with the cursor that continues after it (an event stream's event id). */
      changes: { change: TaskChange; cursor: string }[];
      /** Where the next read continues. */
      cursor: string;
      /** More changes are ready now. */
      hasMore: boolean;
      /** Changes still being written: read again in a moment. */
      pending: boolean;
    }
  | { kind: 'invalid_cursor'; message: string }
  | { kind: 'cursor_expired'; retentionSeconds: number };

export type StatsOutcome = { kind: 'stats'; stats: TaskStats } | { kind: 'unknown_time_zone' };

/** A recurrence as the contract's input gives it: null stops it. */
export type RecurrenceInput = { rule: string; time_zone: string; from?: 'due' | 'completion' | undefined } | null;
/** A reminder as the contract's input gives it: exactly one of the two. */
export interface ReminderInput {
  before_minutes?: number | undefined;
  at?: string | undefined;
}

/** A create's fields as the contract's createTask body gives them, its defaults applied. */
export interface CreateInput {
  title: string;
  description?: string | null | undefined;
  completed: boolean;
  due_at?: string | null | undefined;
  priority?: TaskPriority | undefined;
  tags?: string[] | undefined;
  position?: number | undefined;
  recurrence?: RecurrenceInput | undefined;
  reminders?: ReminderInput[] | undefined;
}

/** An update's fields as the contract's updateTask (PATCH) body gives them: absent ones unchanged. */
export interface UpdateInput {
  title?: string | undefined;
  description?: string | null | undefined;
  completed?: boolean | undefined;
  due_at?: string | null | undefined;
  priority?: TaskPriority | undefined;
  tags?: string[] | undefined;
  position?: number | undefined;
  recurrence?: RecurrenceInput | undefined;
  reminders?: ReminderInput[] | undefined;
}

/** A replace's fields (PUT): an absent description is cleared; absent completion and later fields keep theirs. */
export interface ReplaceInput extends UpdateInput {
  title: string;
}

// Manual order and due dates read top to bottom; everything else newest, last changed or most
// important first (and title, as in 1.0).
const DEFAULT_ORDER: Record<queries.TaskSort, queries.SortOrder> = {
  created_at: 'desc',
  updated_at: 'desc',
  title: 'desc',
  priority: 'desc',
  due_at: 'asc',
  position: 'asc',
};

function isKnownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** The fields added in 1.1, as PUT and PATCH take them alike: absent ones are left as they are. */
const laterFields = (input: UpdateInput): queries.TaskChanges => ({
  dueAt: storedInstant(input.due_at),
  priority: input.priority,
  tags: storedTags(input.tags),
  position: input.position,
});

/**
 * One task's write as the service applies it: absent fields are left as they are; completion is
 * applied last (`toggle` flips it), so a recurring task moves from its new state.
 */
interface TaskWrite {
  title?: string | undefined;
  /** undefined: unchanged; null: cleared. */
  description?: string | null | undefined;
  completed?: boolean | 'toggle' | undefined;
  /** undefined: unchanged; null: cleared. */
  dueAt?: string | null | undefined;
  priority?: TaskPriority | undefined;
  tags?: string[] | undefined;
  /** A batch's tag changes, applied to each task's own tags. */
  addTags?: string[] | undefined;
  removeTags?: string[] | undefined;
  position?: number | undefined;
  recurrence?: RecurrenceInput | undefined;
  reminders?: queries.TaskReminder[] | undefined;
}

/** Reminders as stored (each once, `at` in UTC), or what is wrong with them. */
function storedReminders(input: ReminderInput[] | undefined): { reminders?: queries.TaskReminder[]; errors: FieldProblem[] } {
  if (input === undefined) return { errors: [] };
  const errors: FieldProblem[] = [];
  const reminders: queries.TaskReminder[] = [];
  const seen = new Set<string>();
  input.forEach((r, i) => {
    const before = r.before_minutes !== undefined;
    if (before === (r.at !== undefined)) {
      errors.push({
        path: `/body/reminders/${i}`,
        message: before
          ? 'must give before_minutes or at, not both'
          : 'must give before_minutes (minutes before the due time) or at (an instant)',
      });
      return;
    }
    const problem = before ? undefined : instantProblem(r.at!);
    if (problem) {
      errors.push({ path: `/body/reminders/${i}/at`, message: problem });
      return;
    }
    const stored = before ? { before_minutes: r.before_minutes! } : { at: utcMicros(r.at!) };
    const key = JSON.stringify(stored);
    if (!seen.has(key)) reminders.push(stored);
    seen.add(key);
  });
  return { reminders, errors };
}

/** A recurrence as stored, or what is wrong with it. */
function storedRecurrence(input: NonNullable<RecurrenceInput>): { recurrence?: queries.StoredRecurrence; errors: FieldProblem[] } {
  const errors: FieldProblem[] = [];
  const rule = checkRule(input.rule);
  if (!rule.ok) for (const p of rule.problems) errors.push({ path: '/body/recurrence/rule', message: p.message });
  const zone = canonicalZone(input.time_zone);
  if (!zone)
    errors.push({ path: '/body/recurrence/time_zone', message: 'is not an IANA time zone this server knows, such as Europe/Berlin' });
  if (!rule.ok || !zone || errors.length) return { errors };
  return { recurrence: { rule: rule.rule, time_zone: zone, from: input.from ?? 'due' }, errors };
}

/** The last instant a due date may hold (the contract's `9999-12-31T23:59:59.999999Z`). */
const LAST_INSTANT = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

const NEVER =
  'never falls on a date after the due date (looking 400 years, 600 months, 60 weeks or 400 days ahead); check BYMONTH, BYMONTHDAY and BYSETPOS';

/** A wall clock the database can keep: years 0001 to 9999. */
const storableWallClock = (wall: string) => /^\d{4}-/.test(wall) && !wall.startsWith('0000');

/**
 * Where a schedule starts: the due date's wall clock in the rule's zone; or why it cannot (a local
 * date outside the years 1 to 9999, or, for a new rule, one that never recurs). `duePath` names
 * the field that put the due date there.
 */
function scheduleStart(
  r: queries.StoredRecurrence,
  dueAt: string,
  newRule: boolean,
  duePath: string,
): { anchor?: string; errors: FieldProblem[] } {
  const anchor = wallClockOf(dueAt, r.time_zone);
  if (!storableWallClock(anchor)) {
    const message = duePath.endsWith('time_zone')
      ? `puts the due date on a local date outside the years 0001 to 9999`
      : `lies on a local date outside the years 0001 to 9999 in ${r.time_zone}`;
    return { errors: [{ path: duePath, message }] };
  }
  if (newRule && !recursAfter(r.rule, r.time_zone, anchor)) return { errors: [{ path: '/body/recurrence/rule', message: NEVER }] };
  return { anchor, errors: [] };
}

/**
 * The occurrence after the current one, strictly later (a day a zone skipped can map two dates to
 * one instant) and within what a due date can hold; undefined when the series has ended there.
 */
function following(r: queries.StoredRecurrence, anchor: string, dueAt: string, completedAt: string, occurrence: number) {
  const current = Date.parse(dueAt);
  let from = anchor;
  let basis = r.from;
  for (let step = 0; step < 6; step++) {
    let next: ReturnType<typeof nextOccurrence>;
    try {
      next = nextOccurrence({ rule: r.rule, timeZone: r.time_zone, basis, anchor: from, completedAt, occurrence });
    } catch (err) {
      // A wall clock past what Temporal or the database can hold: the series cannot go on.
      if (err instanceof RangeError) return undefined;
      throw err;
    }
    if (!next && basis === 'completion') {
      // Restarted on the completion's date, the rule may land on none (INTERVAL=3 with BYMONTH
      // months the restart misses, say); then the schedule itself goes on rather than end.
      basis = 'due';
      continue;
    }
    if (!next || Date.parse(next.due) > LAST_INSTANT || !storableWallClock(next.anchor)) return undefined;
    // Counted from a completion, the next may come before the current due date (completed early).
    if (r.from === 'completion' || Date.parse(next.due) > current) return next;
    from = next.anchor;
    basis = 'due';
  }
  return undefined;
}

/** A task's tags after a batch: its own, then the added ones, each once, less the removed ones (as queries.updateTasks). */
const batchTags = (own: string[], add: string[] = [], remove: string[] = []) =>
  [...new Set([...own, ...add])].filter((t) => !remove.includes(t));

/** Thrown inside a transaction to undo it, carrying the outcome the caller is told. */
class Refused<T> extends Error {
  constructor(readonly outcome: T) {
    super('refused');
  }
}

export interface TaskServiceOptions {
  /** The most tasks one user keeps (TASKS_PER_USER_MAX). */
  tasksPerUser: number;
  /** How long tombstones and cursors are kept (CHANGES_RETENTION_SECONDS). */
  changesRetentionSeconds?: number | undefined;
  /** Told of every user whose tasks a write changed, once it is committed: live streams wake up. */
  changed?: ((userId: string) => void) | undefined;
  /** Told when a write left a task with reminders: this instance's reminder worker looks again. */
  remindersScheduled?: (() => void) | undefined;
}

/** A tombstone floor above every transaction id: a full sync's first page needs no tombstone. */
const NO_TOMBSTONES = '18446744073709551615';
const DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600;
/** How long an event-stream ticket is good for: long enough to open a connection, no longer. */
export const TICKET_SECONDS = 30;
/** Tickets are kept as their hash: a copy of the table opens no stream. */
const ticketHash = (ticket: string) => createHash('sha256').update(ticket).digest('hex');

/** The most tags a task carries: the contract's own bound. */
const TAGS_PER_TASK = (loadContract().document as { components: { schemas: { TaskTags: { maxItems: number } } } }).components.schemas
  .TaskTags.maxItems;

export type TaskService = ReturnType<typeof createTaskService>;

export function createTaskService(
  db: Database,
  { tasksPerUser, changesRetentionSeconds, changed, remindersScheduled }: TaskServiceOptions,
) {
  const retention = changesRetentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  /** Passes an outcome through, telling `changed` when it wrote something (and `remindersScheduled` when a task has reminders). */
  const told = <T extends { kind: string; task?: Task; tasks?: Task[] }>(userId: string, outcome: T): T => {
    if (outcome.kind === 'written' || outcome.kind === 'created' || outcome.kind === 'deleted') {
      changed?.(userId);
      if (remindersScheduled && (outcome.task?.reminders.length || outcome.tasks?.some((t) => t.reminders.length))) remindersScheduled();
    }
    return outcome;
  };

  /**
   * Applies a write to the user's task under its row lock, inside `tx`: the rules that need the
   * task's current state (a recurring task's completion moves it to its next occurrence; its due
   * date cannot be cleared; a reminder before the due time needs one). Nothing is written unless
   * the outcome is `written`.
   */
  async function applyWrite(
    tx: Queryable,
    userId: string,
    taskId: number,
    write: TaskWrite,
    expected: queries.ExpectedVersions,
  ): Promise<WriteOutcome> {
    const row = await queries.lockTask(tx, userId, taskId);
    if (!row) return { kind: 'not_found', taskId };
    if (expected !== undefined && !expected.includes(row.version)) {
      return { kind: 'precondition_failed', taskId, currentEtag: etagOf(row.version) };
    }
    const t = row.task;
    const state: queries.TaskState = {
      title: write.title ?? t.title,
      description: write.description === undefined ? t.description : write.description,
      completed: t.completed,
      dueAt: write.dueAt === undefined ? t.due_at : write.dueAt,
      priority: write.priority ?? t.priority,
      tags: write.tags ?? (write.addTags || write.removeTags ? batchTags(t.tags, write.addTags, write.removeTags) : t.tags),
      position: write.position ?? t.position,
      recurrence: row.recurrence,
      anchor: row.anchor,
      occurrence: row.occurrence,
      reminders: write.reminders ?? t.reminders,
    };
    const errors: FieldProblem[] = [];
    if (write.recurrence === null) {
      state.recurrence = null;
      state.anchor = null;
      state.occurrence = 1;
    } else if (write.recurrence !== undefined) {
      const checked = storedRecurrence(write.recurrence);
      errors.push(...checked.errors);
      if (checked.recurrence) {
        state.recurrence = checked.recurrence;
        state.occurrence = 1;
      }
    }
    // The same due date sent back (a PUT of the whole task, say) is no new due date.
    const dueMoved =
      write.dueAt !== undefined && (state.dueAt === null || t.due_at === null || utcMicros(state.dueAt) !== utcMicros(t.due_at));
    if (state.recurrence) {
      if (state.dueAt === null) {
        errors.push(
          write.dueAt === null
            ? write.recurrence
              ? { path: '/body/due_at', message: 'cannot be null with a recurrence: a recurring task needs a due date' }
              : { path: '/body/due_at', message: 'cannot be cleared while the task recurs; set recurrence to null as well' }
            : { path: '/body/recurrence', message: 'needs a due date: give due_at as well' },
        );
      } else if (write.recurrence || dueMoved) {
        // A new rule or a new due date starts the schedule again from the due date, and must lead somewhere.
        const start = scheduleStart(state.recurrence, state.dueAt, true, dueMoved ? '/body/due_at' : '/body/recurrence/time_zone');
        errors.push(...start.errors);
        state.anchor = start.anchor ?? state.anchor;
      }
    }
    if (errors.length) return { kind: 'invalid', errors };

    const completing = write.completed === 'toggle' ? !t.completed : write.completed;
    if (completing === true && !t.completed && state.recurrence && state.anchor && state.dueAt) {
      // An occurrence completed: recorded, and the task moves to the next one (or is done for good).
      await queries.recordOccurrence(tx, userId, taskId, state.occurrence, state.dueAt);
      const next = following(state.recurrence, state.anchor, state.dueAt, row.now, state.occurrence);
      if (next) {
        state.dueAt = next.due;
        state.anchor = next.anchor;
        state.occurrence += 1;
      } else state.completed = true;
    } else if (completing !== undefined) state.completed = completing;
    const written = await queries.writeTask(tx, userId, taskId, state);
    return { kind: 'written', task: written.task, etag: etagOf(written.version) };
  }

  /**
   * Runs `run` once per (user, Idempotency-Key): inside the transaction that claims the key, its
   * success kept as the response a retry gets back; anything else undoes the claim, so a refused
   * request can be retried with its key.
   */
  async function once<T extends { kind: string }>(
    userId: string,
    key: string,
    request: unknown,
    run: (tx: Queryable) => Promise<T>,
    response: (outcome: T) => { etag: string; body: unknown } | undefined,
  ): Promise<{ kind: 'done'; etag: string; body: unknown; replayed: boolean } | { kind: 'key_reused' } | T> {
    try {
      const outcome = await createOnce(db, userId, key, requestHash(request), async (tx) => {
        const done = await run(tx);
        const kept = response(done);
        if (!kept) throw new Refused(done);
        return { status: 200, etag: kept.etag, location: '', body: kept.body };
      });
      if (outcome.kind === 'conflict') return { kind: 'key_reused' };
      return { kind: 'done', etag: outcome.response.etag, body: outcome.response.body, replayed: outcome.kind === 'replayed' };
    } catch (err) {
      if (err instanceof Refused) return err.outcome as T;
      throw err;
    }
  }

  /** One task's write: a plain task's in one statement; a recurring task's, a keyed or a refused one under its lock. */
  async function write(
    userId: string,
    taskId: number,
    change: TaskWrite,
    reminders: ReminderInput[] | undefined,
    opts: { ifMatch?: string | undefined; idempotencyKey?: string | undefined; request: unknown },
  ): Promise<WriteOutcome> {
    const checked = storedReminders(reminders);
    if (checked.errors.length) return { kind: 'invalid', errors: checked.errors };
    const w: TaskWrite = { ...change, reminders: checked.reminders };
    const expected = ifMatchVersions(opts.ifMatch);
    if (opts.idempotencyKey !== undefined) {
      const outcome = await once(
        userId,
        opts.idempotencyKey,
        opts.request,
        (tx) => applyWrite(tx, userId, taskId, w, expected),
        (o) => (o.kind === 'written' ? { etag: o.etag, body: o.task } : undefined),
      );
      if (outcome.kind !== 'done') return outcome as WriteOutcome;
      const done = {
        kind: 'written' as const,
        task: queries.taskInOrder(outcome.body as Task),
        etag: outcome.etag,
        replayed: outcome.replayed,
      };
      return outcome.replayed ? done : told(userId, done);
    }
    // Most writes: one statement, which leaves recurring tasks (and missing ones) alone.
    if (w.recurrence === undefined && !w.reminders?.length && !w.addTags && !w.removeTags) {
      const fast =
        w.completed !== undefined && Object.keys(w).every((k) => k === 'completed' || w[k as keyof TaskWrite] === undefined)
          ? await queries.setCompletion(db, userId, taskId, w.completed === 'toggle' ? undefined : w.completed, expected)
          : await queries.updateTask(db, userId, taskId, { ...w, completed: w.completed === 'toggle' ? undefined : w.completed }, expected);
      if (fast) return told(userId, { kind: 'written' as const, task: fast.task, etag: etagOf(fast.version) });
    }
    return told(userId, await db.transaction((tx) => applyWrite(tx, userId, taskId, w, expected)));
  }

  return {
    async list(userId: string, input: ListInput): Promise<ListOutcome> {
      const { sort, limit } = input;
      const filters: queries.ListFilters = {
        status: input.status,
        priority: input.priority,
        tags: storedTags(input.tags),
        dueBefore: instantOf(input.dueBefore),
        dueAfter: instantOf(input.dueAfter),
        overdue: input.overdue,
        q: input.q,
        match: input.match,
      };
      const scope: CursorScope = { sort, order: input.order ?? DEFAULT_ORDER[sort], filters };
      let after: queries.Position | undefined;
      if (input.cursor !== undefined) {
        try {
          after = decodeCursor(input.cursor, scope);
        } catch (err) {
          if (!(err instanceof InvalidCursorError)) throw err;
          return { kind: 'invalid_cursor', message: err.message };
        }
      }
      const page = await queries.listTasks(db, userId, { ...filters, sort, order: scope.order, limit, after });
      return { kind: 'page', tasks: page.tasks, nextCursor: page.next && encodeCursor(scope, page.next), order: scope.order };
    },

    async get(
      userId: string,
      taskId: number,
    ): Promise<({ kind: 'found'; version: number } & TaskWithEtag) | { kind: 'not_found'; taskId: number }> {
      const found = await queries.getTask(db, userId, taskId);
      if (!found) return { kind: 'not_found', taskId };
      return { kind: 'found', task: found.task, etag: etagOf(found.version), version: found.version };
    },

    /**
     * Creates a task; with an idempotency key, at most once per key and body for 24 hours (a retry
     * gets the first answer again, `replayed`). `locationOf` names the new task's URL as the
     * caller's entry point shows it; it is kept with the key and replayed as it was.
     */
    async create(
      userId: string,
      input: CreateInput,
      opts: { idempotencyKey?: string | undefined; locationOf: (id: number) => string },
    ): Promise<CreateOutcome> {
      const dueAt = storedInstant(input.due_at) ?? null;
      const reminders = storedReminders(input.reminders);
      const recurrence = input.recurrence ? storedRecurrence(input.recurrence) : { errors: [] };
      const errors = [...recurrence.errors, ...reminders.errors];
      let anchor: string | null = null;
      if (recurrence.recurrence) {
        if (dueAt === null) errors.push({ path: '/body/recurrence', message: 'needs a due date: give due_at as well' });
        else {
          const start = scheduleStart(recurrence.recurrence, dueAt, true, '/body/due_at');
          errors.push(...start.errors);
          anchor = start.anchor ?? null;
        }
      }
      if (errors.length) return { kind: 'invalid', errors };
      const fields: queries.NewTask = {
        title: input.title.trim(),
        description: input.description ?? null,
        completed: input.completed,
        dueAt,
        priority: input.priority ?? 'none',
        tags: storedTags(input.tags) ?? [],
        position: input.position,
        recurrence: recurrence.recurrence ?? null,
        anchor,
        reminders: reminders.reminders ?? [],
      };
      const quotaExceeded = new Error('quota exceeded');
      // Alone inside the idempotent create's transaction; otherwise beside the user's other creates.
      const create = async (tx?: Queryable) => {
        const created = tx
          ? await queries.createTaskAlone(tx, userId, fields, tasksPerUser)
          : await queries.createTask(db, userId, fields, tasksPerUser);
        // Thrown inside the idempotent create's transaction, so its key is not kept either.
        if (!created) throw quotaExceeded;
        return { status: 201, etag: etagOf(created.version), location: opts.locationOf(created.task.id), body: created.task };
      };
      try {
        if (opts.idempotencyKey === undefined) {
          const response = await create();
          return told(userId, {
            kind: 'created' as const,
            task: response.body,
            etag: response.etag,
            location: response.location,
            replayed: false,
          });
        }
        const outcome = await createOnce(db, userId, opts.idempotencyKey, requestHash(input), create);
        if (outcome.kind === 'conflict') return { kind: 'key_reused' };
        const { response } = outcome;
        const created = {
          kind: 'created' as const,
          task: queries.taskInOrder(response.body as Task),
          etag: response.etag,
          location: response.location,
          replayed: outcome.kind === 'replayed',
        };
        return created.replayed ? created : told(userId, created);
      } catch (err) {
        if (err === quotaExceeded) return { kind: 'quota_exceeded', max: tasksPerUser };
        throw err;
      }
    },

    /** PUT: a new title and description (an absent description clears it); other fields when given. */
    replace(userId: string, taskId: number, input: ReplaceInput, opts: WriteOptions = {}): Promise<WriteOutcome> {
      return write(
        userId,
        taskId,
        {
          ...laterFields(input),
          title: input.title.trim(),
          description: input.description ?? null,
          completed: input.completed,
          recurrence: input.recurrence,
        },
        input.reminders,
        { ...opts, request: { op: 'replace', taskId, input, ifMatch: opts.ifMatch } },
      );
    },

    /** PATCH: the fields given. */
    update(userId: string, taskId: number, input: UpdateInput, opts: WriteOptions = {}): Promise<WriteOutcome> {
      return write(
        userId,
        taskId,
        {
          ...laterFields(input),
          title: input.title?.trim(),
          description: input.description,
          completed: input.completed,
          recurrence: input.recurrence,
        },
        input.reminders,
        { ...opts, request: { op: 'update', taskId, input, ifMatch: opts.ifMatch } },
      );
    },

    /**
     * Sets completion, or flips it when `completed` is undefined; atomic, so concurrent toggles all
     * count. Completing a recurring task moves it to its next occurrence.
     */
    setCompletion(userId: string, taskId: number, completed: boolean | undefined, opts: WriteOptions = {}): Promise<WriteOutcome> {
      return write(userId, taskId, { completed: completed ?? 'toggle' }, undefined, {
        ...opts,
        request: { op: 'complete', taskId, completed, ifMatch: opts.ifMatch },
      });
    },

    async remove(userId: string, taskId: number, ifMatch?: string): Promise<DeleteOutcome> {
      const expected = ifMatchVersions(ifMatch);
      if (await queries.deleteTask(db, userId, taskId, expected)) return told(userId, { kind: 'deleted' as const });
      if (expected !== undefined) {
        const current = await queries.taskVersion(db, userId, taskId);
        if (current !== undefined) return { kind: 'precondition_failed', taskId, currentEtag: etagOf(current) };
      }
      return { kind: 'not_found', taskId };
    },

    /**
     * One change to several of the user's tasks, in one transaction: every task changes, or
     * (when an id is not the user's, or a task would get too many tags) none does.
     */
    async updateMany(
      userId: string,
      input: BatchUpdateInput,
      opts: { idempotencyKey?: string | undefined } = {},
    ): Promise<BatchUpdateOutcome> {
      const addTags = storedTags(input.add_tags);
      const removeTags = storedTags(input.remove_tags);
      const both = addTags?.filter((t) => removeTags?.includes(t)) ?? [];
      if (both.length) return { kind: 'tags_conflict', tags: both };
      const changes: queries.BatchChanges = {
        completed: input.completed,
        dueAt: storedInstant(input.due_at),
        priority: input.priority,
        addTags,
        removeTags,
      };
      const run = async (tx: Queryable): Promise<BatchUpdateOutcome> => {
        const locked = await queries.lockForBatch(tx, userId, input.ids, changes);
        const found = new Set(locked.map((t) => t.id));
        const missing = input.ids.filter((id) => !found.has(id));
        if (missing.length) return { kind: 'not_found', ids: missing };
        const crowded = locked.filter((t) => t.tags > TAGS_PER_TASK).map((t) => t.id);
        if (crowded.length) return { kind: 'too_many_tags', ids: crowded, max: TAGS_PER_TASK };
        const recurring = locked.filter((t) => t.recurring).map((t) => t.id);
        if (changes.dueAt === null && recurring.length) {
          return {
            kind: 'invalid',
            errors: [
              {
                path: '/body/due_at',
                message: `cannot be cleared on recurring tasks (${recurring.join(', ')}); set their recurrence to null first`,
              },
            ],
          };
        }
        const plain = locked.filter((t) => !t.recurring).map((t) => t.id);
        const rows = plain.length ? await queries.updateTasks(tx, userId, plain, changes) : [];
        const byId = new Map(rows.map((row) => [row.task.id, row.task]));
        // Recurring tasks one by one, already locked: completing one moves it to its next occurrence.
        for (const id of recurring) {
          const done = await applyWrite(
            tx,
            userId,
            id,
            { completed: changes.completed, dueAt: changes.dueAt, priority: changes.priority, addTags, removeTags },
            undefined,
          );
          // Locked, so only the rules can refuse it (a due date its zone cannot hold, say): the batch is refused.
          if (done.kind === 'invalid') {
            return { kind: 'invalid', errors: done.errors.map((e) => ({ ...e, message: `${e.message} (task ${id})` })) };
          }
          if (done.kind !== 'written') throw new Error(`batch: task ${id} locked but not written (${done.kind})`);
          byId.set(id, done.task);
        }
        return { kind: 'written', tasks: input.ids.map((id) => byId.get(id)!) };
      };
      if (opts.idempotencyKey !== undefined) {
        const outcome = await once(userId, opts.idempotencyKey, { op: 'updateTasks', input }, run, (o) =>
          o.kind === 'written' ? { etag: '', body: o.tasks } : undefined,
        );
        if (outcome.kind !== 'done') return outcome as BatchUpdateOutcome;
        const done = { kind: 'written' as const, tasks: (outcome.body as Task[]).map(queries.taskInOrder), replayed: outcome.replayed };
        return outcome.replayed ? done : told(userId, done);
      }
      try {
        return told(
          userId,
          await db.transaction(async (tx) => {
            const outcome = await run(tx);
            // Refused: undone, so none of the batch's tasks changes.
            if (outcome.kind !== 'written') throw new Refused(outcome);
            return outcome;
          }),
        );
      } catch (err) {
        if (err instanceof Refused) return err.outcome as BatchUpdateOutcome;
        throw err;
      }
    },

    /** Deletes the user's tasks among `ids`; which were deleted and which the user did not have, in the order given. */
    async removeMany(userId: string, ids: number[]): Promise<{ deleted: number[]; notFound: number[] }> {
      const gone = new Set(await queries.deleteTasks(db, userId, ids));
      if (gone.size) changed?.(userId);
      return { deleted: ids.filter((id) => gone.has(id)), notFound: ids.filter((id) => !gone.has(id)) };
    },

    /** The user's tags, each with how many tasks carry it and how many of those are pending. */
    tags(userId: string): Promise<queries.TagCounts> {
      return queries.tagCounts(db, userId);
    },

    /** Deletes every completed task of the user; how many. */
    async clearCompleted(userId: string): Promise<number> {
      const deleted = await queries.deleteCompleted(db, userId);
      if (deleted) changed?.(userId);
      return deleted;
    },

    /**
     * The user's changes after `cursor`, in the order they can be read without missing one (see
     * migrations/005): each changed task as it is now, each deleted one as a tombstone. Without a
     * cursor, a full sync: every task, page after page, then the changes made meanwhile.
     */
    async changes(
      userId: string,
      cursorText: string | undefined,
      limit: number,
      /** live: a live stream's own position, read on as it goes: only a purged tombstone can outdate it, never its age. reminders: fired reminders too. */
      opts: { live?: boolean; reminders?: boolean } = {},
    ): Promise<ChangesOutcome> {
      let from: FeedCursor | undefined;
      if (cursorText !== undefined) {
        try {
          from = decodeFeedCursor(userId, cursorText);
        } catch (err) {
          if (!(err instanceof InvalidFeedCursorError)) throw err;
          return { kind: 'invalid_cursor', message: err.message };
        }
        if (!opts.live && from.issuedAt < Date.now() / 1000 - retention) return { kind: 'cursor_expired', retentionSeconds: retention };
      }
      const position = from?.position ?? START;
      const page = await queries.feedPage(db, userId, position, from?.floorXid ?? NO_TOMBSTONES, limit, opts.reminders);
      // A tombstone this reader needs (after its position, at or above its floor) may be purged.
      const floor = from?.floorXid ?? page.horizon;
      if (page.purged && !isBefore(page.purged, position) && BigInt(page.purged.xid) >= BigInt(floor)) {
        return { kind: 'cursor_expired', retentionSeconds: retention };
      }
      const issuedAt = Math.floor(Date.now() / 1000);
      const cursorAt = (at: FeedPosition) => encodeFeedCursor(userId, { position: at, floorXid: floor, issuedAt });
      const changes = page.changes.map((c) => ({
        change: (c.op === 'upsert'
          ? { op: 'upsert', task: c.task }
          : c.op === 'delete'
            ? { op: 'delete', id: c.id, deleted_at: c.deletedAt }
            : { op: 'reminder', reminder: c.reminder }) as TaskChange,
        cursor: cursorAt({ xid: c.xid, seq: c.seq }),
      }));
      // Read to the end: everything below the horizon has been seen, so the next read starts there.
      const last = page.changes.at(-1);
      const end: FeedPosition = page.more && last ? { xid: last.xid, seq: last.seq } : { xid: page.horizon, seq: '0' };
      const next = isBefore(end, position) ? position : end;
      return { kind: 'page', changes, cursor: cursorAt(next), hasMore: page.more, pending: page.pending };
    },

    async stats(userId: string, timeZone: string): Promise<StatsOutcome> {
      if (!isKnownTimeZone(timeZone)) return { kind: 'unknown_time_zone' };
      try {
        return { kind: 'stats', stats: await queries.taskStats(db, userId, timeZone) };
      } catch (err) {
        // The database keeps its own time-zone list; one it lacks is still the caller's input.
        if (isRejectedValue(err)) return { kind: 'unknown_time_zone' };
        throw err;
      }
    },

    /**
     * For the security log only, never for an answer: whether a task a caller was told is not
     * found exists under another user (a probe of someone else's data).
     */
    ownedByAnotherUser(userId: string, taskId: number): Promise<boolean> {
      return queries.ownedByAnotherUser(db, userId, taskId);
    },

    /** A cursor at the feed's present: what a new live stream starts from. */
    async cursorNow(userId: string): Promise<string> {
      const horizon = await queries.feedHorizon(db);
      return encodeFeedCursor(userId, { position: { xid: horizon, seq: '0' }, floorXid: horizon, issuedAt: Math.floor(Date.now() / 1000) });
    },

    /** A single-use ticket for the event stream, for `ttlSeconds`, bound to the user and the token's end. */
    async issueTicket(
      userId: string,
      tokenValidUntil: number,
      ttlSeconds = TICKET_SECONDS,
    ): Promise<{ ticket: string; expires_at: string }> {
      const ticket = randomBytes(24).toString('base64url');
      const expires_at = await queries.storeTicket(db, userId, ticketHash(ticket), ttlSeconds, tokenValidUntil);
      return { ticket, expires_at };
    },

    /** Uses a ticket up: its user and token's end, when it is known, unused and unexpired. */
    redeemTicket(ticket: string): Promise<{ userId: string; tokenValidUntil: number } | undefined> {
      return queries.takeTicket(db, ticketHash(ticket));
    },

    /**
     * Fires the reminders that fell due (by the database's clock), each exactly once across every
     * instance: as events of the feed, waking the users' streams. How many fired.
     */
    async fireReminders(batch = 200): Promise<number> {
      let total = 0;
      for (;;) {
        const fired = await queries.fireReminders(db, batch);
        let n = 0;
        for (const f of fired) {
          n += f.fired;
          changed?.(f.userId);
        }
        total += n;
        if (n < batch) return total;
      }
    },

    /** Seconds until the next reminder falls due; undefined when none is scheduled. */
    nextReminderIn(): Promise<number | undefined> {
      return queries.nextReminderIn(db);
    },

    /** Forgets tombstones past the retention (and expired tickets); how many tombstones went. */
    async purgeChanges(batch = 1000): Promise<number> {
      let total = 0;
      for (;;) {
        const n = await queries.purgeTombstones(db, retention, batch);
        total += n;
        if (n < batch) break;
      }
      await queries.purgeTickets(db);
      return total;
    },

    /** For the security log only, as ownedByAnotherUser: which of `ids` other users have. */
    ownedByOthers(userId: string, ids: number[]): Promise<number[]> {
      return ids.length ? queries.ownedByOthers(db, userId, ids) : Promise.resolve([]);
    },
  };
}
