import { integerSetting, onOffSetting } from '../settings.js';

/** Settings of the exchange engine (queues, relay, workers, delivery); see the README's "Notifications". */
export interface ExchangeSettings {
  /** Redis key prefix of the queues (the PostgreSQL backend namespaces by schema and ignores it). */
  queuePrefix: string;
  /** Run the change and delivery workers inside `renkei serve` (default: on for the embedded store). */
  workers: boolean;
  /** Run the outbox relay in this process (several relays may run: job ids make a re-add a no-op). */
  relay: boolean;
  relayIntervalMs: number;
  changeConcurrency: number;
  deliveryConcurrency: number;
  /** Deliveries started per second across all workers; 0 = unlimited. */
  deliveryRateLimit: number;
  deliveryAttempts: number;
  /** Failed attempts in a row (any notification of the subscription) after which it goes to error. */
  subscriptionErrorAfter: number;
  deliveryMaxAgeSeconds: number;
  backoffMs: number;
  backoffMaxMs: number;
  deliveryTimeoutMs: number;
  /** How often due heartbeats and expired subscriptions are looked for. */
  heartbeatTickMs: number;
  /** A job whose worker stops renewing its lock for this long is taken over by another worker. */
  queueLockMs: number;
  /** How often the database is compared with the queues to re-enqueue anything the queue lost. */
  reconcileIntervalMs: number;
  /** Ended notifications and matched changes older than this many days are deleted (0: kept for ever). */
  retentionDays: number;
}

/** One Redis may serve several gateways: by default each store's queues get their own prefix. */
function defaultPrefix(databaseUrl: string | undefined): string {
  if (!databaseUrl) return 'renkei';
  const name = new URL(databaseUrl).pathname.replace(/^\//, '') || 'postgres';
  return `renkei:${name}`;
}

export function exchangeSettings(env: NodeJS.ProcessEnv): ExchangeSettings {
  const databaseUrl = env.DATABASE_URL || undefined;
  return {
    queuePrefix: env.RENKEI_QUEUE_PREFIX || defaultPrefix(databaseUrl),
    workers: onOffSetting(env, 'RENKEI_WORKERS', !databaseUrl),
    relay: onOffSetting(env, 'RENKEI_RELAY', true),
    relayIntervalMs: integerSetting(env, 'RENKEI_RELAY_INTERVAL_MS', 50, 1),
    changeConcurrency: integerSetting(env, 'RENKEI_CHANGE_CONCURRENCY', 8, 1),
    deliveryConcurrency: integerSetting(env, 'RENKEI_DELIVERY_CONCURRENCY', 128, 1),
    deliveryRateLimit: integerSetting(env, 'RENKEI_DELIVERY_RATE_LIMIT', 0),
    deliveryAttempts: integerSetting(env, 'RENKEI_DELIVERY_ATTEMPTS', 30, 1),
    subscriptionErrorAfter: integerSetting(env, 'RENKEI_SUBSCRIPTION_ERROR_AFTER', 10, 1),
    deliveryMaxAgeSeconds: integerSetting(env, 'RENKEI_DELIVERY_MAX_AGE', 86_400, 1),
    backoffMs: integerSetting(env, 'RENKEI_DELIVERY_BACKOFF_MS', 1000, 1),
    backoffMaxMs: integerSetting(env, 'RENKEI_DELIVERY_BACKOFF_MAX_MS', 300_000, 1),
    deliveryTimeoutMs: integerSetting(env, 'RENKEI_DELIVERY_TIMEOUT_MS', 10_000, 1),
    heartbeatTickMs: integerSetting(env, 'RENKEI_HEARTBEAT_TICK_MS', 5000, 10),
    queueLockMs: integerSetting(env, 'RENKEI_QUEUE_LOCK_MS', 30_000, 1000),
    reconcileIntervalMs: integerSetting(env, 'RENKEI_RECONCILE_INTERVAL_MS', 60_000, 100),
    retentionDays: integerSetting(env, 'RENKEI_EXCHANGE_RETENTION_DAYS', 90),
  };
}
