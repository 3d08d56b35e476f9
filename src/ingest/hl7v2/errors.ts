/**
 * What went wrong with an HL7 message and where, in the terms of the ERR segment (v2.5): the error
 * location (segment, its position in the message, field, component), an HL7 table 0357 error code and
 * the acknowledgment it calls for (AE: the message was understood but its content is wrong; AR: the
 * message cannot be processed at all: unknown type, unreadable, unknown sender).
 */

/** HL7 table 0357 (message error condition codes). */
export const ERROR_CODES = {
  segmentSequence: '100',
  requiredFieldMissing: '101',
  dataType: '102',
  tableValueNotFound: '103',
  unsupportedMessageType: '200',
  unsupportedEvent: '201',
  unsupportedProcessingId: '202',
  unsupportedVersion: '203',
  unknownKey: '204',
  duplicateKey: '205',
  recordLocked: '206',
  internalError: '207',
} as const;

export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

const CODE_TEXT: Record<ErrorCode, string> = {
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
};

export const errorCodeText = (code: ErrorCode): string => CODE_TEXT[code];

export interface ErrorLocation {
  /** Segment id, e.g. PID. */
  segment?: string;
  /** 1-based position of the segment in the message. */
  sequence?: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
}

export interface Hl7Problem {
  location: ErrorLocation;
  code: ErrorCode;
  /** What is wrong, for the sender's staff (Japanese and English). */
  reason: string;
}

/** A message refused: AE (content error) or AR (cannot be processed). */
export class Hl7Error extends Error {
  constructor(
    readonly ack: 'AE' | 'AR',
    readonly problems: Hl7Problem[],
    /** HTTP status for the HTTP transport. */
    readonly status = ack === 'AR' ? 400 : 422,
  ) {
    super(problems.map((p) => `${describeLocation(p.location)}: ${p.reason}`).join('; '));
  }
}

export function describeLocation(l: ErrorLocation): string {
  if (!l.segment) return 'message';
  let text = l.segment + (l.sequence ? `[${l.sequence}]` : '');
  if (l.field) text += `-${l.field}`;
  if (l.repetition && l.repetition > 1) text += `(${l.repetition})`;
  if (l.component) text += `.${l.component}`;
  if (l.subcomponent) text += `.${l.subcomponent}`;
  return text;
}

export const rejected = (location: ErrorLocation, code: ErrorCode, reason: string, status?: number): Hl7Error =>
  new Hl7Error('AR', [{ location, code, reason }], status);

export const contentError = (location: ErrorLocation, code: ErrorCode, reason: string): Hl7Error =>
  new Hl7Error('AE', [{ location, code, reason }]);
