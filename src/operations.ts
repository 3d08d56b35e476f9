import express from 'express';
import { registry } from './metrics.js';
import type { Services } from './services.js';

/** `/healthz` (process up), `/readyz` (store and queue reachable, 503 otherwise), `/metrics` (Prometheus). */
export function operationsRoutes(services: Pick<Services, 'readiness'>): express.Router {
  const router = express.Router();
  router.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  router.get('/readyz', async (_req, res) => {
    const checks = await services.readiness();
    res.status(Object.values(checks).every((c) => c === 'ok') ? 200 : 503).json(checks);
  });
  router.get('/metrics', async (_req, res) => {
    res.type(registry.contentType).send(await registry.metrics());
  });
  return router;
}
