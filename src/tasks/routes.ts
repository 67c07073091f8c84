// The task operations: thin handlers that read validated input, call one query, and shape the
// response. The validator has already checked every input against the contract.
import { Router, type Request, type Response } from 'express';
import { isRejectedValue } from '../db/errors.js';
import type { Database, Queryable } from '../db/types.js';
import type { Body, Defaulted, Json, Query } from '../http/contract.js';
import { etagOf, ifMatchVersions, noneMatchHits } from '../http/etag.js';
import { problems } from '../http/problem.js';
import { sendJson } from '../http/send-json.js';
import { schemaSerializer } from '../http/serializer.js';
import type { SecurityLog } from '../http/security-log.js';
import { decodeCursor, encodeCursor, InvalidCursorError, type CursorScope } from './cursor.js';
import { createOnce, requestHash } from './idempotency.js';
import * as queries from './queries.js';

type TaskJson = Json<'getTask', 200>;

function taskId(req: Request): number {
  return Number(req.params.taskId);
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

/** A repeatable query parameter: absent, once (a string) or several times (an array). */
const many = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : ([] as string[]).concat(v));

/** The fields added in 1.1, as PUT and PATCH take them alike: absent ones are left as they are. */
function laterFields(body: Body<'updateTask'>): queries.TaskChanges {
  return { dueAt: body.due_at, priority: body.priority, tags: body.tags, position: body.position };
}

function isKnownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export function tasksRouter(db: Database, security: SecurityLog, limits: { tasksPerUser: number }): Router {
  // mergeParams: the user-scoped family mounts this router under /api/:userId/tasks.
  const router = Router({ mergeParams: true });
  const taskListJson = schemaSerializer<Json<'listTasks', 200>>('TaskList');
  // The contract's id is an integer, and the validator reads `0x43`, `+67`, `67.0` or `67e0` as
  // one; only the plain decimal form names a task, so each task has exactly one URL.
  router.param('taskId', (_req, _res, next, value: string) => {
    if (/^[1-9]\d{0,15}$/.test(value) && Number(value) <= Number.MAX_SAFE_INTEGER) return next();
    next(problems.validation([{ path: '/path/taskId', message: 'must be a task id: a whole number from 1, in plain decimal digits' }]));
  });

  // One route per path, in matching order: a request walks past each path once, not once per method.
  const collection = router.route('/');
  const stats = router.route('/stats');
  const task = router.route('/:taskId');
  const completion = router.route('/:taskId/complete');

  /** The 404 for a task the caller does not have; probes of other users' tasks are logged after the fact. */
  function notFound(req: Request, res: Response, id: number): never {
    queries.ownedByAnotherUser(db, res.locals.userId, id).then(
      (probe) => probe && security(req, { event: 'cross_user_access', taskId: id }),
      () => {},
    );
    throw problems.taskNotFound(id);
  }

  /** A write that changed nothing: the task is not the caller's (404), or If-Match was stale (412). */
  async function unwritten(req: Request, res: Response, id: number, expected: queries.ExpectedVersions): Promise<never> {
    if (expected !== undefined) {
      const current = await queries.taskVersion(db, res.locals.userId, id);
      if (current !== undefined) throw problems.preconditionFailed(id, etagOf(current), req.get('If-Match') ?? '');
    }
    return notFound(req, res, id);
  }

  /** Sends a task with its ETag, or the right refusal when the write found nothing to change. */
  async function sendWritten(
    req: Request,
    res: Response<TaskJson>,
    id: number,
    written: queries.VersionedTask | undefined,
    expected: queries.ExpectedVersions,
  ) {
    if (!written) return unwritten(req, res, id, expected);
    res.setHeader('ETag', etagOf(written.version));
    sendJson(res, 200, written.task);
  }

  collection.get(async (req: Request, res: Response<Json<'listTasks', 200>>) => {
    const q = req.query as unknown as Defaulted<Query<'listTasks'>, 'status' | 'sort' | 'limit'>;
    const { sort, limit } = q;
    const filters: queries.ListFilters = {
      status: q.status,
      priority: q.priority,
      tags: many(q.tag),
      dueBefore: q.due_before,
      dueAfter: q.due_after,
      overdue: q.overdue,
      q: q.q,
    };
    const scope: CursorScope = { sort, order: q.order ?? DEFAULT_ORDER[sort], filters };
    let after: queries.Position | undefined;
    if (q.cursor !== undefined) {
      try {
        after = decodeCursor(q.cursor, scope);
      } catch (err) {
        if (!(err instanceof InvalidCursorError)) throw err;
        throw problems.validation([{ path: '/query/cursor', message: err.message }], 'invalid_cursor');
      }
    }
    const page = await queries.listTasks(db, res.locals.userId, { ...filters, sort, order: scope.order, limit, after });
    if (page.next) {
      // The next page's URL repeats every filter as it was given, so following it needs nothing else.
      const next = new URLSearchParams({ status: filters.status, sort, order: scope.order, limit: String(limit) });
      if (filters.priority) next.set('priority', filters.priority);
      for (const tag of filters.tags ?? []) next.append('tag', tag);
      if (filters.dueBefore) next.set('due_before', filters.dueBefore);
      if (filters.dueAfter) next.set('due_after', filters.dueAfter);
      if (filters.overdue !== undefined) next.set('overdue', String(filters.overdue));
      if (filters.q !== undefined) next.set('q', filters.q);
      next.set('cursor', encodeCursor(scope, page.next));
      res.set('Link', `<${req.baseUrl}?${next.toString()}>; rel="next"`);
    }
    sendJson(res, 200, page.tasks, taskListJson);
  });

  collection.post(async (req: Request, res: Response<Json<'createTask', 201>>) => {
    const body = req.body as Defaulted<Body<'createTask'>, 'completed'>;
    const userId: string = res.locals.userId;
    const fields: queries.NewTask = {
      title: body.title.trim(),
      description: body.description ?? null,
      completed: body.completed,
      dueAt: body.due_at ?? null,
      priority: body.priority ?? 'none',
      tags: body.tags ?? [],
      position: body.position,
    };
    // Alone inside the idempotent create's transaction; otherwise beside the user's other creates.
    const create = async (tx?: Queryable) => {
      const created = tx
        ? await queries.createTaskAlone(tx, userId, fields, limits.tasksPerUser)
        : await queries.createTask(db, userId, fields, limits.tasksPerUser);
      // Thrown inside the idempotent create's transaction, so its key is not kept either.
      if (!created) throw problems.quotaExceeded(limits.tasksPerUser);
      const { task, version } = created;
      return { status: 201, etag: etagOf(version), location: `${req.baseUrl}/${task.id}`, body: task };
    };
    const key = req.get('Idempotency-Key');
    const outcome =
      key === undefined
        ? { kind: 'created' as const, response: await create() }
        : await createOnce(db, userId, key, requestHash(body), create);
    if (outcome.kind === 'conflict') throw problems.idempotencyKeyReused();
    const { response } = outcome;
    if (outcome.kind === 'replayed') res.set('Idempotent-Replayed', 'true');
    res.location(response.location).setHeader('ETag', response.etag);
    sendJson(res, response.status, response.body as TaskJson);
  });

  collection.delete(async (req: Request, res: Response<Json<'clearCompletedTasks', 200>>) => {
    // The contract admits status=completed only; nothing else reaches this line.
    const q = req.query as Query<'clearCompletedTasks'>;
    if (q.status !== 'completed') throw new Error('clearCompletedTasks without status=completed');
    res.json({ deleted: await queries.deleteCompleted(db, res.locals.userId) });
  });

  stats.get(async (req: Request, res: Response<Json<'getTaskStats', 200>>) => {
    const { tz } = req.query as Defaulted<Query<'getTaskStats'>, 'tz'>;
    const unknownZone = () =>
      problems.validation([{ path: '/query/tz', message: `is not a time zone this server knows (an IANA name such as Europe/Paris)` }]);
    if (!isKnownTimeZone(tz)) throw unknownZone();
    try {
      res.json(await queries.taskStats(db, res.locals.userId, tz));
    } catch (err) {
      // The database keeps its own time-zone list; one it lacks is still the caller's input.
      if (isRejectedValue(err)) throw unknownZone();
      throw err;
    }
  });

  task.get(async (req: Request, res: Response<TaskJson>) => {
    const id = taskId(req);
    const found = await queries.getTask(db, res.locals.userId, id);
    if (!found) return notFound(req, res, id);
    const etag = etagOf(found.version);
    res.setHeader('ETag', etag);
    if (noneMatchHits(req.get('If-None-Match'), found.version)) {
      res.status(304).end();
      return;
    }
    sendJson(res, 200, found.task);
  });

  /** PUT and PATCH alike: write the changes if If-Match allows, then answer with the task. */
  async function update(req: Request, res: Response<TaskJson>, changes: queries.TaskChanges) {
    const id = taskId(req);
    const expected = ifMatchVersions(req.get('If-Match'));
    await sendWritten(req, res, id, await queries.updateTask(db, res.locals.userId, id, changes, expected), expected);
  }

  task.put(async (req: Request, res: Response<Json<'replaceTask', 200>>) => {
    const body = req.body as Body<'replaceTask'>;
    // Replace: an absent description is cleared; absent `completed` and 1.1 fields keep theirs.
    await update(req, res, {
      ...laterFields(body),
      title: body.title.trim(),
      description: body.description ?? null,
      completed: body.completed,
    });
  });

  task.patch(async (req: Request, res: Response<Json<'updateTask', 200>>) => {
    const body = req.body as Body<'updateTask'>;
    await update(req, res, { ...laterFields(body), title: body.title?.trim(), description: body.description, completed: body.completed });
  });

  task.delete(async (req: Request, res: Response) => {
    const id = taskId(req);
    const expected = ifMatchVersions(req.get('If-Match'));
    if (!(await queries.deleteTask(db, res.locals.userId, id, expected))) await unwritten(req, res, id, expected);
    res.status(204).end();
  });

  completion.patch(async (req: Request, res: Response<Json<'toggleTaskCompletion', 200>>) => {
    const id = taskId(req);
    // No body at all, or a body without `completed`: toggle.
    const body = (req.body ?? {}) as NonNullable<Body<'toggleTaskCompletion'>>;
    const expected = ifMatchVersions(req.get('If-Match'));
    const written = await queries.setCompletion(db, res.locals.userId, id, body.completed, expected);
    await sendWritten(req, res, id, written, expected);
  });

  return router;
}
