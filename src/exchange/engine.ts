import type { JobsOptions } from 'bullmq';
import type { AuditRecorder } from '../audit/recorder.js';
import type { Config } from '../config.js';
import { FhirService } from '../fhir/service.js';
import { log } from '../logger.js';
import type { Database } from '../store/db.js';
import type { Repository } from '../store/repository.js';
import { registerEndpointPolicy, type EndpointPolicy } from '../subscriptions/endpoint-policy.js';
import { HeartbeatTicker } from '../subscriptions/heartbeats.js';
import { SubscriptionLifecycle } from '../subscriptions/lifecycle.js';
import { changeProcessor } from '../subscriptions/match-change.js';
import { SpecCache } from '../subscriptions/state.js';
import { WebhookClient } from '../subscriptions/webhook-client.js';
import { deliveryProcessor, DELIVERY_BATCH_JOB, DELIVERY_JOB, jobDataOf, memberDataOf, type DeliveryBatchData, type DeliveryJobData } from '../subscriptions/deliver.js';
import { batchesOf, deliveryJobId, type DeliveryJobRef, type SettleResult } from './deliveries.js';
import { DeliveryLoader } from './delivery-loader.js';
import { SettlementLedger } from './ledger.js';
import { reportQueueDepths } from './metrics.js';
import { addJobs, type NewJob, CHANGES_QUEUE, DELIVERIES_QUEUE, openQueueBackend, type AnyQueue, type AnyWorker, type QueueBackend } from './queues.js';
import { Reconciler } from './reconciler.js';
import { startExchangePruner } from './retention.js';
import { OutboxRelay } from './relay.js';
import { backoffDelay } from './retry.js';

export interface ExchangeDeps {
  config: Config;
  db: Database;
  repo: Repository;
  audit: AuditRecorder;
}

/** Changes are matched with a short, capped backoff: their failures are the store's, not an endpoint's. */
const CHANGE_BACKOFF = { backoffMs: 500, backoffMaxMs: 60_000 };

/**
 * The exchange engine of one process: the queues, the outbox relay (when enabled), and — in a worker
 * process or `serve` on the embedded store — the change and delivery workers, the heartbeat ticker and
 * the reconciler.
 */
export class Exchange {
  readonly changes: AnyQueue;
  readonly deliveries: AnyQueue;
  private readonly relay: OutboxRelay | undefined;
  private readonly workers: AnyWorker[] = [];
  private readonly stoppables: { stop(): Promise<void> }[] = [];
  private client: WebhookClient | undefined;
  private ledger: SettlementLedger | undefined;
  private readonly deliveryJobOptions: JobsOptions;

  private constructor(private readonly deps: ExchangeDeps, readonly backend: QueueBackend, private readonly policy: EndpointPolicy) {
    const settings = deps.config.exchange;
    this.changes = backend.queue(CHANGES_QUEUE);
    this.deliveries = backend.queue(DELIVERIES_QUEUE);
    this.deliveryJobOptions = {
      attempts: settings.deliveryAttempts,
      backoff: { type: 'jittered' },
    };
    if (settings.relay) this.relay = new OutboxRelay(deps.db, this.changes, settings.relayIntervalMs, backend.bulkFrom);
    reportQueueDepths(
      async () => ({ [CHANGES_QUEUE]: await this.changes.getJobCounts(), [DELIVERIES_QUEUE]: await this.deliveries.getJobCounts() }),
      async () => (await deps.db.query<{ n: number }>('SELECT count(*) AS n FROM outbox WHERE relayed_at IS NULL')).rows[0].n,
    );
  }

  /** Opens the queues and starts the relay; workers start with startWorkers(). */
  static async open(deps: ExchangeDeps): Promise<Exchange> {
    const policy = { allowPrivate: deps.config.allowPrivateEndpoints };
    registerEndpointPolicy(deps.db, policy);
    const backend = await openQueueBackend(deps.config, deps.db);
    const exchange = new Exchange(deps, backend, policy);
    exchange.relay?.start();
    log.info({ queue: backend.kind, relay: Boolean(exchange.relay) }, 'exchange started');
    return exchange;
  }

  /**
   * Queues deliveries: a change's deliveries go in batch jobs (see batchesOf), unless a delivery rate
   * limit is set (the queue limits jobs, so each delivery is then a job); any other in a job of its own.
   */
  async enqueueDeliveries(refs: DeliveryJobRef[]): Promise<void> {
    if (!refs.length) return;
    const { batches, alone } = this.deps.config.exchange.deliveryRateLimit ? { batches: new Map(), alone: refs } : batchesOf(refs);
    const jobs: NewJob[] = alone.map((ref) => this.singleJob(ref));
    for (const [jobId, members] of batches) {
      const data: DeliveryBatchData = { deliveries: members.map(memberDataOf) };
      jobs.push({ name: DELIVERY_BATCH_JOB, data, opts: { ...this.deliveryJobOptions, jobId } });
    }
    await addJobs(this.deliveries, jobs, this.backend.bulkFrom);
  }

  /** A delivery's own job, after `delayMs` (a delivery that left its batch to be retried). */
  async enqueueLater(ref: DeliveryJobRef, delayMs: number, attempted = 0): Promise<void> {
    const job = this.singleJob(ref, attempted);
    await addJobs(this.deliveries, [{ ...job, opts: { ...job.opts, delay: delayMs } }], this.backend.bulkFrom);
  }

  private singleJob(ref: DeliveryJobRef, attempted = 0): NewJob {
    return {
      name: DELIVERY_JOB,
      data: { ...jobDataOf(ref), ...(attempted ? { attempted } : {}) } satisfies DeliveryJobData,
      opts: { ...this.deliveryJobOptions, jobId: deliveryJobId(ref) },
    };
  }

  async startWorkers(): Promise<void> {
    if (this.workers.length) return;
    const { config, db, repo, audit } = this.deps;
    const settings = config.exchange;
    const fhir = new FhirService(db, repo, audit);
    const enqueue = (refs: DeliveryJobRef[]) => this.enqueueDeliveries(refs);
    const lifecycle = new SubscriptionLifecycle({ db, fhir, policy: this.policy, errorAfter: settings.subscriptionErrorAfter, enqueue });
    const specs = new SpecCache();
    this.client = new WebhookClient(this.policy);
    this.ledger = new SettlementLedger(db, async (result: SettleResult) => {
      await enqueue(result.woken);
      await lifecycle.activated(result.activated);
    });
    const ledger = this.ledger;
    const lock = { lockDuration: settings.queueLockMs, stalledInterval: settings.queueLockMs, maxStalledCount: 3 };
    this.workers.push(this.backend.worker(CHANGES_QUEUE, changeProcessor({ db, specs, lifecycle, enqueue }) as never, {
      ...lock,
      concurrency: settings.changeConcurrency,
      settings: { backoffStrategy: (attempts: number) => backoffDelay(attempts, CHANGE_BACKOFF) },
    }));
    this.workers.push(this.backend.worker(DELIVERIES_QUEUE, deliveryProcessor({
      db, loader: new DeliveryLoader(db), specs, client: this.client, settings, baseUrl: config.baseUrl ? `${config.baseUrl}/fhir` : undefined,
      settle: (s) => ledger.submit(s),
      settleDelivered: (s) => ledger.handOver(s),
      enqueueLater: (ref, delayMs, attempted) => this.enqueueLater(ref, delayMs, attempted),
      subscriptionFailed: (id, kind, error, final) => lifecycle.deliveryFailed(id, kind, error, final),
    }) as never, {
      ...lock,
      concurrency: settings.deliveryConcurrency,
      ...(settings.deliveryRateLimit ? { limiter: { max: settings.deliveryRateLimit, duration: 1000 } } : {}),
      // A delivery that left its batch after failed attempts continues their backoff.
      settings: { backoffStrategy: (attempts: number, _type?: string, _err?: Error, job?: { data?: Partial<DeliveryJobData> }) =>
        backoffDelay(attempts + (job?.data?.attempted ?? 0), settings) },
    }));
    const heartbeats = new HeartbeatTicker(db, lifecycle, enqueue, settings.heartbeatTickMs);
    const reconciler = new Reconciler(db, this.changes, this.deliveries, enqueue, settings.reconcileIntervalMs);
    heartbeats.start();
    reconciler.start();
    this.stoppables.push(heartbeats, reconciler, startExchangePruner(db, settings.retentionDays));
    await Promise.all(this.workers.map((w) => w.waitUntilReady().catch(() => {})));
    log.info({ changeConcurrency: settings.changeConcurrency, deliveryConcurrency: settings.deliveryConcurrency }, 'exchange workers started');
  }

  /** 'ok', or why the queue cannot be reached. */
  async readiness(): Promise<string> {
    return this.backend.ping().then(() => 'ok', (err: Error) => `unreachable: ${err.message}`);
  }

  /** Stops relaying, lets running jobs finish, settles what they decided and closes the queues. */
  async close(): Promise<void> {
    await this.relay?.stop();
    await Promise.all(this.stoppables.map((s) => s.stop()));
    await Promise.all(this.workers.map((w) => w.close()));
    await this.ledger?.flush();
    this.client?.close();
    reportQueueDepths(undefined, undefined);
    await this.backend.close();
  }
}
