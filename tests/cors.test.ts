// The precomputed CORS answers (src/http/cors.ts) are the ones the `cors` package gives, header for
// header, for every kind of request and configuration the app uses.
import cors from 'cors';
import express from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { corsPolicy } from '../src/http/cors.js';

const allowedHeaders = ['Authorization', 'Content-Type', 'If-Match'];
const exposedHeaders = ['Link', 'ETag', 'X-Request-Id'];

function appWith(handler: express.RequestHandler) {
  const app = express();
  app.use(handler);
  app.all('/x', (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

const corsHeaders = (headers: Record<string, string>) =>
  Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith('access-control-') || k === 'vary'));

describe('CORS answers worked out once', () => {
  for (const origins of [['*'], ['http://localhost:3000'], ['https://a.example', 'https://b.example'], []]) {
    it(`match the cors package for origins ${JSON.stringify(origins)}`, async () => {
      const ours = appWith(corsPolicy({ origins, allowedHeaders, exposedHeaders, maxAgeSec: 600 }));
      const theirs = appWith(cors({ origin: origins.includes('*') ? '*' : origins, allowedHeaders, exposedHeaders, maxAge: 600 }));
      for (const method of ['get', 'post', 'patch', 'delete', 'options'] as const) {
        for (const origin of [undefined, 'http://localhost:3000', 'https://b.example', 'https://evil.example']) {
          const send = (app: express.Express) => {
            const req = request(app)[method]('/x');
            if (origin) req.set('Origin', origin);
            if (method === 'options') req.set('Access-Control-Request-Method', 'PATCH');
            return req;
          };
          const [a, b] = await Promise.all([send(ours), send(theirs)]);
          expect(a.status, `${method} ${origin}`).toBe(b.status);
          expect(corsHeaders(a.headers), `${method} ${origin}`).toEqual(corsHeaders(b.headers));
        }
      }
    });
  }
});
