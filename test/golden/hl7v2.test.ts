import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { mapMessage, readMessage } from '../../src/ingest/hl7v2/pipeline.js';
import { mappings } from '../../src/ingest/mappings.js';
import { MEDICAL_INSTITUTION_NO, senderFactsOf } from '../../src/ingest/sender.js';
import type { MappingOutput } from '../../src/mapping/engine.js';
import { validateMapped } from '../../src/mapping/validate.js';
import { fromRoot } from '../../src/paths.js';

/**
 * Golden files: each test/golden/hl7v2/*.hl7 (written by make_messages.py, plus the shared fixtures) and
 * the FHIR resources it must map to (the .json beside it). UPDATE_GOLDEN=1 writes a missing .json from
 * the current output, to be read and checked by hand before it is committed.
 */

const DIR = fromRoot('test', 'golden', 'hl7v2');
const CLINIC = senderFactsOf('clinic-midori', {
  resourceType: 'Organization',
  identifier: [{ system: MEDICAL_INSTITUTION_NO, value: '1310000099' }],
});
const files = readdirSync(DIR).filter((f) => f.endsWith('.hl7')).sort();

function map(file: string): { read: ReturnType<typeof readMessage>; output: MappingOutput } {
  const read = readMessage(readFileSync(path.join(DIR, file)));
  return { read, output: mapMessage(read, CLINIC, mappings()) };
}

function snapshot(file: string) {
  const { read, output } = map(file);
  return {
    messageType: read.facts.type,
    controlId: read.facts.controlId,
    charset: read.decoded.charset,
    resources: output.resources.map((r) => ({
      name: r.name,
      ...(r.identity ? { identity: r.identity } : {}),
      ...(r.merge ? { merge: true } : {}),
      ...(r.deletions.length ? { deletions: r.deletions } : {}),
      resource: r.resource,
    })),
  };
}

describe('HL7 v2 golden messages', () => {
  it('cover every message type, order control and character set', () => {
    expect(files.length).toBeGreaterThanOrEqual(25);
    const types = new Set(files.map((f) => map(f).read.facts.type));
    expect([...types].sort()).toEqual(['ADT^A01', 'ADT^A03', 'ADT^A04', 'ADT^A08', 'OUL^R22', 'PPR^ZD1', 'RDE^O11']);
    const declared = new Set(files.map((f) => map(f).read.decoded.declared));
    expect([...declared].sort()).toEqual(['SHIFT_JIS', 'UNICODE UTF-8', '~ISO IR87', '~ISOIR87']);
    const orderControls = new Set(files.flatMap((f) => map(f).read.message.all('ORC').map((s) => s.text(1))));
    expect([...orderControls].sort()).toEqual(['CA', 'DC', 'NW', 'XO']);
  });

  describe.each(files)('%s', (file) => {
    it('maps to the expected resources, and they validate against their profiles', () => {
      const actual = snapshot(file);
      const expectedFile = path.join(DIR, file.replace(/\.hl7$/, '.json'));
      if (process.env.UPDATE_GOLDEN && !existsSync(expectedFile)) writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
      expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, 'utf8')));
      expect(validateMapped(map(file).output.resources)).toEqual([]);
    });
  });
});

describe('what the shared fixtures must become', () => {
  const resources = (file: string) => map(file).output.resources.map((r) => r.resource as Record<string, any>);
  const ofType = (file: string, type: string) => resources(file).filter((r) => r.resourceType === type);

  it('ADT^A08: a JP patient with kanji and kana names, address and phone, height/weight and an allergy', () => {
    const [patient] = ofType('fixture-adt-a08-patient.iso2022jp.hl7', 'Patient');
    expect(patient.identifier).toEqual([{ system: 'urn:oid:1.2.392.100495.20.3.51.11310000099', value: '0000120034' }]);
    expect(patient.name.map((n: any) => [n.extension[0].valueCode, n.family, n.given[0]])).toEqual([['IDE', '山田', '太郎'], ['SYL', 'ヤマダ', 'タロウ']]);
    expect(patient.address[0]).toMatchObject({ text: '埼玉県さいたま市浦和区高砂三丁目１番地', postalCode: '3300063', country: 'JP' });
    expect(patient.telecom[0]).toMatchObject({ system: 'phone', value: '048-000-1111' });
    const observations = ofType('fixture-adt-a08-patient.iso2022jp.hl7', 'Observation');
    expect(observations.map((o) => [o.code.coding[0].code, o.valueQuantity.value, o.valueQuantity.code])).toEqual([['8302-2', 162.5, 'cm'], ['29463-7', 51.2, 'kg']]);
    const [allergy] = ofType('fixture-adt-a08-patient.iso2022jp.hl7', 'AllergyIntolerance');
    expect(allergy).toMatchObject({ category: ['medication'], criticality: 'high', code: { text: 'ペニシリン系' } });
  });

  it('RDE^O11: two MedicationRequests with JAMI 用法, dose, route/site, quantity and duration', () => {
    const [magnesium, tape] = ofType('fixture-rde-o11-two-drugs.iso2022jp.hl7', 'MedicationRequest');
    expect(magnesium.medicationCodeableConcept.coding[0]).toMatchObject({ system: 'http://medis.or.jp/CodeSystem/master-HOT9', code: '105271807' });
    expect(magnesium.dosageInstruction[0].timing.code.coding[0]).toMatchObject({ system: 'http://jami.jp/CodeSystem/MedicationUsage', code: '1013044400000000' });
    expect(magnesium.dosageInstruction[0].doseAndRate[0].doseQuantity).toMatchObject({ value: 2, code: 'TAB', unit: '錠' });
    expect(magnesium.dispenseRequest).toMatchObject({ quantity: { value: 56 }, expectedSupplyDuration: { value: 28, code: 'd' } });
    expect(tape.medicationCodeableConcept.coding[0].system).toBe('http://capstandard.jp/iyaku.info/CodeSystem/YJ-code');
    expect(tape.dosageInstruction[0].site.text).toBe('左手');
  });

  it('ORC-1 DC stops the same MedicationRequest (same id), decoded alike from ISO-2022-JP and UTF-8', () => {
    const [created] = ofType('fixture-rde-o11-two-drugs.iso2022jp.hl7', 'MedicationRequest');
    const [stopped] = ofType('fixture-rde-o11-discontinue.iso2022jp.hl7', 'MedicationRequest');
    const [utf8] = ofType('fixture-rde-o11-one-drug.utf8.hl7', 'MedicationRequest');
    expect(stopped.id).toBe(created.id);
    expect(stopped.status).toBe('stopped');
    expect(utf8).toEqual(created);
  });
});
