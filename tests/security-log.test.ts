// The security event stream: each event with its fields, never a token.
import request from 'supertest';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildApp, newUser, TEST_SECRET } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let database: TestDatabase;
let app: ReturnType<typeof buildApp>['app'];
let lines: string[];

beforeAll(async () => {
  database = await createTestDatabase();
  ({ app, logLines: lines } = buildApp(database.db, { rateLimit: { perUser: 2 }, audience: 'todo-api' }));
});
afterAll(() => database.drop());

function events(name: string): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.stream === 'security' && l.event === name);
}

async function eventually<T>(fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < 50; i++) {
    const v = fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('event not logged');
}

const signed = (claims: Record<string, unknown>, secret = TEST_SECRET) =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

describe('security events', () => {
  it('auth_failed, with the reason and never the token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const cases: [string | undefined, string][] = [
      [undefined, 'missing'],
      ['Basic abc', 'wrong_scheme'],
      [`Bearer ${await signed({ sub: 'u', aud: 'todo-api', exp: now - 100 })}`, 'expired'],
      [`Bearer ${await signed({ sub: 'u', aud: 'todo-api', exp: now + 100 }, 'another-secret-another-secret-00')}`, 'bad_signature'],
      [`Bearer ${await signed({ sub: 'u', aud: 'someone-else', exp: now + 100 })}`, 'wrong_audience'],
      ['Bearer garbage', 'malformed'],
    ];
    for (const [header, reason] of cases) {
      const req = request(app).get('/api/tasks');
      const res = await (header ? req.set('Authorization', header) : req);
      expect(res.status).toBe(401);
      const event = events('auth_failed').find((e) => e.reason === reason && e.requestId === res.headers['x-request-id']);
      expect(event, reason).toMatchObject({ level: 40, method: 'GET', path: '/api/tasks', ip: expect.any(String) });
    }
    expect(lines.join('\n')).not.toMatch(/eyJ/);
  });

  it('user_mismatch, naming both users', async () => {
    const me = newUser();
    const res = await request(app)
      .get('/api/victim-id/tasks')
      .set('Authorization', await bearer(me, { audience: 'todo-api' }));
    expect(res.status).toBe(403);
    expect(events('user_mismatch').at(-1)).toMatchObject({ userId: me, pathUserId: 'victim-id', requestId: res.headers['x-request-id'] });
  });

  it('cross_user_access for another user’s task, while the answer stays a plain 404', async () => {
    const owner = await bearer(newUser(), { audience: 'todo-api' });
    const { body: task } = await request(app).post('/api/tasks').set('Authorization', owner).send({ title: 'mine' });
    const prober = newUser();
    const res = await request(app)
      .get(`/api/tasks/${task.id}`)
      .set('Authorization', await bearer(prober, { audience: 'todo-api' }));
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('task_not_found');
    const event = await eventually(() => events('cross_user_access').find((e) => e.taskId === task.id));
    expect(event).toMatchObject({ userId: prober, requestId: res.headers['x-request-id'] });

    const missing = await request(app)
      .get('/api/tasks/999999999')
      .set('Authorization', await bearer(prober, { audience: 'todo-api' }));
    expect(missing.status).toBe(404);
    await new Promise((r) => setTimeout(r, 100));
    expect(events('cross_user_access').find((e) => e.taskId === 999999999)).toBeUndefined();
  });

  it('rate_limited, with the limiter', async () => {
    const user = newUser();
    const auth = await bearer(user, { audience: 'todo-api' });
    for (let i = 0; i < 3; i++) await request(app).get('/api/tasks').set('Authorization', auth);
    expect(events('rate_limited').at(-1)).toMatchObject({ limiter: 'user', userId: user });
  });
});
