import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Config } from '../config.js';
import { buildServices } from '../gateway.js';
import { log } from '../logger.js';
import { operationsRoutes } from '../operations.js';

export interface WorkerProcess {
  /** The port of the operations listener (/healthz, /readyz, /metrics). */
  port: number;
  close(): Promise<void>;
}

/**
 * `renkei worker`: the change and delivery workers (with the relay, heartbeats and reconciliation) on
 * the server deployment's PostgreSQL and Redis, and a small listener on RENKEI_WORKER_PORT for health
 * checks and the delivery metrics, which only worker processes count. On the embedded store
 * `renkei serve` runs the workers: the store belongs to one process.
 */
export async function startWorkerProcess(config: Config): Promise<WorkerProcess> {
  if (!config.databaseUrl) throw new Error('renkei worker needs DATABASE_URL (on the embedded store, renkei serve runs the workers)');
  const services = await buildServices(config);
  await services.exchange.startWorkers();
  const app = express();
  app.disable('x-powered-by');
  app.use(operationsRoutes(services));
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.workerPort, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  log.info({ port }, 'worker operations listening');
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await services.exchange.close();
        await services.audit.flush();
        await services.db.close();
        log.info('worker stopped');
      })()),
  };
}
