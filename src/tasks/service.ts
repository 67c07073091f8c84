// The task service: every task operation as a function of the user, its typed input and its
// preconditions, returning a typed outcome. The rules live here — If-Match against a missing task,
// idempotent creates, the quota, cursors bound to their query — and the SQL in queries.ts. The
// REST routes and the MCP tools only translate their requests into calls and outcomes into answers.
import { createHash, randomBytes } from 'node:crypto';
import { isRejectedValue } from '../db/errors.js';
import type { Database, Queryable } from '../db/types.js';
import { loadContract } from '../http/contract.js';
import { etagOf, ifMatchVersions } from '../http/etag.js';
import { type CursorScope, decodeCursor, encodeCursor, InvalidCursorError } from './cursor.js';
import { createOnce, requestHash } from './idempotency.js';
import {
  decodeFeedCursor,
  encodeFeedCursor,
  type FeedCursor,
  type FeedPosition,
  InvalidFeedCursorError,
  isBefore,
  START,
} from '../changes/cursor.js';
import { instantOf, storedTags } from './input-forms.js';
import * as queries from './queries.js';

export type Task = queries.TaskRow;
export type TaskPriority = queries.TaskPriority;
export type TaskStats = queries.TaskStats;

/** A task as stored now, with its ETag. */
export interface TaskWithEtag {
  task: Task;
  etag: string;
}

/** A write's outcome: the task written, or why nothing was. */
export type WriteOutcome =
  | ({ kind: 'written' } & TaskWithEtag)
  | { kind: 'not_found'; taskId: number }
  | { kind: 'precondition_failed'; taskId: number; currentEtag: string };

export type DeleteOutcome = { kind: 'deleted' } | Exclude<WriteOutcome, { kind: 'written' }>;

export type CreateOutcome =
  | { kind: 'created'; task: Task; etag: string; location: string; replayed: boolean }
  | { kind: 'quota_exceeded'; max: number }
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
  | { kind: 'written'; tasks: Task[] }
  /** Ids that name no task of the user's; nothing was changed. */
  | { kind: 'not_found'; ids: number[] }
  /** The change would leave these tasks with more tags than a task may carry; nothing was changed. */
  | { kind: 'too_many_tags'; ids: number[]; max: number }
  /** Tags both added and removed. */
  | { kind: 'tags_conflict'; tags: string[] };

/** A change as the contract shows it. */
export type TaskChange = { op: 'upsert'; task: Task } | { op: 'delete'; id: number; deleted_at: string };

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

/** A create's fields as the contract's createTask body gives them, its defaults applied. */
export interface CreateInput {
  title: string;
  description?: string | null | undefined;
  completed: boolean;
  due_at?: string | null | undefined;
  priority?: TaskPriority | undefined;
  tags?: string[] | undefined;
  position?: number | undefined;
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
  dueAt: instantOf(input.due_at),
  priority: input.priority,
  tags: storedTags(input.tags),
  position: input.position,
});

export interface TaskServiceOptions {
  /** The most tasks one user keeps (TASKS_PER_USER_MAX). */
  tasksPerUser: number;
  /** How long tombstones and cursors are kept (CHANGES_RETENTION_SECONDS). */
  changesRetentionSeconds?: number | undefined;
  /** Told of every user whose tasks a write changed, once it is committed: live streams wake up. */
  changed?: ((userId: string) => void) | undefined;
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

/** Thrown inside a batch's transaction to undo it, carrying what the caller is told. */
class BatchRefused extends Error {
  constructor(readonly outcome: BatchUpdateOutcome) {
    super(outcome.kind);
  }
}

export type TaskService = ReturnType<typeof createTaskService>;

export function createTaskService(db: Database, { tasksPerUser, changesRetentionSeconds, changed }: TaskServiceOptions) {
  const retention = changesRetentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  /** Passes an outcome through, telling `changed` when it wrote something. */
  const told = <T extends { kind: string }>(userId: string, outcome: T): T => {
    if (changed && (outcome.kind === 'written' || outcome.kind === 'created' || outcome.kind === 'deleted')) changed(userId);
    return outcome;
  };

  /** Why a conditional write changed nothing: the task is missing (404) or If-Match was stale (412). */
  async function unwritten(
    userId: string,
    taskId: number,
    expected: queries.ExpectedVersions,
  ): Promise<Exclude<WriteOutcome, { kind: 'written' }>> {
    if (expected !== undefined) {
      const current = await queries.taskVersion(db, userId, taskId);
      if (current !== undefined) return { kind: 'precondition_failed', taskId, currentEtag: etagOf(current) };
    }
    return { kind: 'not_found', taskId };
  }

  async function written(
    userId: string,
    taskId: number,
    result: queries.VersionedTask | undefined,
    expected: queries.ExpectedVersions,
  ): Promise<WriteOutcome> {
    if (!result) return unwritten(userId, taskId, expected);
    return { kind: 'written', task: result.task, etag: etagOf(result.version) };
  }

  async function update(userId: string, taskId: number, changes: queries.TaskChanges, ifMatch: string | undefined): Promise<WriteOutcome> {
    const expected = ifMatchVersions(ifMatch);
    return told(userId, await written(userId, taskId, await queries.updateTask(db, userId, taskId, changes, expected), expected));
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
      const fields: queries.NewTask = {
        title: input.title.trim(),
        description: input.description ?? null,
        completed: input.completed,
        dueAt: instantOf(input.due_at) ?? null,
        priority: input.priority ?? 'none',
        tags: storedTags(input.tags) ?? [],
        position: input.position,
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
        if (outcome.kind !== 'replayed') changed?.(userId);
        return {
          kind: 'created',
          task: response.body as Task,
          etag: response.etag,
          location: response.location,
          replayed: outcome.kind === 'replayed',
        };
      } catch (err) {
        if (err === quotaExceeded) return { kind: 'quota_exceeded', max: tasksPerUser };
        throw err;
      }
    },

    replace(userId: string, taskId: number, input: ReplaceInput, ifMatch?: string): Promise<WriteOutcome> {
      return update(
        userId,
        taskId,
        { ...laterFields(input), title: input.title.trim(), description: input.description ?? null, completed: input.completed },
        ifMatch,
      );
    },

    update(userId: string, taskId: number, input: UpdateInput, ifMatch?: string): Promise<WriteOutcome> {
      return update(
        userId,
        taskId,
        { ...laterFields(input), title: input.title?.trim(), description: input.description, completed: input.completed },
        ifMatch,
      );
    },

    /** Sets completion, or flips it when `completed` is undefined; atomic, so concurrent toggles all count. */
    async setCompletion(userId: string, taskId: number, completed: boolean | undefined, ifMatch?: string): Promise<WriteOutcome> {
      const expected = ifMatchVersions(ifMatch);
      return told(userId, await written(userId, taskId, await queries.setCompletion(db, userId, taskId, completed, expected), expected));
    },

    async remove(userId: string, taskId: number, ifMatch?: string): Promise<DeleteOutcome> {
      const expected = ifMatchVersions(ifMatch);
      if (await queries.deleteTask(db, userId, taskId, expected)) return told(userId, { kind: 'deleted' as const });
      return unwritten(userId, taskId, expected);
    },

    /**
     * One change to several of the user's tasks, in one transaction: every task changes, or
     * (when an id is not the user's, or a task would get too many tags) none does.
     */
    async updateMany(userId: string, input: BatchUpdateInput): Promise<BatchUpdateOutcome> {
      const addTags = storedTags(input.add_tags);
      const removeTags = storedTags(input.remove_tags);
      const both = addTags?.filter((t) => removeTags?.includes(t)) ?? [];
      if (both.length) return { kind: 'tags_conflict', tags: both };
      const changes: queries.BatchChanges = {
        completed: input.completed,
        dueAt: instantOf(input.due_at),
        priority: input.priority,
        addTags,
        removeTags,
      };
      try {
        const written = await db.transaction(async (tx) => {
          const locked = await queries.lockForBatch(tx, userId, input.ids, changes);
          const found = new Set(locked.map((t) => t.id));
          const missing = input.ids.filter((id) => !found.has(id));
          if (missing.length) throw new BatchRefused({ kind: 'not_found', ids: missing });
          const crowded = locked.filter((t) => t.tags > TAGS_PER_TASK).map((t) => t.id);
          if (crowded.length) throw new BatchRefused({ kind: 'too_many_tags', ids: crowded, max: TAGS_PER_TASK });
          const rows = await queries.updateTasks(tx, userId, input.ids, changes);
          const byId = new Map(rows.map((row) => [row.task.id, row.task]));
          return input.ids.map((id) => byId.get(id)!);
        });
        return told(userId, { kind: 'written' as const, tasks: written });
      } catch (err) {
        if (err instanceof BatchRefused) return err.outcome;
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
      /** A live stream's own position, read on as it goes: only a purged tombstone can outdate it, never its age. */
      opts: { live?: boolean } = {},
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
      const page = await queries.feedPage(db, userId, position, from?.floorXid ?? NO_TOMBSTONES, limit);
      // A tombstone this reader needs (after its position, at or above its floor) may be purged.
      const floor = from?.floorXid ?? page.horizon;
      if (page.purged && !isBefore(page.purged, position) && BigInt(page.purged.xid) >= BigInt(floor)) {
        return { kind: 'cursor_expired', retentionSeconds: retention };
      }
      const issuedAt = Math.floor(Date.now() / 1000);
      const cursorAt = (at: FeedPosition) => encodeFeedCursor(userId, { position: at, floorXid: floor, issuedAt });
      const changes = page.changes.map((c) => ({
        change: (c.op === 'upsert' ? { op: 'upsert', task: c.task } : { op: 'delete', id: c.id, deleted_at: c.deletedAt }) as TaskChange,
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
