// The one validation seam: every request (and, where configured, every JSON response) is checked
// against the bundled contract before a handler sees it. Its errors are rendered by error-handler.ts.
import type { RequestHandler } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { isMcpLookalike } from '../mcp/resource.js';
import { checkQueryParameters } from './query-parameters.js';
import { compileValidatorRoutesOnce } from './route-matchers.js';

export function createValidator(document: Record<string, unknown>, validateResponses: boolean): RequestHandler[] {
  compileValidatorRoutesOnce();
  const validator = OpenApiValidator.middleware({
    // The validator annotates the document it is given; hand it a private copy.
    apiSpec: structuredClone(document) as never,
    validateRequests: {
      // Refused all the same, but beside the request's other errors: its own check would throw at
      // the first unknown or empty parameter and hide the rest (query-parameters.ts reports them).
      allowUnknownQueryParameters: true,
      // Every rejected field at once, so a form can show them all (merged per field by error-handler.ts).
      allErrors: true,
      removeAdditional: false,
    },
    validateResponses: validateResponses ? { removeAdditional: false } : false,
    // Tokens are verified by src/auth; the validator would only check that the header exists.
    validateSecurity: false,
    validateFormats: true,
    ajvFormats: { mode: 'full' },
    ignoreUndocumented: false,
    $refParser: { mode: 'dereference' },
    // The validator matches paths as Express does by default (any case, a trailing slash or
    // not), but /mcp is matched exactly: its other spellings are no operation, only a 404.
    ignorePaths: (path: string) => isMcpLookalike(path),
  }) as unknown as RequestHandler[];
  return [...validator, checkQueryParameters];
}
