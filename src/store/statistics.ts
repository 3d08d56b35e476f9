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
 * - on the embedded store, which keeps no such counters, by how far each table grew on disk (see
 *   embeddedDue); there ANALYZE holds the one session every request waits for, so only the tables due
 *   are analysed, one statement each.
 * Both look every 5 s.
 */
// The hash chain's tables (audit_chain, audit_unsealed) are only ever read by their keys: no plan
// depends on their statistics, and the sealer writes them after every batch of AuditEvents.
const TABLES = [
  'resource', 'resource_version', 'sp_token', 'sp_string', 'sp_date', 'sp_number', 'sp_reference', 'sp_uri',
  'consent_grant', 'audit_event', 'outbox', 'delivery', 'subscription_state', 'ingest_message', 'ingest_resource_clock',
];
const BASE_THRESHOLD = 500;
const EMBEDDED_STATISTICS_TARGET = 10;
const SCALE = 0.1;
// Any constant: one process analyses at a time.
const ANALYZE_LOCK = 7_160_202;

export interface StatisticsKeeper {
  /** Looks once: analyses what changed enough. Returns whether it analysed anything. */
  check(): Promise<boolean>;
  stop(): void;
}

export function keepStatistics(db: Database, intervalMs = 5_000): StatisticsKeeper {
  const due = db.embedded ? embeddedDue : serverDue;
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

/**
 * Tables grown past the threshold since their last ANALYZE, read off their size on disk: the pages they
 * have now at the density (rows per page) of that ANALYZE, as the planner itself estimates a table's
 * rows. A table analysed at one page or less is due as soon as it has more (a cheap ANALYZE, and the
 * density of one partly filled page says little). Updates and deletions count only as far as they grow
 * the table.
 */
async function embeddedDue(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ relname: string }>(
    `SELECT relname FROM (
       SELECT c.relname, c.relpages, c.reltuples, pg_relation_size(c.oid) / current_setting('block_size')::int AS pages
       FROM pg_class c WHERE c.relnamespace = to_regnamespace(current_schema()) AND c.relname = ANY($1::text[])) t
     WHERE pages > relpages AND (relpages <= 1 OR reltuples < 0 OR pages * (reltuples / relpages) > reltuples + $2 + $3 * reltuples)`,
    [TABLES, BASE_THRESHOLD, SCALE]);
  return rows.map((r) => r.relname);
}

async function analyse(db: Database, tables: string[]): Promise<void> {
  const started = Date.now();
  if (db.embedded) {
    // One session serves every request: a table at a time, so requests go in between (all tables in one
    // statement held the session for a few hundred ms with 100,000 resources stored), and from a tenth
    // of the usual sample (HL7 ingest at 100 messages/s: ACK p99 55 against 160 ms over HTTP, 19 against
    // 124 ms over MLLP, with the default sample).
    for (const table of tables) {
      await db.transaction(async (tx) => {
        await tx.query(`SET LOCAL default_statistics_target = ${EMBEDDED_STATISTICS_TARGET}`);
        await tx.query(`ANALYZE ${table}`);
      });
    }
  } else {
    await db.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1)', [ANALYZE_LOCK]);
      await client.query(`ANALYZE ${tables.join(', ')}`);
    });
  }
  log.info({ ms: Date.now() - started, tables: tables.length }, 'store statistics refreshed');
}
