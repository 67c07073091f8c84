// The list's compiled serializer (src/http/serializer.ts) against JSON.stringify: the same bytes for
// every page the contract admits, whatever the text in it, and a refusal for a task it does not;
// then through the real app as production runs it, where tests otherwise validate every response.
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schemaSerializer } from '../src/http/serializer.js';
import { PRIORITIES, type TaskRow } from '../src/tasks/queries.js';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';

// Any UTF-16 text, lone surrogates, control characters and U+2028 included: escaping is where a
// hand-written serializer and JSON.stringify would part.
const text = fc.string({ unit: 'binary', maxLength: 30 });
const instant = fc
  .date({ min: new Date('0001-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
  .map((d) => d.toISOString().replace('Z', '123Z'));
const task: fc.Arbitrary<TaskRow> = fc.record({
  id: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  title: text,
  description: fc.option(text, { nil: null }),
  completed: fc.boolean(),
  due_at: fc.option(instant, { nil: null }),
  priority: fc.constantFrom(...PRIORITIES),
  tags: fc.array(text, { maxLength: 4 }),
  position: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  recurrence: fc.option(
    fc.record({
      rule: text,
      time_zone: text,
      from: fc.constantFrom('due' as const, 'completion' as const),
      occurrence: fc.integer({ min: 1, max: 10_000 }),
    }),
    { nil: null },
  ),
  reminders: fc.array(fc.oneof(fc.record({ before_minutes: fc.integer({ min: 0, max: 40_320 }) }), fc.record({ at: instant })), {
    maxLength: 3,
  }),
  created_at: instant,
  updated_at: instant,
});

describe('the task list serializer', () => {
  const serialize = schemaSerializer<TaskRow[]>('TaskList');

  it('writes what JSON.stringify writes, byte for byte', () => {
    fc.assert(
      fc.property(fc.array(task, { maxLength: 20 }), (tasks) => {
        expect(serialize(tasks)).toBe(JSON.stringify(tasks));
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a task without a field the contract requires, rather than send it incomplete', () => {
    const [one] = fc.sample(task, 1) as [TaskRow];
    const { title: _, ...untitled } = one;
    expect(() => serialize([untitled as TaskRow])).toThrow(/title/);
  });
});

describe('a page of tasks as production sends it (no response validation)', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setupApp({ validateResponses: false });
  });
  afterAll(() => ctx?.close());

  it('is the tasks each GET of one task sends, byte for byte', async () => {
    const auth = await bearer(newUser());
    const titles = ['plain', 'quote " and backslash \\', 'tab\tnew line\n', 'emoji 😀, U+2028 \u2028 inside', 'é ß ж'];
    for (const [i, title] of titles.entries()) {
      await request(ctx.app)
        .post('/api/tasks')
        .set('Authorization', auth)
        .send({
          title,
          tags: i % 2 ? ['home', 'x_y-1'] : [],
          description: i % 3 ? null : `about ${title}`,
          due_at: '2030-01-02T03:04:05.678901Z',
        })
        .expect(201);
    }
    const page = await request(ctx.app).get('/api/tasks').set('Authorization', auth).expect(200);
    const tasks = JSON.parse(page.text) as TaskRow[];
    expect(tasks.map((t) => t.title).sort()).toEqual(titles.map((t) => t.trim()).sort());
    const one = await Promise.all(tasks.map((t) => request(ctx.app).get(`/api/tasks/${t.id}`).set('Authorization', auth).expect(200)));
    expect(page.text).toBe(`[${one.map((r) => r.text).join(',')}]`);
  });
});
