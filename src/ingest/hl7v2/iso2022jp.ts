import Encoding from 'encoding-japanese';

/**
 * ISO-2022-JP as JAHIS messages use it (MSH-18 `ISO IR87`, with ISO IR159 and ISO IR13 as found in the
 * field): ASCII / JIS X 0201 Roman, JIS X 0208 two-byte runs, JIS X 0212 and half-width katakana, each
 * switched in by an escape sequence. The bytes are checked strictly first, so a message that is not
 * ISO-2022-JP is refused with the place where it went wrong instead of being decoded into '?' or
 * mojibake; decoding itself is encoding-japanese's (it knows the NEC and IBM extensions vendors send).
 */

type Mode = 'ascii' | 'double' | 'kana';

const ESC = 0x1b;
const SEQUENCES: { bytes: number[]; mode: Mode }[] = [
  { bytes: [0x28, 0x42], mode: 'ascii' }, // ESC ( B  ASCII
  { bytes: [0x28, 0x4a], mode: 'ascii' }, // ESC ( J  JIS X 0201 Roman
  { bytes: [0x24, 0x42], mode: 'double' }, // ESC $ B  JIS X 0208-1983
  { bytes: [0x24, 0x40], mode: 'double' }, // ESC $ @  JIS X 0208-1978
  { bytes: [0x24, 0x28, 0x44], mode: 'double' }, // ESC $ ( D  JIS X 0212
  { bytes: [0x26, 0x40, ESC, 0x24, 0x42], mode: 'double' }, // ESC & @ ESC $ B  JIS X 0208-1990
  { bytes: [0x28, 0x49], mode: 'kana' }, // ESC ( I  JIS X 0201 katakana
];

export interface ByteFault {
  /** Offset of the offending byte in the message. */
  offset: number;
  reason: string;
}

function sequenceAt(bytes: Uint8Array, at: number): { length: number; mode: Mode } | undefined {
  for (const s of SEQUENCES) {
    if (s.bytes.every((b, i) => bytes[at + 1 + i] === b)) return { length: 1 + s.bytes.length, mode: s.mode };
  }
  return undefined;
}

/** The first place where `bytes` break ISO-2022-JP, or undefined when they are well-formed. */
export function iso2022jpFault(bytes: Uint8Array): ByteFault | undefined {
  let mode: Mode = 'ascii';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b === ESC) {
      const seq = sequenceAt(bytes, i);
      if (!seq) return { offset: i, reason: 'unknown ISO-2022-JP escape sequence' };
      mode = seq.mode;
      i += seq.length;
      continue;
    }
    if (b >= 0x80) return { offset: i, reason: `byte 0x${hex(b)} cannot occur in ISO-2022-JP (8-bit data: is it Shift_JIS or UTF-8?)` };
    if (mode === 'double') {
      if (b === 0x0d || b === 0x0a) return { offset: i, reason: 'the line ends inside a 2-byte run (ESC ( B missing)' };
      const next = bytes[i + 1];
      if (b < 0x21 || b > 0x7e || next === undefined || next < 0x21 || next > 0x7e) {
        return { offset: i, reason: 'broken 2-byte character in a JIS X 0208 run' };
      }
      i += 2;
      continue;
    }
    if (mode === 'kana' && (b === 0x0d || b === 0x0a)) return { offset: i, reason: 'the line ends inside a katakana run (ESC ( B missing)' };
    if (mode === 'kana' && (b < 0x21 || b > 0x5f)) return { offset: i, reason: `byte 0x${hex(b)} is not a JIS X 0201 katakana` };
    i += 1;
  }
  if (mode !== 'ascii') return { offset: bytes.length, reason: 'the message ends without returning to ASCII (ESC ( B missing)' };
  return undefined;
}

/** Decodes well-formed ISO-2022-JP (check with iso2022jpFault first). */
export function decodeIso2022jp(bytes: Uint8Array): string {
  if (!bytes.includes(ESC)) return Buffer.from(bytes).toString('latin1');
  return Encoding.convert(bytes, { to: 'UNICODE', from: 'JIS', type: 'string' });
}

/** Encodes text as ISO-2022-JP; characters outside JIS X 0208/0212 become '?'. */
export function encodeIso2022jp(text: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(text)) return Buffer.from(text, 'latin1');
  return Buffer.from(Encoding.convert(text, { to: 'JIS', from: 'UNICODE', type: 'array' }));
}

const hex = (b: number) => b.toString(16).toUpperCase().padStart(2, '0');
