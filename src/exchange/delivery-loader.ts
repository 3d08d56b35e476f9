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

/** The reads waiting for one subscriber and purpose of use, by delivery id. */
interface Batch {
  subscriber: string | null;
  purpose: string;
  waiters: Map<number, Waiter[]>;
}

/**
 * Reads deliveries for concurrent jobs together: the reads asked for in the same turn of the event
 * loop, or while two reads are already running, go in one statement per subscriber and purpose of use,
 * so a worker running many deliveries at once (a fan-out) pays one round trip for many. A row read for a purpose that is no longer its
 * subscription's (the Subscription was changed since it was queued) is read again for the current one.
 */
export class DeliveryLoader {
  private pending = new Map<string, Batch>();
  private scheduled = false;
  private inFlight = 0;

  constructor(private readonly db: Queryable) {}

  async load(id: number, subscriber: string | null, purpose = DEFAULT_PURPOSE): Promise<DeliveryRow | undefined> {
    const row = await this.ask(id, subscriber, purpose);
    if (!row || !row.purpose || row.purpose === purpose) return row;
    return this.ask(id, subscriber, row.purpose);
  }

  private ask(id: number, subscriber: string | null, purpose: string): Promise<DeliveryRow | undefined> {
    return new Promise((resolve, reject) => {
      const key = JSON.stringify([subscriber, purpose]);
      let batch = this.pending.get(key);
      if (!batch) this.pending.set(key, (batch = { subscriber, purpose, waiters: new Map() }));
      batch.waiters.set(id, [...(batch.waiters.get(id) ?? []), { resolve, reject }]);
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
    for (const batch of batches.values()) {
      const ids = [...batch.waiters.keys()];
      for (let i = 0; i < ids.length; i += MAX_BATCH) void this.read(batch, ids.slice(i, i + MAX_BATCH));
    }
  }

  private async read({ subscriber, purpose, waiters }: Batch, ids: number[]): Promise<void> {
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
