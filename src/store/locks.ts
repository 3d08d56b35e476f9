import type { Queryable } from './db.js';

/**
 * Takes transaction-scoped advisory locks on named keys, each once and all in one order, so that
 * transactions locking overlapping sets wait for each other instead of deadlocking. A key says what it
 * guards by its prefix (`ingest:Patient/1`, `stream:…`); the lock is the key's hashtext.
 */
export async function lockKeys(tx: Queryable, keys: Iterable<string>): Promise<void> {
  const ordered = [...new Set(keys)].sort();
  if (!ordered.length) return;
  await tx.query(
    'SELECT pg_advisory_xact_lock(hashtext(k)) FROM (SELECT k FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n) ordered',
    [ordered],
  );
}
