import { log } from '../logger.js';
import type { Queryable } from '../store/db.js';
import { deleteInBatches, pruneHourly } from '../store/pruning.js';

const DAY_MS = 24 * 3600_000;
const BATCH = 5000;

export interface Pruned {
  deliveries: number;
  changes: number;
}

/**
 * Deletes what the exchange no longer needs once it is older than the retention: notifications that
 * ended (delivered, withheld, cancelled; their AuditEvents stay) and changes that were relayed and
 * matched. Pending notifications and dead letters stay whatever their age: they are still owed.
 * Batches are taken from the oldest key, where the old rows are.
 */
export async function pruneExchange(db: Queryable, retentionDays: number, now = new Date()): Promise<Pruned> {
  if (retentionDays <= 0) return { deliveries: 0, changes: 0 };
  const before = new Date(now.getTime() - retentionDays * DAY_MS);
  const deliveries = await deleteInBatches(db, `DELETE FROM delivery WHERE id IN (SELECT id FROM delivery
    WHERE status IN ('delivered', 'withheld', 'cancelled') AND updated_at < $1 ORDER BY id LIMIT $2)`, before, BATCH);
  const changes = await deleteInBatches(db, `DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox
    WHERE matched_at IS NOT NULL AND relayed_at IS NOT NULL AND created_at < $1 ORDER BY seq LIMIT $2)`, before, BATCH);
  if (deliveries || changes) log.info({ deliveries, changes, retentionDays }, 'exchange history pruned');
  return { deliveries, changes };
}

/** Prunes now and every hour (RENKEI_EXCHANGE_RETENTION_DAYS); stop() ends it. */
export function startExchangePruner(db: Queryable, retentionDays: number): { stop(): Promise<void> } {
  return pruneHourly('exchange history', () => pruneExchange(db, retentionDays));
}
