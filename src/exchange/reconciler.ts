import { log } from '../logger.js';
import type { Database } from '../store/db.js';
import { batchJobOf, deliveryJobId, type Change, type DeliveryJobRef } from './deliveries.js';
import type { AnyQueue } from './queues.js';
import { CHANGE_JOB_OPTIONS, changeJobId } from './relay.js';

const BATCH = 500;

type QueueState = 'missing' | 'finished' | 'held';

/**
 * The store is the record of what is owed; the queue only carries it. Every interval this compares the
 * two and re-enqueues what the queue no longer holds (a Redis that lost its data, a job that stalled
 * too often, a crash between a commit and an add): changes relayed but never matched, pending
 * deliveries whose job is gone, and deliveries left waiting behind nothing.
 */
export class Reconciler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly changes: AnyQueue,
    private readonly deliveries: AnyQueue,
    private readonly enqueueDeliveries: (refs: DeliveryJobRef[]) => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.run()
        .then(() => {})
        .catch((err: Error) => log.warn({ err: err.message }, 'reconciliation failed'))
        .finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async run(): Promise<{ changes: number; deliveries: number }> {
    const changes = await this.unmatchedChanges();
    const deliveries = (await this.lostDeliveries()) + (await this.orphanedWaits());
    if (changes || deliveries) log.info({ changes, deliveries }, 're-enqueued work the queue did not hold');
    return { changes, deliveries };
  }

  private get age(): string {
    return `${Math.max(1, Math.round(this.intervalMs / 1000))} seconds`;
  }

  private async unmatchedChanges(): Promise<number> {
    const { rows } = await this.db.query<{ seq: number; resource_type: string; id: string; version_id: number; action: Change['action']; owner: string | null; patient_id: string | null; at: number }>(
      `SELECT seq, resource_type, id, version_id, action, owner, patient_id, (extract(epoch FROM created_at) * 1000)::float8 AS at
       FROM outbox WHERE matched_at IS NULL AND relayed_at < now() - $1::interval ORDER BY seq LIMIT ${BATCH}`, [this.age]);
    let fixed = 0;
    for (const r of rows) {
      const job = await this.changes.getJob(changeJobId(Number(r.seq)));
      const state = job && (await job.getState());
      if (state === 'failed') await job!.retry();
      else if (!job || state === 'completed' || state === 'unknown') {
        if (job) await job.remove();
        const change: Change = { seq: Number(r.seq), resourceType: r.resource_type, id: r.id, versionId: r.version_id, action: r.action, owner: r.owner, patientId: r.patient_id, committedAt: r.at };
        await this.changes.add('change', change, { ...CHANGE_JOB_OPTIONS, jobId: changeJobId(change.seq) });
      } else continue;
      fixed++;
    }
    return fixed;
  }

  private async lostDeliveries(): Promise<number> {
    const { rows } = await this.db.query<DeliveryJobRef>(
      `SELECT id, generation, subscriber, change_seq AS "changeSeq" FROM delivery WHERE status = 'pending' AND queued
         AND updated_at < now() - $1::interval
       ORDER BY id LIMIT ${BATCH}`, [this.age]);
    // A batch's job carries many rows: it is looked at (and, if it failed, retried) once per run.
    const looked = new Map<string, Promise<QueueState>>();
    const stateOf = (jobId: string) => {
      if (!looked.has(jobId)) looked.set(jobId, this.queueState(jobId));
      return looked.get(jobId)!;
    };
    const lost: number[] = [];
    for (const ref of rows) {
      let state = await stateOf(deliveryJobId(ref));
      const batch = state === 'missing' ? batchJobOf(ref) : undefined;
      if (batch) state = await stateOf(batch);
      if (state === 'missing' || state === 'finished') lost.push(Number(ref.id));
    }
    return this.requeue(lost, 'AND queued');
  }

  /** Whether the queue still holds a job: a failed one is retried (it then holds it again). */
  private async queueState(jobId: string): Promise<QueueState> {
    const job = await this.deliveries.getJob(jobId);
    const state = job && (await job.getState());
    if (!job || state === 'unknown') return 'missing';
    if (state === 'completed') return 'finished';
    if (state === 'failed') await job.retry();
    return 'held';
  }

  private async orphanedWaits(): Promise<number> {
    const { rows } = await this.db.query<{ id: number }>(
      `SELECT d.id FROM delivery d WHERE d.status = 'pending' AND NOT d.queued AND d.updated_at < now() - $1::interval
         AND NOT EXISTS (SELECT 1 FROM delivery p WHERE p.subscription_id = d.subscription_id AND p.order_key = d.order_key
           AND p.status = 'pending' AND p.change_seq < d.change_seq)
       ORDER BY d.id LIMIT ${BATCH}`, [this.age]);
    return this.requeue(rows.map((r) => Number(r.id)), '');
  }

  /** A new generation gets a new job id (the old job, if any, is finished). */
  private async requeue(ids: number[], condition: string): Promise<number> {
    if (!ids.length) return 0;
    const { rows } = await this.db.query<DeliveryJobRef>(
      `UPDATE delivery SET queued = true, generation = generation + 1, updated_at = now()
       WHERE id = ANY($1::bigint[]) AND status = 'pending' ${condition}
       RETURNING id, generation, subscriber, (SELECT st.purpose FROM subscription_state st WHERE st.id = delivery.subscription_id) AS purpose`, [ids]);
    await this.enqueueDeliveries(rows);
    return rows.length;
  }
}
