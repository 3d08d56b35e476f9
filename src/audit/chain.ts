import type { Database, Queryable } from '../store/db.js';
import { columnsLink, digestLink, entryDigest, type EntryColumns } from './entry-digest.js';

export const SEAL_LOCK = 727_001; // advisory lock: one sealer at a time across gateway processes
const BATCH = 2000;
const GENESIS = '0'.repeat(64);

interface EntryRow extends EntryColumns {
  seq: number;
}

/** A link of the chain with the entry it seals (the entry's columns are null if the entry is gone). */
interface LinkRow extends EntryRow {
  position: number;
  hash: string;
  link_form: 'columns' | 'digest';
}

const ENTRY_COLUMNS = `a.id, to_char(a.recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS recorded_at, a.action, a.outcome,
  a.agent_org, a.agent_client, a.owner, a.patient_id, a.entity, a.purpose, a.content::text AS content`;

/**
 * Appends the stored but unsealed AuditEvents to the hash chain, in the order they became visible: each
 * link hashes the previous link with the digest its writer stored (see entryDigest); an entry queued
 * without one is read and digested here. Returns how many were sealed (a batch that seals fewer
 * than it read ends the run). Safe to run from several processes at once.
 */
export async function sealAuditChain(db: Database): Promise<number> {
  let sealed = 0;
  for (;;) {
    const n = await db.transaction(async (tx) => {
      const locked = tx.query('SELECT pg_advisory_xact_lock($1)', [SEAL_LOCK]);
      const last = tx.query<{ position: number; hash: string }>('SELECT position, hash FROM audit_chain ORDER BY position DESC LIMIT 1');
      const queued = tx.query<{ seq: number; digest: string | null }>(`SELECT seq, digest FROM audit_unsealed ORDER BY seq LIMIT ${BATCH}`);
      const [, head, { rows }] = await Promise.all([locked, last, queued]);
      if (!rows.length) return 0;
      const digests = await digestsOf(tx, rows);
      let position = Number(head.rows[0]?.position ?? 0);
      let previous = head.rows[0]?.hash ?? GENESIS;
      const positions: number[] = [];
      const seqs: number[] = [];
      const hashes: string[] = [];
      for (const [seq, digest] of digests) {
        previous = digestLink(previous, digest);
        positions.push(++position);
        seqs.push(seq);
        hashes.push(previous);
      }
      await tx.query(
        `WITH sealed AS (DELETE FROM audit_unsealed WHERE seq = ANY($2::bigint[]))
         INSERT INTO audit_chain (position, seq, hash, link_form) SELECT p, s, h, 'digest' FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS x(p, s, h)`,
        [positions, seqs, hashes],
      );
      return seqs.length;
    });
    sealed += n;
    if (n < BATCH) return sealed;
  }
}

/** The digests of queued entries: as their writers stored them, or computed from the rows of those without. */
async function digestsOf(tx: Queryable, queued: { seq: number; digest: string | null }[]): Promise<Map<number, string>> {
  const missing = queued.filter((q) => !q.digest).map((q) => q.seq);
  const read = missing.length
    ? (await tx.query<EntryRow>(`SELECT a.seq, ${ENTRY_COLUMNS} FROM audit_event a WHERE a.seq = ANY($1::bigint[])`, [missing])).rows
    : [];
  const computed = new Map(read.map((row) => [Number(row.seq), entryDigest(row)]));
  // In queue order; an entry without a digest whose row is gone has nothing to seal and stays queued.
  const digests = new Map<number, string>();
  for (const q of queued) {
    const digest = q.digest ?? computed.get(Number(q.seq));
    if (digest) digests.set(Number(q.seq), digest);
  }
  return digests;
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
      `SELECT c.position, c.hash, c.link_form, c.seq, ${ENTRY_COLUMNS} FROM audit_chain c LEFT JOIN audit_event a ON a.seq = c.seq
       WHERE c.position >= $1 ORDER BY c.position LIMIT ${BATCH}`, [expected]);
    for (const row of rows) {
      if (Number(row.position) !== expected || row.id === null) {
        return { intact: false, checked: expected - 1, broken: { position: expected, reason: 'entry missing (deleted)' } };
      }
      const hash = row.link_form === 'digest' ? digestLink(previous, entryDigest(row)) : columnsLink(previous, row);
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
