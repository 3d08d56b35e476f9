import { log } from '../logger.js';
import type { AuditRow } from '../store/write-batch.js';

type Append = (rows: AuditRow[]) => Promise<void>;

/**
 * Records AuditEvents for reads and searches (writes commit theirs in the write's own transaction).
 * Group commit: a request waits until its entry is stored; entries arriving while an insert runs go
 * together in the next one, so a busy gateway pays one insert per batch, not per read.
 */
export class AuditRecorder {
  private pending: { row: AuditRow; done: () => void; failed: (err: Error) => void }[] = [];
  private flushing: Promise<void> | undefined;

  constructor(private readonly append: Append, private readonly maxBatch = 500) {}

  /** Stores one entry, or several (an access and its disclosures) in the same batch. */
  record(...rows: AuditRow[]): Promise<void> {
    const stored = rows.map((row) => new Promise<void>((resolve, reject) => {
      this.pending.push({ row, done: resolve, failed: reject });
    }));
    if (!this.flushing) this.flushing = this.drain();
    return Promise.all(stored).then(() => undefined);
  }

  /** Waits until everything recorded so far is stored. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, this.maxBatch);
        try {
          await this.append(batch.map((b) => b.row));
          for (const b of batch) b.done();
        } catch (err) {
          log.error({ err, entries: batch.length }, 'audit entries could not be stored');
          for (const b of batch) b.failed(err as Error);
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
