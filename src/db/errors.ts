// Classifies database errors for the HTTP layer, the same way for node-postgres and PGlite: by
// SQLSTATE, by Node's network error codes, and by the error classes this module defines; by message
// only for node-postgres's own failures, which carry no code.

/** The database could not be reached; carries the cause's code (ECONNREFUSED, 28P01, ...). */
export class DatabaseConnectError extends Error {
  override name = 'DatabaseConnectError';
  readonly code: string | undefined;
  constructor(message: string, cause: unknown) {
    super(message, { cause });
    this.code = codeOf(cause);
  }
}

/** Every pooled connection stayed busy for as long as a statement may run: answered like a timeout. */
export class DatabaseBusyError extends Error {
  override name = 'DatabaseBusyError';
  constructor(timeoutMs: number) {
    super(`no database connection was free within the statement timeout (${timeoutMs} ms)`);
  }
}

/** The embedded database's thread is gone (closed, or crashed): every call fails with this. */
export class DatabaseClosedError extends Error {
  override name = 'DatabaseClosedError';
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH']);
// SQLSTATEs: 57P01-03 shutdown / cannot connect now, 53300 too many connections, 57014 statement
// timeout (or cancelled), 55P03 lock not available (lock_timeout), 40P01 deadlock and 40001
// serialization failure (the transaction was rolled back: sending it again may succeed).
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '57014', '55P03', '40P01', '40001']);

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

const isSqlState = (code: string | undefined): code is string => code !== undefined && /^[0-9A-Z]{5}$/.test(code);

/** An error the database server sent (it has a SQLSTATE): the connection itself is fine. */
export function isServerError(err: unknown): boolean {
  return isSqlState(codeOf(err)) && !(err instanceof DatabaseConnectError);
}

/** The database could not be reached or could not answer in time: worth retrying. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err instanceof DatabaseConnectError || err instanceof DatabaseClosedError || err instanceof DatabaseBusyError) return true;
  const code = codeOf(err);
  if (code && (UNREACHABLE_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith('08'))) return true;
  // node-postgres's own failures carry no code: a connection that ended, or its client-side guard.
  return (
    !isSqlState(code) &&
    /^(Connection terminated|Query read timeout|timeout exceeded when trying to connect|Client has encountered a connection error|.*not queryable)/.test(
      err.message,
    )
  );
}

/** The database refused a value (data exception, check violation): bad input, not a server fault. */
export function isRejectedValue(err: unknown): boolean {
  const code = codeOf(err);
  return isSqlState(code) && (code.startsWith('22') || code === '23514');
}

/** A named statement the server connection does not have, or has already (a transaction pooler). */
export function isPreparedStatementLost(err: unknown): boolean {
  const code = codeOf(err);
  return code === '42P05' || code === '26000';
}
