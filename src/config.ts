import path from 'node:path';
import { exchangeSettings, type ExchangeSettings } from './exchange/settings.js';
import { ingestSettings, type IngestSettings } from './ingest/settings.js';
import { integerSetting, onOffSetting, sizeSetting } from './settings.js';

/** Settings read from the environment; see the README's "Settings" table. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  databaseUrl?: string;
  redisUrl?: string;
  adminToken?: string;
  mllpPort: number;
  /** `renkei worker`'s own listener for /healthz, /readyz and /metrics. */
  workerPort: number;
  allowPrivateEndpoints: boolean;
  logLevel: string;
  /** Public base URL of the FHIR endpoint, used in links (defaults to the request's own host). */
  baseUrl?: string;
  maxBodyBytes: number;
  tokenLifetimeSeconds: number;
  /** Pool size towards PostgreSQL (or the embedded store's socket). */
  dbPoolSize: number;
  /** Queues, relay, workers and notification delivery. */
  exchange: ExchangeSettings;
  /** MLLP frame limit and message-store retention. */
  ingest: IngestSettings;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const tokenLifetime = integerSetting(env, 'RENKEI_TOKEN_LIFETIME', 300);
  return {
    port: integerSetting(env, 'PORT', 8080),
    host: env.HOST || '0.0.0.0',
    dataDir: path.resolve(env.RENKEI_DATA_DIR || './data'),
    databaseUrl: env.DATABASE_URL || undefined,
    redisUrl: env.REDIS_URL || undefined,
    adminToken: env.RENKEI_ADMIN_TOKEN || undefined,
    mllpPort: integerSetting(env, 'MLLP_PORT', 2575),
    workerPort: integerSetting(env, 'RENKEI_WORKER_PORT', 8081),
    allowPrivateEndpoints: onOffSetting(env, 'RENKEI_ALLOW_PRIVATE_ENDPOINTS', false),
    logLevel: env.LOG_LEVEL || 'info',
    baseUrl: env.RENKEI_BASE_URL?.replace(/\/$/, '') || undefined,
    maxBodyBytes: sizeSetting(env, 'RENKEI_MAX_BODY', 16 * 1024 * 1024),
    tokenLifetimeSeconds: Math.min(tokenLifetime, 300),
    dbPoolSize: integerSetting(env, 'RENKEI_DB_POOL', 16),
    exchange: exchangeSettings(env),
    ingest: ingestSettings(env),
  };
}
