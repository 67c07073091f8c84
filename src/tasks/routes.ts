// The task operations over HTTP: each handler reads the validated request, calls the task service
// (src/tasks/service.ts, where the rules are) and turns its outcome into a response or a problem.
// The validator has already checked every input against the contract.
import { Router, type Request, type Response } from 'express';
import type { Body, Defaulted, Json, Query } from '../http/contract.js';
import { noneMatchHits } from '../http/etag.js';
import { problems } from '../http/problem.js';
import { sendJson } from '../http/send-json.js';
import { schemaSerializer } from '../http/serializer.js';
import type { SecurityLog } from '../http/security-log.js';
import type { TaskService, WriteOptions, WriteOutcome } from './service.js';
import { isTaskIdText } from './task-id.js';

type TaskJson = Json<'getTask', 200>;

function taskId(req: Request): number {
  return Number(req.params.taskId);
}

/** A write's preconditions and retry key, as the request's headers give them. */
const writeOptions = (req: Request): WriteOptions => ({ ifMatch: req.get('If-Match'), idempotencyKey: req.get('Idempotency-Key') });

/** A repeatable query parameter: absent, once (a string) or several times (an array). */
const many = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : ([] as string[]).concat(v));

export function tasksRouter(service: TaskService, security: SecurityLog): Router {
  // mergeParams: the user-scoped family mounts this router under /api/:userId/tasks.
  const router = Router({ mergeParams: true });
  const taskListJson = schemaSerializer<Json<'listTasks', 200>>('TaskList');
  // The contract's id is an integer, and the validator reads `0x43`, `+67`, `67.0` or `67e0` as
  // one; only the plain decimal form names a task, so each task has exactly one URL.
  router.param('taskId', (_req, _res, next, value: string) => {
    if (isTaskIdText(value)) return next();
    next(problems.validation([{ path: '/path/taskId', message: 'must be a task id: a whole number from 1, in plain decimal digits' }]));
  });

  // One route per path, in matching order: a request walks past each path once, not once per method.
  const collection = router.route('/');
  const stats = router.route('/stats');
  const tags = router.route('/tags');
  const batchDelete = router.route('/batch-delete');
  const changes = router.route('/changes');
  const task = router.route('/:taskId');
  const completion = router.route('/:taskId/complete');

  /** The 404 for a task the caller does not have; probes of other users' tasks are logged after the fact. */
  function notFound(req: Request, res: Response, id: number): never {
    service.ownedByAnotherUser(res.locals.userId, id).then(
      (probe) => probe && security(req, { event: 'cross_user_access', taskId: id }),
      () => {},
    );
    throw problems.taskNotFound(id);
  }

  /** Logs, after the fact, the ids of a batch that are other users' tasks; the answer never says. */
  function probed(req: Request, res: Response, ids: number[]): void {
    service.ownedByOthers(res.locals.userId, ids).then(
      (theirs) => {
        for (const id of theirs) security(req, { event: 'cross_user_access', taskId: id });
      },
      () => {},
    );
  }

  /** Sends a written task with its ETag, or the problem that says why nothing was written. */
  function sendWritten(req: Request, res: Response<TaskJson>, outcome: WriteOutcome): void {
    if (outcome.kind === 'not_found') notFound(req, res, outcome.taskId);
    if (outcome.kind === 'precondition_failed') {
      throw problems.preconditionFailed(outcome.taskId, outcome.currentEtag, req.get('If-Match') ?? '');
    }
    if (outcome.kind === 'invalid') throw problems.validation(outcome.errors);
    if (outcome.kind === 'key_reused') throw problems.idempotencyKeyReused();
    if (outcome.replayed) res.set('Idempotent-Replayed', 'true');
    res.setHeader('ETag', outcome.etag);
    sendJson(res, 200, outcome.task);
  }

  collection.get(async (req: Request, res: Response<Json<'listTasks', 200>>) => {
    const q = req.query as unknown as Defaulted<Query<'listTasks'>, 'status' | 'sort' | 'limit'>;
    const { sort, limit } = q;
    const tagged = many(q.tag);
    const outcome = await service.list(res.locals.userId, {
      status: q.status,
      priority: q.priority,
      tags: tagged,
      dueBefore: q.due_before,
      dueAfter: q.due_after,
      overdue: q.overdue,
      q: q.q,
      match: q.match,
      sort,
      order: q.order,
      limit,
      cursor: q.cursor,
    });
    if (outcome.kind === 'invalid_cursor') {
      throw problems.validation([{ path: '/query/cursor', message: outcome.message }], 'invalid_cursor');
    }
    if (outcome.nextCursor) {
      // The next page's URL repeats every filter as it was given, so following it needs nothing else.
      const next = new URLSearchParams({ status: q.status, sort, order: outcome.order, limit: String(limit) });
      if (q.priority) next.set('priority', q.priority);
      for (const tag of tagged ?? []) next.append('tag', tag);
      if (q.due_before) next.set('due_before', q.due_before);
      if (q.due_after) next.set('due_after', q.due_after);
      if (q.overdue !== undefined) next.set('overdue', String(q.overdue));
      if (q.q !== undefined) next.set('q', q.q);
      if (q.match !== undefined) next.set('match', q.match);
      next.set('cursor', outcome.nextCursor);
      res.set('Link', `<${req.baseUrl}?${next.toString()}>; rel="next"`);
    }
    sendJson(res, 200, outcome.tasks, taskListJson);
  });

  collection.post(async (req: Request, res: Response<Json<'createTask', 201>>) => {
    const body = req.body as Defaulted<Body<'createTask'>, 'completed'>;
    const outcome = await service.create(res.locals.userId, body, {
      idempotencyKey: req.get('Idempotency-Key'),
      locationOf: (id) => `${req.baseUrl}/${id}`,
    });
    if (outcome.kind === 'quota_exceeded') throw problems.quotaExceeded(outcome.max);
    if (outcome.kind === 'key_reused') throw problems.idempotencyKeyReused();
    if (outcome.kind === 'invalid') throw problems.validation(outcome.errors);
    if (outcome.replayed) res.set('Idempotent-Replayed', 'true');
    res.location(outcome.location).setHeader('ETag', outcome.etag);
    sendJson(res, 201, outcome.task);
  });

  collection.delete(async (req: Request, res: Response<Json<'clearCompletedTasks', 200>>) => {
    // The contract admits status=completed only; nothing else reaches this line.
    const q = req.query as Query<'clearCompletedTasks'>;
    if (q.status !== 'completed') throw new Error('clearCompletedTasks without status=completed');
    res.json({ deleted: await service.clearCompleted(res.locals.userId) });
  });

  collection.patch(async (req: Request, res: Response<Json<'updateTasks', 200>>) => {
    const outcome = await service.updateMany(res.locals.userId, req.body as Body<'updateTasks'>, {
      idempotencyKey: req.get('Idempotency-Key'),
    });
    switch (outcome.kind) {
      case 'written':
        if (outcome.replayed) res.set('Idempotent-Replayed', 'true');
        res.json({ tasks: outcome.tasks });
        return;
      case 'invalid':
        throw problems.validation(outcome.errors);
      case 'key_reused':
        throw problems.idempotencyKeyReused();
      case 'not_found':
        probed(req, res, outcome.ids);
        throw problems.tasksNotFound(outcome.ids, (req.body as Body<'updateTasks'>).ids);
      case 'too_many_tags':
        throw problems.tooManyTags(outcome.ids, outcome.max);
      case 'tags_conflict':
        throw problems.tagsAddedAndRemoved(outcome.tags);
    }
  });

  batchDelete.post(async (req: Request, res: Response<Json<'deleteTasks', 200>>) => {
    const { deleted, notFound } = await service.removeMany(res.locals.userId, (req.body as Body<'deleteTasks'>).ids);
    probed(req, res, notFound);
    res.json({ deleted, not_found: notFound });
  });

  changes.get(async (req: Request, res: Response<Json<'listTaskChanges', 200>>) => {
    const q = req.query as unknown as Defaulted<Query<'listTaskChanges'>, 'limit'>;
    const outcome = await service.changes(res.locals.userId, q.cursor, q.limit, { reminders: q.reminders });
    if (outcome.kind === 'invalid_cursor') {
      throw problems.validation([{ path: '/query/cursor', message: outcome.message }], 'invalid_cursor');
    }
    if (outcome.kind === 'cursor_expired') throw problems.cursorExpired(outcome.retentionSeconds);
    res.json({ changes: outcome.changes.map((c) => c.change), cursor: outcome.cursor, has_more: outcome.hasMore });
  });

  tags.get(async (_req: Request, res: Response<Json<'listTags', 200>>) => {
    res.json({ tags: await service.tags(res.locals.userId) });
  });

  stats.get(async (req: Request, res: Response<Json<'getTaskStats', 200>>) => {
    const { tz } = req.query as Defaulted<Query<'getTaskStats'>, 'tz'>;
    const outcome = await service.stats(res.locals.userId, tz);
    if (outcome.kind === 'unknown_time_zone') {
      throw problems.validation([
        { path: '/query/tz', message: 'is not a time zone this server knows (an IANA name such as Europe/Paris)' },
      ]);
    }
    res.json(outcome.stats);
  });

  task.get(async (req: Request, res: Response<TaskJson>) => {
    const outcome = await service.get(res.locals.userId, taskId(req));
    if (outcome.kind === 'not_found') return notFound(req, res, outcome.taskId);
    res.setHeader('ETag', outcome.etag);
    if (noneMatchHits(req.get('If-None-Match'), outcome.version)) {
      res.status(304).end();
      return;
    }
    sendJson(res, 200, outcome.task);
  });

  task.put(async (req: Request, res: Response<Json<'replaceTask', 200>>) => {
    sendWritten(req, res, await service.replace(res.locals.userId, taskId(req), req.body as Body<'replaceTask'>, writeOptions(req)));
  });

  task.patch(async (req: Request, res: Response<Json<'updateTask', 200>>) => {
    sendWritten(req, res, await service.update(res.locals.userId, taskId(req), req.body as Body<'updateTask'>, writeOptions(req)));
  });

  task.delete(async (req: Request, res: Response) => {
    const outcome = await service.remove(res.locals.userId, taskId(req), req.get('If-Match'));
    if (outcome.kind !== 'deleted') sendWritten(req, res, outcome as WriteOutcome);
    res.status(204).end();
  });

  completion.patch(async (req: Request, res: Response<Json<'toggleTaskCompletion', 200>>) => {
    // No body at all, or a body without `completed`: toggle.
    const body = (req.body ?? {}) as NonNullable<Body<'toggleTaskCompletion'>>;
    sendWritten(req, res, await service.setCompletion(res.locals.userId, taskId(req), body.completed, writeOptions(req)));
  });

  return router;
}
