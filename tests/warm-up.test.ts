// The start-up warm-up (src/warm-up.ts) as src/start/serve.ts runs it: through the app's own
// contract validation. express-openapi-validator compiles an operation's validators on its first
// request (per method, route and Content-Type), so without this the app's first callers pay for
// the compiling, all of it on the one thread that serves everyone else too.
import { createRequire } from 'node:module';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadContract } from '../src/http/contract.js';
import { createValidator } from '../src/http/validator.js';
import type { Database } from '../src/db/types.js';
import { WARM_UP_BUDGET_MS, warmUp } from '../src/warm-up.js';
import { bearer, buildApp, newUser, testAppConfig } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

// Each operation's validator is added to the validator's Ajv, under its own key, then compiled.
const validatorRequire = createRequire(createRequire(import.meta.url).resolve('express-openapi-validator'));
const Ajv = (validatorRequire('ajv/dist/core') as { default: { prototype: { addSchema: (...args: unknown[]) => unknown } } }).default;

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

/** The first requests of a new user, as browsers and SDKs send them; how many validators they compiled. */
async function compilesOfFirstRequests(validation: ReturnType<typeof createValidator>): Promise<number> {
  const { app } = buildApp(database.db, { validation });
  const auth = await bearer(newUser());
  const added = vi.spyOn(Ajv.prototype, 'addSchema');
  try {
    await request(app).get('/api/tasks').set('Authorization', auth).expect(200);
    await request(app).get('/api/tasks').set('Authorization', auth).set('Content-Type', 'application/json').expect(200);
    const { body } = await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'First' }).expect(201);
    await request(app).get(`/api/tasks/${body.id}`).set('Authorization', auth).expect(200);
    await request(app).patch(`/api/tasks/${body.id}/complete`).set('Authorization', auth).expect(200);
    await request(app).patch(`/api/tasks/${body.id}`).set('Authorization', auth).send({ description: 'Done' }).expect(200);
    await request(app).delete(`/api/tasks/${body.id}`).set('Authorization', auth).expect(204);
    return added.mock.calls.length;
  } finally {
    added.mockRestore();
  }
}

describe('start-up warm-up', () => {
  it("compiles the app's contract validators, so the app's first requests compile none", async () => {
    const validation = createValidator(loadContract().document, false);
    // A budget no machine reaches: what is tested is what 40 requests compile, not how fast.
    const warmed = await warmUp(database.db, testAppConfig(), 40, validation, 60_000);
    expect(warmed).toMatchObject({ deadline: false });
    expect(warmed.requests).toBeGreaterThanOrEqual(40);
    expect(await compilesOfFirstRequests(validation)).toBe(0);
  });

  it('(the same requests on validation that was not warmed up do compile validators)', async () => {
    expect(await compilesOfFirstRequests(createValidator(loadContract().document, false))).toBeGreaterThan(0);
  });

  it('keeps to its budget however slow the database: a hard deadline, not a check between rounds', async () => {
    // Every statement takes 20 s (then fails): a warm-up that waits for the requests it sent holds
    // the start 20 s; one that keeps its deadline returns at it.
    const STATEMENT_MS = 20_000;
    const slowly = () => new Promise<never>((_, reject) => setTimeout(() => reject(new Error('too slow')), STATEMENT_MS).unref());
    const slow = new Proxy(database.db, {
      get(target, prop) {
        if (prop === 'query' || prop === 'queryAfter' || prop === 'transaction' || prop === 'withSession') return slowly;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Database;
    // Room for a loaded machine past the deadline; far less than the 20 s an overrun would take.
    const SLACK_MS = 2500;
    const begun = performance.now();
    const outcome = await Promise.race([
      warmUp(slow, testAppConfig(), 100_000, createValidator(loadContract().document, false)),
      new Promise<'still warming up'>((resolve) => setTimeout(() => resolve('still warming up'), WARM_UP_BUDGET_MS + SLACK_MS)),
    ]);
    const ms = performance.now() - begun;
    expect(outcome, `after ${Math.round(ms)} ms`).toMatchObject({ deadline: true });
    expect(ms).toBeGreaterThanOrEqual(WARM_UP_BUDGET_MS - 50);
    expect(ms).toBeLessThan(WARM_UP_BUDGET_MS + SLACK_MS);
  });
});
