// Several middlewares as one: Express dispatches each of its layers through its router (path
// matching, URL rewriting for mounts, a promise check), which is a measurable share of a request
// that passes a dozen of them. Errors and promise rejections go to Express as they would have.
import type { NextFunction, Request, RequestHandler, Response } from 'express';

export function chain(...handlers: RequestHandler[]): RequestHandler {
  return (req: Request, res: Response, done: NextFunction) => {
    let i = 0;
    const next = (err?: unknown) => {
      // 'route' and 'router' are Express's own ways out of a chain: let it handle them.
      if (err !== undefined && err !== null) return done(err);
      const handler = handlers[i++];
      if (!handler) return done();
      try {
        const returned: unknown = handler(req, res, next);
        if (returned instanceof Promise) returned.catch((rejected: unknown) => done(rejected ?? new Error('Rejected promise')));
      } catch (thrown) {
        next(thrown);
      }
    };
    next();
  };
}
