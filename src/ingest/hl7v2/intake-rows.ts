import type { Organization } from '@medplum/fhirtypes';
import type { Queryable } from '../../store/db.js';
import type { Finished } from '../apply.js';
import { clocksCte, clocksValues, type Clocks } from '../clocks.js';
import type { ReceivedMessage } from '../message-store.js';

/**
 * The message-store statements of an HL7 message on its way to being applied, each one round trip:
 * keeping the bytes together with what the intake needs next (an applied message with the same MSH-10
 * from this sender, the sender's Organization), and marking the message applied with the versions it
 * wrote inside the transaction that wrote them.
 */

export interface Kept {
  id: number;
  /** The message of this sender already applied under this control id. */
  earlier?: number;
  organization?: Organization;
}

/** Inserts the message (status received); the look-ups see the store as it was before the insert. */
export async function keepAndLookUp(db: Queryable, m: ReceivedMessage & { senderOrg: string; controlId: string }): Promise<Kept> {
  const { rows } = await db.query<{ id: string; earlier: string | null; organization: string | null }>(`WITH kept AS (
       INSERT INTO ingest_message (kind, transport, sender_org, sender_client, control_id, message_type, message_time, raw, content_type, file_name, status)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received') RETURNING id)
     SELECT kept.id,
       (SELECT id FROM ingest_message WHERE sender_org = $3 AND kind = $1 AND control_id = $5 AND status = 'mapped') AS earlier,
       (SELECT content::text FROM resource WHERE resource_type = 'Organization' AND id = $3 AND NOT deleted) AS organization
     FROM kept`,
    [m.kind, m.transport, m.senderOrg, m.senderClient ?? null, m.controlId, m.messageType ?? null,
      m.messageTime ?? null, Buffer.from(m.raw), m.contentType ?? null, m.fileName ?? null]);
  const row = rows[0];
  return {
    id: Number(row.id),
    ...(row.earlier !== null ? { earlier: Number(row.earlier) } : {}),
    ...(row.organization ? { organization: JSON.parse(row.organization) as Organization } : {}),
  };
}

/**
 * Marks messages applied, each with the versions it wrote, and advances the clocks of what they wrote, in
 * one statement. A concurrent copy of one of them (same sender and control id) that committed first makes
 * this fail with a unique violation: that message is then a duplicate.
 */
export async function markApplied(tx: Queryable, finished: readonly Finished[], clocks: Clocks): Promise<void> {
  const marks = finished.map(({ ctx, applied }) => ({ id: ctx.messageId, type: ctx.messageType ?? null, time: ctx.messageTime ?? null, resources: applied.written }));
  await tx.query(`WITH ${clocksCte(2)}
     UPDATE ingest_message m SET status = 'mapped', message_type = COALESCE(x.type, m.message_type), message_time = COALESCE(x.time, m.message_time),
       resources = ARRAY(SELECT json_array_elements_text(x.resources)), attempts = m.attempts + 1, error = NULL, ack_code = 'AA',
       duplicate_of = NULL, processed_at = now()
     FROM json_to_recordset($1::json) AS x(id bigint, type text, time timestamptz, resources json) WHERE m.id = x.id`,
    [JSON.stringify(marks), ...clocksValues(clocks)]);
}
