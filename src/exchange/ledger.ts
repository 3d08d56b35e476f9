import { log } from '../logger.js';
import type { Database } from '../store/db.js';
import { settle, type SettleResult, type Settlement } from './deliveries.js';

const MAX_BATCH = 200;
const DEADLOCK = '40P01';

/**
 * Settles deliveries in batches: concurrent deliveries that finish while a settlement commits go
 * together in the next transaction (status, AuditEvents, successors queued), so a busy worker pays one
 * transaction per batch. A delivery's promise resolves once its settlement is committed.
 */
export class SettlementLedger {
  private pending: { settlement: Settlement; done: () => void; failed: (err: Error) => void }[] = [];
  private draining: Promise<void> | undefined;

  constructor(private readonly db: Database, private readonly afterCommit: (result: SettleResult) => Promise<void>) {}

  submit(settlement: Settlement): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ settlement, done: resolve, failed: reject });
      this.draining ??= this.drain();
    });
  }

  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, MAX_BATCH);
        let result: SettleResult;
        try {
          result = await this.settleWithRetry(batch.map((b) => b.settlement));
        } catch (err) {
          for (const b of batch) b.failed(err as Error);
          continue;
        }
        for (const b of batch) b.done();
        await this.afterCommit(result).catch((err: Error) => log.warn({ err: err.message }, 'follow-up of settled deliveries failed'));
      }
    } finally {
      this.draining = undefined;
    }
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
