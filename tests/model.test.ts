// Model-based test: random sequences of every task operation by three users against the real app,
// checked step by step against a small in-memory model of what the contract promises (ownership,
// trimming, toggles, partial updates, deletes, filters, search, sorts, keyset pages, counts,
// clearing, ETags and If-Match / If-None-Match, idempotent creates). Every response is
// also checked against the contract with an ajv of our own. Reads and writes also go through the
// MCP tools (src/mcp), interleaved with REST, against the same model. Runs a fixed seed and a random one.
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import fc from 'fast-check';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildApp, newUser, type TestContext } from './helpers/app.js';
import { checkResponse, operationById } from './helpers/contract.js';
import { walkPages } from './helpers/pages.js';
import { createTestDatabase, dbKind, type TestDatabase } from './helpers/db.js';

type App = TestContext['app'];

type Priority = 'none' | 'low' | 'medium' | 'high';
const PRIORITIES: Priority[] = ['none', 'low', 'medium', 'high'];

interface ModelTask {
  id: number;
  owner: number;
  title: string;
  description: string | null;
  completed: boolean;
  due_at: string | null;
  priority: Priority;
  tags: string[];
  position: number;
  /** Bumped by every real change: the ETag. */
  version: number;
  /** As the server last reported them; the model predicts when they may move. */
  created_at: string;
  updated_at: string;
}

interface Model {
  tasks: Map<number, ModelTask>;
  /** Every id ever created in this run, deleted ones included, so commands also aim at gone tasks. */
  ids: number[];
  /** Idempotency keys per user: the body first sent with the key, and the response it got. */
  keys: Map<string, { body: string; response: Record<string, unknown>; etag: string; location: string }>;
}

interface Real {
  app: App;
  users: string[];
  auth: string[];
  /** Each user's MCP client, on the same app. */
  agents: Client[];
}

/** What the checks below read of an answer, REST or tool: status, body, ETag. */
interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: a JSON body, read field by field by the checks
  body: any;
  headers: Record<string, unknown>;
}

const USERS = 3;
// Never created: ids come from one sequence and stay far below this in any test database.
const MISSING_ID = 9_007_199_254_740_000;

// Titles from a small ASCII alphabet, mixed case and padded, so trimming and the case-insensitive
// title sort are exercised without depending on the database's locale for non-ASCII lower().
const titleArb = fc
  .tuple(
    fc.constantFrom('', ' ', '  '),
    fc.string({ unit: fc.constantFrom(...'abcABCxyz-_ 019'), minLength: 1, maxLength: 12 }),
    fc.constantFrom('', ' ', '\t'),
  )
  .map(([a, b, c]) => a + b + c)
  .filter((t) => t.trim().length > 0);
// Descriptions from the same alphabet, so the model can predict what text search finds.
const textArb = fc.string({ unit: fc.constantFrom(...'abcABCxyz-_ 019'), maxLength: 20 });
const descriptionArb = fc.oneof(fc.constant(undefined), fc.constant(null), textArb);
// Due dates far in the past or future (never today), as the server formats them.
const DUE = ['2020-01-01T00:00:00.000000Z', '2030-06-15T12:30:00.000000Z', '2099-12-31T23:59:59.999999Z'];
const dueArb = fc.option(fc.option(fc.constantFrom(...DUE), { nil: null }), { nil: undefined });
const priorityArb = fc.option(fc.constantFrom(...PRIORITIES), { nil: undefined });
const tagsArb = fc.option(fc.subarray(['home', 'work', 'x1']), { nil: undefined });
const positionArb = fc.option(fc.constantFrom(-5, 0, 1.5, 1000, 1024, 3000.25), { nil: undefined });
/** The 1.1 fields a write may carry; absent ones are not sent. */
interface Extras {
  due_at?: string | null | undefined;
  priority?: Priority | undefined;
  tags?: string[] | undefined;
  position?: number | undefined;
}
const extrasArb = fc.record({ due_at: dueArb, priority: priorityArb, tags: tagsArb, position: positionArb });
function withExtras(body: Record<string, unknown>, e: Extras): Record<string, unknown> {
  for (const [k, v] of Object.entries(e)) if (v !== undefined) body[k] = v;
  return body;
}
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x,
  );
}
const completedArb = fc.option(fc.boolean(), { nil: undefined });
const userArb = fc.nat({ max: USERS - 1 });
/** Which task a command aims at: an index into the ids created so far, or (when none) a missing one. */
const pickArb = fc.nat({ max: 1000 });
const scopedArb = fc.boolean();

/** Mostly the user's own live tasks; one pick in four any id so far (others', deleted); one in eight a missing id. */
function pick(m: Model, user: number, n: number): number {
  if (m.ids.length === 0 || n % 8 === 7) return MISSING_ID;
  const own = [...m.tasks.values()].filter((t) => t.owner === user);
  if (n % 4 === 3 || own.length === 0) return m.ids[n % m.ids.length]!;
  return own[n % own.length]!.id;
}

function base(r: Real, user: number, scoped: boolean): string {
  return scoped ? `/api/${encodeURIComponent(r.users[user]!)}/tasks` : '/api/tasks';
}

function opId(id: string, scoped: boolean): string {
  return scoped ? `${id}ForUser` : id;
}

function json(v: unknown): string {
  return v === undefined ? '-' : JSON.stringify(v);
}

/** The task as the API must show it: the model's fields, no owner, no version. */
function shown(t: ModelTask) {
  return {
    id: t.id,
    title: t.title,
    description: t.description,
    completed: t.completed,
    due_at: t.due_at,
    priority: t.priority,
    tags: t.tags,
    position: t.position,
    // The model writes no recurring tasks and no reminders (tests/recurring.test.ts and tests/reminders.test.ts do).
    recurrence: null,
    reminders: [],
    created_at: t.created_at,
    updated_at: t.updated_at,
  };
}

const etag = (t: ModelTask) => `"${t.version}"`;

/** Which If-Match a write sends: none, the task's current ETag, or a stale one. */
type Condition = 'none' | 'current' | 'stale';
const conditionArb = fc.constantFrom<Condition>('none', 'none', 'current', 'stale');
/** The ETag a condition names for task `id` (undefined: none is sent). */
function ifMatchValue(m: Model, id: number, c: Condition): string | undefined {
  const t = m.tasks.get(id);
  if (c === 'current') return t ? etag(t) : '"1"';
  if (c === 'stale') return `"${(t?.version ?? 0) + 1000}"`;
  return undefined;
}
function ifMatch(req: request.Test, m: Model, id: number, c: Condition): request.Test {
  const value = ifMatchValue(m, id, c);
  return value === undefined ? req : req.set('If-Match', value);
}
/** A stale If-Match on the caller's own task: 412, nothing written. */
function expectStale(res: Answer, t: ModelTask) {
  expect(res.status).toBe(412);
  expect(res.body.code).toBe('precondition_failed');
  expect(res.body.detail).toContain(etag(t));
}

function expectNotFound(res: Answer) {
  expect(res.status).toBe(404);
  expect(res.body.code).toBe('task_not_found');
}

type Changes = { title?: string; description?: string | null; completed?: boolean } & Extras;

/** A task after a PATCH of `c`: absent fields kept, `null` clears description and due date. */
function patched(t: ModelTask, c: Changes): ModelTask {
  return {
    ...t,
    title: c.title !== undefined ? c.title.trim() : t.title,
    description: 'description' in c ? (c.description ?? null) : t.description,
    completed: c.completed ?? t.completed,
    due_at: 'due_at' in c ? (c.due_at ?? null) : t.due_at,
    priority: c.priority ?? t.priority,
    tags: c.tags ?? t.tags,
    position: c.position ?? t.position,
  };
}

/**
 * Applies a write's result to the model: the fields must be what the model predicts, created_at
 * never moves, updated_at stays put when nothing changed and never goes back when something did.
 */
function applyWrite(m: Model, id: number, predicted: Omit<ModelTask, 'created_at' | 'updated_at' | 'version'>, res: Answer) {
  const before = m.tasks.get(id)!;
  expect(res.status).toBe(200);
  const { created_at, updated_at, ...fields } = res.body;
  const { created_at: _c, updated_at: _u, ...expected } = shown({ ...before, ...predicted });
  expect(fields).toEqual(expected);
  expect(created_at).toBe(before.created_at);
  const { created_at: _bc, updated_at: _bu, ...was } = shown(before);
  const changed = canonical(expected) !== canonical(was);
  const version = changed ? before.version + 1 : before.version;
  if (changed) expect(updated_at >= before.updated_at).toBe(true);
  else expect(updated_at).toBe(before.updated_at);
  expect(res.headers.etag).toBe(`"${version}"`);
  m.tasks.set(id, { ...before, ...predicted, created_at, updated_at, version });
}

function owned(m: Model, user: number, id: number): ModelTask | undefined {
  const t = m.tasks.get(id);
  return t && t.owner === user ? t : undefined;
}

class Create implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly title: string,
    readonly description: string | null | undefined,
    readonly completed: boolean | undefined,
    readonly extras: Extras,
    /** An Idempotency-Key from a small pool, so retries and reuses with other bodies happen. */
    readonly key: string | undefined,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const body: Record<string, unknown> = { title: this.title };
    if (this.description !== undefined) body.description = this.description;
    if (this.completed !== undefined) body.completed = this.completed;
    withExtras(body, this.extras);
    let req = request(r.app)
      .post(base(r, this.user, this.scoped))
      .set('Authorization', r.auth[this.user]!);
    if (this.key) req = req.set('Idempotency-Key', this.key);
    const res = await req.send(body);
    checkResponse(operationById(opId('createTask', this.scoped)), res);
    const remembered = this.key ? m.keys.get(`${this.user}:${this.key}`) : undefined;
    if (remembered) {
      if (remembered.body !== canonical(body)) {
        expect(res.status).toBe(422);
        expect(res.body.code).toBe('idempotency_key_reused');
        return;
      }
      // A retry: the original response again, and no new task.
      expect(res.status).toBe(201);
      expect(res.headers['idempotent-replayed']).toBe('true');
      expect(res.body).toEqual(remembered.response);
      expect(res.headers.etag).toBe(remembered.etag);
      expect(res.headers.location).toBe(remembered.location);
      return;
    }
    expect(res.status).toBe(201);
    expect(res.headers['idempotent-replayed']).toBeUndefined();
    const t = res.body;
    const own = [...m.tasks.values()].filter((x) => x.owner === this.user);
    expect(t).toMatchObject({
      title: this.title.trim(),
      description: this.description ?? null,
      completed: this.completed ?? false,
      due_at: this.extras.due_at ?? null,
      priority: this.extras.priority ?? 'none',
      tags: this.extras.tags ?? [],
      // After the user's last task unless given.
      position: this.extras.position ?? (own.length ? Math.max(...own.map((x) => x.position)) : 0) + 1024,
    });
    expect(t.updated_at).toBe(t.created_at);
    expect(res.headers.location).toBe(`${base(r, this.user, this.scoped)}/${t.id}`);
    expect(res.headers.etag).toBe('"1"');
    expect(m.tasks.has(t.id)).toBe(false);
    m.ids.push(t.id);
    m.tasks.set(t.id, { ...t, owner: this.user, version: 1 });
    if (this.key)
      m.keys.set(`${this.user}:${this.key}`, { body: canonical(body), response: t, etag: '"1"', location: res.headers.location as string });
  }
  toString = () =>
    `create(u${this.user}${this.scoped ? ' scoped' : ''}, title=${json(this.title)}, description=${json(this.description)}, completed=${json(this.completed)}, ${json(this.extras)}, key=${json(this.key)})`;
}

class Get implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly n: number,
    readonly noneMatch: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    let req = request(r.app)
      .get(`${base(r, this.user, this.scoped)}/${id}`)
      .set('Authorization', r.auth[this.user]!);
    const known = m.tasks.get(id);
    if (this.noneMatch === 'current') req = req.set('If-None-Match', known ? etag(known) : '"1"');
    if (this.noneMatch === 'stale') req = req.set('If-None-Match', `"${(known?.version ?? 0) + 1000}"`);
    const res = await req;
    checkResponse(operationById(opId('getTask', this.scoped)), res);
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    expect(res.headers.etag).toBe(etag(t));
    if (this.noneMatch === 'current') {
      expect(res.status).toBe(304);
      return;
    }
    expect(res.status).toBe(200);
    expect(res.body).toEqual(shown(t));
  }
  toString = () => `get(u${this.user}${this.scoped ? ' scoped' : ''}, pick ${this.n}, if-none-match=${this.noneMatch})`;
}

class Replace implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly n: number,
    readonly title: string,
    readonly description: string | null | undefined,
    readonly completed: boolean | undefined,
    readonly extras: Extras,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const body: Record<string, unknown> = { title: this.title };
    if (this.description !== undefined) body.description = this.description;
    if (this.completed !== undefined) body.completed = this.completed;
    withExtras(body, this.extras);
    const req = request(r.app)
      .put(`${base(r, this.user, this.scoped)}/${id}`)
      .set('Authorization', r.auth[this.user]!);
    const res = await ifMatch(req, m, id, this.condition).send(body);
    checkResponse(operationById(opId('replaceTask', this.scoped)), res);
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    // PUT replaces title and description (absent description = none); completed and the 1.1 fields
    // are optional and kept when absent.
    const e = this.extras;
    applyWrite(
      m,
      id,
      {
        ...t,
        title: this.title.trim(),
        description: this.description ?? null,
        completed: this.completed ?? t.completed,
        due_at: e.due_at === undefined ? t.due_at : e.due_at,
        priority: e.priority ?? t.priority,
        tags: e.tags ?? t.tags,
        position: e.position ?? t.position,
      },
      res,
    );
  }
  toString = () =>
    `replace(u${this.user}${this.scoped ? ' scoped' : ''}, pick ${this.n}, title=${json(this.title)}, description=${json(this.description)}, completed=${json(this.completed)}, ${json(this.extras)}, if-match=${this.condition})`;
}

class Update implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly n: number,
    readonly changes: Changes,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const req = request(r.app)
      .patch(`${base(r, this.user, this.scoped)}/${id}`)
      .set('Authorization', r.auth[this.user]!);
    const res = await ifMatch(req, m, id, this.condition).send(this.changes);
    checkResponse(operationById(opId('updateTask', this.scoped)), res);
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    applyWrite(m, id, patched(t, this.changes), res);
  }
  toString = () =>
    `update(u${this.user}${this.scoped ? ' scoped' : ''}, pick ${this.n}, ${JSON.stringify(this.changes)}, if-match=${this.condition})`;
}

class Complete implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly n: number,
    /** 'none': no body; 'empty': {}; otherwise sets completed. */
    readonly body: 'none' | 'empty' | boolean,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    let req = ifMatch(
      request(r.app)
        .patch(`${base(r, this.user, this.scoped)}/${id}/complete`)
        .set('Authorization', r.auth[this.user]!),
      m,
      id,
      this.condition,
    );
    if (this.body === 'empty') req = req.send({});
    else if (typeof this.body === 'boolean') req = req.send({ completed: this.body });
    const res = await req;
    checkResponse(operationById(opId('toggleTaskCompletion', this.scoped)), res);
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    applyWrite(m, id, { ...t, completed: typeof this.body === 'boolean' ? this.body : !t.completed }, res);
  }
  toString = () =>
    `complete(u${this.user}${this.scoped ? ' scoped' : ''}, pick ${this.n}, body=${json(this.body)}, if-match=${this.condition})`;
}

class Delete implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly n: number,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const req = request(r.app)
      .delete(`${base(r, this.user, this.scoped)}/${id}`)
      .set('Authorization', r.auth[this.user]!);
    const res = await ifMatch(req, m, id, this.condition);
    checkResponse(operationById(opId('deleteTask', this.scoped)), res);
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    expect(res.status).toBe(204);
    m.tasks.delete(id);
  }
  toString = () => `delete(u${this.user}${this.scoped ? ' scoped' : ''}, pick ${this.n}, if-match=${this.condition})`;
}

class ClearCompleted implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await request(r.app)
      .delete(`${base(r, this.user, this.scoped)}?status=completed`)
      .set('Authorization', r.auth[this.user]!);
    checkResponse(operationById(opId('clearCompletedTasks', this.scoped)), res);
    const done = [...m.tasks.values()].filter((t) => t.owner === this.user && t.completed);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ deleted: done.length });
    for (const t of done) m.tasks.delete(t.id);
  }
  toString = () => `clearCompleted(u${this.user}${this.scoped ? ' scoped' : ''})`;
}

class Stats implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly tz: string | undefined,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const res = await request(r.app)
      .get(`${base(r, this.user, this.scoped)}/stats${this.tz ? `?tz=${encodeURIComponent(this.tz)}` : ''}`)
      .set('Authorization', r.auth[this.user]!);
    checkResponse(operationById(opId('getTaskStats', this.scoped)), res);
    const own = [...m.tasks.values()].filter((t) => t.owner === this.user);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      total: own.length,
      pending: own.filter((t) => !t.completed).length,
      completed: own.filter((t) => t.completed).length,
      overdue: own.filter(overdue).length,
      due_today: 0, // no due date the model uses is ever today
    });
  }
  toString = () => `stats(u${this.user}${this.scoped ? ' scoped' : ''}, tz=${json(this.tz)})`;
}

const overdue = (t: ModelTask) => !t.completed && t.due_at !== null && t.due_at < new Date().toISOString();

type Sort = 'created_at' | 'updated_at' | 'title' | 'due_at' | 'priority' | 'position';
const SORT_KEY: Record<Sort, (t: ModelTask) => string | number> = {
  created_at: (t) => t.created_at,
  updated_at: (t) => t.updated_at,
  // lower(title) COLLATE "C": code-point order of the lower-cased title (ASCII here).
  title: (t) => t.title.toLowerCase(),
  // No due date sorts as infinity.
  due_at: (t) => t.due_at ?? '9999-99',
  priority: (t) => PRIORITIES.indexOf(t.priority),
  position: (t) => t.position,
};
const DEFAULT_ORDER: Record<Sort, 'asc' | 'desc'> = {
  created_at: 'desc',
  updated_at: 'desc',
  title: 'desc',
  priority: 'desc',
  due_at: 'asc',
  position: 'asc',
};

/** Filters the model can predict exactly: the text search uses letter-only words and a few symbols. */
interface Filters {
  priority?: Priority | undefined;
  tag?: string[] | undefined;
  overdue?: boolean | undefined;
  q?: string | undefined;
}
const filtersArb = fc.record(
  {
    priority: fc.constantFrom(...PRIORITIES),
    tag: fc.subarray(['home', 'work', 'x1'], { minLength: 1 }),
    overdue: fc.boolean(),
    q: fc.constantFrom('a', 'ab', 'abc', 'x', 'xyz', 'b c', 'z', '-', '_', '%'),
  },
  { requiredKeys: [] },
);
// As PostgreSQL's text-search parser reads this alphabet: a `-` before digits, where no letter
// leads up to it, makes a signed integer ("-1a" is "-1" and "a"; "x-1a" is "x" and "1a").
// Checked against to_tsvector('simple', …) on 3 000 random titles of the alphabet.
const words = (s: string) =>
  s
    .toLowerCase()
    .replace(/(^|[^a-z0-9])(\d*)-(\d+)(?=[a-z])/g, '$1$2 -$3 ')
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
function matchesQ(t: ModelTask, q: string): boolean {
  const text = `${t.title} ${t.description ?? ''}`;
  const terms = q.toLowerCase().match(/[a-z0-9]+/g);
  // Words: each must start some word of the text. No letter or digit: a plain substring.
  if (!terms) return text.toLowerCase().includes(q.toLowerCase());
  return terms.every((term) => words(text).some((w) => w.startsWith(term)));
}
function matches(t: ModelTask, f: Filters): boolean {
  if (f.priority !== undefined && t.priority !== f.priority) return false;
  if (f.tag && !f.tag.every((x) => t.tags.includes(x))) return false;
  if (f.overdue !== undefined && overdue(t) !== f.overdue) return false;
  if (f.q !== undefined && !matchesQ(t, f.q)) return false;
  return true;
}

class List implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly scoped: boolean,
    readonly status: 'all' | 'pending' | 'completed' | undefined,
    readonly sort: Sort | undefined,
    readonly order: 'asc' | 'desc' | undefined,
    readonly limit: number | undefined,
    readonly filters: Filters,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const query = new URLSearchParams();
    if (this.status) query.set('status', this.status);
    if (this.sort) query.set('sort', this.sort);
    if (this.order) query.set('order', this.order);
    if (this.limit) query.set('limit', String(this.limit));
    const f = this.filters;
    if (f.priority) query.set('priority', f.priority);
    for (const tag of f.tag ?? []) query.append('tag', tag);
    if (f.overdue !== undefined) query.set('overdue', String(f.overdue));
    if (f.q !== undefined) query.set('q', f.q);
    const limit = this.limit ?? 100;

    const { items: seen } = await walkPages(r.app, r.auth[this.user]!, `${base(r, this.user, this.scoped)}?${query.toString()}`, {
      maxPages: 200,
      onPage: (res) => {
        checkResponse(operationById(opId('listTasks', this.scoped)), res);
        // Full pages until the last; no empty page is ever announced.
        if (res.headers.link) expect(res.body).toHaveLength(limit);
        else expect(res.body.length).toBeLessThanOrEqual(limit);
      },
    });

    const status = this.status ?? 'all';
    const sort = this.sort ?? 'created_at';
    const key = SORT_KEY[sort];
    const dir = (this.order ?? DEFAULT_ORDER[sort]) === 'asc' ? 1 : -1;
    const expected = [...m.tasks.values()]
      .filter((t) => t.owner === this.user)
      .filter((t) => status === 'all' || t.completed === (status === 'completed'))
      .filter((t) => matches(t, this.filters))
      .sort((a, b) => {
        const ka = key(a);
        const kb = key(b);
        return dir * (ka < kb ? -1 : ka > kb ? 1 : a.id - b.id);
      })
      .map(shown);
    expect(seen).toEqual(expected);
  }
  toString = () =>
    `list(u${this.user}${this.scoped ? ' scoped' : ''}, status=${json(this.status)}, sort=${json(this.sort)}, order=${json(this.order)}, limit=${json(this.limit)}, ${json(this.filters)})`;
}

class OtherUsersPath implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly other: number,
  ) {}
  check = () => this.user !== this.other;
  async run(_m: Model, r: Real) {
    const res = await request(r.app)
      .get(base(r, this.other, true))
      .set('Authorization', r.auth[this.user]!);
    checkResponse(operationById('listTasksForUser'), res);
    expect(res.status).toBe(403);
  }
  toString = () => `list(u${this.user} on u${this.other}'s path)`;
}

const changesArb = fc.record(
  {
    title: titleArb,
    description: fc.option(textArb, { nil: null }),
    completed: fc.boolean(),
    due_at: fc.option(fc.constantFrom(...DUE), { nil: null }),
    priority: fc.constantFrom(...PRIORITIES),
    tags: fc.subarray(['home', 'work', 'x1']),
    position: fc.constantFrom(-5, 0, 1.5, 1000, 1024, 3000.25),
  },
  { requiredKeys: [] },
);

// ---- The same operations through the MCP tools: what a tool returns is read as the REST answer
// it stands for (the task and its ETag, or the problem), and checked by the same predictions.

async function viaTool(r: Real, user: number, name: string, args: Record<string, unknown>): Promise<Answer & { result: CallToolResult }> {
  const result = (await r.agents[user]!.callTool({ name, arguments: args })) as CallToolResult;
  if (result.isError) {
    const problem = JSON.parse((result.content[1] as { text: string }).text) as { status: number };
    return { status: problem.status, body: problem, headers: {}, result };
  }
  const out = result.structuredContent as { task?: unknown; etag?: string };
  return { status: name === 'create_task' ? 201 : 200, body: out.task ?? out, headers: { etag: out.etag }, result };
}

/** The `if_match` argument a tool call sends for a condition, as ifMatch() sets the header. */
function ifMatchArg(m: Model, id: number, c: Condition): { if_match?: string } {
  const value = ifMatchValue(m, id, c);
  return value === undefined ? {} : { if_match: value };
}

class ToolCreate implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly title: string,
    readonly completed: boolean | undefined,
    readonly extras: Extras,
    readonly key: string | undefined,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const body: Record<string, unknown> = withExtras({ title: this.title }, this.extras);
    if (this.completed !== undefined) body.completed = this.completed;
    const res = await viaTool(r, this.user, 'create_task', { ...body, ...(this.key ? { idempotency_key: this.key } : {}) });
    const remembered = this.key ? m.keys.get(`${this.user}:${this.key}`) : undefined;
    if (remembered) {
      if (remembered.body !== canonical(body)) {
        expect(res.status).toBe(422);
        expect(res.body.code).toBe('idempotency_key_reused');
        return;
      }
      expect(res.body).toEqual(remembered.response);
      expect(res.headers.etag).toBe(remembered.etag);
      return;
    }
    expect(res.status, JSON.stringify(res.result)).toBe(201);
    const t = res.body;
    expect(t).toMatchObject({ title: this.title.trim(), completed: this.completed ?? false, priority: this.extras.priority ?? 'none' });
    expect(res.headers.etag).toBe('"1"');
    expect(m.tasks.has(t.id)).toBe(false);
    m.ids.push(t.id);
    m.tasks.set(t.id, { ...t, owner: this.user, version: 1 });
    if (this.key)
      m.keys.set(`${this.user}:${this.key}`, { body: canonical(body), response: t, etag: '"1"', location: `/api/tasks/${t.id}` });
  }
  toString = () =>
    `tool create_task(u${this.user}, title=${json(this.title)}, completed=${json(this.completed)}, ${json(this.extras)}, key=${json(this.key)})`;
}

class ToolGet implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly n: number,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const res = await viaTool(r, this.user, 'get_task', { task_id: id });
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(shown(t));
    expect(res.headers.etag).toBe(etag(t));
  }
  toString = () => `tool get_task(u${this.user}, pick ${this.n})`;
}

class ToolUpdate implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly n: number,
    readonly changes: Changes,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const res = await viaTool(r, this.user, 'update_task', { task_id: id, ...ifMatchArg(m, id, this.condition), ...this.changes });
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    applyWrite(m, id, patched(t, this.changes), res);
  }
  toString = () => `tool update_task(u${this.user}, pick ${this.n}, ${JSON.stringify(this.changes)}, if_match=${this.condition})`;
}

class ToolComplete implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly n: number,
    /** undefined: toggle; otherwise sets completed. */
    readonly completed: boolean | undefined,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const args = {
      task_id: id,
      ...ifMatchArg(m, id, this.condition),
      ...(this.completed === undefined ? {} : { completed: this.completed }),
    };
    const res = await viaTool(r, this.user, 'toggle_task_completion', args);
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    applyWrite(m, id, { ...t, completed: this.completed ?? !t.completed }, res);
  }
  toString = () =>
    `tool toggle_task_completion(u${this.user}, pick ${this.n}, completed=${json(this.completed)}, if_match=${this.condition})`;
}

class ToolDelete implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly user: number,
    readonly n: number,
    readonly condition: Condition,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const id = pick(m, this.user, this.n);
    const res = await viaTool(r, this.user, 'delete_task', { task_id: id, ...ifMatchArg(m, id, this.condition) });
    const t = owned(m, this.user, id);
    if (!t) return expectNotFound(res);
    if (this.condition === 'stale') return expectStale(res, t);
    expect(res.result.structuredContent).toEqual({ deleted: true, task_id: id, now: expect.any(String) });
    m.tasks.delete(id);
  }
  toString = () => `tool delete_task(u${this.user}, pick ${this.n}, if_match=${this.condition})`;
}

const keyArb = fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined, freq: 3 });
const createArb = fc.tuple(userArb, scopedArb, titleArb, descriptionArb, completedArb, extrasArb, keyArb).map((a) => new Create(...a));

// Creates are listed three times over so that users hold enough tasks for sorts and pages to matter.
const commands = fc.commands(
  [
    createArb,
    createArb,
    createArb,
    fc.tuple(userArb, scopedArb, pickArb, conditionArb).map((a) => new Get(...a)),
    fc.tuple(userArb, scopedArb, pickArb, titleArb, descriptionArb, completedArb, extrasArb, conditionArb).map((a) => new Replace(...a)),
    fc.tuple(userArb, scopedArb, pickArb, changesArb, conditionArb).map((a) => new Update(...a)),
    fc
      .tuple(userArb, scopedArb, pickArb, fc.constantFrom('none' as const, 'empty' as const, true, false), conditionArb)
      .map((a) => new Complete(...a)),
    fc.tuple(userArb, scopedArb, pickArb, conditionArb).map((a) => new Delete(...a)),
    fc.tuple(userArb, scopedArb).map((a) => new ClearCompleted(...a)),
    fc.tuple(userArb, scopedArb, fc.constantFrom(undefined, 'UTC', 'Europe/Paris', 'Pacific/Kiritimati')).map((a) => new Stats(...a)),
    fc
      .tuple(
        userArb,
        scopedArb,
        fc.constantFrom(undefined, 'all' as const, 'pending' as const, 'completed' as const),
        fc.constantFrom(
          undefined,
          'created_at' as const,
          'updated_at' as const,
          'title' as const,
          'due_at' as const,
          'priority' as const,
          'position' as const,
        ),
        fc.constantFrom(undefined, 'asc' as const, 'desc' as const),
        fc.constantFrom(undefined, 1, 2, 3, 5),
        fc.oneof(fc.constant({}), filtersArb),
      )
      .map((a) => new List(...a)),
    fc.tuple(userArb, userArb).map((a) => new OtherUsersPath(...a)),
    fc.tuple(userArb, titleArb, completedArb, extrasArb, keyArb).map((a) => new ToolCreate(...a)),
    fc.tuple(userArb, pickArb).map((a) => new ToolGet(...a)),
    fc.tuple(userArb, pickArb, changesArb, conditionArb).map((a) => new ToolUpdate(...a)),
    fc.tuple(userArb, pickArb, completedArb, conditionArb).map((a) => new ToolComplete(...a)),
    fc.tuple(userArb, pickArb, conditionArb).map((a) => new ToolDelete(...a)),
  ],
  { maxCommands: 60, size: 'medium' },
);

let database: TestDatabase;
let app: App;
let server: Server;
let mcpUrl: URL;
const agents: Client[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  ({ app, server } = buildApp(database.db));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  mcpUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
});
afterAll(async () => {
  for (const a of agents) await a.close();
  await new Promise((resolve) => server.close(resolve));
  await database.drop();
});

async function agent(authorization: string): Promise<Client> {
  const client = new Client({ name: 'model-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: { Authorization: authorization } } }));
  agents.push(client);
  return client;
}

async function setup(): Promise<{ model: Model; real: Real }> {
  // Fresh users per run: runs share the database but never each other's tasks.
  const users = Array.from({ length: USERS }, () => newUser());
  const auth = await Promise.all(users.map((u) => bearer(u)));
  return { model: { tasks: new Map(), ids: [], keys: new Map() }, real: { app, users, auth, agents: await Promise.all(auth.map(agent)) } };
}

const property = fc.asyncProperty(commands, (cmds) => fc.asyncModelRun(setup, cmds));

// FC_SEED reproduces a failing random run; FC_RUNS scales the effort.
const randomSeed = process.env.FC_SEED ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 2 ** 31);
const numRuns = Number(process.env.FC_RUNS ?? 50);

describe(`the API against its model (${dbKind})`, () => {
  it('fixed seed', { timeout: 240_000 }, async () => {
    await fc.assert(property, { seed: 20261124, numRuns });
  });

  it(`random seed ${randomSeed} (reproduce with FC_SEED=${randomSeed})`, { timeout: 240_000 }, async () => {
    console.log(`model test: random seed ${randomSeed} (FC_SEED=${randomSeed} npx vitest run tests/model.test.ts)`);
    await fc.assert(property, { seed: randomSeed, numRuns });
  });
});
