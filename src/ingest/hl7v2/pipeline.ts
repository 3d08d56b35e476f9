import type { IssueKind, MappingIssue, MappingOutput } from '../../mapping/engine.js';
import type { MappingRegistry } from '../../mapping/registry.js';
import { senderVariables, type SenderFacts } from '../sender.js';
import { decodeMessage, type DecodedMessage } from './charset.js';
import { ERROR_CODES, Hl7Error, rejected, type ErrorCode, type Hl7Problem } from './errors.js';
import { readHeader, type MessageFacts } from './header.js';
import { Hl7Message } from './message.js';
import { Hl7Source } from './source.js';

/**
 * Bytes → FHIR resources, without the store: decode per MSH-18, parse, read the header, pick the mapping
 * for the message type and run it. Every refusal is an Hl7Error naming segment, field and reason.
 */

export interface ReadMessage {
  decoded: DecodedMessage;
  message: Hl7Message;
  facts: MessageFacts;
}

export function readMessage(bytes: Uint8Array): ReadMessage {
  const decoded = decodeMessage(bytes);
  const message = Hl7Message.parse(decoded.text);
  return { decoded, message, facts: readHeader(message) };
}

const ISSUE_CODES: Record<IssueKind, ErrorCode> = {
  required: ERROR_CODES.requiredFieldMissing,
  'data-type': ERROR_CODES.dataType,
  'table-value': ERROR_CODES.tableValueNotFound,
  conflict: ERROR_CODES.duplicateKey,
  invalid: ERROR_CODES.dataType,
};

export function problemsOf(issues: readonly MappingIssue[]): Hl7Problem[] {
  return issues.map((i) => ({ location: i.location, code: ISSUE_CODES[i.kind], reason: i.reason }));
}

export function mapMessage(read: ReadMessage, sender: SenderFacts, registry: MappingRegistry): MappingOutput {
  const engine = registry.forMessageType(read.facts.type);
  if (!engine) {
    const supported = registry.messageTypes().join(', ');
    const known = registry.messageTypes().some((t) => t.startsWith(`${read.facts.type.split('^')[0]}^`));
    throw rejected({ segment: 'MSH', sequence: 1, field: 9 }, known ? ERROR_CODES.unsupportedEvent : ERROR_CODES.unsupportedMessageType,
      `Message type ${read.facts.type} is not accepted; accepted: ${supported} / このメッセージ型には対応していません`);
  }
  const output = engine.run(new Hl7Source(read.message), {
    vars: {
      ...senderVariables(sender),
      'message.time': read.facts.time,
      'message.controlId': read.facts.controlId,
      'message.type': read.facts.type,
    },
  });
  if (output.issues.length) throw new Hl7Error('AE', problemsOf(output.issues));
  return output;
}
