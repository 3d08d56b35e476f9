import { log } from '../logger.js';
import type { Database } from './db.js';

/**
 * Keeps the planner's statistics current. The embedded store (PGlite) runs no autovacuum, so without
 * this its statistics would describe an empty store for ever and every search would be planned for
 * one; a PostgreSQL server's autovacuum may also lag far behind a bulk load. Every committed resource
 * write takes an outbox sequence number, so the sequence tells how much changed since the last look:
 * past 500 rows plus 10 % of the store (autovacuum's own rule), the tables searches, ingest and
 * notifications read are analysed. Statements are prepared once per connection, and a plan cached
 * while the store was small (a seq scan of a table of a few hundred rows) is replanned only when its
 * tables are analysed: hence a look every few seconds on a server, which costs two one-row reads. The
 * embedded store looks every 30 s: there ANALYZE holds the one session every request waits for.
 */
const TABLES = [
  'resource', 'resource_version', 'sp_token', 'sp_string', 'sp_date', 'sp_number', 'sp_reference', 'sp_uri',
  'consent_grant', 'audit_event', 'outbox', 'delivery', 'subscription_state', 'ingest_message', 'ingest_resource_clock',
];
const BASE_THRESHOLD = 500;
const SCALE = 0.1;
// Any constant: one process analyses at a time.
const ANALYZE_LOCK = 7_160_202;

export interface StatisticsKeeper {
  /** Looks once: analyses when enough changed. Returns whether it did. */
  check(): Promise<boolean>;
  stop(): void;
}

export function keepStatistics(db: Database, intervalMs = db.embedded ? 30_000 : 5_000): StatisticsKeeper {
  let analysedAt = -1;
  let running: Promise<boolean> | undefined;
  const check = async (): Promise<boolean> => {
    const written = await writesSoFar(db);
    const rows = await resourceRows(db);
    // A process's first look analyses any store with data: PGlite's own counters cannot say what changed.
    const due = analysedAt < 0 ? BASE_THRESHOLD : analysedAt + BASE_THRESHOLD + SCALE * Math.max(rows, 0);
    if (written < due) return false;
    await analyse(db);
    analysedAt = written;
    return true;
  };
  const tick = () => {
    running ??= check()
      .catch((err: Error) => {
        log.warn({ err: err.message }, 'store statistics not refreshed');
        return false;
      })
      .finally(() => (running = undefined));
  };
  const timer = setInterval(tick, intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}

async function writesSoFar(db: Database): Promise<number> {
  const { rows } = await db.query<{ last_value: number; is_called: boolean }>('SELECT last_value, is_called FROM outbox_seq_seq');
  return rows[0].is_called ? Number(rows[0].last_value) : 0;
}

/** The planner's idea of the store's size (-1 before its first ANALYZE). */
async function resourceRows(db: Database): Promise<number> {
  const { rows } = await db.query<{ reltuples: number }>("SELECT reltuples FROM pg_class WHERE oid = 'resource'::regclass");
  return Number(rows[0]?.reltuples ?? -1);
}

async function analyse(db: Database): Promise<void> {
  await db.transaction(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1)', [ANALYZE_LOCK]);
    const started = Date.now();
    await client.query(`ANALYZE ${TABLES.join(', ')}`);
    log.info({ ms: Date.now() - started }, 'store statistics refreshed');
  });
}
