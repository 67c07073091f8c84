import type { Logger } from 'pino';

declare global {
  namespace Express {
    interface Request {
      /** The request id (X-Request-Id), set by requestLogger(). */
      id: string;
      /** A logger whose lines carry the request id. */
      log: Logger;
    }
    interface Locals {
      /** The token's `sub`, set by authenticate(). */
      userId: string;
      requestId: string;
      /** The template a router is mounted at, e.g. /api/:userId/tasks. */
      mount?: string;
    }
  }
}
