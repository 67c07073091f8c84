// The validator's messages (ajv's, for programmers: `must match pattern "^\s*[^\s\u0000]…"`)
// rewritten for the people a form shows them to (`must not be blank or contain NUL characters`),
// one entry per field. Pattern messages come from the contract itself (`x-pattern-message` beside
// each `pattern`), so a field's rule and its explanation are written in one place.

/** The part of a dereferenced OpenAPI operation this reads. */
interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
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

/** One validator message in words a person reads. */
export function humanMessage(message: string, schema: Schema | undefined): string {
  let m: RegExpExecArray | null;
  if (/^must have required property/.test(message)) return 'is required';
  if (message === 'must NOT have additional properties') return 'is not a field of this request';
  if (/^must match pattern/.test(message)) return schema?.['x-pattern-message'] ?? 'is not in the expected form';
  if ((m = /^must be equal to one of the allowed values: (.*)$/.exec(message))) return `must be one of ${m[1]}`;
  if ((m = /^must NOT have fewer than (\d+) characters$/.exec(message))) return m[1] === '1' ? 'must not be empty' : `must be at least ${m[1]} characters long`;
  if ((m = /^must NOT have more than (\d+) characters$/.exec(message))) return `must be at most ${m[1]} characters long`;
  if ((m = /^must NOT have fewer than (\d+) items$/.exec(message))) return `must have at least ${m[1]} item${m[1] === '1' ? '' : 's'}`;
  if ((m = /^must NOT have more than (\d+) items$/.exec(message))) return `must have at most ${m[1]} items`;
  if (/^must NOT have duplicate items/.test(message)) return 'must not list the same item twice';
  if ((m = /^must be (>=|<=|>|<) (.+)$/.exec(message))) return `must be ${COMPARISON[m[1]!]} ${m[2]}`;
  if (message === 'must match format "date-time"') return 'must be an RFC 3339 date and time with an offset, such as 2026-11-28T17:00:00Z';
  if ((m = /^must match format "(.+)"$/.exec(message))) return `must be a valid ${m[1]}`;
  const types = '(?:integer|number|string|boolean|array|object|null)';
  if ((m = new RegExp(`^must be (${types}(?:(?:,| or )${types})*)$`).exec(message))) {
    return `must be ${m[1]!.split(/,| or /).map((t) => TYPE_WORDS[t]).join(' or ')}`;
  }
  return message;
}

/** Where a pointer is, for the problem's one-line detail: `title`, `tags[1]`, `limit (query)`. */
export function fieldLabel(pointer: string): string {
  const [, where, ...rest] = pointer.split('/').map(unescapeSegment);
  if (!where) return 'the request';
  if (where === 'body') return rest.length ? rest.map((s, i) => (/^\d+$/.test(s) && i > 0 ? `[${s}]` : i > 0 ? `.${s}` : s)).join('') : 'the body';
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
  return [...byPath].map(([path, messages]) => {
    const kept = messages.length > 1 ? messages.filter((m) => m !== 'must not be empty') : messages;
    return { path, message: kept.join(' and ') };
  });
}
