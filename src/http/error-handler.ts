// The one error seam: whatever went wrong — our own problems, the validator's errors, the body
// parser's, the database's — leaves as an RFC 9457 problem. Unexpected errors are logged with the
// request id and answered with a generic 500; no stack trace or internal message reaches a client.
import type { ErrorRequestHandler, Request, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { isDatabaseUnavailable, isRejectedValue } from '../db/errors.js';
import { humanMessage, mergeByField, schemaAt } from './field-messages.js';
import { HttpProblem, problems, sendProblem, type FieldError } from './problem.js';
import { requestQueryErrors } from './query-parameters.js';

interface ValidatorError extends Error {
  status: number;
  path?: string;
  headers?: Record<string, string>;
  errors: { path?: string; message: string }[];
}

interface BodyParserError extends Error {
  type: string;
  status?: number;
  limit?: number;
}

function isValidatorError(err: unknown): err is ValidatorError {
  const e = err as Partial<ValidatorError> | null;
  return err instanceof Error && typeof e?.status === 'number' && Array.isArray(e.errors);
}

function isBodyParserError(err: unknown): err is BodyParserError {
  return err instanceof Error && typeof (err as Partial<BodyParserError>).type === 'string' && 'expose' in err;
}

/**
 * A stream error body-parser passes on as a 400 without a `type`: zlib or brotli failing to inflate
 * a body under its Content-Encoding.
 */
function isUndecodableBody(err: unknown): boolean {
  const e = err as { status?: unknown; expose?: unknown; errno?: unknown } | null;
  return err instanceof Error && e?.status === 400 && e.expose === true && typeof e.errno === 'number';
}

/**
 * Each rejected field once, in words for people (field-messages.ts), with the query parameters the
 * operation does not have or that were sent empty (query-parameters.ts). An empty parameter is
 * only that: what the validator made of it (an empty limit read as 0, "must be at least 1") goes.
 */
function fieldErrors(err: ValidatorError, operation: OperationLike, queryErrors: FieldError[]): FieldError[] {
  const said = new Set(queryErrors.map((e) => e.path));
  return mergeByField(
    [
      ...queryErrors,
      ...err.errors.map((e) => {
        // An empty JSON body: the validator says the request lacks a "body" property.
        if (/required property 'body'/.test(e.message)) return { path: '/body', message: 'a JSON body is required' };
        // A URL that does not decode (`%ED%A0%80`, `%ZZ`) is named by the validator with its raw path.
        if (/malformed uri/i.test(e.message)) return { path: '', message: 'has a URL whose %-escapes are not valid UTF-8' };
        const path = pointer(e.path);
        return { path, message: humanMessage(e.message, schemaAt(operation, path)) };
      }),
    ].filter((e, i) => i < queryErrors.length || !said.has(e.path)),
  );
}

// The validator names locations "/body/title", "/params/taskId", "/headers/content-type";
// the contract promises JSON Pointers under /body, /path, /query and /header.
function pointer(path: string | undefined): string {
  const p = `/${(path ?? '').replace(/^[./]+/, '')}`;
  return p.replace(/^\/params(?=\/|$)/, '/path').replace(/^\/headers(?=\/|$)/, '/header');
}

type OperationLike = Parameters<typeof schemaAt>[0];

function fromValidator(err: ValidatorError, req: Request, operation: OperationLike): HttpProblem | undefined {
  const { method, path } = req;
  switch (err.status) {
    case 400:
      return problems.validation(fieldErrors(err, operation, requestQueryErrors(req)));
    case 404:
      return problems.notFound(`No resource at ${path}.`);
    case 405:
      return problems.methodNotAllowed(method, path, err.headers?.Allow ?? '');
    case 413:
      return problems.payloadTooLarge();
    case 415:
      return problems.unsupportedMediaType();
    default:
      return undefined;
  }
}

function fromBodyParser(err: BodyParserError): HttpProblem {
  switch (err.type) {
    case 'entity.too.large':
      return problems.payloadTooLarge(err.limit);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return problems.unsupportedMediaType();
    default:
      // entity.parse.failed, request.aborted, request.size.invalid, ...
      return problems.invalidJson();
  }
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(problems.notFound(`No resource at ${req.path}.`));
};

/**
 * A thrown problem, or a failure while serving (the database's, or a bug), as the problem the
 * caller gets; REST and the MCP tools alike. Failures are logged; their text never reaches the caller.
 */
export function problemOfFailure(err: unknown, log: Pick<Logger, 'warn' | 'error'> | undefined): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (isDatabaseUnavailable(err)) {
    log?.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'database unavailable');
    return problems.unavailable('database_unavailable', 'The database is not reachable right now. Try again shortly.');
  }
  if (isRejectedValue(err)) {
    // Every value is checked before it reaches the database (the contract, storable-input.ts), so
    // this is a gap in those checks: which part of the request held the value is not known here.
    log?.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'the database refused a value');
    return problems.validation([{ path: '', message: 'contains a value the database cannot store' }]);
  }
  // Includes response-validation failures: a contract bug worth an error log, not a client's fault.
  log?.error({ err }, 'unhandled error');
  return problems.internal();
}

export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, next) => {
  if (res.headersSent) {
    // Too late for a problem document; let Express close the connection.
    next(err);
    return;
  }
  let problem: HttpProblem | undefined;
  // A problem first: it has a status and a type, as a body parser's error has.
  if (err instanceof HttpProblem) problem = err;
  else if (isBodyParserError(err)) problem = fromBodyParser(err);
  else if (isUndecodableBody(err)) {
    problem = problems.invalidJson('The request body could not be decoded with the Content-Encoding it was sent with.');
  } else if (isValidatorError(err)) problem = fromValidator(err, req, (req as { openapi?: { schema?: OperationLike } }).openapi?.schema);
  problem ??= problemOfFailure(err, req.log);
  try {
    sendProblem(res, problem);
  } catch (failure) {
    // Rendering the problem failed (a header Node refuses, say): never fall through to Express's
    // own HTML error page, which shows a stack trace outside production.
    req.log?.error({ err: failure }, 'could not send a problem; sent a plain 500 instead');
    sendLastResort(res);
  }
};

/** A fixed 500 problem with fixed headers: nothing in it can fail to render. */
function sendLastResort(res: Parameters<ErrorRequestHandler>[2]): void {
  if (res.headersSent) return void res.end();
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  const body = JSON.stringify({
    type: '/problems/internal_error',
    title: 'Internal server error',
    status: 500,
    detail: 'Something went wrong on our side.',
    code: 'internal_error',
  });
  res.writeHead(500, {
    'Content-Type': 'application/problem+json',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}
