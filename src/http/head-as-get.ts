// HEAD is GET without a body (RFC 9110). The contract lists GET only, so HEAD requests are
// validated and routed as GET; Node already knows not to send a body for them.
import type { RequestHandler } from 'express';

export const headAsGet: RequestHandler = (req, res, next) => {
  if (req.method === 'HEAD') {
    req.method = 'GET';
    // For an answer that never ends by itself (the event stream), which must end after its head.
    res.locals.head = true;
  }
  next();
};
