// Query parameters the operation does not have, and empty values, found beside the contract's
// other checks rather than before them. express-openapi-validator's own check stops at the first
// such parameter with a message of its own ("Unknown query parameter 'x'") and hides every other
// error of the request, so the validator is told to let them through (createValidator) and they
// are reported here instead, in the same words as other fields, together with the rest: by the
// middleware below when they are the only problem, by the error handler beside the validator's.
import type { RequestHandler } from 'express';
import type { FieldError } from './problem.js';
import { problems } from './problem.js';

/** The part of a dereferenced OpenAPI operation this reads. */
interface Operation {
  parameters?: { in: string; name: string; allowEmptyValue?: boolean }[];
  responses?: Record<string, unknown>;
}

export const UNKNOWN_PARAMETER = 'is not a parameter of this request';
export const EMPTY_PARAMETER = 'must not be empty';

const known = new WeakMap<Operation, Map<string, boolean>>();

/** The operation's query parameters, each with whether it may be empty; worked out once per operation. */
function queryParameters(operation: Operation): Map<string, boolean> {
  let names = known.get(operation);
  if (!names) {
    names = new Map((operation.parameters ?? []).filter((p) => p.in === 'query').map((p) => [p.name, p.allowEmptyValue === true]));
    known.set(operation, names);
  }
  return names;
}

const pointer = (name: string) => `/query/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;

/** Each query parameter the operation does not have, and each sent empty that may not be, in the order sent. */
export function queryParameterErrors(query: Record<string, unknown>, operation: Operation | undefined): FieldError[] {
  // An operation that answers no 422 (/health, /openapi.json, /problems/{code}…) ignores what it
  // does not read, a cache-buster say: it has no documented way to refuse it.
  if (!operation?.responses?.['422']) return [];
  const errors: FieldError[] = [];
  let parameters: Map<string, boolean> | undefined;
  for (const name in query) {
    parameters ??= queryParameters(operation);
    const mayBeEmpty = parameters.get(name);
    if (mayBeEmpty === undefined) errors.push({ path: pointer(name), message: UNKNOWN_PARAMETER });
    else if (!mayBeEmpty && query[name] === '') errors.push({ path: pointer(name), message: EMPTY_PARAMETER });
  }
  return errors;
}

type WithOperation = { openapi?: { schema?: Operation } };

/** The query errors of a request the validator matched to an operation. */
export function requestQueryErrors(req: Parameters<RequestHandler>[0]): FieldError[] {
  const operation = (req as WithOperation).openapi?.schema;
  return operation && req.url.includes('?') ? queryParameterErrors(req.query as Record<string, unknown>, operation) : [];
}

/** After the validator, which passed everything else: refuses a request whose query has such parameters. */
export const checkQueryParameters: RequestHandler = (req, _res, next) => {
  const errors = requestQueryErrors(req);
  next(errors.length ? problems.validation(errors) : undefined);
};
