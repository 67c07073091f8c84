// Public endpoints: liveness, readiness and the contract. No token, no user data.
import { readFileSync } from 'node:fs';
import { Router } from 'express';
import type { Database } from '../db/types.js';
import type { Contract, Json } from '../http/contract.js';
import { HttpProblem, problems } from '../http/problem.js';

function readIfPresent(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

export function systemRouter(db: Database, contract: Contract, docsFile: string | undefined): Router {
  const docs = readIfPresent(docsFile);
  const router = Router();

  router.get('/health', (_req, res) => {
    const body: Json<'getHealth', 200> = { status: 'ok' };
    res.json(body);
  });

  router.get('/ready', async (req, res) => {
    try {
      await db.query('SELECT 1');
    } catch (err) {
      req.log?.warn({ err: { message: (err as Error).message } }, 'readiness check failed');
      throw problems.unavailable('database_unavailable', 'The database is not reachable right now.');
    }
    const body: Json<'getReadiness', 200> = { status: 'ready', checks: { database: 'ok' } };
    res.json(body);
  });

  // Served verbatim: byte for byte the bundle that generated the types and drives the validator.
  router.get('/openapi.json', (_req, res) => {
    res.type('application/json').send(contract.json);
  });
  router.get('/openapi.yaml', (_req, res) => {
    res.type('application/yaml').send(contract.yaml);
  });

  router.get('/docs', (_req, res) => {
    if (docs === undefined) {
      throw new HttpProblem({
        status: 404,
        code: 'not_found',
        title: 'Not found',
        detail: 'The API reference has not been built on this server; run `npm run docs`.',
      });
    }
    // The page is Redoc, inlined: it needs inline script and style, and nothing from elsewhere.
    res
      .set(
        'Content-Security-Policy',
        "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
          "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      )
      .type('text/html')
      .send(docs);
  });

  return router;
}
