import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { AuditRecorder } from './audit/recorder.js';
import { sealAuditChain } from './audit/chain.js';
import { buildAuthServices } from './auth/index.js';
import type { Config } from './config.js';
import { Exchange } from './exchange/engine.js';
import { mappings } from './ingest/mappings.js';
import { startMllpListener, type MllpListener } from './ingest/mllp.js';
import { startMessagePruner } from './ingest/pruner.js';
import { log } from './logger.js';
import type { Services } from './services.js';
import { openDatabase } from './store/db.js';
import { migrate } from './store/migrate.js';
import { keepStatistics } from './store/statistics.js';
import { Repository } from './store/repository.js';
import { SocketHub } from './subscriptions/websocket/hub.js';

export interface Gateway {
  services: Services;
  server: http.Server;
  url: string;
  /** The HL7 v2 MLLP listener (MLLP_PORT). */
  mllp: MllpListener;
  close(): Promise<void>;
}

export async function buildServices(config: Config): Promise<Services> {
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: config.dbPoolSize });
  await migrate(db);
  const repo = new Repository(db);
  const audit = new AuditRecorder((rows) => repo.appendAudit(rows));
  const exchange = await Exchange.open({ config, db, repo, audit });
  return {
    config,
    db,
    repo,
    audit,
    auth: buildAuthServices(db, config),
    exchange,
    async readiness() {
      const [store, queue] = await Promise.all([
        db.query('SELECT 1').then(() => 'ok', (err: Error) => `unreachable: ${err.message}`),
        exchange.readiness(),
      ]);
      return { store, queue };
    },
  };
}

/** Opens the store, serves the API and returns a handle that drains requests on close. */
export async function startGateway(config: Config): Promise<Gateway> {
  mappings(); // a broken mapping file stops the start, rather than failing messages one by one
  const services = await buildServices(config);
  if (config.exchange.workers) await services.exchange.startWorkers();
  const app = createApp(services);
  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  const sockets = new SocketHub(services.db, () => (config.baseUrl ? `${config.baseUrl}/fhir` : undefined));
  sockets.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  log.info({ port, embedded: services.db.embedded }, 'gateway listening');
  const mllp = await startMllpListener(services, config.mllpPort).catch(async (err: Error) => {
    // The MLLP port is taken: give back what is already open, so the failure leaves nothing running.
    await new Promise((resolve) => server.close(resolve));
    await sockets.close();
    await services.exchange.close();
    await services.db.close();
    throw err;
  });
  const pruner = startMessagePruner(services);
  const statistics = keepStatistics(services.db);
  const sealer = setInterval(() => {
    sealAuditChain(services.db).catch((err: Error) => log.error({ err: err.message }, 'audit chain sealing failed'));
  }, SEAL_INTERVAL_MS);
  sealer.unref();
  let closing: Promise<void> | undefined;
  return {
    services,
    server,
    url,
    mllp,
    close: () =>
      (closing ??= (async () => {
        await Promise.all([drain(server), mllp.close(), sockets.close()]);
        clearInterval(sealer);
        await pruner.stop();
        statistics.stop();
        await services.exchange.close();
        await services.audit.flush();
        await sealAuditChain(services.db).catch((err: Error) => log.error({ err: err.message }, 'audit chain sealing failed'));
        await services.db.close();
        log.info('gateway stopped');
      })()),
  };
}

const DRAIN_DEADLINE_MS = 10_000;
const SEAL_INTERVAL_MS = 1000;

/**
 * Stops accepting connections and waits for requests in flight. A keep-alive connection is closed
 * as soon as it turns idle (its response sent); whatever is still open at the deadline is cut.
 */
function drain(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    const deadline = setTimeout(() => server.closeAllConnections(), DRAIN_DEADLINE_MS);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}
