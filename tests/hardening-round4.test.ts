// A new user's report, each finding as a regression test that failed before its fix: an unknown
// query parameter hid the request's other errors, in words of its own; the problems' `type` links
// answered 404; a blank title was said to contain NUL characters; in development the server
// listened on every interface while its banner said localhost. (The warm-up's deadline:
// tests/warm-up.test.ts and tests/faults/warm-up-deadline.test.ts.)
import { createHash, randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { cleanupsAfterAll, logLines, startServer, storageEnv, type ServerProcess } from './faults/process.js';
import { spec } from './helpers/contract.js';
import { bearer, newUser, setupApp, type TestContext } from './helpers/app.js';
import { dbKind } from './helpers/db.js';

interface FieldError {
  path: string;
  message: string;
}

// The server as it ships (dist/server.js), HOST unset as in a fresh checkout: in production, and in
// development. Started once for the file, both at once.
const cleanups = cleanupsAfterAll();
let prod: ServerProcess;
let dev: ServerProcess;
beforeAll(async () => {
  const start = async (env: Record<string, string>) => {
    const p = await startServer({ ...(await storageEnv(cleanups)), HOST: '', ...env });
    cleanups.push(async () => {
      p.child.kill('SIGKILL');
      await p.exited;
    });
    return p;
  };
  [prod, dev] = await Promise.all([start({ NODE_ENV: 'production' }), start({ NODE_ENV: 'development' })]);
}, 120_000);

describe(`1. query parameters the operation does not have are reported with the request's other errors (${dbKind})`, () => {
  let ctx: TestContext;
  let auth: string;
  beforeAll(async () => {
    ctx = await setupApp();
    auth = await bearer(newUser());
  });
  afterAll(() => ctx.close());

  const get = (url: string) => request(ctx.app).get(url).set('Authorization', auth);

  it('an unknown parameter and an invalid one: one 422 naming both, in the words of the other fields', async () => {
    const res = await get('/api/tasks?bogus=1&limit=0');
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('validation_failed');
    expect(res.body.errors).toEqual([
      { path: '/query/bogus', message: 'is not a parameter of this request' },
      { path: '/query/limit', message: 'must be at least 1' },
    ]);
    expect(res.body.detail).toBe(
      'The request is invalid: bogus (query) is not a parameter of this request; limit (query) must be at least 1.',
    );
  });

  it('every unknown, empty and invalid parameter at once, one entry each, whatever the order', async () => {
    const res = await get('/api/tasks?status=someday&other=x&limit=&bogus=1&overdue=');
    expect(res.status).toBe(422);
    const errors = res.body.errors as FieldError[];
    expect(errors).toHaveLength(5);
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: '/query/status', message: 'must be one of all, pending, completed' },
        { path: '/query/other', message: 'is not a parameter of this request' },
        { path: '/query/bogus', message: 'is not a parameter of this request' },
        // Empty is only empty: not what the validator made of it (an empty limit read as 0).
        { path: '/query/limit', message: 'must not be empty' },
        // An empty boolean would otherwise pass as false.
        { path: '/query/overdue', message: 'must not be empty' },
      ]),
    );
    expect(JSON.stringify(res.body)).not.toMatch(/Unknown query parameter|Empty value found/);
  });

  it('alone, and beside a body error and on the user-scoped twin, the same', async () => {
    const alone = await get('/api/tasks?bogus=1');
    expect(alone.status).toBe(422);
    expect(alone.body.errors).toEqual([{ path: '/query/bogus', message: 'is not a parameter of this request' }]);

    const user = newUser();
    const withBody = await request(ctx.app)
      .post(`/api/${user}/tasks?bogus=1`)
      .set('Authorization', await bearer(user))
      .send({ title: '', priority: 'urgent' });
    expect(withBody.status).toBe(422);
    expect(withBody.body.errors).toEqual([
      { path: '/query/bogus', message: 'is not a parameter of this request' },
      { path: '/body/title', message: 'must not be blank' },
      { path: '/body/priority', message: 'must be one of none, low, medium, high' },
    ]);
    // Nothing was created.
    const { rows } = await ctx.database.db.query('SELECT 1 FROM tasks WHERE user_id = $1', [user]);
    expect(rows).toEqual([]);
  });

  it('a valid query still passes, and known parameters are not mistaken for unknown ones', async () => {
    const res = await get('/api/tasks?limit=5&status=pending&tag=a&tag=b&q=milk&sort=title&order=asc');
    expect(res.status).toBe(200);
  });
});

describe(`3. a title's two rules each say their own thing (${dbKind})`, () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await setupApp();
  });
  afterAll(() => ctx.close());

  it('blank: "must not be blank"; with a NUL: "must not contain NUL characters"; on create, replace and update', async () => {
    const auth = await bearer(newUser());
    const { body: task } = await request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title: 'Buy milk' });
    for (const [title, message] of [
      ['', 'must not be blank'],
      [' \t\n ', 'must not be blank'],
      ['milk\u0000', 'must not contain NUL characters'],
      [' \u0000 ', 'must not contain NUL characters'],
    ] as const) {
      for (const send of [
        () => request(ctx.app).post('/api/tasks').set('Authorization', auth).send({ title }),
        () => request(ctx.app).put(`/api/tasks/${task.id}`).set('Authorization', auth).send({ title }),
        () => request(ctx.app).patch(`/api/tasks/${task.id}`).set('Authorization', auth).send({ title }),
      ]) {
        const res = await send();
        expect(res.status, JSON.stringify(title)).toBe(422);
        expect(res.body.errors, JSON.stringify(title)).toEqual([{ path: '/body/title', message }]);
      }
    }
    const { rows } = await ctx.database.db.query('SELECT title FROM tasks WHERE id = $1', [task.id]);
    expect(rows).toEqual([{ title: 'Buy milk' }]);
  });
});

/** The contract's list of problem codes: the enum, and each one's status as its description lists it. */
const codeSchema = spec.components.schemas.Problem.properties.code as { enum: string[]; description: string };
const statusOf = (code: string) => {
  const found = [...codeSchema.description.matchAll(new RegExp(`^- \`${code}\` \\((\\d{3})\\):`, 'gm'))];
  expect(found, `${code} is listed once in Problem.code's description`).toHaveLength(1);
  return Number(found[0]![1]);
};

describe("2. a problem's type link is a page that explains its code (the server as it ships)", () => {
  /** The page a problem's `type` names, resolved as RFC 9457 says: against the request's URL. */
  async function followType(requestUrl: string, problem: { type: string; code: string; status: number }) {
    expect(problem.type).toBe(`/problems/${problem.code}`);
    const res = await fetch(new URL(problem.type, requestUrl));
    const html = await res.text();
    expect(res.status, `${problem.type}: ${html.slice(0, 200)}`).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(html).toContain(`<h1><code>${problem.code}</code></h1>`);
    expect(html).toContain(`HTTP ${problem.status} `);
    return { res, html };
  }

  it('the type of a real 422, 404 and 401 leads to a page saying what the code means and what to do', async () => {
    const auth = await bearer(newUser());
    const answers = [
      [`${prod.base}/api/tasks?bogus=1`, { headers: { Authorization: auth } }],
      [`${prod.base}/api/tasks/987654321`, { headers: { Authorization: auth } }],
      [`${prod.base}/no/such/path`, {}],
      [`${prod.base}/api/tasks`, {}],
    ] as const;
    const seen: string[] = [];
    for (const [url, init] of answers) {
      const res = await fetch(url, init);
      const problem = (await res.json()) as { type: string; code: string; status: number };
      expect(problem.status).toBe(res.status);
      const { html } = await followType(url, problem);
      seen.push(`${problem.status} ${problem.code}`);
      // What it means and what to do, as the contract says.
      expect(html).toMatch(/<h2>What it means<\/h2>\s*<p>[^<]{10,}/);
      expect(html).toMatch(/<h2>What to do<\/h2>\s*<p>\S/);
    }
    expect(seen).toEqual(['422 validation_failed', '404 task_not_found', '404 not_found', '401 token_missing']);
  });

  it('every code in the contract has its page, with the status and the words the contract gives it', async () => {
    expect(codeSchema.enum.length).toBeGreaterThanOrEqual(19);
    for (const code of codeSchema.enum) {
      const { html } = await followType(prod.base, { type: `/problems/${code}`, code, status: statusOf(code) });
      // The entry's words (continued on indented lines), its `code` spans as HTML.
      const entry = new RegExp(`^- \`${code}\` \\(\\d{3}\\): (.*(?:\\n {2}.*)*)`, 'm').exec(codeSchema.description)![1]!;
      const words = entry
        .replace(/\s+/g, ' ')
        .split('*What to do:*')
        .map((part) => part.trim().replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;'))
        .map((part) => part.replace(/`([^`]+)`/g, '<code>$1</code>').slice(1));
      for (const part of words) expect(html, code).toContain(part);
    }
  });

  it('a page is a self-contained HTML page, public, that runs nothing and loads nothing', async () => {
    const { res, html } = await followType(prod.base, { type: '/problems/rate_limited', code: 'rate_limited', status: 429 });
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(csp).not.toMatch(/unsafe-inline|script-src/);
    // Its one stylesheet is allowed by its hash, so browsers apply it.
    const style = /<style>([^<]*)<\/style>/.exec(html)![1]!;
    expect(csp).toContain(`style-src 'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(html).not.toMatch(/<script|src=|https?:\/\//);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const head = await fetch(`${prod.base}/problems/rate_limited`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('public paths that document no 422 ignore a query they do not read (a cache-buster), never a 500', async () => {
    // The development server validates its responses: a 422 these operations do not document was a 500.
    for (const server of [dev, prod]) {
      for (const path of ['/health?x=1', '/ready?t=2', '/openapi.json?v=3', '/problems/validation_failed?x=1', '/docs?x=1']) {
        const res = await fetch(`${server.base}${path}`);
        expect([200, 404], `${path}: ${res.status}`).toContain(res.status);
        await res.arrayBuffer();
      }
      const api = await fetch(`${server.base}/api/tasks?x=1`, { headers: { Authorization: await bearer(newUser()) } });
      expect(api.status).toBe(422);
      expect(await api.json()).toMatchObject({ errors: [{ path: '/query/x', message: 'is not a parameter of this request' }] });
    }
  });

  it('an unknown code is a 404 problem', async () => {
    for (const code of ['no_such_code', 'VALIDATION_FAILED', '__proto__', 'validation_failed.html']) {
      const res = await fetch(`${prod.base}/problems/${code}`);
      expect(res.status, code).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.json()).toMatchObject({ code: 'not_found', type: '/problems/not_found' });
    }
  });
});

describe('4. HOST: the loopback interface by default in development, every interface in production', () => {
  it('config: 127.0.0.1 unless production; HOST always wins', () => {
    const secret = randomBytes(32).toString('base64');
    expect(loadConfig({}).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'test' }).host).toBe('127.0.0.1');
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret }).host).toBeUndefined();
    expect(loadConfig({ HOST: '0.0.0.0' }).host).toBe('0.0.0.0');
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: secret, HOST: '127.0.0.1' }).host).toBe('127.0.0.1');
  });

  // An address of this machine that is not loopback, if it has one: where a café's network would reach it.
  const external = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

  const bound = (p: ServerProcess) => ({
    port: Number(new URL(p.base).port),
    address: (logLines(p).find((l) => l.msg === 'listening') as { address: string }).address,
  });

  it('development: listens on 127.0.0.1 only, and its banner says so', async () => {
    const { port, address } = bound(dev);
    expect(address).toBe('127.0.0.1');
    // The banner follows the log line that it listens.
    for (let waited = 0; !dev.output().includes('Todo API is listening on') && waited < 10_000; waited += 50) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(dev.output()).toContain(`Todo API is listening on http://127.0.0.1:${port} (this machine only;`);
    expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
    if (external) await expect(fetch(`http://${external}:${port}/health`)).rejects.toThrow();
  });

  it('production: listens on every interface', async () => {
    const { port, address } = bound(prod);
    expect(['::', '0.0.0.0']).toContain(address);
    if (external) expect((await fetch(`http://${external}:${port}/health`)).status).toBe(200);
  });
});
