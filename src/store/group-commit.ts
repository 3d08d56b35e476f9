import type { PreparedWrite } from './write-batch.js';

type Flush = (writes: PreparedWrite[]) => Promise<void>;

interface Waiting {
  writes: PreparedWrite[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Commits independent writes of concurrent requests together: while `maxInFlight` statements are
 * running, newly submitted writes wait and then go in one statement. Each request still learns only
 * its own outcome: when a combined statement fails, its parts are committed one by one, so a bad
 * write never fails its neighbours.
 */
export class GroupCommit {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;

  constructor(private readonly flush: Flush, private readonly maxInFlight = 4, private readonly maxWrites = 500) {}

  submit(writes: PreparedWrite[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ writes, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private takeBatch(): Waiting[] {
    const batch = [this.waiting.shift()!];
    let size = batch[0].writes.length;
    while (this.waiting.length && size + this.waiting[0].writes.length <= this.maxWrites) {
      const next = this.waiting.shift()!;
      size += next.writes.length;
      batch.push(next);
    }
    return batch;
  }

  private async run(batch: Waiting[]): Promise<void> {
    try {
      await this.flush(batch.flatMap((b) => b.writes));
      for (const b of batch) b.resolve();
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      await Promise.all(batch.map((b) => this.flush(b.writes).then(b.resolve, b.reject)));
    }
  }
}
