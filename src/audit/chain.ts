import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../store/db.js';

const SEAL_LOCK = 727_001; // advisory lock: one sealer at a time across gateway processes
const BATCH = 2000;
const GENESIS = '0'.repeat(64);

interface ChainRow {
  seq: number;
  chain_pos: number | null;
  hash: string | null;
  id: string;
  /** To the microsecond, in UTC: the stored instant exactly, whatever the session's time zone. */
  recorded_at: string;
  action: string | null;
  outcome: string | null;
  agent_org: string | null;
  agent_client: string | null;
  owner: string | null;
  patient_id: string | null;
  entity: string[] | null;
  purpose: string | null;
  content: string;
}

const COLUMNS = `seq, chain_pos, hash, id, to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at, action, outcome, agent_org, agent_client, owner, patient_id, entity,
  purpose, content::text AS content`;

/** Each entry's hash covers the previous entry's hash and every stored column of its own. */
export function linkHash(previous: string, row: ChainRow): string {
  const canonical = JSON.stringify([
    row.id, row.recorded_at, row.action, row.outcome, row.agent_org, row.agent_client, row.owner,
    row.patient_id, row.entity, row.purpose, row.content,
  ]);
  return createHash('sha256').update(previous).update('\n').update(canonical).digest('hex');
}

/**
 * Appends the stored but unsealed AuditEvents to the hash chain, in the order they became visible.
 * Returns how many were sealed. Safe to run from several processes at once.
 */
export async function sealAuditChain(db: Database): Promise<number> {
  let sealed = 0;
  for (;;) {
    const n = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [SEAL_LOCK]);
      const last = await tx.query<{ chain_pos: number; hash: string }>(
        'SELECT chain_pos, hash FROM audit_event WHERE chain_pos IS NOT NULL ORDER BY chain_pos DESC LIMIT 1');
      const { rows } = await tx.query<ChainRow>(
        `SELECT ${COLUMNS} FROM audit_event WHERE chain_pos IS NULL ORDER BY seq LIMIT ${BATCH}`);
      if (!rows.length) return 0;
      let position = last.rows[0]?.chain_pos ?? 0;
      let previous = last.rows[0]?.hash ?? GENESIS;
      const links = rows.map((row) => {
        previous = linkHash(previous, row);
        return { seq: row.seq, pos: ++position, hash: previous };
      });
      await tx.query(
        `UPDATE audit_event a SET chain_pos = x.pos, hash = x.hash
         FROM json_to_recordset($1::json) AS x(seq bigint, pos bigint, hash text) WHERE a.seq = x.seq`,
        [JSON.stringify(links)],
      );
      return rows.length;
    });
    sealed += n;
    if (n < BATCH) return sealed;
  }
}

export interface ChainReport {
  intact: boolean;
  checked: number;
  /** The newest link: keep it elsewhere to detect a later removal of the chain's tail. */
  head?: { position: number; hash: string };
  /** The first position where the chain does not hold, and why. */
  broken?: { position: number; id?: string; reason: string };
}

/** Walks the whole chain recomputing every link; reports the first entry that was changed or removed. */
export async function verifyAuditChain(db: Queryable): Promise<ChainReport> {
  let previous = GENESIS;
  let expected = 1;
  for (;;) {
    const { rows } = await db.query<ChainRow>(
      `SELECT ${COLUMNS} FROM audit_event WHERE chain_pos >= $1 ORDER BY chain_pos LIMIT ${BATCH}`, [expected]);
    for (const row of rows) {
      if (row.chain_pos !== expected) {
        return { intact: false, checked: expected - 1, broken: { position: expected, reason: 'entry missing (deleted)' } };
      }
      const hash = linkHash(previous, row);
      if (hash !== row.hash) {
        return { intact: false, checked: expected - 1, broken: { position: expected, id: row.id, reason: 'entry altered (hash does not match)' } };
      }
      previous = hash;
      expected++;
    }
    if (rows.length < BATCH) {
      return { intact: true, checked: expected - 1, ...(expected > 1 ? { head: { position: expected - 1, hash: previous } } : {}) };
    }
  }
}
