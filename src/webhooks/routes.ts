// The webhook operations over HTTP: each handler reads the validated request, calls the webhook
// service (the rules) and turns its outcome into a response or a problem.
import { Router, type Request, type Response } from 'express';
import type { Body, Defaulted, Json, Query } from '../http/contract.js';
import { problems } from '../http/problem.js';
import { sendJson } from '../http/send-json.js';
import { isTaskIdText } from '../tasks/task-id.js';
import type { WebhookService } from './service.js';

/** A path parameter the route declares (so it is there, and one string). */
const param = (req: Request, name: string) => String(req.params[name]);

export function webhooksRouter(service: WebhookService): Router {
  // mergeParams: the user-scoped family mounts this router under /api/:userId/webhooks.
  const router = Router({ mergeParams: true });
  // Like a task's id: only the plain decimal form names an endpoint.
  router.param('webhookId', (_req, _res, next, value: string) => {
    if (isTaskIdText(value)) return next();
    next(
      problems.validation([{ path: '/path/webhookId', message: 'must be a webhook id: a whole number from 1, in plain decimal digits' }]),
    );
  });
  // Every answer here names an endpoint's URL (which may carry a token of the receiver's in its
  // path) or a secret: no cache keeps any of them.
  router.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  const user = (res: Response) => res.locals.userId as string;
  const refused = (message: string) => problems.validation([{ path: '/body/url', message }]);

  router
    .route('/')
    .get(async (_req: Request, res: Response<Json<'listWebhooks', 200>>) => {
      sendJson(res, 200, await service.list(user(res)));
    })
    .post(async (req: Request, res: Response<Json<'createWebhook', 201>>) => {
      const outcome = await service.create(user(res), req.body as Body<'createWebhook'>);
      if (outcome.kind === 'refused') throw refused(outcome.message);
      if (outcome.kind === 'limit') throw problems.webhookLimitReached(outcome.max);
      res.location(`${req.baseUrl}/${outcome.endpoint.id}`);
      sendJson(res, 201, { ...outcome.endpoint, secret: outcome.secret });
    });

  router
    .route('/:webhookId')
    .get(async (req: Request, res: Response<Json<'getWebhook', 200>>) => {
      const id = param(req, 'webhookId');
      const endpoint = await service.get(user(res), id);
      if (!endpoint) throw problems.webhookNotFound(id);
      sendJson(res, 200, endpoint);
    })
    .patch(async (req: Request, res: Response<Json<'updateWebhook', 200>>) => {
      const id = param(req, 'webhookId');
      const outcome = await service.update(user(res), id, req.body as Body<'updateWebhook'>);
      if (outcome.kind === 'refused') throw refused(outcome.message);
      if (outcome.kind === 'not_found') throw problems.webhookNotFound(id);
      sendJson(res, 200, outcome.endpoint);
    })
    .delete(async (req: Request, res: Response) => {
      const id = param(req, 'webhookId');
      if (!(await service.remove(user(res), id))) throw problems.webhookNotFound(id);
      res.status(204).end();
    });

  router.post('/:webhookId/rotate-secret', async (req: Request, res: Response<Json<'rotateWebhookSecret', 200>>) => {
    const id = param(req, 'webhookId');
    const rotated = await service.rotateSecret(user(res), id);
    if (!rotated) throw problems.webhookNotFound(id);
    sendJson(res, 200, rotated);
  });

  router.get('/:webhookId/attempts', async (req: Request, res: Response<Json<'listWebhookAttempts', 200>>) => {
    const id = param(req, 'webhookId');
    const { limit } = req.query as unknown as Defaulted<Query<'listWebhookAttempts'>, 'limit'>;
    const attempts = await service.attempts(user(res), id, limit);
    if (!attempts) throw problems.webhookNotFound(id);
    sendJson(res, 200, attempts);
  });

  router.post('/:webhookId/messages/:messageId/redeliver', async (req: Request, res: Response<Json<'redeliverWebhookMessage', 202>>) => {
    const id = param(req, 'webhookId');
    const messageId = param(req, 'messageId');
    const queued = await service.redeliver(user(res), id, messageId);
    if (!queued) throw problems.webhookMessageNotFound(id, messageId);
    sendJson(res, 202, queued);
  });

  return router;
}
