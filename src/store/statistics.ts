import { log } from '../logger.js';
import type { Database } from './db.js';

/**
 * Keeps the planner's statistics current. Statements are prepared once per connection, and a plan cached
 * while a table was small (a seq scan of a few hundred rows) is replanned only when the table is
 * analysed; the embedded store (PGlite) runs no autovacuum at all, and a PostgreSQL server's autovacuum
 * looks only once a minute, while a fan-out adds tens of thousands of delivery rows in seconds. A table
 * is due past 500 changed rows plus 10 % of its size (autovacuum's own rule):
 * - on a server, by its own counters (pg_stat_user_tables), whichever process wrote the rows; a look is
 *   one read of those counters, every few seconds;
 * - on the embedded store, which keeps no such counters, by the sequences every resource write and every
 *   notification take (outbox, delivery), and then all the tables below are analysed. It looks every
 *   30 s: there ANALYZE holds the one session every request waits for.
 */
// The hash chain's tables (audit_chain, audit_unsealed) are only ever read by their keys: no plan
// depends on their statistics, and the sealer writes them after every batch of AuditEvents.
const TABLES = [
  'resource', 'resource_version', 'sp_token', 'sp_string', 'sp_date', 'sp_number', 'sp_reference', 'sp_uri',
  'consent_grant', 'audit_event', 'outbox', 'delivery', 'subscription_state', 'ingest_message', 'ingest_resource_clock',
];
const BASE_THRESHOLD = 500;
const SCALE = 0.1;
// Any constant: one process analyses at a time.
const ANALYZE_LOCK = 7_160_202;

export interface StatisticsKeeper {
  /** Looks once: analyses what changed enough. Returns whether it analysed anything. */
  check(): Promise<boolean>;
  stop(): void;
}

export function keepStatistics(db: Database, intervalMs = db.embedded ? 30_000 : 5_000): StatisticsKeeper {
  const due = db.embedded ? embeddedDue() : serverDue;
  const check = async (): Promise<boolean> => {
    const tables = await due(db);
    if (!tables.length) return false;
    await analyse(db, tables);
    return true;
  };
  let running: Promise<boolean> | undefined;
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

/** Tables whose rows changed past the threshold since their last ANALYZE (or never analysed, with rows). */
async function serverDue(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ relname: string }>(
    `SELECT s.relname FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
     WHERE s.schemaname = current_schema() AND s.relname = ANY($1::text[])
       AND (s.n_mod_since_analyze > $2 + $3 * GREATEST(c.reltuples, 0) OR (c.reltuples < 0 AND s.n_live_tup > 0))`,
    [TABLES, BASE_THRESHOLD, SCALE]);
  return rows.map((r) => r.relname);
}

/** All tables once the store's write sequences moved past the threshold since the last look that analysed. */
function embeddedDue(): (db: Database) => Promise<string[]> {
  let analysedAt = -1;
  return async (db) => {
    const { rows } = await db.query<{ written: number; size: number }>(
      `SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_seq_seq)
         + (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM delivery_id_seq) AS written,
         (SELECT sum(GREATEST(reltuples, 0)) FROM pg_class WHERE oid IN ('resource'::regclass, 'delivery'::regclass)) AS size`);
    const written = Number(rows[0].written);
    // A process's first look analyses any store with data: nothing says what changed before it started.
    const threshold = analysedAt < 0 ? BASE_THRESHOLD : analysedAt + BASE_THRESHOLD + SCALE * Number(rows[0].size);
    if (written < threshold) return [];
    analysedAt = written;
    return TABLES;
  };
}

async function analyse(db: Database, tables: string[]): Promise<void> {
  const started = Date.now();
  if (db.embedded) {
    // One session serves every request: a table at a time, so requests go in between (all tables in one
    // statement held the session for a few hundred ms with 100,000 resources stored).
    for (const table of tables) await db.query(`ANALYZE ${table}`);
  } else {
    await db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ANALYZE_LOCK]);
      await client.query(`ANALYZE ${tables.join(', ')}`);
    });
  }
  log.info({ ms: Date.now() - started, tables: tables.length }, 'store statistics refreshed');
}
