// Prometheus metrics (prom-client) on a registry of this app's own: request counts and latency by
// route and status, database pool usage, and Node's defaults (event-loop lag among them).
import { Router, type RequestHandler } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../db/types.js';
import { problems } from './problem.js';

export interface Metrics {
  registry: Registry;
  middleware: RequestHandler;
}

export function createMetrics(db: Database): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 10 });
  const labelNames = ['method', 'route', 'status'] as const;
  const requests = new Counter({ name: 'http_requests_total', help: 'HTTP requests answered', labelNames, registers: [registry] });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer HTTP requests',
    labelNames,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  new Gauge({
    name: 'db_pool_connections',
    help: 'Database connections by state (PostgreSQL pool; the embedded database has one)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const stats = db.poolStats();
      this.set({ state: 'total' }, stats.total);
      this.set({ state: 'idle' }, stats.idle);
      this.set({ state: 'waiting' }, stats.waiting);
    },
  });

  const middleware: RequestHandler = (req, res, next) => {
    const end = duration.startTimer();
    res.once('finish', () => {
      // The route template, never the raw URL: ids in paths would explode the label set.
      const route = req.route?.path ? `${res.locals.mount ?? ''}${req.route.path as string}` : 'unmatched';
      const labels = { method: req.method, route, status: String(res.statusCode) };
      requests.inc(labels);
      end(labels);
    });
    next();
  };
  return { registry, middleware };
}

/** GET /metrics: the registry's text, behind METRICS_TOKEN when one is set; 404 when metrics are off. */
export function metricsRouter(metrics: Metrics | undefined, token: string | undefined): Router {
  const router = Router();
  router.get('/metrics', async (req, res) => {
    if (!metrics) throw problems.notFound('Metrics are turned off on this server (METRICS).');
    if (token && req.headers.authorization !== `Bearer ${token}`) {
      throw problems.unauthorized(
        'token_invalid',
        'Metrics need `Authorization: Bearer <METRICS_TOKEN>`.',
        'Bearer realm="todo-api-metrics"',
      );
    }
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
