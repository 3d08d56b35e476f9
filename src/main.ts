#!/usr/bin/env node
import { loadConfig } from './config.js';
import { startWorkerProcess } from './exchange/worker-process.js';
import { startGateway } from './gateway.js';
import { createLogger, log, setLogger } from './logger.js';
import { openDatabase } from './store/db.js';
import { migrate } from './store/migrate.js';

const USAGE = 'usage: renkei serve | worker | migrate';

async function main(command: string | undefined): Promise<void> {
  const config = loadConfig();
  setLogger(createLogger(config.logLevel));
  switch (command ?? 'serve') {
    case 'serve': {
      const started = Date.now();
      const gateway = await startGateway(config);
      log.info({ startupMs: Date.now() - started }, 'ready');
      onShutdown(() => gateway.close());
      return;
    }
    case 'migrate': {
      const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolSize: 1 });
      const applied = await migrate(db);
      log.info({ applied }, 'migrations done');
      await db.close();
      return;
    }
    case 'worker': {
      const worker = await startWorkerProcess(config);
      log.info('worker ready');
      onShutdown(() => worker.close());
      return;
    }
    default:
      console.error(USAGE);
      process.exitCode = 2;
  }
}

function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: draining requests');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

main(process.argv[2]).catch((err) => {
  log.fatal({ err }, 'gateway failed to start');
  process.exit(1);
});
