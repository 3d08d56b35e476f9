import type { Config } from '../config.js';
import { buildServices } from '../gateway.js';
import { log } from '../logger.js';

/**
 * `renkei worker`: the change and delivery workers (with the relay, heartbeats and reconciliation) on
 * the server deployment's PostgreSQL and Redis. On the embedded store `renkei serve` runs them: the
 * store belongs to one process.
 */
export async function startWorkerProcess(config: Config): Promise<{ close(): Promise<void> }> {
  if (!config.databaseUrl) throw new Error('renkei worker needs DATABASE_URL (on the embedded store, renkei serve runs the workers)');
  const services = await buildServices(config);
  await services.exchange.startWorkers();
  let closing: Promise<void> | undefined;
  return {
    close: () =>
      (closing ??= (async () => {
        await services.exchange.close();
        await services.audit.flush();
        await services.db.close();
        log.info('worker stopped');
      })()),
  };
}
