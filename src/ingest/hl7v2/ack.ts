import { encodeText, type Charset } from './charset.js';
import { errorCodeText, type Hl7Problem } from './errors.js';
import { escapeText, STANDARD_DELIMITERS } from './escapes.js';
import type { Hl7Message } from './message.js';

/**
 * The original-mode acknowledgment (ACK) of a message: MSH with sender and receiver swapped, MSA with
 * AA / AE / AR and the original MSH-10, and one ERR segment per problem naming segment, field and
 * reason. Encoded in the character set of the message it answers (UTF-8 when that is unknown).
 */

export type AckCode = 'AA' | 'AE' | 'AR';

export interface AckHeader {
  sendingApplication: string;
  sendingFacility: string;
  receivingApplication: string;
  receivingFacility: string;
  controlId: string;
  trigger: string;
  version: string;
  processingId: string;
  charset: Charset;
  /** MSH-18 of the original message (echoed). */
  declared: string;
}

const GATEWAY_APPLICATION = 'RENKEI';

export function ackHeaderOf(message: Hl7Message, charset: Charset, declared: string): AckHeader {
  const msh = message.header;
  return {
    sendingApplication: msh.text(3),
    sendingFacility: msh.text(4),
    receivingApplication: msh.text(5),
    receivingFacility: msh.text(6),
    controlId: msh.text(10),
    trigger: msh.text(9, 2),
    version: msh.text(12) || '2.5',
    processingId: msh.text(11) || 'P',
    charset,
    declared,
  };
}

/** What can be read of a header that could not be decoded or parsed: its ASCII fields, for routing the ACK. */
export function fallbackAckHeader(bytes: Uint8Array): AckHeader {
  const text = Buffer.from(bytes.subarray(0, 2048)).toString('latin1').replace(/^[\s\uFEFF\u00EF\u00BB\u00BF]+/, '');
  const line = text.split(/\r|\n/)[0] ?? '';
  const sep = line.startsWith('MSH') && line.length > 3 ? line[3] : '|';
  const fields = ['MSH', sep, ...line.slice(4).split(sep)];
  // eslint-disable-next-line no-control-regex
  const ascii = (n: number, c = 0) => (fields[n] ?? '').split('^')[c]?.replace(/[^\x20-\x7e]/g, '').slice(0, 60) ?? '';
  return {
    sendingApplication: ascii(3),
    sendingFacility: ascii(4),
    receivingApplication: ascii(5),
    receivingFacility: ascii(6),
    controlId: ascii(10).slice(0, 199),
    trigger: ascii(9, 1),
    version: ascii(12) || '2.5',
    processingId: ascii(11) || 'P',
    charset: 'utf-8',
    declared: 'UNICODE UTF-8',
  };
}

let counter = 0;

function ackControlId(now: Date): string {
  counter = (counter + 1) % 1_000_000;
  return `RK${now.getTime().toString(36).toUpperCase()}${counter.toString(36).toUpperCase()}`;
}

/** HL7 TS in Japan time: YYYYMMDDHHMMSS+0900. */
export function hl7Timestamp(date: Date): string {
  const jst = new Date(date.getTime() + 9 * 3600_000);
  return `${jst.toISOString().slice(0, 19).replace(/[-T:]/g, '')}+0900`;
}

export interface Ack {
  code: AckCode;
  text: string;
  bytes: Buffer;
  charset: Charset;
}

export function buildAck(header: AckHeader, code: AckCode, message: string, problems: Hl7Problem[] = [], now = new Date()): Ack {
  const e = (s: string) => escapeText(s, STANDARD_DELIMITERS);
  const msh = [
    'MSH', '^~\\&',
    e(header.receivingApplication || GATEWAY_APPLICATION), e(header.receivingFacility),
    e(header.sendingApplication), e(header.sendingFacility),
    hl7Timestamp(now), '',
    `ACK^${e(header.trigger)}^ACK`, ackControlId(now), e(header.processingId), e(header.version),
    '', '', '', '', '', header.declared.split('~').map(e).join('~'),
  ].join('|');
  const msa = ['MSA', code, e(header.controlId), e(message)].join('|');
  const errs = problems.map((p) => {
    const l = p.location;
    const where = [l.segment ?? '', l.sequence ?? '', l.field ?? '', l.repetition ?? '', l.component ?? '', l.subcomponent ?? '']
      .join('^').replace(/\^+$/, '');
    return ['ERR', '', where, `${p.code}^${e(errorCodeText(p.code))}^HL70357`, 'E', '', '', '', e(p.reason)].join('|');
  });
  const text = [msh, msa, ...errs].join('\r') + '\r';
  return { code, text, bytes: encodeText(text, header.charset), charset: header.charset };
}
