declare global {
  namespace Express {
    interface Locals {
      /** The token's `sub`, set by authenticate(). */
      userId: string;
      requestId: string;
      /** The template a router is mounted at, e.g. /api/:userId/tasks. */
      mount?: string;
    }
  }
}

export {};
