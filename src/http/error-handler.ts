// The one error seam: whatever went wrong — our own problems, the validator's errors, the body
// parser's, the database's — leaves as an RFC 9457 problem. Unexpected errors are logged with the
// request id and answered with a generic 500; no stack trace or internal message reaches a client.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { isDatabaseUnavailable, isRejectedValue } from '../db/errors.js';
import { HttpProblem, problems, sendProblem, type FieldError } from './problem.js';

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

function fieldErrors(err: ValidatorError): FieldError[] {
  return err.errors.map((e) =>
    // An empty JSON body: the validator says the request lacks a "body" property.
    /required property 'body'/.test(e.message)
      ? { path: '/body', message: 'a JSON body is required' }
      : { path: pointer(e.path), message: e.message },
  );
}

// The validator names locations "/body/title", "/params/taskId", "/headers/content-type";
// the contract promises JSON Pointers under /body, /path, /query and /header.
function pointer(path: string | undefined): string {
  const p = `/${(path ?? '').replace(/^[./]+/, '')}`;
  return p.replace(/^\/params(?=\/|$)/, '/path').replace(/^\/headers(?=\/|$)/, '/header');
}

function fromValidator(err: ValidatorError, method: string, path: string): HttpProblem | undefined {
  switch (err.status) {
    case 400:
      return problems.validation(fieldErrors(err));
    case 404:
      return new HttpProblem({ status: 404, code: 'not_found', title: 'Not found', detail: `No resource at ${path}.` });
    case 405: {
      const allow = err.headers?.Allow ?? '';
      return new HttpProblem({
        status: 405,
        code: 'method_not_allowed',
        title: 'Method not allowed',
        detail: `${method} is not allowed on ${path}; use ${allow}.`,
        headers: { Allow: allow },
      });
    }
    case 413:
      return payloadTooLarge();
    case 415:
      return unsupportedMediaType();
    default:
      return undefined;
  }
}

const payloadTooLarge = (limit?: number) =>
  new HttpProblem({
    status: 413,
    code: 'payload_too_large',
    title: 'Payload too large',
    detail: `The request body is larger than the ${limit ? `${Math.floor(limit / 1024)} KiB ` : ''}limit.`,
  });

const unsupportedMediaType = () =>
  new HttpProblem({
    status: 415,
    code: 'unsupported_media_type',
    title: 'Unsupported media type',
    detail: 'Send the body as application/json (UTF-8).',
  });

function fromBodyParser(err: BodyParserError): HttpProblem {
  switch (err.type) {
    case 'entity.too.large':
      return payloadTooLarge(err.limit);
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return unsupportedMediaType();
    default:
      // entity.parse.failed, request.aborted, request.size.invalid, ...
      return new HttpProblem({
        status: 400,
        code: 'invalid_json',
        title: 'Malformed JSON',
        detail: 'The request body is not valid JSON.',
      });
  }
}

export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new HttpProblem({ status: 404, code: 'not_found', title: 'Not found', detail: `No resource at ${req.path}.` }));
};

export const errorHandler: ErrorRequestHandler = (err: unknown, req, res, next) => {
  if (res.headersSent) {
    // Too late for a problem document; let Express close the connection.
    next(err);
    return;
  }
  let problem: HttpProblem | undefined;
  if (err instanceof HttpProblem) problem = err;
  else if (isBodyParserError(err)) problem = fromBodyParser(err);
  else if (isUndecodableBody(err)) {
    problem = new HttpProblem({
      status: 400,
      code: 'invalid_json',
      title: 'Malformed JSON',
      detail: 'The request body could not be decoded with the Content-Encoding it was sent with.',
    });
  }
  else if (isValidatorError(err)) problem = fromValidator(err, req.method, req.path);
  else if (isDatabaseUnavailable(err)) {
    req.log?.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'database unavailable');
    problem = problems.unavailable('database_unavailable', 'The database is not reachable right now. Try again shortly.');
  } else if (isRejectedValue(err)) {
    problem = problems.validation([{ path: '/body', message: 'contains a value the database cannot store' }]);
  }

  if (!problem) {
    // Includes response-validation failures: a contract bug worth an error log, not a client's fault.
    req.log?.error({ err }, 'unhandled error');
    problem = problems.internal();
  }
  sendProblem(res, problem);
};
