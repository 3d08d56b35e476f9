import type { Queryable } from '../store/db.js';
import { deleteInBatches } from '../store/pruning.js';

/**
 * The message store: each inbound message kept raw with its sender and what became of it. Listing is
 * filtered inside the SQL: a sender sees its own messages, the administrator all of them.
 */

export type MessageKind = 'hl7v2' | 'careplan-csv' | 'care-records';
export type MessageStatus = 'received' | 'mapped' | 'rejected' | 'duplicate';
export const MESSAGE_STATUSES: readonly MessageStatus[] = ['received', 'mapped', 'rejected', 'duplicate'];
export const MESSAGE_KINDS: readonly MessageKind[] = ['hl7v2', 'careplan-csv', 'care-records'];

export interface ReceivedMessage {
  kind: MessageKind;
  transport: 'http' | 'mllp';
  senderOrg?: string;
  senderClient?: string;
  controlId?: string;
  messageType?: string;
  messageTime?: Date;
  raw: Uint8Array;
  contentType?: string;
  fileName?: string;
}

export interface StoredMessage {
  id: number;
  kind: MessageKind;
  transport: string;
  senderOrg: string | null;
  senderClient: string | null;
  controlId: string | null;
  messageType: string | null;
  messageTime: Date | null;
  contentType: string | null;
  fileName: string | null;
  status: MessageStatus;
  resources: string[];
  error: unknown;
  ackCode: string | null;
  duplicateOf: number | null;
  attempts: number;
  receivedAt: Date;
  processedAt: Date | null;
  raw?: Buffer;
}

const COLUMNS = `id, kind, transport, sender_org, sender_client, control_id, message_type, message_time, content_type,
  file_name, status, resources, error, ack_code, duplicate_of, attempts, received_at, processed_at`;

interface Row {
  id: string | number;
  kind: MessageKind;
  transport: string;
  sender_org: string | null;
  sender_client: string | null;
  control_id: string | null;
  message_type: string | null;
  message_time: Date | null;
  content_type: string | null;
  file_name: string | null;
  status: MessageStatus;
  resources: string[];
  error: unknown;
  ack_code: string | null;
  duplicate_of: string | number | null;
  attempts: number;
  received_at: Date;
  processed_at: Date | null;
  raw?: Buffer;
}

function toMessage(r: Row): StoredMessage {
  return {
    id: Number(r.id), kind: r.kind, transport: r.transport, senderOrg: r.sender_org, senderClient: r.sender_client,
    controlId: r.control_id, messageType: r.message_type, messageTime: r.message_time, contentType: r.content_type,
    fileName: r.file_name, status: r.status, resources: r.resources, error: r.error, ackCode: r.ack_code,
    duplicateOf: r.duplicate_of === null ? null : Number(r.duplicate_of), attempts: r.attempts, receivedAt: r.received_at,
    processedAt: r.processed_at, ...(r.raw ? { raw: r.raw } : {}),
  };
}

/** Keeps the message as received (status received) and returns its id. */
export async function recordReceived(db: Queryable, m: ReceivedMessage): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO ingest_message (kind, transport, sender_org, sender_client, control_id, message_type, message_time, raw, content_type, file_name, status)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'received') RETURNING id`,
    [m.kind, m.transport, m.senderOrg ?? null, m.senderClient ?? null, m.controlId ?? null, m.messageType ?? null,
      m.messageTime ?? null, Buffer.from(m.raw), m.contentType ?? null, m.fileName ?? null],
  );
  return Number(rows[0].id);
}

/** The message already applied under this control id from this sender, if any. */
export async function findApplied(db: Queryable, senderOrg: string, kind: MessageKind, controlId: string): Promise<StoredMessage | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM ingest_message WHERE sender_org = $1 AND kind = $2 AND control_id = $3 AND status = 'mapped'`,
    [senderOrg, kind, controlId],
  );
  return rows[0] && toMessage(rows[0]);
}

/**
 * Claims the control id inside the transaction that applies the message. A concurrent message with the
 * same control id waits here until the first commits, then fails with a unique violation (a duplicate).
 */
export async function claimApplied(tx: Queryable, id: number, messageType: string | undefined, messageTime: Date | undefined): Promise<void> {
  await tx.query(
    `UPDATE ingest_message SET status = 'mapped', message_type = COALESCE($2, message_type), message_time = COALESCE($3, message_time),
       attempts = attempts + 1, error = NULL, ack_code = 'AA', duplicate_of = NULL, processed_at = now() WHERE id = $1`,
    [id, messageType ?? null, messageTime ?? null],
  );
}

export async function recordResources(tx: Queryable, id: number, resources: string[]): Promise<void> {
  await tx.query('UPDATE ingest_message SET resources = $2 WHERE id = $1', [id, resources]);
}

export async function markRejected(db: Queryable, id: number, error: unknown, ackCode?: string): Promise<void> {
  await db.query(
    `UPDATE ingest_message SET status = 'rejected', error = $2, ack_code = $3, resources = '{}', attempts = attempts + 1, processed_at = now()
     WHERE id = $1`,
    [id, JSON.stringify(error), ackCode ?? null],
  );
}

export async function markDuplicate(db: Queryable, id: number, originalId: number | undefined): Promise<void> {
  await db.query(
    `UPDATE ingest_message SET status = 'duplicate', duplicate_of = $2, ack_code = 'AA', attempts = attempts + 1, processed_at = now()
     WHERE id = $1`,
    [id, originalId ?? null],
  );
}

/** Who may see a message: the administrator, or the Organization that sent it. */
export interface MessageViewer {
  admin: boolean;
  organizationId?: string;
}

export interface MessageFilter {
  status?: MessageStatus;
  kind?: MessageKind;
  controlId?: string;
  sender?: string;
  since?: Date;
  count: number;
  offset: number;
}

export async function listMessages(db: Queryable, viewer: MessageViewer, f: MessageFilter): Promise<{ total: number; messages: StoredMessage[] }> {
  const where: string[] = [];
  const values: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if (!viewer.admin) add('sender_org = ?', viewer.organizationId ?? '');
  if (f.sender) add('sender_org = ?', f.sender);
  if (f.status) add('status = ?', f.status);
  if (f.kind) add('kind = ?', f.kind);
  if (f.controlId) add('control_id = ?', f.controlId);
  if (f.since) add('received_at >= ?', f.since);
  const condition = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const [page, count] = await Promise.all([
    db.query<Row>(`SELECT ${COLUMNS} FROM ingest_message ${condition} ORDER BY received_at DESC, id DESC
      LIMIT ${Number(f.count)} OFFSET ${Number(f.offset)}`, values),
    db.query<{ total: number }>(`SELECT count(*)::int AS total FROM ingest_message ${condition}`, values),
  ]);
  return { total: Number(count.rows[0].total), messages: page.rows.map(toMessage) };
}

export async function getMessage(db: Queryable, viewer: MessageViewer, id: number, withRaw = true): Promise<StoredMessage | undefined> {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS}${withRaw ? ', raw' : ''} FROM ingest_message WHERE id = $1 AND ($2::boolean OR sender_org = $3)`,
    [id, viewer.admin, viewer.organizationId ?? ''],
  );
  return rows[0] && toMessage(rows[0]);
}

/** Deletes messages received before `before`, in batches; returns how many went. */
export function pruneMessages(db: Queryable, before: Date): Promise<number> {
  return deleteInBatches(db,
    'DELETE FROM ingest_message WHERE id IN (SELECT id FROM ingest_message WHERE received_at < $1 ORDER BY received_at LIMIT $2)', before);
}
