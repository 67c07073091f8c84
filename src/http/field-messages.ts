// The validator's messages (ajv's, for programmers: `must match pattern "\S"`) rewritten for the
// people a form shows them to (`must not be blank`), one entry per field. Pattern messages come
// from the contract itself (`x-pattern-message` beside each `pattern`), so a field's rule and its
// explanation are written in one place; a field with several rules (a pattern of its own and more
// under `allOf`) has one explanation for each.

/** The part of a dereferenced OpenAPI operation this reads. */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  allOf?: Schema[];
  pattern?: string;
  'x-pattern-message'?: string;
}
interface Operation {
  parameters?: { in: string; name: string; schema?: Schema }[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}

const TYPE_WORDS: Record<string, string> = {
  integer: 'a whole number',
  number: 'a number',
  string: 'text',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  null: 'null',
};

const COMPARISON: Record<string, string> = { '>=': 'at least', '<=': 'at most', '>': 'greater than', '<': 'less than' };

const unescapeSegment = (s: string) => s.replace(/~1/g, '/').replace(/~0/g, '~');

/** The schema a request pointer (`/body/tags/0`, `/query/limit`, `/header/idempotency-key`) names. */
export function schemaAt(operation: Operation | undefined, pointer: string): Schema | undefined {
  const [, where, first, ...rest] = pointer.split('/').map(unescapeSegment);
  if (!operation || !where || first === undefined) return undefined;
  if (where !== 'body') {
    const location = where === 'header' ? 'header' : where;
    return operation.parameters?.find((p) => p.in === location && p.name.toLowerCase() === first.toLowerCase())?.schema;
  }
  let schema = operation.requestBody?.content?.['application/json']?.schema;
  for (const segment of [first, ...rest]) {
    if (!schema) return undefined;
    schema = /^\d+$/.test(segment) && schema.items ? schema.items : schema.properties?.[segment];
  }
  return schema;
}

const DATE_TIME_MESSAGE = 'must be an RFC 3339 date and time with an offset, such as 2026-11-28T17:00:00Z';
const DATE_MESSAGE = 'must be a date alone, such as 2026-11-28';

const TYPES = '(?:integer|number|string|boolean|array|object|null)';

/** ajv's messages and what a person reads instead, tried in order; `m` is the message's match. */
const MESSAGES: ReadonlyArray<readonly [RegExp, (m: RegExpExecArray, schema: Schema | undefined) => string]> = [
  [/^must have required property/, () => 'is required'],
  [/^must NOT have additional properties$/, () => 'is not a field of this request'],
  [/^must match pattern "(.*)"$/s, (m, schema) => patternMessage(schema, m[1]!) ?? 'is not in the expected form'],
  [/^must be equal to one of the allowed values: (.*)$/, (m) => `must be one of ${m[1]}`],
  [/^must NOT have fewer than (\d+) characters$/, (m) => (m[1] === '1' ? 'must not be empty' : `must be at least ${m[1]} characters long`)],
  [/^must NOT have more than (\d+) characters$/, (m) => `must be at most ${m[1]} characters long`],
  [/^must NOT have fewer than (\d+) items$/, (m) => `must have at least ${m[1]} item${m[1] === '1' ? '' : 's'}`],
  [/^must NOT have more than (\d+) items$/, (m) => `must have at most ${m[1]} items`],
  [/^must NOT have duplicate items/, () => 'must not list the same item twice'],
  [/^must be (>=|<=|>|<) (.+)$/, (m) => `must be ${COMPARISON[m[1]!]} ${m[2]}`],
  [/^must match format "date-time"$/, () => DATE_TIME_MESSAGE],
  [/^must match format "date"$/, () => DATE_MESSAGE],
  // anyOf's summary: its branches have said what each wanted (see mergeByField).
  [/^must match a schema in anyOf$/, () => ''],
  [/^must match format "(.+)"$/, (m) => `must be a valid ${m[1]}`],
  [
    new RegExp(`^must be (${TYPES}(?:(?:,| or )${TYPES})*)$`),
    (m) =>
      `must be ${m[1]!
        .split(/,| or /)
        .map((t) => TYPE_WORDS[t])
        .join(' or ')}`,
  ],
];

/**
 * The contract's explanation of the pattern a value failed: the one written beside that pattern,
 * in the field's schema or one of its `allOf` parts; or the field's own, when the pattern is not
 * named (the MCP argument checker passes only the explanation).
 */
function patternMessage(schema: Schema | undefined, pattern: string): string | undefined {
  if (!schema) return undefined;
  const parts = [schema, ...(schema.allOf ?? [])];
  return (
    parts.find((s) => s.pattern === pattern)?.['x-pattern-message'] ??
    (schema.pattern === undefined ? schema['x-pattern-message'] : undefined)
  );
}

/** One validator message in words a person reads. */
export function humanMessage(message: string, schema: Schema | undefined): string {
  for (const [pattern, say] of MESSAGES) {
    const m = pattern.exec(message);
    if (m) return say(m, schema);
  }
  return message;
}

/** Where a pointer is, for the problem's one-line detail: `title`, `tags[1]`, `limit (query)`. */
export function fieldLabel(pointer: string): string {
  const [, where, ...rest] = pointer.split('/').map(unescapeSegment);
  if (!where) return 'the request';
  if (where === 'body')
    return rest.length ? rest.map((s, i) => (/^\d+$/.test(s) && i > 0 ? `[${s}]` : i > 0 ? `.${s}` : s)).join('') : 'the body';
  const name = rest.join('/');
  return where === 'header' ? `the ${name} header` : `${name} (${where})`;
}

/** One entry per field, in the order they were found; "must not be empty" gives way to a more specific message. */
export function mergeByField(errors: { path: string; message: string }[]): { path: string; message: string }[] {
  const byPath = new Map<string, string[]>();
  for (const e of errors) {
    const list = byPath.get(e.path) ?? [];
    if (!list.includes(e.message)) list.push(e.message);
    byPath.set(e.path, list);
  }
  return [...byPath].map(([path, said]) => {
    let messages = said.filter(Boolean);
    // A field that takes a date-time or a date alone (anyOf) failed both: it takes either.
    if (messages.includes(DATE_TIME_MESSAGE) && messages.includes(DATE_MESSAGE)) {
      messages = [
        `${DATE_TIME_MESSAGE}, or ${DATE_MESSAGE.replace('must be ', '')}`,
        ...messages.filter((m) => m !== DATE_TIME_MESSAGE && m !== DATE_MESSAGE),
      ];
    }
    const kept = messages.length > 1 ? messages.filter((m) => m !== 'must not be empty') : messages;
    return { path, message: kept.join(' and ') || 'is not valid' };
  });
}
