// The forgiving input forms the contract accepts beside the canonical ones, turned into the one
// form the task is stored and compared in: a date alone is the start of that day in UTC (as Google
// Tasks stores due dates), a tag is its lower-case self, once, and a reminder's instant is written
// in UTC to the microsecond, as every instant the database returns.
import { Temporal } from 'temporal-polyfill';

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/** An instant as the contract takes it (RFC 3339 date-time, or a date alone) in date-time form. */
export function instantOf(value: string): string;
export function instantOf(value: string | undefined): string | undefined;
export function instantOf(value: string | null | undefined): string | null | undefined;
export function instantOf(value: string | null | undefined): string | null | undefined {
  return typeof value === 'string' && DATE_ONLY.test(value) ? `${value}T00:00:00Z` : value;
}

/** Tags as stored: lower case, each once, where it first appears (`Home`, `home` → `home`). */
export function storedTags(tags: string[]): string[];
export function storedTags(tags: string[] | undefined): string[] | undefined;
export function storedTags(tags: string[] | undefined): string[] | undefined {
  return tags && [...new Set(tags.map((t) => t.toLowerCase()))];
}

/**
 * An RFC 3339 date-time with any offset, in UTC rounded to the microsecond, as PostgreSQL keeps it
 * (so what the rules compute from is what is stored). Digits past the ninth, which RFC 3339 allows
 * and Temporal does not read, are dropped first.
 */
export function utcMicros(value: string): string {
  return Temporal.Instant.from(value.replace(/(\.\d{9})\d+/, '$1'))
    .round({ smallestUnit: 'microsecond', roundingMode: 'halfExpand' })
    .toString({ smallestUnit: 'microsecond' });
}

/** A due date or instant as the contract takes it (a date alone included), as it is stored; null and absent kept. */
export function storedInstant(value: string): string;
export function storedInstant(value: string | undefined): string | undefined;
export function storedInstant(value: string | null | undefined): string | null | undefined;
export function storedInstant(value: string | null | undefined): string | null | undefined {
  return typeof value === 'string' ? utcMicros(instantOf(value)) : value;
}
