interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export interface BatcherOptions<I> {
  /** Runs under way at once. */
  maxInFlight?: number;
  /** A run takes waiting items up to this total size (always at least one item). */
  maxSize?: number;
  /** An item's size; 1 by default. */
  sizeOf?: (item: I) => number;
}

/**
 * Runs the work of concurrent callers together: while `maxInFlight` runs are under way, newly submitted
 * items wait and then go in one run (up to `maxSize`); a lone item goes at once. Each caller learns only
 * its own result: when a run of several fails, its items are run again one by one, so one bad item never
 * fails its neighbours.
 */
export class Batcher<I, O> {
  private readonly waiting: Waiting<I, O>[] = [];
  private inFlight = 0;

  private readonly maxInFlight: number;
  private readonly maxSize: number;
  private readonly sizeOf: (item: I) => number;

  constructor(private readonly run: (items: I[]) => Promise<O[]>, options: BatcherOptions<I> = {}) {
    this.maxInFlight = options.maxInFlight ?? 2;
    this.maxSize = options.maxSize ?? 32;
    this.sizeOf = options.sizeOf ?? (() => 1);
  }

  /** `first`: ahead of what is already waiting (an item handed back by its run). */
  submit(item: I, options: { first?: boolean } = {}): Promise<O> {
    return new Promise((resolve, reject) => {
      if (options.first) this.waiting.unshift({ item, resolve, reject });
      else this.waiting.push({ item, resolve, reject });
      this.drain();
    });
  }

  private drain(): void {
    while (this.inFlight < this.maxInFlight && this.waiting.length) {
      const batch = this.takeBatch();
      this.inFlight++;
      void this.runBatch(batch).finally(() => {
        this.inFlight--;
        this.drain();
      });
    }
  }

  private takeBatch(): Waiting<I, O>[] {
    const batch = [this.waiting.shift()!];
    let size = this.sizeOf(batch[0].item);
    while (this.waiting.length && size + this.sizeOf(this.waiting[0].item) <= this.maxSize) {
      size += this.sizeOf(this.waiting[0].item);
      batch.push(this.waiting.shift()!);
    }
    return batch;
  }

  private async runBatch(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await this.run(batch.map((w) => w.item));
      batch.forEach((w, i) => w.resolve(results[i]));
    } catch (err) {
      if (batch.length === 1) return batch[0].reject(err);
      await Promise.all(batch.map((w) => this.run([w.item]).then(([result]) => w.resolve(result), w.reject)));
    }
  }
}
