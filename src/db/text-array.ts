// text[] columns (a task's tags) as node-postgres reads them, with a fast path for what PostgreSQL
// writes for plain words: `{}` or `{a,b}`. PostgreSQL quotes an element that is empty, is NULL's
// spelling, or holds a brace, comma, quote, backslash or white space, so text without a quote or
// backslash splits exactly at its commas. Anything else, and NULL elements, goes to pg's own parser.
// pg's parser builds a tokenizer per value: on a page of 50 tasks it was 8 % of the list's heap
// allocations, most of them for `{}`.
import pg from 'pg';

export const TEXT_ARRAY_OID = 1009;

const generic = pg.types.getTypeParser(TEXT_ARRAY_OID as never, 'text') as (value: string) => (string | null)[];
const EMPTY = '{}';

export function parseTextArray(value: string): (string | null)[] {
  if (value === EMPTY) return [];
  if (value.includes('"') || value.includes('\\') || value[0] !== '{') return generic(value);
  const elements = value.slice(1, -1).split(',');
  return elements.includes('NULL') ? generic(value) : elements;
}

/** pg's type parsers with parseTextArray for text[], for a pool's `types` option. */
export const pgTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === TEXT_ARRAY_OID && format !== 'binary'
      ? parseTextArray
      : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};
