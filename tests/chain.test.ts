// chain(): several middlewares run as one Express layer, with errors reaching Express as before.
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { chain } from '../src/http/chain.js';

function appWith(handler: RequestHandler) {
  const app = express();
  app.use(handler);
  app.get('/', (_req, res) => {
    res.json({ reached: 'route', steps: res.locals.steps ?? [] });
  });
  const onError: ErrorRequestHandler = (err: Error, _req, res, _next) => {
    res.status(500).json({ error: err.message, steps: res.locals.steps ?? [] });
  };
  app.use(onError);
  return app;
}

const step =
  (name: string): RequestHandler =>
  (_req, res, next) => {
    res.locals.steps = [...(res.locals.steps ?? []), name];
    next();
  };

describe('series', () => {
  it('runs every handler in order, then what follows it', async () => {
    const res = await request(appWith(chain(step('a'), step('b'), step('c')))).get('/');
    expect(res.body).toEqual({ reached: 'route', steps: ['a', 'b', 'c'] });
  });

  it('stops at an error passed to next, a thrown one, or a rejected promise', async () => {
    const viaNext: RequestHandler = (_req, _res, next) => next(new Error('passed'));
    const thrown: RequestHandler = () => {
      throw new Error('thrown');
    };
    const rejected: RequestHandler = async () => {
      throw new Error('rejected');
    };
    for (const [handler, message] of [
      [viaNext, 'passed'],
      [thrown, 'thrown'],
      [rejected, 'rejected'],
    ] as const) {
      const res = await request(appWith(chain(step('a'), handler, step('never')))).get('/');
      expect(res.status).toBe(500);
      expect(res.body).toEqual({ error: message, steps: ['a'] });
    }
  });

  it('lets a handler answer without calling next', async () => {
    const answer: RequestHandler = (_req, res) => {
      res.status(204).end();
    };
    const res = await request(appWith(chain(step('a'), answer, step('never')))).get('/');
    expect(res.status).toBe(204);
  });
});
