import { createHash } from 'node:crypto';
import type { Database, Queryable } from '../store/db.js';

const SEAL_LOCK = 727_001; // advisory lock: one sealer at a time across gateway processes
const BATCH = 2000;
const GENESIS = '0'.repeat(64);

interface EntryRow {
  seq: number;
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

/** A link of the chain with the entry it seals (the entry's columns are null if the entry is gone). */
interface LinkRow extends EntryRow {
  position: number;
  hash: string;
}

const ENTRY_COLUMNS = `a.id, to_char(a.recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at, a.action, a.outcome,
  a.agent_org, a.agent_client, a.owner, a.patient_id, a.entity, a.purpose, a.content::text AS content`;

/** Each entry's hash covers the previous entry's hash and every stored column of its own. */
export function linkHash(previous: string, row: EntryRow): string {
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
      const last = await tx.query<{ position: number; hash: string }>(
        'SELECT position, hash FROM audit_chain ORDER BY position DESC LIMIT 1');
      const { rows } = await tx.query<EntryRow>(
        `SELECT u.seq, ${ENTRY_COLUMNS} FROM audit_unsealed u JOIN audit_event a ON a.seq = u.seq ORDER BY u.seq LIMIT ${BATCH}`);
      if (!rows.length) return 0;
      let position = Number(last.rows[0]?.position ?? 0);
      let previous = last.rows[0]?.hash ?? GENESIS;
      const positions: number[] = [];
      const hashes: string[] = [];
      for (const row of rows) {
        previous = linkHash(previous, row);
        positions.push(++position);
        hashes.push(previous);
      }
      await tx.query(
        `WITH sealed AS (DELETE FROM audit_unsealed WHERE seq = ANY($2::bigint[]))
         INSERT INTO audit_chain (position, seq, hash) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])`,
        [positions, rows.map((r) => r.seq), hashes],
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
    const { rows } = await db.query<LinkRow>(
      `SELECT c.position, c.hash, c.seq, ${ENTRY_COLUMNS} FROM audit_chain c LEFT JOIN audit_event a ON a.seq = c.seq
       WHERE c.position >= $1 ORDER BY c.position LIMIT ${BATCH}`, [expected]);
    for (const row of rows) {
      if (Number(row.position) !== expected || row.id === null) {
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
