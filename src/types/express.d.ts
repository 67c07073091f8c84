import type { TokenFailure } from '../auth/verify-token.js';

declare global {
  namespace Express {
    interface Locals {
      /** The token's `sub`, set by authenticate(). */
      userId: string;
      requestId: string;
      authFailure?: TokenFailure;
    }
  }
}

export {};
