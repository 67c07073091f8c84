// Opaque list cursors. A cursor names the position after the last task of a page and the query it
// belongs to, so it cannot silently be replayed against another order or other filters.
import { createHash } from 'node:crypto';
import type { ListFilters, Position, SortOrder, TaskSort } from './queries.js';

export interface CursorScope {
  sort: TaskSort;
  order: SortOrder;
  filters: ListFilters;
}

interface CursorPayload {
  v: 2;
  s: TaskSort;
  o: SortOrder;
  /** A digest of the filters. */
  f: string;
  k: string;
  id: number;
}

/** A digest of the filters, independent of the order they were given in. */
function filtersDigest(f: ListFilters): string {
  const canonical = [
    f.status,
    f.priority ?? null,
    f.tags ? [...f.tags].sort() : null,
    f.dueBefore ?? null,
    f.dueAfter ?? null,
    f.overdue ?? null,
    f.q ?? null,
    // Added with match=any; absent for the default, so cursors issued before it stay valid.
    ...(f.q !== undefined && f.match === 'any' ? ['any'] : []),
  ];
  return createHash('sha256').update(JSON.stringify(canonical)).digest('base64url').slice(0, 16);
}

export function encodeCursor(scope: CursorScope, position: Position): string {
  const payload: CursorPayload = { v: 2, s: scope.sort, o: scope.order, f: filtersDigest(scope.filters), k: position.key, id: position.id };
  return Buffer.from(JSON.stringify(payload)).toString('base64url');
}

export class InvalidCursorError extends Error {
  override name = 'InvalidCursorError';
}

// Said of the cursor field, as every field error is: `cursor (query) is not a cursor this API issued`.
const NOT_OURS = 'is not a cursor this API issued';

export function decodeCursor(cursor: string, scope: CursorScope): Position {
  let payload: Record<string, unknown>;
  try {
    payload = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new InvalidCursorError(NOT_OURS);
  }
  if (
    payload === null ||
    typeof payload !== 'object' ||
    typeof payload.k !== 'string' ||
    !Number.isSafeInteger(payload.id) ||
    (payload.id as number) < 1
  ) {
    throw new InvalidCursorError(NOT_OURS);
  }
  let sameQuery: boolean;
  if (payload.v === 2) {
    sameQuery = payload.s === scope.sort && payload.o === scope.order && payload.f === filtersDigest(scope.filters);
  } else if (payload.v === 1) {
    // Issued by 1.0, which filtered by status alone; still honoured for the same query.
    const f = scope.filters;
    const onlyStatus =
      f.priority === undefined &&
      !f.tags?.length &&
      f.dueBefore === undefined &&
      f.dueAfter === undefined &&
      f.overdue === undefined &&
      f.q === undefined;
    sameQuery = onlyStatus && payload.st === f.status && payload.s === scope.sort && payload.o === scope.order;
  } else {
    throw new InvalidCursorError(NOT_OURS);
  }
  if (!sameQuery) {
    throw new InvalidCursorError('belongs to another query: keep the filters, sort and order as they were on the first page');
  }
  if (!KEY_CHECKS[scope.sort](payload.k)) throw new InvalidCursorError(NOT_OURS);
  return { key: payload.k, id: payload.id as number };
}

// Keys go to the database as parameters; refusing what it would reject keeps a forged cursor a 422.
const isTitleKey = (key: string) => key.length <= 4000 && !key.includes('\u0000');
const isPriorityKey = (key: string) => /^[0-3]$/.test(key);
const isPositionKey = (key: string) => /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(key) && Math.abs(Number(key)) <= 1e15;

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;

function isTimestampKey(key: string): boolean {
  const m = TIMESTAMP.exec(key);
  if (!m) return false;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  // Not Date.UTC: it reads years 0–99 as 1900–1999, and due dates may lie in years 0001–0099.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s);
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

const KEY_CHECKS: Record<TaskSort, (key: string) => boolean> = {
  created_at: isTimestampKey,
  updated_at: isTimestampKey,
  title: isTitleKey,
  due_at: (key) => key === 'infinity' || isTimestampKey(key),
  priority: isPriorityKey,
  position: isPositionKey,
};
