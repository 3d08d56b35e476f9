import { createHash } from 'node:crypto';

/** An AuditEvent's stored columns, in the form the store gives them back. */
export interface EntryColumns {
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

const sha256 = (...parts: string[]) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('hex');
};

/** Every stored column of an entry, in a fixed order. */
export const canonicalEntry = (row: EntryColumns) => JSON.stringify([
  row.id, row.recorded_at, row.action, row.outcome, row.agent_org, row.agent_client, row.owner,
  row.patient_id, row.entity, row.purpose, row.content,
]);

/** The digest of an entry's stored columns: what a chain link seals. */
export const entryDigest = (row: EntryColumns) => sha256(canonicalEntry(row));

/** How `recorded_at` reads back for an instant stored from a Date (milliseconds, kept to the microsecond). */
export const storedInstant = (at: Date) => at.toISOString().replace(/Z$/, '000Z');

/** A link sealing an entry by its digest, after the link before it. */
export const digestLink = (previous: string, digest: string) => sha256(previous, '\n', digest);

/** A link of the first form (before digests were stored): over the previous hash and the entry's columns. */
export const columnsLink = (previous: string, row: EntryColumns) => sha256(previous, '\n', canonicalEntry(row));
