// Several middlewares as one router layer. Express's router spends more on each layer it walks
// (the path match, a params pass, a closure or two) than most of the app's app-wide middlewares
// cost themselves, and every request walks all of them: grouped, the walk is three layers instead
// of fifteen. Inside a group the router's own rules hold: an error (passed to next, thrown, or a
// rejected promise) leaves the group for the app's error handling, next('route') is a plain next
// for middleware, next('router') leaves the router.
import type { NextFunction, RequestHandler } from 'express';

export function composeMiddleware(handlers: readonly RequestHandler[]): RequestHandler {
  for (const handler of handlers) {
    // The router tells error handlers by their four parameters; in a group they would never run.
    if (handler.length > 3) throw new TypeError(`composeMiddleware: ${handler.name || 'a handler'} is an error handler`);
  }
  return (req, res, done) => {
    let i = 0;
    const next: NextFunction = (err?: unknown) => {
      if (err && err !== 'route') {
        done(err);
        return;
      }
      const handler = handlers[i++];
      if (!handler) {
        done();
        return;
      }
      try {
        const ret: unknown = handler(req, res, next);
        if (ret instanceof Promise) ret.catch((error: unknown) => done(error || new Error('Rejected promise')));
      } catch (error) {
        done(error);
      }
    };
    next();
  };
}
