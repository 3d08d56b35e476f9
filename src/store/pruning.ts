import { log } from '../logger.js';
import type { Queryable } from './db.js';

const HOUR_MS = 3600_000;

/**
 * Runs a DELETE that takes at most `$2` rows older than `$1` until it takes fewer, so each statement
 * stays short however much is due; returns how many rows went.
 */
export async function deleteInBatches(db: Queryable, statement: string, before: Date, batch = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(statement, [before, batch]);
    total += rowCount ?? 0;
    if (!rowCount || rowCount < batch) return total;
  }
}

/** Runs a pruning now and every hour (a failure is logged and tried again the next hour); stop() ends it. */
export function pruneHourly(what: string, prune: () => Promise<unknown>): { stop(): Promise<void> } {
  const run = () => void prune().catch((err: Error) => log.warn({ err: err.message }, `${what} pruning failed`));
  run();
  const timer = setInterval(run, HOUR_MS);
  timer.unref();
  return { stop: async () => clearInterval(timer) };
}
