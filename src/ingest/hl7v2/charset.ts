import iconv from 'iconv-lite';
import { ERROR_CODES, rejected, type ErrorLocation } from './errors.js';
import { decodeIso2022jp, encodeIso2022jp, iso2022jpFault, type ByteFault } from './iso2022jp.js';

/**
 * The character set a message declares in MSH-18 and the decoding of its bytes. JAHIS messages use
 * ISO-2022-JP (`~ISO IR87`, `ISO IR87`, `~ISOIR87`, often with MSH-20 `ISO 2022-1994`); newer systems
 * send `UNICODE UTF-8`; some vendors Shift_JIS (MS932). The bytes must match the declaration: a
 * mismatch is refused with the segment and field where it shows, never decoded into mojibake.
 */

export type Charset = 'ascii' | 'iso-2022-jp' | 'utf-8' | 'shift_jis';

export interface DecodedMessage {
  text: string;
  charset: Charset;
  /** MSH-18 as sent, echoed in the acknowledgment. */
  declared: string;
}

const NAMES: Record<string, Charset> = {
  '': 'ascii', ASCII: 'ascii', ISOIR6: 'ascii', USASCII: 'ascii',
  ISOIR87: 'iso-2022-jp', ISOIR159: 'iso-2022-jp', ISOIR13: 'iso-2022-jp', ISO2022JP: 'iso-2022-jp', JIS: 'iso-2022-jp',
  UNICODEUTF8: 'utf-8', UTF8: 'utf-8', UNICODE: 'utf-8',
  SHIFTJIS: 'shift_jis', SJIS: 'shift_jis', MS932: 'shift_jis', CP932: 'shift_jis', WINDOWS31J: 'shift_jis',
};

const SUPPORTED = '~ISO IR87 (ISO-2022-JP), UNICODE UTF-8 or SHIFT_JIS';
const MSH18: ErrorLocation = { segment: 'MSH', sequence: 1, field: 18 };

/** The character set named by MSH-18 (all its repetitions); undefined when it names none we read. */
export function charsetOf(msh18: string, repetition = '~'): Charset | undefined {
  const found = new Set<Charset>();
  for (const rep of msh18.split(repetition)) {
    const charset = NAMES[rep.toUpperCase().replace(/[\s_\-.]/g, '')];
    if (charset === undefined) return undefined;
    if (charset !== 'ascii') found.add(charset);
  }
  if (found.size > 1) return undefined;
  return [...found][0] ?? 'ascii';
}

/** Decodes a message's bytes per its MSH-18; throws Hl7Error (AR) when they cannot be read as declared. */
export function decodeMessage(input: Uint8Array): DecodedMessage {
  const bytes = trimStart(input);
  if (bytes.length < 8 || bytes[0] !== 0x4d || bytes[1] !== 0x53 || bytes[2] !== 0x48) {
    throw rejected({}, ERROR_CODES.segmentSequence, 'The message must begin with an MSH segment / メッセージがMSHセグメントで始まっていません');
  }
  const declared = readMsh18(bytes);
  const charset = charsetOf(declared.value, declared.repetition);
  if (!charset) {
    throw rejected(MSH18, ERROR_CODES.tableValueNotFound,
      `MSH-18 character set "${declared.value}" is not supported; send ${SUPPORTED} / 文字コード指定に対応していません`);
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw rejected(locateOffset(bytes, nul), ERROR_CODES.dataType,
      'The message contains a NUL byte (0x00), which no HL7 v2 or FHIR text may hold / NUL文字 (0x00) が含まれています');
  }
  const fault = faultFor(charset, bytes);
  if (fault) {
    throw rejected(locateOffset(bytes, fault.offset), ERROR_CODES.dataType,
      `The bytes are not valid ${charset} as MSH-18 "${declared.value}" declares: ${fault.reason} / MSH-18の文字コードと内容が一致しません`);
  }
  return { text: decodeAs(charset, bytes), charset, declared: declared.value };
}

function faultFor(charset: Charset, bytes: Uint8Array): ByteFault | undefined {
  switch (charset) {
    case 'iso-2022-jp': return iso2022jpFault(bytes);
    case 'utf-8': return utf8Fault(bytes);
    case 'shift_jis': return shiftJisFault(bytes);
    case 'ascii': return asciiFault(bytes);
  }
}

function decodeAs(charset: Charset, bytes: Uint8Array): string {
  switch (charset) {
    case 'iso-2022-jp': return decodeIso2022jp(bytes);
    case 'utf-8': return Buffer.from(bytes).toString('utf8');
    case 'shift_jis': return iconv.decode(Buffer.from(bytes), 'cp932');
    case 'ascii': return Buffer.from(bytes).toString('latin1');
  }
}

/** Encodes text (an acknowledgment) in the character set of the message it answers. */
export function encodeText(text: string, charset: Charset): Buffer {
  switch (charset) {
    case 'iso-2022-jp': return encodeIso2022jp(text);
    case 'utf-8': return Buffer.from(text, 'utf8');
    case 'shift_jis': return iconv.encode(text, 'cp932');
    // eslint-disable-next-line no-control-regex
    case 'ascii': return Buffer.from(text.replace(/[^\x00-\x7f]/g, '?'), 'latin1');
  }
}

/**
 * MSH-18 read from the first segment. The segment is read in each character set it could be in and
 * the reading that agrees with its own declaration wins, so Japanese text in MSH-3..MSH-17 cannot
 * shift the field count.
 */
function readMsh18(bytes: Uint8Array): { value: string; repetition: string } {
  let end = bytes.findIndex((b) => b === 0x0d || b === 0x0a);
  if (end < 0) end = bytes.length;
  const line = bytes.subarray(0, end);
  const candidates: [Charset | 'any', string][] = [];
  if (line.includes(0x1b) && !iso2022jpFault(line)) candidates.push(['iso-2022-jp', decodeIso2022jp(line)]);
  if (line.some((b) => b >= 0x80)) {
    if (!utf8Fault(line)) candidates.push(['utf-8', Buffer.from(line).toString('utf8')]);
    if (!shiftJisFault(line)) candidates.push(['shift_jis', iconv.decode(Buffer.from(line), 'cp932')]);
  }
  candidates.push(['any', Buffer.from(line).toString('latin1')]);
  for (const [charset, text] of candidates) {
    const found = msh18Of(text);
    if (charset === 'any' || charsetOf(found.value, found.repetition) === charset) return found;
  }
  return msh18Of(candidates[candidates.length - 1][1]);
}

function msh18Of(line: string): { value: string; repetition: string } {
  const separator = line[3];
  const parts = line.split(separator);
  return { value: (parts[17] ?? '').trim(), repetition: parts[1]?.[1] ?? '~' };
}

function trimStart(bytes: Uint8Array): Uint8Array {
  let i = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) i = 3;
  while (i < bytes.length && (bytes[i] === 0x0d || bytes[i] === 0x0a || bytes[i] === 0x20 || bytes[i] === 0x09)) i++;
  return bytes.subarray(i);
}

/** Segment (by position) and field holding byte `offset`, for the ERR segment. */
export function locateOffset(bytes: Uint8Array, offset: number): ErrorLocation {
  const separator = bytes[3];
  let sequence = 1;
  let segmentStart = 0;
  let field = 0;
  for (let i = 0; i < Math.min(offset, bytes.length); i++) {
    const b = bytes[i];
    if (b === 0x0d || b === 0x0a) {
      if (b === 0x0a && bytes[i - 1] === 0x0d) continue;
      sequence++;
      segmentStart = i + 1;
      field = 0;
    } else if (b === separator) {
      field++;
    }
  }
  const segment = Buffer.from(bytes.subarray(segmentStart, segmentStart + 3)).toString('latin1');
  const isMsh = segment === 'MSH';
  return { segment: /^[A-Z][A-Z0-9]{2}$/.test(segment) ? segment : undefined, sequence, field: isMsh ? field + 1 : field || undefined };
}

function asciiFault(bytes: Uint8Array): ByteFault | undefined {
  const escape = bytes.indexOf(0x1b);
  if (escape >= 0) return { offset: escape, reason: 'it holds ISO-2022-JP escape sequences, but MSH-18 does not declare ISO IR87' };
  const high = bytes.findIndex((b) => b >= 0x80);
  if (high >= 0) return { offset: high, reason: '8-bit data, but MSH-18 declares no character set (ASCII)' };
  return undefined;
}

export function shiftJisFault(bytes: Uint8Array): ByteFault | undefined {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x1b) return { offset: i, reason: 'an ISO-2022-JP escape sequence in a Shift_JIS message' };
    if (b < 0x80 || (b >= 0xa1 && b <= 0xdf)) continue;
    if ((b >= 0x81 && b <= 0x9f) || (b >= 0xe0 && b <= 0xfc)) {
      const t = bytes[i + 1];
      if (t === undefined || t < 0x40 || t === 0x7f || t > 0xfc) return { offset: i, reason: 'a Shift_JIS lead byte without a valid trail byte' };
      i++;
      continue;
    }
    return { offset: i, reason: `byte 0x${b.toString(16).toUpperCase()} cannot occur in Shift_JIS` };
  }
  return undefined;
}

export function utf8Fault(bytes: Uint8Array): ByteFault | undefined {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x1b) return { offset: i, reason: 'an ISO-2022-JP escape sequence in a UTF-8 message' };
    if (b < 0x80) continue;
    const length = b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (!length) return { offset: i, reason: `byte 0x${b.toString(16).toUpperCase()} does not start a UTF-8 character` };
    for (let k = 1; k < length; k++) {
      const c = bytes[i + k];
      if (c === undefined || (c & 0xc0) !== 0x80) return { offset: i, reason: 'a UTF-8 character is cut short' };
    }
    const cp = codePoint(bytes, i, length);
    if ((length === 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (length === 4 && (cp < 0x10000 || cp > 0x10ffff))) {
      return { offset: i, reason: 'an invalid UTF-8 sequence' };
    }
    i += length - 1;
  }
  return undefined;
}

function codePoint(bytes: Uint8Array, i: number, length: number): number {
  let cp = bytes[i] & (length === 2 ? 0x1f : length === 3 ? 0x0f : 0x07);
  for (let k = 1; k < length; k++) cp = (cp << 6) | (bytes[i + k] & 0x3f);
  return cp;
}
