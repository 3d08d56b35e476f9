import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { fromRoot } from '../../src/paths.js';

/**
 * Mutated HL7 messages for fuzzing: each starts from a golden message and goes through a few edits that
 * real senders and broken links produce: flipped and inserted bytes (delimiters, escapes, ISO-2022-JP
 * shifts, CR, 8-bit bytes), cut or repeated ranges, swapped segments, a different MSH-18.
 */

const DIR = fromRoot('test', 'golden', 'hl7v2');
export const CORPUS: Buffer[] = readdirSync(DIR).filter((f) => f.endsWith('.hl7')).sort().map((f) => readFileSync(path.join(DIR, f)));

const INTERESTING = [
  '|', '^', '~', '\\', '&', '\r', '\n', '\x1b$B', '\x1b(B', '\x1b(I', '\x1b$(D', '\\F\\', '\\X41\\', '\\E', '""', 'MSH|', 'ZZZ|',
  '99999999999999', '-1', '1e400', '\u0000',
].map((s) => Buffer.from(s, 'latin1'));
const CHARSETS = ['~ISO IR87', '~ISOIR87', 'UNICODE UTF-8', 'SHIFT_JIS', '', 'ISO IR6', 'KOI8-R', 'UTF-16'];

type Edit = (b: Buffer) => Buffer;

const at = (b: Buffer, fraction: number) => Math.min(b.length, Math.floor(fraction * (b.length + 1)));

const edits: fc.Arbitrary<Edit>[] = [
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 }))
    .map(([f, byte]) => (b: Buffer) => { const c = Buffer.from(b); const i = at(c, f); if (i < c.length) c[i] = byte; return c; }),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom(...INTERESTING))
    .map(([f, bytes]) => (b: Buffer) => { const i = at(b, f); return Buffer.concat([b.subarray(0, i), bytes, b.subarray(i)]); }),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 40 }))
    .map(([f, n]) => (b: Buffer) => { const i = at(b, f); return Buffer.concat([b.subarray(0, i), b.subarray(i + n)]); }),
  fc.double({ min: 0, max: 1, noNaN: true }).map((f) => (b: Buffer) => b.subarray(0, at(b, f))),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 60 }))
    .map(([f, n]) => (b: Buffer) => { const i = at(b, f); return Buffer.concat([b.subarray(0, i + n), b.subarray(i, i + n), b.subarray(i + n)]); }),
  fc.tuple(fc.nat(), fc.nat()).map(([x, y]) => (b: Buffer) => {
    const segments = b.toString('latin1').split('\r');
    if (segments.length < 3) return b;
    const i = 1 + (x % (segments.length - 1));
    const j = 1 + (y % (segments.length - 1));
    [segments[i], segments[j]] = [segments[j], segments[i]];
    return Buffer.from(segments.join('\r'), 'latin1');
  }),
  fc.constantFrom(...CHARSETS).map((charset) => (b: Buffer) => {
    const text = b.toString('latin1');
    const end = text.indexOf('\r');
    const fields = text.slice(0, end < 0 ? text.length : end).split('|');
    if (fields.length > 17) fields[17] = charset;
    return Buffer.from(fields.join('|') + (end < 0 ? '' : text.slice(end)), 'latin1');
  }),
  fc.uint8Array({ minLength: 0, maxLength: 64 }).map((bytes) => (b: Buffer) => Buffer.concat([b, Buffer.from(bytes)])),
];

export const mutatedMessage: fc.Arbitrary<Buffer> = fc
  .tuple(fc.nat({ max: CORPUS.length - 1 }), fc.array(fc.oneof(...edits), { minLength: 1, maxLength: 4 }))
  .map(([index, chain]) => chain.reduce((bytes, edit) => edit(bytes), CORPUS[index]));

/** Samples of the same arbitrary (deterministic for a seed). */
export function sampleMessages(count: number, seed: number): Buffer[] {
  return fc.sample(mutatedMessage, { numRuns: count, seed });
}
