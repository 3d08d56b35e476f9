import type { AuthContext } from '../auth/context.js';
import type { Caller } from '../fhir/caller.js';
import { log } from '../logger.js';
import type { MappingIssue } from '../mapping/engine.js';
import type { Services } from '../services.js';
import { applyMapped, ApplyError } from './apply.js';
import { ackHeaderOf, buildAck, fallbackAckHeader, type Ack, type AckHeader } from './hl7v2/ack.js';
import { ERROR_CODES, Hl7Error, rejected, type Hl7Problem } from './hl7v2/errors.js';
import { mapMessage, readMessage } from './hl7v2/pipeline.js';
import { mappings } from './mappings.js';
import {
  claimApplied, findApplied, markDuplicate, markRejected, recordReceived, recordResources, type MessageStatus,
} from './message-store.js';
import { loadSenderFacts } from './sender.js';

/**
 * One HL7 v2 message from receipt to acknowledgment, the same over HTTP and MLLP: keep the bytes, refuse
 * what cannot be read (AR) or mapped (AE) with ERR segments, acknowledge a repeated MSH-10 without
 * applying it again, and answer AA only after the data and the message's status are committed together.
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
}

export interface Hl7Options {
  transport: 'http' | 'mllp';
  base: string;
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
  const keep = async (extra: Partial<Parameters<typeof recordReceived>[1]> = {}) => {
    id ??= await recordReceived(db, {
      kind: 'hl7v2', transport: options.transport, senderOrg: sender?.organizationId, senderClient: sender?.clientId,
      raw: bytes, contentType: options.contentType, controlId: header.controlId || undefined, ...extra,
    });
    return id;
  };
  try {
    if (options.refusal) throw options.refusal;
    if (!sender) throw new Hl7Error('AR', [{ location: {}, code: ERROR_CODES.unknownKey, reason: 'The sender is not identified' }], 401);
    const read = readMessage(bytes);
    header = ackHeaderOf(read.message, read.decoded.charset, read.decoded.declared);
    const { facts } = read;
    const messageId = await keep({ controlId: facts.controlId, messageType: facts.type, messageTime: facts.timeValue });
    refuseProcessingId(services, facts.processingId);
    const earlier = await findApplied(db, sender.organizationId, 'hl7v2', facts.controlId);
    if (earlier && earlier.id !== messageId) return await duplicate(services, header, messageId, earlier.id);

    const senderFacts = await loadSenderFacts(services, sender.organizationId);
    const output = mapMessage(read, senderFacts, mappings());
    const applied = await db.transaction(async (tx) => {
      await claimApplied(tx, messageId, facts.type, facts.timeValue);
      const result = await applyMapped(tx, {
        services, caller: callerOf(sender), auth: sender.auth, messageId, messageTime: facts.timeValue, base: options.base,
      }, output.resources);
      await recordResources(tx, messageId, result.written);
      return result;
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

function asRefusal(err: unknown): Hl7Error {
  if (err instanceof Hl7Error) return err;
  if (err instanceof ApplyError) {
    const problems = err.issues.map((i) => ({ location: i.location, code: KIND_CODES[i.kind], reason: i.reason }));
    return new Hl7Error(err.status === 403 ? 'AR' : 'AE', problems, err.status);
  }
  log.error({ err }, 'HL7 message could not be processed');
  return new Hl7Error('AE', [{ location: {}, code: ERROR_CODES.internalError, reason: 'Internal error; send the message again later / 内部エラー' }], 500);
}

async function refuse(services: Services, header: AckHeader, err: unknown, keep: () => Promise<number>): Promise<Hl7Outcome> {
  const refusal = asRefusal(err);
  let messageId: number | undefined;
  try {
    messageId = await keep();
    await markRejected(services.db, messageId, refusal.problems, refusal.ack);
  } catch (storeErr) {
    log.error({ err: storeErr }, 'a refused HL7 message could not be kept');
    const problems: Hl7Problem[] = [{ location: {}, code: ERROR_CODES.internalError, reason: 'The message could not be stored; send it again later' }];
    return { ack: buildAck(header, 'AE', 'Not stored', problems), httpStatus: 503, status: 'rejected' };
  }
  log.info({ messageId, ack: refusal.ack, problems: refusal.problems.map((p) => p.code) }, 'HL7 message refused');
  log.debug({ messageId, problems: refusal.problems }, 'HL7 refusal details');
  const text = refusal.ack === 'AR' ? `Rejected (message ${messageId})` : `Error (message ${messageId})`;
  return { ack: buildAck(header, refusal.ack, text, refusal.problems), httpStatus: refusal.status, status: 'rejected', messageId };
}
