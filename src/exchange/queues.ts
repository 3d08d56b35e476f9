import type { EventEmitter } from 'node:events';
import {
  createPostgresBackend, Queue, runMigrations, Worker, type BackendFactory, type IQueueBackend, type JobsOptions, type Processor, type WorkerOptions,
} from 'bullmq';
import { Redis } from 'ioredis';
import type pg from 'pg';
import type { Config } from '../config.js';
import { log } from '../logger.js';
import type { Database } from '../store/db.js';

/** Queues by purpose: committed changes to match, and notifications to send. */
export const CHANGES_QUEUE = 'changes';
export const DELIVERIES_QUEUE = 'deliveries';

export type QueueWorkerOptions = Omit<WorkerOptions, 'connection' | 'prefix'>;

interface Retention {
  /** Seconds a finished job stays: re-adding its id meanwhile adds nothing. */
  age: number;
  /** At most this many finished jobs stay (Redis only, see retentionOf). */
  count: number;
}

/** Finished jobs kept per queue: changes a day (the relay's re-add window), deliveries an hour; failures a month. */
const RETENTION: Record<string, { completed: Retention; failed: Retention }> = {
  [CHANGES_QUEUE]: { completed: { age: 24 * 3600, count: 100_000 }, failed: { age: 30 * 24 * 3600, count: 100_000 } },
  [DELIVERIES_QUEUE]: { completed: { age: 3600, count: 10_000 }, failed: { age: 30 * 24 * 3600, count: 100_000 } },
};

/**
 * On PostgreSQL finished jobs are bounded by age only: BullMQ's PostgreSQL backend trims by count with a
 * scan of every finished job of the queue at each completion, while the age is an indexed range.
 */
function retentionOf(name: string, kind: QueueBackend['kind']): Pick<JobsOptions, 'removeOnComplete' | 'removeOnFail'> {
  const keep = RETENTION[name];
  if (!keep) return {};
  const bound = (r: Retention) => (kind === 'postgres' ? { age: r.age } : { age: r.age, count: r.count });
  return { removeOnComplete: bound(keep.completed), removeOnFail: bound(keep.failed) };
}
/** A queue or worker on either backend. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyQueue = Queue<any, any, string, any, any, string, IQueueBackend, any>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyWorker = Worker<any, any, string, IQueueBackend, any, any>;

/**
 * Where the queues live: BullMQ on Redis (REDIS_URL), or BullMQ's PostgreSQL backend on the store
 * itself (the embedded PGlite, or DATABASE_URL when no Redis is configured; schema `public`).
 */
export interface QueueBackend {
  readonly kind: 'redis' | 'postgres';
  /** The fewest jobs worth one bulk add rather than one add each (addJobs). */
  readonly bulkFrom: number;
  queue(name: string): AnyQueue;
  worker(name: string, processor: Processor, options: QueueWorkerOptions): AnyWorker;
  /** Throws when the queue store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function openQueueBackend(config: Config, db: Database): Promise<QueueBackend> {
  if (config.redisUrl) return new RedisQueues(config.redisUrl, config.exchange.queuePrefix);
  const backend = new PostgresQueues(db);
  await backend.migrate();
  return backend;
}

export interface NewJob {
  name: string;
  data: unknown;
  opts: JobsOptions & { jobId: string };
}

/**
 * Adds jobs in order: one bulk add from `bulkFrom` jobs on (see QueueBackend.bulkFrom), fewer one by one.
 */
export async function addJobs(queue: AnyQueue, jobs: NewJob[], bulkFrom: number): Promise<void> {
  if (jobs.length >= bulkFrom) await queue.addBulk(jobs);
  else for (const job of jobs) await queue.add(job.name, job.data, job.opts);
}

/** Errors of a queue or worker are logged, never thrown into the process (a Redis outage is expected). */
function logErrors(emitter: AnyQueue | AnyWorker, name: string): void {
  let last = 0;
  (emitter as unknown as EventEmitter).on('error', (err: Error) => {
    const now = Date.now();
    if (now - last < 5000) return;
    last = now;
    log.warn({ queue: name, err: err.message }, 'queue connection error');
  });
}

class RedisQueues implements QueueBackend {
  readonly kind = 'redis';
  /** A bulk add is one MULTI: cheaper than two adds. */
  readonly bulkFrom = 2;
  /** Producers fail fast while Redis is away (the relay and matcher retry); workers reconnect and wait. */
  private readonly producer: Redis;
  private readonly connections: Redis[] = [];
  private readonly queues = new Map<string, AnyQueue>();

  constructor(private readonly url: string, private readonly prefix: string) {
    this.producer = this.connect({ enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  }

  private connect(options: { enableOfflineQueue?: boolean; maxRetriesPerRequest: number | null }): Redis {
    const redis = new Redis(this.url, { ...options, retryStrategy: (times) => Math.min(200 * times, 2000) });
    redis.on('error', () => {}); // reported through the queues' own error events
    this.connections.push(redis);
    return redis;
  }

  queue(name: string): AnyQueue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.producer, prefix: this.prefix, defaultJobOptions: retentionOf(name, this.kind) }) as AnyQueue;
      logErrors(queue, name);
      this.queues.set(name, queue);
    }
    return queue;
  }

  worker(name: string, processor: Processor, options: QueueWorkerOptions): AnyWorker {
    const worker = new Worker(name, processor, { ...options, connection: this.connect({ maxRetriesPerRequest: null }), prefix: this.prefix }) as AnyWorker;
    logErrors(worker, name);
    return worker;
  }

  async ping(): Promise<void> {
    await this.producer.ping();
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.connections.forEach((c) => c.disconnect());
  }
}

type PgBackend = { connection: { pool: pg.Pool; getListenClient(): Promise<{ emit(event: string, msg: unknown): boolean }> } };
const postgresFactory = createPostgresBackend as unknown as BackendFactory;

/**
 * BullMQ's PostgreSQL backend on the store. A worker waits on LISTEN; on the embedded store every
 * connection shares one PGlite session, so a NOTIFY reaches the connection that sent it rather than the
 * listener: the notifications each queue connection receives are handed on to the workers' listeners.
 */
class PostgresQueues implements QueueBackend {
  readonly kind = 'postgres';
  /**
   * A bulk add has a fixed cost (temporary tables): on the embedded store 10–15 ms whatever the number of
   * jobs up to 50, one add 1.3–1.5 ms; a gateway at 100 changes/s added a few jobs at a time in bulk and
   * spent an eighth of its one session on it.
   */
  readonly bulkFrom = 12;
  private readonly queues = new Map<string, AnyQueue>();
  private readonly workers: AnyWorker[] = [];
  private readonly connection: { connectionString: string; schema: string; max: number };

  constructor(private readonly db: Database) {
    this.connection = { connectionString: db.url, schema: 'public', max: db.embedded ? 4 : 10 };
  }

  async migrate(): Promise<void> {
    const client = await this.db.pool.connect();
    try {
      await runMigrations(client as never, 'public');
    } finally {
      client.release();
    }
  }

  queue(name: string): AnyQueue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection as never, defaultJobOptions: retentionOf(name, this.kind) }, postgresFactory) as AnyQueue;
      logErrors(queue, name);
      this.bridge(queue);
      this.queues.set(name, queue);
    }
    return queue;
  }

  worker(name: string, processor: Processor, options: QueueWorkerOptions): AnyWorker {
    const worker = new Worker(name, processor, { ...options, connection: this.connection as never }, postgresFactory) as AnyWorker;
    logErrors(worker, name);
    this.bridge(worker);
    this.workers.push(worker);
    return worker;
  }

  private bridge(owner: AnyQueue | AnyWorker): void {
    if (!this.db.embedded) return;
    const pool = (owner.backend as unknown as PgBackend).connection.pool;
    pool.on('connect', (client) => client.on('notification', (msg) => this.wakeWorkers(msg)));
  }

  private wakeWorkers(msg: unknown): void {
    for (const worker of this.workers) {
      (worker.backend as unknown as PgBackend).connection.getListenClient().then((c) => c.emit('notification', msg), () => {});
    }
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT max(version) FROM public.migration');
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

/**
 * Removes every Redis key of the queues under `prefix` (what RENKEI_QUEUE_PREFIX names): for a gateway
 * whose database is dropped, so its queues do not stay behind in a shared Redis.
 */
export async function dropQueueKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true });
  try {
    await redis.connect();
    for await (const keys of redis.scanStream({ match: `${prefix}:*`, count: 1000 }) as AsyncIterable<string[]>) {
      if (keys.length) await redis.unlink(...keys);
    }
  } finally {
    redis.disconnect();
  }
}
