import type { Queryable } from './db.js';

/**
 * Takes transaction-scoped advisory locks on named keys, each once and all in one order, so that
 * transactions locking overlapping sets wait for each other instead of deadlocking. A key says what it
 * guards by its prefix (`ingest:Patient/1`, `stream:…`); the lock is the key's hashtext.
 * The statement the locks guard may be sent behind this one without waiting for it (pipelined): the
 * server starts it, and takes its snapshot, only once the locks are held.
 */
export async function lockKeys(tx: Queryable, keys: Iterable<string>): Promise<void> {
  const ordered = [...new Set(keys)].sort();
  if (!ordered.length) return;
  await tx.query(
    'SELECT pg_advisory_xact_lock(hashtext(k)) FROM (SELECT k FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n) ordered',
    [ordered],
  );
}
