import { log } from '../logger.js';
import type { Database } from '../store/db.js';
import { settle, type SettleResult, type Settlement } from './deliveries.js';

const MAX_BATCH = 200;
/** Transactions at once, beyond the first only for full batches (see drain). */
const MAX_IN_FLIGHT = 3;
/** Settlements waiting beyond this make `handOver` wait for the commit (backpressure on the workers). */
const MAX_WAITING = 2000;
const DEADLOCK = '40P01';

interface Waiting {
  settlement: Settlement;
  done: () => void;
  failed: (err: Error) => void;
}

/**
 * Settles deliveries in batches: deliveries that finish while settlements are committing go together
 * in the next transaction (status, AuditEvents, successors queued), so a busy worker pays one
 * transaction per batch. A submitted delivery's promise resolves once its settlement is committed.
 */
export class SettlementLedger {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  private idle: (() => void)[] = [];

  constructor(private readonly db: Database, private readonly afterCommit: (result: SettleResult) => Promise<void>) {}

  submit(settlement: Settlement): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ settlement, done: resolve, failed: reject });
      this.drain();
    });
  }

  /**
   * Hands a settlement over without waiting for its commit (while few are waiting): a delivered
   * notification frees its worker slot at once. If the process dies before the commit, the delivery is
   * still pending and the reconciler queues it again (sent again with the same idempotency key).
   */
  handOver(settlement: Settlement): Promise<void> {
    const committed = this.submit(settlement);
    if (this.waiting.length > MAX_WAITING) return committed;
    committed.catch((err: Error) => log.warn({ delivery: settlement.id, err: err.message }, 'settlement not committed; the reconciler will queue it again'));
    return Promise.resolve();
  }

  /** Resolves once everything submitted so far is settled. */
  flush(): Promise<void> {
    if (!this.inFlight && !this.waiting.length) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /**
   * One transaction at a time gathers what finishes meanwhile into the next: a settlement's cost is
   * mostly per statement, so few large batches cost the store less than many small ones (measured in a
   * fan-out: 0.18–0.19 against 0.22–0.25 ms of PostgreSQL CPU per delivery with three at a time). Only a
   * full batch waiting starts another beside it.
   */
  private drain(): void {
    while (this.waiting.length && (!this.inFlight || (this.inFlight < MAX_IN_FLIGHT && this.waiting.length >= MAX_BATCH))) {
      const batch = this.waiting.splice(0, MAX_BATCH);
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.drain();
        if (!this.inFlight && !this.waiting.length) for (const resolve of this.idle.splice(0)) resolve();
      });
    }
  }

  private async run(batch: Waiting[]): Promise<void> {
    let result: SettleResult;
    try {
      result = await this.settleWithRetry(batch.map((b) => b.settlement));
    } catch (err) {
      for (const b of batch) b.failed(err as Error);
      return;
    }
    for (const b of batch) b.done();
    await this.afterCommit(result).catch((err: Error) => log.warn({ err: err.message }, 'follow-up of settled deliveries failed'));
  }

  private async settleWithRetry(batch: Settlement[]): Promise<SettleResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await settle(this.db, batch);
      } catch (err) {
        if ((err as { code?: string }).code !== DEADLOCK || attempt >= 3) throw err;
      }
    }
  }
}
