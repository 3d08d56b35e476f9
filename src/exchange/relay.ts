import type { JobsOptions } from 'bullmq';
import { addJobs, type AnyQueue } from './queues.js';
import { log } from '../logger.js';
import type { Database } from '../store/db.js';
import type { Change } from './deliveries.js';
import { ChannelListener } from '../store/channel-listener.js';

/** The channel a commit that adds outbox rows notifies (trigger outbox_wake, migration 007). */
const OUTBOX_CHANNEL = 'renkei_outbox';
const BATCH = 500;
const MAX_PAUSE_MS = 5000;
/** While a listener is told of each commit, polling is only a safety net. */
const LISTENING_POLL_MS = 1000;

/** Job options of a `changes` job: retried with backoff (its queue keeps it a while once finished). */
export const CHANGE_JOB_OPTIONS: JobsOptions = {
  attempts: 100,
  backoff: { type: 'jittered' },
};

export const changeJobId = (seq: number) => `outbox-${seq}`;

/** A change some subscription may want (Subscription changes drive the subscriptions' own lifecycle). */
const WANTED = `(o.resource_type = 'Subscription' OR o.resource_type IN (SELECT t FROM watched))`;

interface OutboxRow {
  seq: number;
  resource_type: string;
  id: string;
  version_id: number;
  action: Change['action'];
  owner: string | null;
  patient_id: string | null;
  at: number;
}

/**
 * Moves committed changes from the outbox into the `changes` queue, oldest first, with job id
 * `outbox-<seq>` (a re-add is a no-op). While the queue is unreachable the rows wait in
 * the outbox (writes keep committing) and the relay retries with growing pauses. Changes of a type no
 * subscription watches are marked relayed and matched without a job: nothing can be notified of them.
 * On PostgreSQL a commit wakes the relay at once (LISTEN); polling then only covers a lost connection.
 */
export class OutboxRelay {
  private stopped = true;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** A commit was announced since the last batch was read. */
  private announced = false;
  private readonly listener: ChannelListener | undefined;

  constructor(private readonly db: Database, private readonly queue: AnyQueue, private readonly intervalMs: number, private readonly bulkFrom: number) {
    if (!db.embedded) this.listener = new ChannelListener(db.url, OUTBOX_CHANNEL, () => this.announce());
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.listener?.start();
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.listener?.stop();
    this.wake?.();
    await this.loop;
  }

  private announce(): void {
    this.announced = true;
    this.wake?.();
  }

  /**
   * Relays one batch; returns how many outbox rows it handled. The batch is claimed in one statement
   * (rows another relay is claiming are skipped, so relays share the work rather than repeat it); a type
   * nothing watches is marked matched there too (only the claimed types are looked up, by the
   * subscriptions' type index: not every subscription's types on every claim). Claimed changes are then
   * added to the queue; if the queue refuses, the claim is released for the next attempt, and a process
   * that dies in between leaves them to the reconciler (relayed, never matched).
   */
  async relayOnce(): Promise<number> {
    this.announced = false;
    const { rows } = await this.db.query<OutboxRow & { wanted: boolean }>(
      `WITH claimed AS (SELECT seq, resource_type FROM outbox WHERE relayed_at IS NULL ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED),
       watched AS (SELECT c.t FROM (SELECT DISTINCT resource_type AS t FROM claimed) c
         WHERE EXISTS (SELECT 1 FROM subscription_state s WHERE s.status <> 'off' AND s.resource_types @> ARRAY[c.t]))
       UPDATE outbox o SET relayed_at = now(), matched_at = CASE WHEN ${WANTED} THEN o.matched_at ELSE COALESCE(o.matched_at, now()) END
       WHERE o.seq = ANY(ARRAY(SELECT seq FROM claimed))
       RETURNING o.seq, o.resource_type, o.id, o.version_id, o.action, o.owner, o.patient_id,
         (extract(epoch FROM o.created_at) * 1000)::float8 AS at, ${WANTED} AS wanted`, [BATCH]);
    const wanted = rows.filter((r) => r.wanted).sort((a, b) => Number(a.seq) - Number(b.seq));
    if (!wanted.length) return rows.length;
    try {
      await addJobs(this.queue, wanted.map((r) => ({ name: 'change', data: toChange(r), opts: { ...CHANGE_JOB_OPTIONS, jobId: changeJobId(r.seq) } })), this.bulkFrom);
    } catch (err) {
      await this.db.query('UPDATE outbox SET relayed_at = NULL WHERE seq = ANY($1::bigint[]) AND matched_at IS NULL', [wanted.map((r) => r.seq)])
        .catch(() => {});
      throw err;
    }
    return rows.length;
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      let handled = 0;
      try {
        handled = await this.relayOnce();
        if (failures) log.info({ after: failures }, 'outbox relay resumed');
        failures = 0;
      } catch (err) {
        if (failures++ % 20 === 0) log.warn({ err: (err as Error).message }, 'outbox relay waiting for the queue');
      }
      if (this.stopped || handled >= BATCH || (this.announced && !failures)) continue;
      const idle = this.listener?.listening ? Math.max(this.intervalMs, LISTENING_POLL_MS) : this.intervalMs;
      await this.pause(failures ? Math.min(this.intervalMs * 2 ** failures, MAX_PAUSE_MS) : idle);
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}

function toChange(r: OutboxRow): Change {
  return {
    seq: Number(r.seq), resourceType: r.resource_type, id: r.id, versionId: r.version_id, action: r.action,
    owner: r.owner, patientId: r.patient_id, committedAt: r.at,
  };
}
