import { DEFAULT_PURPOSE } from '../store/access.js';
import type { Queryable } from '../store/db.js';
import { loadDeliveries, type DeliveryRow } from './deliveries.js';

const MAX_BATCH = 200;
/** Reads in flight at once; reads asked for meanwhile wait and go together in the next one. */
const MAX_IN_FLIGHT = 2;

interface Waiter {
  resolve: (row: DeliveryRow | undefined) => void;
  reject: (err: Error) => void;
}

/**
 * Reads deliveries for concurrent jobs together: the reads asked for in the same turn of the event
 * loop, or while two reads are already running, go in one statement per subscriber and purpose of use,
 * so a worker running many deliveries at once (a fan-out) pays one round trip for many. A row read for a purpose that is no longer its
 * subscription's (the Subscription was changed since it was queued) is read again for the current one.
 */
export class DeliveryLoader {
  private pending = new Map<string, Map<number, Waiter[]>>();
  private scheduled = false;
  private inFlight = 0;

  constructor(private readonly db: Queryable) {}

  async load(id: number, subscriber: string | null, purpose = DEFAULT_PURPOSE): Promise<DeliveryRow | undefined> {
    const row = await this.read1(id, subscriber, purpose);
    if (!row || !row.purpose || row.purpose === purpose) return row;
    return this.read1(id, subscriber, row.purpose);
  }

  private read1(id: number, subscriber: string | null, purpose: string): Promise<DeliveryRow | undefined> {
    return new Promise((resolve, reject) => {
      const key = JSON.stringify([subscriber, purpose]);
      let ids = this.pending.get(key);
      if (!ids) this.pending.set(key, (ids = new Map()));
      ids.set(id, [...(ids.get(id) ?? []), { resolve, reject }]);
      if (!this.scheduled && this.inFlight < MAX_IN_FLIGHT) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    if (!this.pending.size) return;
    const batches = this.pending;
    this.pending = new Map();
    for (const [key, waiters] of batches) {
      const [subscriber, purpose] = JSON.parse(key) as [string | null, string];
      const ids = [...waiters.keys()];
      for (let i = 0; i < ids.length; i += MAX_BATCH) void this.read(subscriber, purpose, ids.slice(i, i + MAX_BATCH), waiters);
    }
  }

  private async read(subscriber: string | null, purpose: string, ids: number[], waiters: Map<number, Waiter[]>): Promise<void> {
    this.inFlight++;
    try {
      const rows = new Map((await loadDeliveries(this.db, ids, subscriber, purpose)).map((r) => [r.id, r]));
      for (const id of ids) for (const w of waiters.get(id)!) w.resolve(rows.get(id));
    } catch (err) {
      for (const id of ids) for (const w of waiters.get(id)!) w.reject(err as Error);
    } finally {
      this.inFlight--;
      if (this.inFlight < MAX_IN_FLIGHT && !this.scheduled && this.pending.size) this.flush();
    }
  }
}
