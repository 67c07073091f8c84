// What the contract's schemas cannot say about input and the database would otherwise decide on its
// own: every string is well-formed Unicode (PostgreSQL turns an unpaired surrogate into U+FFFD, so
// "\ud800x" and "\udc00x" would become the same stored text), and every instant lies within the
// years 0001–9999 in UTC, which RFC 3339 can write and the contract promises to return. Runs after
// the validator, on input that already has the contract's shape; every offending value is named.
import type { RequestHandler } from 'express';
import { LONE_SURROGATE } from '../auth/verify-token.js';
import { problems, type FieldError } from './problem.js';

/** The instants a task may carry: RFC 3339's four-digit years, in UTC. */
const MIN_MS = new Date('0001-01-01T00:00:00Z').getTime();
const MAX_MS = new Date('9999-12-31T23:59:59.999Z').getTime();
export const INSTANT_FIELDS = { body: ['due_at'], query: ['due_before', 'due_after'] } as const;

export const UNICODE_MESSAGE = 'must be well-formed Unicode text (it contains an unpaired surrogate)';
export const INSTANT_MESSAGE = 'must be an instant from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z (in UTC)';

export const LEAP_SECOND_MESSAGE = 'must not be a leap second (:60), which this API does not keep; use :59 or the next minute';

/** What is wrong with an RFC 3339 date-time the validator accepted, or undefined when it can be stored. */
export function instantProblem(value: string): string | undefined {
  if (/T\d{2}:\d{2}:60/.test(value)) return LEAP_SECOND_MESSAGE;
  return isStorableInstant(value) ? undefined : INSTANT_MESSAGE;
}

/** Whether an RFC 3339 date-time the validator accepted falls within the storable years. */
export function isStorableInstant(value: string): boolean {
  // Microseconds are beyond a JavaScript Date; the whole millisecond is what decides the range.
  const ms = Date.parse(value.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isFinite(ms) && ms >= MIN_MS && ms <= MAX_MS;
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Every string in a JSON value (keys too) with an unpaired surrogate, as JSON Pointers below `at`. */
export function malformedStrings(value: unknown, at: string, out: FieldError[]): void {
  if (typeof value === 'string') {
    if (LONE_SURROGATE.test(value)) out.push({ path: at, message: UNICODE_MESSAGE });
  } else if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) malformedStrings(v, `${at}/${i}`, out);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (LONE_SURROGATE.test(k)) out.push({ path: `${at}/${escapePointer(k)}`, message: UNICODE_MESSAGE });
      malformedStrings(v, `${at}/${escapePointer(k)}`, out);
    }
  }
}

export const storableInput: RequestHandler = (req, _res, next) => {
  const errors: FieldError[] = [];
  malformedStrings(req.body, '/body', errors);
  malformedStrings(req.query, '/query', errors);
  for (const name of ['idempotency-key', 'if-match', 'if-none-match']) malformedStrings(req.headers[name], `/header/${name}`, errors);
  const body = req.body as Record<string, unknown> | undefined;
  for (const field of INSTANT_FIELDS.body) {
    const v = body && typeof body === 'object' ? body[field] : undefined;
    const problem = typeof v === 'string' ? instantProblem(v) : undefined;
    if (problem) errors.push({ path: `/body/${field}`, message: problem });
  }
  for (const field of INSTANT_FIELDS.query) {
    const v = req.query[field];
    const problem = typeof v === 'string' ? instantProblem(v) : undefined;
    if (problem) errors.push({ path: `/query/${field}`, message: problem });
  }
  next(errors.length ? problems.validation(errors) : undefined);
};
