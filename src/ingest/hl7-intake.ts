import type { AuthContext } from '../auth/context.js';
import type { Caller } from '../fhir/caller.js';
import { log } from '../logger.js';
import type { MappingIssue } from '../mapping/engine.js';
import type { Services } from '../services.js';
import { ApplyError } from './apply.js';
import { ApplyGroups } from './apply-group.js';
import type { Database } from '../store/db.js';
import { ackHeaderOf, buildAck, fallbackAckHeader, type Ack, type AckHeader } from './hl7v2/ack.js';
import { ERROR_CODES, Hl7Error, rejected, type Hl7Problem } from './hl7v2/errors.js';
import { mapMessage, readMessage } from './hl7v2/pipeline.js';
import { mappings } from './mappings.js';
import { keepAndLookUp, markApplied } from './hl7v2/intake-rows.js';
import { findApplied, markDuplicate, markRejected, recordReceived, type MessageStatus, type ReceivedMessage } from './message-store.js';
import { loadSenderFacts, senderFactsOf, type SenderFacts } from './sender.js';

/**
 * One HL7 v2 message from receipt to acknowledgment, the same over HTTP and MLLP: keep the bytes, refuse
 * what cannot be read (AR) or mapped (AE) with ERR segments and what the gateway itself could not process
 * (AR 207, to be sent again), acknowledge a repeated MSH-10 without applying it again, and answer AA only
 * after the data and the message's status are committed together.
 */

/** The registered client a message comes from and the Organization it acts for. */
export interface IngestSender {
  clientId?: string;
  organizationId: string;
  auth: AuthContext;
}

export interface Hl7Outcome {
  ack: Ack;
  httpStatus: number;
  status: MessageStatus;
  messageId?: number;
  /** The gateway could not process the message: the sender may send it again after this many seconds. */
  retryAfterSeconds?: number;
}

export interface Hl7Options {
  transport: 'http' | 'mllp';
  contentType?: string;
  /** Replay: process the stored message again under its own id. */
  existingId?: number;
  /** The message is refused before reading (unknown MLLP sender): kept, and answered with this. */
  refusal?: Hl7Error;
}

export function callerOf(sender: IngestSender): Caller {
  return { admin: false, organizationId: sender.organizationId, clientId: sender.clientId, purposeOfUse: sender.auth.purposeOfUse ?? 'TREAT' };
}

const UNIQUE_VIOLATION = '23505';
const isDuplicateClaim = (err: unknown) => (err as { code?: string })?.code === UNIQUE_VIOLATION;

export async function receiveHl7(services: Services, bytes: Uint8Array, sender: IngestSender | undefined, options: Hl7Options): Promise<Hl7Outcome> {
  const db = services.db;
  let header: AckHeader = fallbackAckHeader(bytes);
  let id = options.existingId;
  const received = (extra: Partial<ReceivedMessage> = {}): ReceivedMessage => ({
    kind: 'hl7v2', transport: options.transport, senderOrg: sender?.organizationId, senderClient: sender?.clientId,
    raw: bytes, contentType: options.contentType, controlId: header.controlId || undefined, ...extra,
  });
  const keep = async () => (id ??= await recordReceived(db, received()));
  try {
    if (options.refusal) throw options.refusal;
    if (!sender) throw new Hl7Error('AR', [{ location: {}, code: ERROR_CODES.unknownKey, reason: 'The sender is not identified' }], 401);
    const read = readMessage(bytes);
    header = ackHeaderOf(read.message, read.decoded.charset, read.decoded.declared);
    const { facts } = read;
    const kept = await keepMessage(services, sender, received({ controlId: facts.controlId, messageType: facts.type, messageTime: facts.timeValue }), id);
    const messageId = (id = kept.id);
    refuseProcessingId(services, facts.processingId);
    if (kept.earlier !== undefined && kept.earlier !== messageId) return await duplicate(services, header, messageId, kept.earlier);

    const output = mapMessage(read, kept.facts, mappings());
    const applied = await applyGroupsOf(db).apply({
      ctx: { services, caller: callerOf(sender), auth: sender.auth, messageId, messageTime: facts.timeValue, messageType: facts.type },
      input: output.resources,
    });
    log.info({ messageId, type: facts.type, organization: sender.organizationId, written: applied.written.length,
      unchanged: applied.unchanged.length, older: applied.older.length }, 'HL7 message applied');
    const older = applied.older.length ? `; ${applied.older.length} left as a newer message wrote them` : '';
    const text = `Accepted: ${applied.written.length} written, ${applied.unchanged.length} unchanged${older} (message ${messageId})`;
    return { ack: buildAck(header, 'AA', text), httpStatus: 200, status: 'mapped', messageId };
  } catch (err) {
    if (isDuplicateClaim(err) && id !== undefined && sender) {
      const earlier = await findApplied(db, sender.organizationId, 'hl7v2', header.controlId);
      return duplicate(services, header, id, earlier?.id);
    }
    return refuse(services, header, err, keep);
  }
}

const applyGroups = new WeakMap<Database, ApplyGroups>();

/** The store's HL7 apply groups (one per process): messages of concurrent senders applied together. */
function applyGroupsOf(db: Database): ApplyGroups {
  let groups = applyGroups.get(db);
  if (!groups) applyGroups.set(db, (groups = new ApplyGroups(db, markApplied)));
  return groups;
}

interface KeptMessage {
  id: number;
  earlier?: number;
  facts: SenderFacts;
}

/** Keeps the bytes (one statement with the look-ups the intake needs), or reads them for a stored message. */
async function keepMessage(services: Services, sender: IngestSender, message: ReceivedMessage, existingId: number | undefined): Promise<KeptMessage> {
  if (existingId === undefined) {
    const kept = await keepAndLookUp(services.db, { ...message, senderOrg: sender.organizationId, controlId: message.controlId ?? '' });
    return { id: kept.id, earlier: kept.earlier, facts: senderFactsOf(sender.organizationId, kept.organization) };
  }
  const earlier = await findApplied(services.db, sender.organizationId, 'hl7v2', message.controlId ?? '');
  return { id: existingId, earlier: earlier?.id, facts: await loadSenderFacts(services, sender.organizationId) };
}

/** MSH-11: a training (T) or debugging (D) message never reaches live data unless this gateway takes them. */
function refuseProcessingId(services: Services, processingId: string): void {
  const accepted = services.config.ingest.processingIds;
  if (accepted.includes(processingId)) return;
  throw rejected({ segment: 'MSH', sequence: 1, field: 11 }, ERROR_CODES.unsupportedProcessingId,
    `MSH-11 processing id "${processingId}" is not applied by this gateway (it takes ${accepted.join(', ')}) / この処理IDのメッセージは受け付けていません`);
}

async function duplicate(services: Services, header: AckHeader, id: number, originalId: number | undefined): Promise<Hl7Outcome> {
  await markDuplicate(services.db, id, originalId);
  log.info({ messageId: id, duplicateOf: originalId }, 'HL7 message is a duplicate; nothing changed');
  const text = `Duplicate of message ${originalId ?? '?'} (same MSH-10 from this sender): nothing changed`;
  return { ack: buildAck(header, 'AA', text), httpStatus: 200, status: 'duplicate', messageId: id };
}

const KIND_CODES: Record<MappingIssue['kind'], Hl7Problem['code']> = {
  required: ERROR_CODES.requiredFieldMissing, 'data-type': ERROR_CODES.dataType, 'table-value': ERROR_CODES.tableValueNotFound,
  conflict: ERROR_CODES.duplicateKey, invalid: ERROR_CODES.dataType,
};

/**
 * A message the gateway could not process for reasons of its own (store down, internal error) is
 * rejected (AR, HL7 v2.5 §2.9: not processed for reasons unrelated to its content) with 207; the
 * sender may send it again later, over HTTP after Retry-After.
 */
export const RETRY_AFTER_SECONDS = 30;

const internalError = (reason: string) => new Hl7Error('AR', [{ location: {}, code: ERROR_CODES.internalError, reason }], 503);

function asRefusal(err: unknown): Hl7Error {
  if (err instanceof Hl7Error) return err;
  if (err instanceof ApplyError) {
    const problems = err.issues.map((i) => ({ location: i.location, code: KIND_CODES[i.kind], reason: i.reason }));
    return new Hl7Error(err.status === 403 ? 'AR' : 'AE', problems, err.status);
  }
  log.error({ err }, 'HL7 message could not be processed');
  return internalError('Internal error; send the message again later / 内部エラーのため処理できませんでした。後で再送してください');
}

async function refuse(services: Services, header: AckHeader, err: unknown, keep: () => Promise<number>): Promise<Hl7Outcome> {
  const refusal = asRefusal(err);
  const retry = refusal.status === 503 ? { retryAfterSeconds: RETRY_AFTER_SECONDS } : {};
  let messageId: number | undefined;
  try {
    messageId = await keep();
    await markRejected(services.db, messageId, refusal.problems, refusal.ack);
  } catch (storeErr) {
    log.error({ err: storeErr }, 'a refused HL7 message could not be kept');
    const stored = internalError('The message could not be stored; send it again later / 保存できませんでした。後で再送してください');
    return { ack: buildAck(header, 'AR', 'Not stored', stored.problems), httpStatus: 503, status: 'rejected', retryAfterSeconds: RETRY_AFTER_SECONDS };
  }
  log.info({ messageId, ack: refusal.ack, problems: refusal.problems.map((p) => p.code) }, 'HL7 message refused');
  log.debug({ messageId, problems: refusal.problems }, 'HL7 refusal details');
  const text = refusal.ack === 'AR' ? `Rejected (message ${messageId})` : `Error (message ${messageId})`;
  return { ack: buildAck(header, refusal.ack, text, refusal.problems), httpStatus: refusal.status, status: 'rejected', messageId, ...retry };
}
