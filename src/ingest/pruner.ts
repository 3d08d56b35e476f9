import { log } from '../logger.js';
import type { Services } from '../services.js';
import { pruneHourly } from '../store/pruning.js';
import { pruneMessages } from './message-store.js';

const DAY_MS = 24 * 3600_000;

/** Deletes messages older than the retention period once; returns how many went. */
export async function pruneOnce(services: Services, retentionDays = services.config.ingest.retentionDays, now = new Date()): Promise<number> {
  if (retentionDays <= 0) return 0;
  const removed = await pruneMessages(services.db, new Date(now.getTime() - retentionDays * DAY_MS));
  if (removed) log.info({ removed, retentionDays }, 'message store pruned');
  return removed;
}

/** Prunes the message store now and every hour (RENKEI_MESSAGE_RETENTION_DAYS); stop() ends it. */
export function startMessagePruner(services: Services, retentionDays = services.config.ingest.retentionDays): { stop(): Promise<void> } {
  return pruneHourly('message store', () => pruneOnce(services, retentionDays));
}
