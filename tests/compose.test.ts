// Middlewares grouped into one router layer behave as they did as layers of their own.
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { composeMiddleware } from '../src/http/compose.js';

/** An app with one group, a route that reports what ran, and an error handler that reports errors. */
function appWith(group: RequestHandler[]) {
  const app = express();
  const ran: string[] = [];
  app.use((_req, res, next) => {
    res.locals.ran = ran;
    next();
  });
  app.use(composeMiddleware(group));
  app.get('/', (_req, res) => {
    ran.push('route');
    res.json(ran);
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    ran.push(`error: ${(err as Error).message}`);
    res.status(500).json(ran);
  };
  app.use(onError);
  return app;
}

const step =
  (name: string): RequestHandler =>
  (_req, res, next) => {
    (res.locals.ran as string[]).push(name);
    next();
  };

describe('composeMiddleware', () => {
  it('runs every handler in order, then the next layer', async () => {
    const res = await request(appWith([step('a'), step('b'), step('c')])).get('/');
    expect(res.body).toEqual(['a', 'b', 'c', 'route']);
  });

  it('lets a handler end the response, running no later one', async () => {
    const ending: RequestHandler = (_req, res) => void res.status(204).end();
    const res = await request(appWith([step('a'), ending, step('never')])).get('/');
    expect(res.status).toBe(204);
  });

  it('hands an error passed to next, thrown, or rejected to the error handler, skipping the rest', async () => {
    const viaNext: RequestHandler = (_req, _res, next) => next(new Error('passed'));
    const thrown: RequestHandler = () => {
      throw new Error('thrown');
    };
    const rejected: RequestHandler = async () => {
      await Promise.resolve();
      throw new Error('rejected');
    };
    for (const [failing, message] of [
      [viaNext, 'passed'],
      [thrown, 'thrown'],
      [rejected, 'rejected'],
    ] as const) {
      const res = await request(appWith([step('a'), failing, step('never')])).get('/');
      expect(res.status).toBe(500);
      expect(res.body).toEqual(['a', `error: ${message}`]);
    }
  });

  it("treats next('route') as next, as the router does for middleware", async () => {
    const route: RequestHandler = (_req, _res, next) => next('route');
    const res = await request(appWith([route, step('b')])).get('/');
    expect(res.body).toEqual(['b', 'route']);
  });

  it('continues after a handler that calls next later', async () => {
    const later: RequestHandler = (_req, _res, next) => void setTimeout(next, 5);
    const res = await request(appWith([later, step('b')])).get('/');
    expect(res.body).toEqual(['b', 'route']);
  });

  it('refuses an error handler, which could never run inside a group', () => {
    const handler: ErrorRequestHandler = (_err, _req, _res, next) => next();
    expect(() => composeMiddleware([handler as unknown as RequestHandler])).toThrow(/error handler/);
  });
});
