// The user-in-the-path family (/api/{userId}/tasks…): the path must name the token's own user.
import type { RequestHandler } from 'express';
import { problems } from '../http/problem.js';
import type { SecurityLog } from '../http/security-log.js';

export function requireSameUser(security: SecurityLog): RequestHandler {
  return (req, res, next) => {
    if (req.params.userId === res.locals.userId) return next();
    security(req, { event: 'user_mismatch', pathUserId: String(req.params.userId) });
    next(problems.userMismatch());
  };
}
