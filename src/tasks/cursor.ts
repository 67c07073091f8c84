// Opaque list cursors. A cursor names the position after the last task of a page and the query it
// belongs to, so it cannot silently be replayed against another order or filter.
import type { Position, SortOrder, TaskSort, TaskStatus } from './queries.js';

export interface CursorScope {
  status: TaskStatus;
  sort: TaskSort;
  order: SortOrder;
}

interface CursorPayload {
  v: 1;
  st: TaskStatus;
  s: TaskSort;
  o: SortOrder;
  k: string;
  id: number;
}

export function encodeCursor(scope: CursorScope, position: Position): string {
  const payload: CursorPayload = { v: 1, st: scope.status, s: scope.sort, o: scope.order, k: position.key, id: position.id };
  return Buffer.from(JSON.stringify(payload)).toString('base64url');
}

export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

export function decodeCursor(cursor: string, scope: CursorScope): Position {
  let payload: Partial<CursorPayload>;
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Partial<CursorPayload>;
  } catch {
    throw new InvalidCursorError('The cursor is not one this API issued.');
  }
  if (
    payload === null ||
    typeof payload !== 'object' ||
    payload.v !== 1 ||
    typeof payload.k !== 'string' ||
    !Number.isSafeInteger(payload.id) ||
    (payload.id as number) < 1
  ) {
    throw new InvalidCursorError('The cursor is not one this API issued.');
  }
  if (payload.st !== scope.status || payload.s !== scope.sort || payload.o !== scope.order) {
    throw new InvalidCursorError(
      'The cursor belongs to another query: keep status, sort and order as they were on the first page.',
    );
  }
  if (scope.sort === 'title' ? !isTitleKey(payload.k) : !isTimestampKey(payload.k)) {
    throw new InvalidCursorError('The cursor is not one this API issued.');
  }
  return { key: payload.k, id: payload.id as number };
}

// Keys go to the database as parameters; refusing what it would reject keeps a forged cursor a 422.
function isTitleKey(key: string): boolean {
  return key.length <= 4000 && !key.includes('\u0000');
}

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;

function isTimestampKey(key: string): boolean {
  const m = TIMESTAMP.exec(key);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return (
    y >= 1 &&
    date.getUTCFullYear() === y &&
    date.getUTCMonth() === mo - 1 &&
    date.getUTCDate() === d &&
    date.getUTCHours() === h &&
    date.getUTCMinutes() === mi &&
    date.getUTCSeconds() === s
  );
}
