// /metrics: off by default, protected by METRICS_TOKEN when set, and Prometheus text with request,
// pool and event-loop metrics.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildApp, newUser } from './helpers/app.js';
import { createTestDatabase, type TestDatabase } from './helpers/db.js';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.drop());

describe('/metrics', () => {
  it('is off unless configured', async () => {
    const res = await request(buildApp(database.db).app).get('/metrics');
    expect(res.status).toBe(404);
    expect(res.body.code).toBe('not_found');
  });

  it('needs the metrics token when one is set, and reports requests by route template and status', async () => {
    const { app } = buildApp(database.db, { metrics: { enabled: true, token: 'scrape-me' } });
    const auth = await bearer(newUser());
    const { body: task } = await request(app).post('/api/tasks').set('Authorization', auth).send({ title: 'counted' });
    await request(app).get(`/api/tasks/${task.id}`).set('Authorization', auth);
    await request(app).get('/api/tasks/987654').set('Authorization', auth);
    const user = newUser();
    await request(app)
      .get(`/api/${user}/tasks`)
      .set('Authorization', await bearer(user));

    expect((await request(app).get('/metrics')).status).toBe(401);
    expect((await request(app).get('/metrics').set('Authorization', auth)).status).toBe(401);
    const res = await request(app).get('/metrics').set('Authorization', 'Bearer scrape-me');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toMatch(/http_requests_total\{method="POST",route="\/api\/tasks\/",status="201"\} 1/);
    expect(res.text).toMatch(/http_requests_total\{method="GET",route="\/api\/tasks\/:taskId",status="404"\} 1/);
    // Counted in the latency histogram, whichever bucket a busy machine puts it in.
    expect(res.text).toMatch(
      /http_request_duration_seconds_bucket\{le="\+Inf",method="GET",route="\/api\/tasks\/:taskId",status="200"\} 1/,
    );
    expect(res.text).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/api\/tasks\/:taskId",status="200"\} 1/);
    expect(res.text).toMatch(/db_pool_connections\{state="total"\} \d+/);
    expect(res.text).toMatch(/nodejs_eventloop_lag_seconds \d/);
    expect(res.text).toMatch(/http_requests_total\{method="GET",route="\/api\/:userId\/tasks\/",status="200"\} 1/);
    expect(res.text).not.toContain(`route="/api/tasks/${task.id}`); // ids never become labels
    expect(res.text).not.toContain(user);
  });
});
