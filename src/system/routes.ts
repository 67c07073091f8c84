// Public endpoints: liveness, readiness, the contract and the problem types' pages. No token, no user data.
import { Router } from 'express';
import type { Database } from '../db/types.js';
import type { Contract, Json } from '../http/contract.js';
import { problems } from '../http/problem.js';
import { docsHandler } from './docs.js';
import { problemPagesHandler } from './problem-pages.js';

export function systemRouter(db: Database, contract: Contract, docsFile: string | undefined): Router {
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

  router.get('/docs', docsHandler(docsFile));
  // Where each problem's `type` points: what its code means and what to do.
  router.get('/problems/:code', problemPagesHandler(contract.document));

  return router;
}
