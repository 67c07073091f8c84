// RFC 9457 problem details: the one shape every error of this API takes.
import type { Response } from 'express';
import type { components } from '../../generated/openapi.js';
import { fieldLabel } from './field-messages.js';

export type ProblemBody = components['schemas']['Problem'];
export type FieldError = components['schemas']['FieldError'];
/** The contract's closed list of codes: a problem with any other code does not compile. */
export type ProblemCode = ProblemBody['code'];

export interface ProblemInit {
  status: number;
  code: ProblemCode;
  title: string;
  detail: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
}

/** Thrown (or passed to next) anywhere; the error handler renders it. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: ProblemCode;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[] | undefined;
  readonly headers: Record<string, string>;

  constructor(init: ProblemInit) {
    super(init.detail);
    this.name = 'HttpProblem';
    this.status = init.status;
    this.code = init.code;
    this.title = init.title;
    this.detail = init.detail;
    this.errors = init.errors;
    this.headers = init.headers ?? {};
  }
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The problem document, as a response body or an event's data. */
export function problemBody(problem: HttpProblem, requestId: string | undefined): ProblemBody {
  const body: ProblemBody = {
    type: `/problems/${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
  };
  if (requestId) body.instance = requestId;
  if (problem.errors) body.errors = problem.errors;
  return body;
}

export function sendProblem(res: Response, problem: HttpProblem): void {
  const body = problemBody(problem, res.locals.requestId as string | undefined);
  res.status(problem.status).set(problem.headers).type(PROBLEM_CONTENT_TYPE).json(body);
}

/** 30 days, 2 hours, 90 seconds. */
function describeDuration(seconds: number): string {
  for (const [unit, size] of [
    ['day', 86_400],
    ['hour', 3600],
    ['minute', 60],
  ] as const) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size} ${unit}${seconds === size ? '' : 's'}`;
  }
  return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

// The one catalogue of problems: every problem the API sends is built here.
export const problems = {
  notFound: (detail: string) => new HttpProblem({ status: 404, code: 'not_found', title: 'Not found', detail }),
  methodNotAllowed: (method: string, path: string, allow: string) =>
    new HttpProblem({
      status: 405,
      code: 'method_not_allowed',
      title: 'Method not allowed',
      detail: `${method} is not allowed on ${path}; use ${allow}.`,
      headers: { Allow: allow },
    }),
  invalidJson: (detail = 'The request body is not valid JSON.') =>
    new HttpProblem({ status: 400, code: 'invalid_json', title: 'Malformed JSON', detail }),
  unauthorized: (code: 'token_missing' | 'token_invalid' | 'token_expired', detail: string, challenge: string) =>
    new HttpProblem({ status: 401, code, title: 'Unauthorized', detail, headers: { 'WWW-Authenticate': challenge } }),
  rateLimited: (detail: string, retryAfterSec?: number) =>
    new HttpProblem({
      status: 429,
      code: 'rate_limited',
      title: 'Too many requests',
      detail,
      ...(retryAfterSec === undefined ? {} : { headers: { 'Retry-After': String(retryAfterSec) } }),
    }),
  taskNotFound: (id: number) =>
    new HttpProblem({
      status: 404,
      code: 'task_not_found',
      title: 'Task not found',
      detail: `No task with id ${id} exists for this user.`,
    }),
  webhookNotFound: (id: string) =>
    new HttpProblem({
      status: 404,
      code: 'webhook_not_found',
      title: 'Webhook endpoint not found',
      detail: `No webhook endpoint with id ${id} exists for this user.`,
    }),
  webhookMessageNotFound: (id: string, messageId: string) =>
    new HttpProblem({
      status: 404,
      code: 'webhook_message_not_found',
      title: 'Webhook message not found',
      detail: `This user has no webhook endpoint ${id} with a message ${messageId} (delivered and given-up messages are kept for a while, then forgotten).`,
    }),
  webhookLimitReached: (max: number) =>
    new HttpProblem({
      status: 409,
      code: 'webhook_limit_reached',
      title: 'Webhook endpoint limit reached',
      detail: `This user already has ${max} webhook endpoint${max === 1 ? '' : 's'}, the most this server keeps for one user. Delete one to register another.`,
    }),
  /** Some ids of a batch name no task of the user's (`given`: the batch's ids, to point at each). */
  tasksNotFound: (missing: number[], given: number[]) =>
    new HttpProblem({
      status: 404,
      code: 'task_not_found',
      title: 'Task not found',
      detail: `No task with ${missing.length === 1 ? 'id' : 'ids'} ${missing.join(', ')} exists for this user; nothing was changed.`,
      errors: missing.map((id) => ({ path: `/body/ids/${given.indexOf(id)}`, message: 'names no task of this user' })),
    }),
  userMismatch: () =>
    new HttpProblem({
      status: 403,
      code: 'user_mismatch',
      title: 'Forbidden',
      detail: 'The user id in the path is not the authenticated user.',
    }),
  validation: (errors: FieldError[], code: 'validation_failed' | 'invalid_cursor' = 'validation_failed') =>
    new HttpProblem({
      status: 422,
      code,
      title: 'Validation failed',
      detail: `The request is invalid: ${errors.map((e) => `${fieldLabel(e.path)} ${e.message}`).join('; ')}.`,
      errors,
    }),
  tooManyTags: (ids: number[], max: number) =>
    problems.validation([
      { path: '/body/add_tags', message: `would give task${ids.length === 1 ? '' : 's'} ${ids.join(', ')} more than ${max} tags` },
    ]),
  tagsAddedAndRemoved: (tags: string[]) =>
    problems.validation([{ path: '/body/remove_tags', message: `cannot remove what add_tags adds (${tags.join(', ')})` }]),
  unknownTimeZone: () =>
    problems.validation([{ path: '/query/tz', message: 'is not a time zone this server knows (an IANA name such as Europe/Paris)' }]),
  preconditionFailed: (id: number, current: string, sent: string) =>
    new HttpProblem({
      status: 412,
      code: 'precondition_failed',
      title: 'Precondition failed',
      detail: `Task ${id} has changed since you read it: its ETag is now ${current}, not ${sent.slice(0, 100)}. Nothing was written.`,
    }),
  idempotencyKeyReused: () =>
    new HttpProblem({
      status: 422,
      code: 'idempotency_key_reused',
      title: 'Validation failed',
      detail: 'This Idempotency-Key was already used with a different request. Use a new key for a new change.',
      errors: [{ path: '/header/idempotency-key', message: 'was already used with a different request' }],
    }),
  unavailable: (code: 'database_unavailable' | 'auth_unavailable' | 'server_busy', detail: string, retryAfterSec = 5) =>
    new HttpProblem({
      status: 503,
      code,
      title: 'Service unavailable',
      detail,
      headers: { 'Retry-After': String(retryAfterSec) },
    }),
  cursorExpired: (retentionSeconds: number) =>
    new HttpProblem({
      status: 410,
      code: 'cursor_expired',
      title: 'Cursor expired',
      detail: `This cursor is older than the ${describeDuration(retentionSeconds)} of changes this server keeps. Start a full sync (no cursor).`,
    }),
  payloadTooLarge: (limit?: number) =>
    new HttpProblem({
      status: 413,
      code: 'payload_too_large',
      title: 'Payload too large',
      detail: `The request body is larger than the ${limit ? `${Math.floor(limit / 1024)} KiB ` : ''}limit.`,
    }),
  unsupportedMediaType: (detail = 'Send the body as application/json (UTF-8).') =>
    new HttpProblem({ status: 415, code: 'unsupported_media_type', title: 'Unsupported media type', detail }),
  quotaExceeded: (max: number) =>
    new HttpProblem({
      status: 409,
      code: 'quota_exceeded',
      title: 'Task quota exceeded',
      detail: `This user already has ${max} tasks, the most this server keeps for one user. Delete some (or clear completed ones) to create more.`,
    }),
  internal: () =>
    new HttpProblem({
      status: 500,
      code: 'internal_error',
      title: 'Internal server error',
      detail: 'Something went wrong on our side. Quote the instance id if you report it.',
    }),
};
