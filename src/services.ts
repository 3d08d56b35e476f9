import type { AuditRecorder } from './audit/recorder.js';
import type { AuthServices } from './auth/index.js';
import type { Config } from './config.js';
import type { Exchange } from './exchange/engine.js';
import type { Database } from './store/db.js';
import type { Repository } from './store/repository.js';

/** Everything a request handler or worker needs, built once at start. */
export interface Services {
  config: Config;
  db: Database;
  repo: Repository;
  audit: AuditRecorder;
  auth: AuthServices;
  /** Queues, outbox relay and (where they run) the notification workers. */
  exchange: Exchange;
  readiness(): Promise<Record<string, 'ok' | string>>;
}
