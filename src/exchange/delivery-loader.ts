import type { Queryable } from '../store/db.js';
import { loadDeliveries, type DeliveryRow } from './deliveries.js';

const MAX_BATCH = 200;

interface Waiter {
  resolve: (row: DeliveryRow | undefined) => void;
  reject: (err: Error) => void;
}

/**
 * Reads deliveries for concurrent jobs together: the reads asked for in the same turn of the event
 * loop go in one statement per subscriber, so a worker running many deliveries at once (a fan-out) pays
 * one round trip for many.
 */
export class DeliveryLoader {
  private pending = new Map<string | null, Map<number, Waiter[]>>();
  private scheduled = false;

  constructor(private readonly db: Queryable) {}

  load(id: number, subscriber: string | null): Promise<DeliveryRow | undefined> {
    return new Promise((resolve, reject) => {
      let ids = this.pending.get(subscriber);
      if (!ids) this.pending.set(subscriber, (ids = new Map()));
      ids.set(id, [...(ids.get(id) ?? []), { resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batches = this.pending;
    this.pending = new Map();
    for (const [subscriber, waiters] of batches) {
      const ids = [...waiters.keys()];
      for (let i = 0; i < ids.length; i += MAX_BATCH) void this.read(subscriber, ids.slice(i, i + MAX_BATCH), waiters);
    }
  }

  private async read(subscriber: string | null, ids: number[], waiters: Map<number, Waiter[]>): Promise<void> {
    try {
      const rows = new Map((await loadDeliveries(this.db, ids, subscriber)).map((r) => [r.id, r]));
      for (const id of ids) for (const w of waiters.get(id)!) w.resolve(rows.get(id));
    } catch (err) {
      for (const id of ids) for (const w of waiters.get(id)!) w.reject(err as Error);
    }
  }
}
