import client from 'prom-client';
import { registry } from '../metrics.js';

/** Notifications by kind (event, handshake, heartbeat) and outcome (delivered, retry, dead, withheld, cancelled). */
export const deliveryOutcomes = new client.Counter({
  name: 'renkei_deliveries_total',
  help: 'Notification attempts and decisions by kind and outcome',
  labelNames: ['kind', 'outcome'] as const,
  registers: [registry],
});

/** From the change's commit to the notification's 2xx answer. */
export const deliveryLatency = new client.Histogram({
  name: 'renkei_delivery_latency_seconds',
  help: 'Time from a committed change to its delivered notification',
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
  registers: [registry],
});

type DepthSource = () => Promise<Record<string, Record<string, number>>>;
let depthSource: DepthSource | undefined;

/** Jobs per queue and state, read from the queues when /metrics is scraped. */
new client.Gauge({
  name: 'renkei_queue_jobs',
  help: 'Jobs in each queue by state (waiting, active, delayed, failed, completed)',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
  async collect() {
    this.reset();
    if (!depthSource) return;
    const depths = await depthSource().catch(() => ({}) as Record<string, Record<string, number>>);
    for (const [queue, counts] of Object.entries(depths)) {
      for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
    }
  },
});

type BacklogSource = () => Promise<number>;
let backlogSource: BacklogSource | undefined;

/** Committed changes not yet moved into the queue. */
new client.Gauge({
  name: 'renkei_outbox_pending',
  help: 'Committed changes not yet relayed to the queue',
  registers: [registry],
  async collect() {
    this.set(backlogSource ? await backlogSource().catch(() => 0) : 0);
  },
});

export function reportQueueDepths(source: DepthSource | undefined, backlog: BacklogSource | undefined): void {
  depthSource = source;
  backlogSource = backlog;
}
