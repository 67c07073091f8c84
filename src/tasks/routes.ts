// The task operations: thin handlers that read validated input, call one query, and shape the
// response. The validator has already checked every input against the contract.
import { Router, type Request, type Response } from 'express';
import type { Database } from '../db/types.js';
import type { Body, Json, Query } from '../http/contract.js';
import { problems } from '../http/problem.js';
import type { SecurityLog } from '../http/security-log.js';
import { decodeCursor, encodeCursor, InvalidCursorError, type CursorScope } from './cursor.js';
import * as queries from './queries.js';

type TaskJson = Json<'getTask', 200>;

function taskId(req: Request): number {
  return Number(req.params.taskId);
}

export function tasksRouter(db: Database, security: SecurityLog): Router {
  // mergeParams: the user-scoped family mounts this router under /api/:userId/tasks.
  const router = Router({ mergeParams: true });

  /** The 404 for a task the caller does not have; probes of other users' tasks are logged after the fact. */
  function notFound(req: Request, res: Response, id: number): never {
    queries.ownedByAnotherUser(db, res.locals.userId, id).then(
      (probe) => probe && security(req, { event: 'cross_user_access', taskId: id }),
      () => {},
    );
    throw problems.taskNotFound(id);
  }

  function found(req: Request, res: Response, task: queries.TaskRow | undefined, id: number): TaskJson {
    return task ?? notFound(req, res, id);
  }

  router.get('/', async (req: Request, res: Response<Json<'listTasks', 200>>) => {
    const q = req.query as Query<'listTasks'>;
    const scope: CursorScope = { status: q.status ?? 'all', sort: q.sort ?? 'created_at', order: q.order ?? 'desc' };
    const limit = q.limit ?? 100;
    let after: queries.Position | undefined;
    if (q.cursor !== undefined) {
      try {
        after = decodeCursor(q.cursor, scope);
      } catch (err) {
        if (!(err instanceof InvalidCursorError)) throw err;
        throw problems.validation([{ path: '/query/cursor', message: err.message }], 'invalid_cursor');
      }
    }
    const page = await queries.listTasks(db, res.locals.userId, { ...scope, limit, after });
    if (page.next) {
      const next = new URLSearchParams({ ...scope, limit: String(limit), cursor: encodeCursor(scope, page.next) });
      res.set('Link', `<${req.baseUrl}?${next.toString()}>; rel="next"`);
    }
    res.json(page.tasks);
  });

  router.post('/', async (req: Request, res: Response<Json<'createTask', 201>>) => {
    const body = req.body as Body<'createTask'>;
    const task = await queries.createTask(db, res.locals.userId, {
      title: body.title.trim(),
      description: body.description ?? null,
      completed: body.completed ?? false,
    });
    res.status(201).location(`${req.baseUrl}/${task.id}`).json(task);
  });

  router.get('/:taskId', async (req: Request, res: Response<TaskJson>) => {
    const id = taskId(req);
    res.json(found(req, res, await queries.getTask(db, res.locals.userId, id), id));
  });

  router.put('/:taskId', async (req: Request, res: Response<Json<'replaceTask', 200>>) => {
    const id = taskId(req);
    const body = req.body as Body<'replaceTask'>;
    const task = await queries.updateTask(db, res.locals.userId, id, {
      title: body.title.trim(),
      description: body.description ?? null,
      completed: body.completed,
    });
    res.json(found(req, res, task, id));
  });

  router.patch('/:taskId', async (req: Request, res: Response<Json<'updateTask', 200>>) => {
    const id = taskId(req);
    const body = req.body as Body<'updateTask'>;
    const task = await queries.updateTask(db, res.locals.userId, id, {
      title: body.title?.trim(),
      description: body.description,
      completed: body.completed,
    });
    res.json(found(req, res, task, id));
  });

  router.delete('/:taskId', async (req: Request, res: Response) => {
    const id = taskId(req);
    if (!(await queries.deleteTask(db, res.locals.userId, id))) notFound(req, res, id);
    res.status(204).end();
  });

  router.patch('/:taskId/complete', async (req: Request, res: Response<Json<'toggleTaskCompletion', 200>>) => {
    const id = taskId(req);
    // No body at all, or a body without `completed`: toggle.
    const body = (req.body ?? {}) as NonNullable<Body<'toggleTaskCompletion'>>;
    res.json(found(req, res, await queries.setCompletion(db, res.locals.userId, id, body.completed), id));
  });

  return router;
}
