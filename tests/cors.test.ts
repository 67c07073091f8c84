// CORS as the app configures it (src/http/cors.ts, over the `cors` package): which origins are
// answered, which headers a browser may send and read, how long a preflight holds, for each kind
// of origin setting the app uses.
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { corsPolicy } from '../src/http/cors.js';

const allowedHeaders = ['Authorization', 'Content-Type', 'If-Match'];
const exposedHeaders = ['Link', 'ETag', 'X-Request-Id'];

function appWith(origins: string[]) {
  const app = express();
  app.use(corsPolicy({ origins, allowedHeaders, exposedHeaders, maxAgeSec: 600 }));
  app.all('/x', (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

describe('CORS', () => {
  it('answers a listed origin with itself, varies by Origin, and exposes the headers a frontend reads', async () => {
    const app = appWith(['https://a.example', 'https://b.example']);
    for (const origin of ['https://a.example', 'https://b.example']) {
      const res = await request(app).get('/x').set('Origin', origin);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(res.headers.vary).toMatch(/Origin/);
      expect(res.headers['access-control-expose-headers']).toBe('Link,ETag,X-Request-Id');
    }
  });

  it('gives an origin not listed, or none, no Allow-Origin', async () => {
    const app = appWith(['https://a.example']);
    for (const origin of ['https://evil.example', 'https://a.example.evil.example', 'null']) {
      const res = await request(app).get('/x').set('Origin', origin);
      expect(res.headers['access-control-allow-origin'], origin).toBeUndefined();
    }
    expect((await request(app).get('/x')).headers['access-control-allow-origin']).toBeUndefined();
    expect(
      (await request(appWith([])).get('/x').set('Origin', 'https://a.example')).headers['access-control-allow-origin'],
    ).toBeUndefined();
  });

  it('answers any origin with * when so configured', async () => {
    const res = await request(appWith(['*']))
      .get('/x')
      .set('Origin', 'https://any.example');
    expect(res.headers['access-control-allow-origin']).toBe('*');
  });

  it('answers a preflight with the allowed headers and methods, held for the configured time', async () => {
    const res = await request(appWith(['https://a.example']))
      .options('/x')
      .set('Origin', 'https://a.example')
      .set('Access-Control-Request-Method', 'PATCH');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://a.example');
    expect(res.headers['access-control-allow-headers']).toBe('Authorization,Content-Type,If-Match');
    expect(res.headers['access-control-allow-methods']).toMatch(/PATCH/);
    expect(res.headers['access-control-max-age']).toBe('600');
  });
});
