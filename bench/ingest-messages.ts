/**
 * RDE^O11 prescriptions for the ingest benchmark, built from the shared fixtures and the golden messages
 * (new orders only), sent as a JAHIS clinic sends them: ISO-2022-JP, MSH-18 `~ISO IR87`. Each message
 * gets its own MSH-10, order numbers (ORC-2, RXE-15) and a patient (PID-3) from a small pool, so that no
 * two messages are the same and concurrent messages rarely wait on one patient.
 * Also the in-process part: the gateway's own decode → parse → map → validate, beside the bare parse.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Organization } from '@medplum/fhirtypes';
import { decodeMessage, encodeText } from '../src/ingest/hl7v2/charset.js';
import { Hl7Message } from '../src/ingest/hl7v2/message.js';
import { mapMessage, readMessage } from '../src/ingest/hl7v2/pipeline.js';
import { mappings } from '../src/ingest/mappings.js';
import { MEDICAL_INSTITUTION_NO, senderFactsOf, type SenderFacts } from '../src/ingest/sender.js';
import type { MappedResource } from '../src/mapping/engine.js';
import { validateMapped } from '../src/mapping/validate.js';
import { fromRoot } from '../src/paths.js';

export const CLINIC_ID = 'bench-clinic';
export const CLINIC_CODE = '1310000099';
export const clinicOrganization = (): Organization => ({
  resourceType: 'Organization', id: CLINIC_ID, name: 'ベンチみどり診療所',
  identifier: [{ system: MEDICAL_INSTITUTION_NO, value: CLINIC_CODE }],
});

const FIXTURES = path.resolve(fromRoot(), '..', 'shared', 'fixtures', 'hl7v2');
const TEMPLATES = [
  path.join(FIXTURES, 'rde-o11-two-drugs.iso2022jp.hl7'),
  path.join(FIXTURES, 'rde-o11-one-drug.utf8.hl7'),
  fromRoot('test', 'golden', 'hl7v2', 'rde-o11-three-drugs.utf8.hl7'),
  fromRoot('test', 'golden', 'hl7v2', 'rde-o11-external-site.iso2022jp.hl7'),
  fromRoot('test', 'golden', 'hl7v2', 'rde-o11-as-needed.sjis.hl7'),
];
const PATIENT_POOL = 500;

/** Each template as text (CR-separated segments), whatever charset it was stored in. */
function templates(): string[][] {
  return TEMPLATES.map((file) => decodeMessage(readFileSync(file)).text.split('\r').filter(Boolean));
}

function setField(segment: string, field: number, value: string): string {
  const fields = segment.split('|');
  fields[segment.startsWith('MSH') ? field - 1 : field] = value;
  return fields.join('|');
}

/** Segment text of message `n` of a run: its own control id, order numbers and pool patient. */
function variant(segments: string[], prefix: string, n: number): string {
  const suffix = `${prefix}${n}`;
  const patient = `9${String(n % PATIENT_POOL).padStart(9, '0')}`;
  return segments.map((s) => {
    const fields = s.split('|');
    if (s.startsWith('MSH|')) return setField(setField(setField(s, 10, suffix), 18, '~ISO IR87'), 20, 'ISO 2022-1994');
    if (s.startsWith('PID|')) return setField(s, 3, fields[3].replace(/^[^^]*/, patient));
    if (s.startsWith('ORC|')) return setField(s, 2, fields[2].replace(/^[^^]*/, (order) => `${order}-${suffix}`));
    if (s.startsWith('RXE|')) return setField(s, 15, `${fields[15]}-${suffix}`);
    return s;
  }).join('\r') + '\r';
}

/** `count` distinct ISO-2022-JP RDE^O11 messages; `prefix` keeps the runs of one benchmark apart. */
export function rdeMessages(count: number, prefix: string): Buffer[] {
  const all = templates();
  return Array.from({ length: count }, (_, n) => {
    const text = variant(all[n % all.length], prefix, n);
    const bytes = encodeText(text, 'iso-2022-jp');
    if (decodeMessage(bytes).text !== text) throw new Error(`template ${TEMPLATES[n % all.length]} does not survive ISO-2022-JP`);
    return bytes;
  });
}

let sender: SenderFacts | undefined;
const clinic = () => (sender ??= senderFactsOf(CLINIC_ID, clinicOrganization()));

/** The resources the gateway makes of a message (as the intake does before it opens a transaction). */
export function mappedResources(bytes: Uint8Array): MappedResource[] {
  const output = mapMessage(readMessage(bytes), clinic(), mappings());
  const invalid = validateMapped(output.resources);
  if (invalid.length) throw new Error(`mapped resources do not validate: ${invalid.map((i) => i.reason).join('; ')}`);
  return output.resources;
}

/** Decode per MSH-18 and split into segments and fields: the least any reader of the message must do. */
export function bareParse(bytes: Uint8Array): number {
  return Hl7Message.parse(decodeMessage(bytes).text).segments.length;
}

export interface ParseReport {
  bareParsePerSec: number;
  mapValidatePerSec: number;
  messages: number;
}

function rate(messages: readonly Buffer[], work: (bytes: Buffer) => unknown): number {
  const started = performance.now();
  for (const bytes of messages) work(bytes);
  return messages.length / ((performance.now() - started) / 1000);
}

/** Both paths on the same messages in this process (one core), each warmed up first. */
export function benchParsing(count: number): ParseReport {
  const warmUp = rdeMessages(Math.min(count, 2000), 'PW');
  const messages = rdeMessages(count, 'PM');
  rate(warmUp, bareParse);
  rate(warmUp, mappedResources);
  const bareParsePerSec = rate(messages, bareParse);
  const mapValidatePerSec = rate(messages, mappedResources);
  return { bareParsePerSec, mapValidatePerSec, messages: count };
}
