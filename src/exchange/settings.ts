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
}

function int(env: NodeJS.ProcessEnv, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer of at least ${min}, got "${raw}"`);
  return value;
}

/** An on/off setting: on, true, 1, yes or off, false, 0, no; anything else is refused at start. */
export function onOff(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw) return fallback;
  if (['on', 'true', '1', 'yes'].includes(raw)) return true;
  if (['off', 'false', '0', 'no'].includes(raw)) return false;
  throw new Error(`${name} must be on or off, got "${env[name]}"`);
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
    workers: onOff(env, 'RENKEI_WORKERS', !databaseUrl),
    relay: onOff(env, 'RENKEI_RELAY', true),
    relayIntervalMs: int(env, 'RENKEI_RELAY_INTERVAL_MS', 50, 1),
    changeConcurrency: int(env, 'RENKEI_CHANGE_CONCURRENCY', 8, 1),
    deliveryConcurrency: int(env, 'RENKEI_DELIVERY_CONCURRENCY', 64, 1),
    deliveryRateLimit: int(env, 'RENKEI_DELIVERY_RATE_LIMIT', 0),
    deliveryAttempts: int(env, 'RENKEI_DELIVERY_ATTEMPTS', 30, 1),
    deliveryMaxAgeSeconds: int(env, 'RENKEI_DELIVERY_MAX_AGE', 86_400, 1),
    backoffMs: int(env, 'RENKEI_DELIVERY_BACKOFF_MS', 1000, 1),
    backoffMaxMs: int(env, 'RENKEI_DELIVERY_BACKOFF_MAX_MS', 300_000, 1),
    deliveryTimeoutMs: int(env, 'RENKEI_DELIVERY_TIMEOUT_MS', 10_000, 1),
    heartbeatTickMs: int(env, 'RENKEI_HEARTBEAT_TICK_MS', 5000, 10),
    queueLockMs: int(env, 'RENKEI_QUEUE_LOCK_MS', 30_000, 1000),
    reconcileIntervalMs: int(env, 'RENKEI_RECONCILE_INTERVAL_MS', 60_000, 100),
  };
}
