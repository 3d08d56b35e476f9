import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import fhirpath from 'fhirpath';
import r4model from 'fhirpath/fhir-context/r4/index.js';
import { EXPRESSION_GUARDS } from '../../src/validation/fhirpath-invariant.js';
import { validateResource, type ValidationIssue } from '../../src/validation/index.js';

type Json = Record<string, any>;
const here = path.dirname(fileURLToPath(import.meta.url));
const fixture = (name: string): Json => JSON.parse(readFileSync(path.join(here, 'fixtures', 'valid', `${name}.json`), 'utf8'));
const BASE = 'http://renkei.jp/fhir/StructureDefinition/';
const errors = (r: unknown, profile: string) =>
  validateResource(r, { profiles: [BASE + profile] }).filter((i: ValidationIssue) => i.severity === 'error');
const where = (r: unknown, profile: string) => errors(r, profile).map((i) => [i.code, i.expression?.[0]]);

/** Each case breaks one constraint of a valid resource and names the issue expected. */
function violations(label: string, valid: () => Json, cases: [string, (r: Json) => void, [string, string]][]) {
  const profile = label.split(' ')[0];
  describe(label, () => {
    it('accepts the valid Japanese example', () => {
      expect(errors(valid(), profile)).toEqual([]);
    });
    it.each(cases)('rejects: %s', (_name, breakIt, expected) => {
      const r = valid();
      breakIt(r);
      expect(where(r, profile)).toContainEqual(expected);
    });
  });
}

const patient = () => {
  const p = fixture('Patient-yamada');
  p.meta.profile = [BASE + 'renkei-patient'];
  return p;
};
violations('renkei-patient', patient, [
  ['no identifier', (p) => delete p.identifier, ['required', 'Patient.identifier']],
  ['identifier without system', (p) => delete p.identifier[0].system, ['required', 'Patient.identifier[0].system']],
  ['identifier without value', (p) => delete p.identifier[0].value, ['required', 'Patient.identifier[0].value']],
  ['no name', (p) => delete p.name, ['required', 'Patient.name']],
  ['name with only given names', (p) => (p.name = [{ given: ['太郎'] }]), ['invariant', 'Patient']],
  ['representation other than IDE/SYL/ABC', (p) => (p.name[1].extension[0].valueCode = 'KANA'), ['code-invalid', 'Patient.name[1].extension[0].valueCode']],
  ['representation given twice', (p) => p.name[0].extension.push({ url: p.name[0].extension[0].url, valueCode: 'SYL' }), ['structure', 'Patient.name[0].extension']],
  ['representation of another type', (p) => (p.name[0].extension[0] = { url: p.name[0].extension[0].url, valueString: 'IDE' }), ['structure', 'Patient.name[0].extension[0].valueString']],
  ['no gender', (p) => delete p.gender, ['required', 'Patient.gender']],
  ['no birthDate', (p) => { delete p.birthDate; delete p._birthDate; }, ['required', 'Patient.birthDate']],
]);

it('renkei-patient accepts a birthDate given only as an extension, and other name extensions', () => {
  const p = patient();
  p._birthDate = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };
  delete p.birthDate;
  p.name[0].extension.push({ url: 'http://example.jp/name-note', valueString: '旧姓あり' });
  expect(errors(p, 'renkei-patient')).toEqual([]);
});

const rx = () => fixture('MedicationRequest-dasen');
violations('renkei-medicationrequest', rx, [
  ['drug coded outside HOT/YJ', (r) => (r.medicationCodeableConcept.coding[0].system = 'http://example.org/drugs'), ['code-invalid', 'MedicationRequest.medicationCodeableConcept']],
  ['drug as text only', (r) => (r.medicationCodeableConcept = { text: 'ダーゼン錠' }), ['code-invalid', 'MedicationRequest.medicationCodeableConcept']],
  ['drug as a reference', (r) => { delete r.medicationCodeableConcept; r.medicationReference = { reference: 'Medication/med-1' }; }, ['structure', 'MedicationRequest.medicationReference']],
  ['subject is a Group', (r) => (r.subject = { reference: 'Group/ward-2' }), ['value', 'MedicationRequest.subject']],
  ['no authoredOn', (r) => delete r.authoredOn, ['required', 'MedicationRequest.authoredOn']],
  ['no dosage', (r) => delete r.dosageInstruction, ['required', 'MedicationRequest.dosageInstruction']],
  ['dosage without timing', (r) => delete r.dosageInstruction[0].timing, ['required', 'MedicationRequest.dosageInstruction[0].timing']],
]);

it('renkei-medicationrequest accepts YJ, HOT7 and HOT13 codes', () => {
  for (const system of ['http://capstandard.jp/iyaku.info/CodeSystem/YJ-code', 'http://medis.or.jp/CodeSystem/master-HOT7', 'http://medis.or.jp/CodeSystem/master-HOT13']) {
    const r = rx();
    r.medicationCodeableConcept.coding = [{ system, code: '1234567' }, { system: 'urn:oid:1.2.392.100495.20.2.74', code: 'local-1' }];
    expect(errors(r, 'renkei-medicationrequest')).toEqual([]);
  }
});

const temperature = () => fixture('Observation-temperature');
violations('renkei-vitalsigns', temperature, [
  ['no vital-signs category', (o) => (o.category = [{ text: '記録' }]), ['required', 'Observation.category']],
  ['code not a vital sign', (o) => (o.code = { coding: [{ system: 'http://loinc.org', code: '2339-0' }] }), ['code-invalid', 'Observation.code']],
  ['code not LOINC', (o) => (o.code = { coding: [{ system: 'http://example.jp/vitals', code: 'BT' }], text: '体温' }), ['code-invalid', 'Observation.code']],
  ['value not a Quantity', (o) => { delete o.valueQuantity; o.valueString = '36.8'; }, ['structure', 'Observation.valueString']],
  ['unit not UCUM', (o) => (o.valueQuantity.system = 'http://example.jp/units'), ['value', 'Observation.valueQuantity.system']],
  ['no UCUM code', (o) => delete o.valueQuantity.code, ['required', 'Observation.valueQuantity.code']],
  ['no effective time', (o) => delete o.effectiveDateTime, ['required', 'Observation.effective']],
  ['subject is not a Patient', (o) => (o.subject = { reference: 'Location/room-201' }), ['value', 'Observation.subject']],
  ['neither value nor components', (o) => delete o.valueQuantity, ['invariant', 'Observation']],
]);

const bp = () => fixture('Observation-bp');
violations('renkei-vitalsigns (blood pressure)', bp, [
  ['component without value or reason', (o) => delete o.component[1].valueQuantity, ['invariant', 'Observation.component[1]']],
  ['component unit not UCUM', (o) => (o.component[0].valueQuantity.system = 'urn:jis:unit'), ['value', 'Observation.component[0].valueQuantity.system']],
]);

const careplan = () => fixture('CarePlan-facility');
violations('renkei-careplan', careplan, [
  ['subject is a Group', (c) => (c.subject = { reference: 'Group/floor-3' }), ['value', 'CarePlan.subject']],
  ['no period', (c) => delete c.period, ['required', 'CarePlan.period']],
  ['period without start', (c) => (c.period = { end: '2024-09-30' }), ['required', 'CarePlan.period.start']],
  ['no created date', (c) => delete c.created, ['required', 'CarePlan.created']],
  ['author is a Patient', (c) => (c.author = { reference: 'Patient/yamada-taro' }), ['value', 'CarePlan.author']],
  ['status outside request-status', (c) => (c.status = 'finished'), ['code-invalid', 'CarePlan.status']],
]);

const consent = () => fixture('Consent-sharing');
violations('renkei-consent', consent, [
  ['scope other than patient-privacy', (c) => (c.scope.coding[0].code = 'research'), ['value', 'Consent.scope']],
  ['no patient', (c) => delete c.patient, ['required', 'Consent.patient']],
  ['no organization', (c) => delete c.organization, ['required', 'Consent.organization']],
  ['organization is a Practitioner', (c) => (c.organization = [{ reference: 'Practitioner/dr-ichiro' }]), ['value', 'Consent.organization[0]']],
  ['neither policy nor policyRule (ppc-1)', (c) => delete c.policyRule, ['invariant', 'Consent']],
  ['no provision', (c) => delete c.provision, ['required', 'Consent.provision']],
  ['provision without type', (c) => delete c.provision.type, ['required', 'Consent.provision.type']],
  ['no dateTime', (c) => delete c.dateTime, ['required', 'Consent.dateTime']],
]);

const communication = () => fixture('Communication-kyuhen');
violations('renkei-communication', communication, [
  ['no priority', (c) => delete c.priority, ['required', 'Communication.priority']],
  ['priority outside the value set', (c) => (c.priority = 'high'), ['code-invalid', 'Communication.priority']],
  ['no payload', (c) => delete c.payload, ['required', 'Communication.payload']],
  ['no recipient', (c) => delete c.recipient, ['required', 'Communication.recipient']],
  ['recipient is a Device', (c) => (c.recipient = [{ reference: 'Device/pager' }]), ['value', 'Communication.recipient[0]']],
  ['no subject', (c) => delete c.subject, ['required', 'Communication.subject']],
  ['no sender', (c) => delete c.sender, ['required', 'Communication.sender']],
  ['not sent', (c) => delete c.sent, ['required', 'Communication.sent']],
]);

const clinic = () => fixture('Organization-clinic');
violations('renkei-organization', clinic, [
  ['no identifier', (o) => delete o.identifier, ['required', 'Organization.identifier']],
  ['no name', (o) => delete o.name, ['required', 'Organization.name']],
  ['医療機関コード not 10 digits', (o) => (o.identifier[0].value = '131234567'), ['invariant', 'Organization']],
  ['medical institution without 医療機関コード', (o) => (o.identifier = [{ system: 'urn:example:local', value: 'A1' }]), ['invariant', 'Organization']],
]);
violations('renkei-organization (care provider)', () => fixture('Organization-tokuyo'), [
  ['介護事業所番号 not digits', (o) => (o.identifier[0].value = '13-7123456'), ['invariant', 'Organization']],
  ['care provider without 介護事業所番号', (o) => (o.identifier[0].system = 'urn:example:local'), ['invariant', 'Organization']],
]);

it('renkei-organization accepts a regional network with its own identifier', () => {
  const org = { resourceType: 'Organization', identifier: [{ system: 'urn:oid:1.2.392.999.1', value: 'net-01' }], name: '○○地域医療連携ネットワーク', type: [{ coding: [{ system: 'http://renkei.jp/fhir/CodeSystem/organization-kind', code: 'regional-network' }] }] };
  expect(errors(org, 'renkei-organization')).toEqual([]);
});

/** Whether fhirpath.js, without any shortcut, finds the invariant violated (the expression is false). */
const violatedByFhirPath = (r: Json, expression: string) => {
  const result = fhirpath.evaluate(r, { base: r.resourceType, expression }, {}, r4model) as unknown[];
  return result.length === 1 && result[0] === false;
};
const absent = { extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/data-absent-reason', valueCode: 'unknown' }] };

describe('invariants with a shortcut decide as their FHIRPath expression does', () => {
  it('covers the expressions of renkei-pat-1 and ppc-1', () => {
    expect(Object.keys(EXPRESSION_GUARDS).sort()).toEqual(['name.where(family.exists() or text.exists()).exists()', 'policy.exists() or policyRule.exists()']);
  });

  it('renkei-pat-1, whatever the names look like', () => {
    const expression = 'name.where(family.exists() or text.exists()).exists()';
    const names: Json[][] = [
      [{ family: '山田' }], [{ text: '山田 太郎' }], [{ given: ['太郎'] }], [{ given: ['太郎'] }, { family: '山田' }],
      [{ _family: absent }], [{ _text: absent, given: ['太郎'] }], [{ use: 'official' }, { use: 'nickname', given: ['タロ'] }],
    ];
    for (const name of names) {
      const p = patient();
      p.name = name;
      const fails = errors(p, 'renkei-patient').some((i) => i.diagnostics.startsWith('renkei-pat-1'));
      expect(fails, JSON.stringify(name)).toBe(violatedByFhirPath(p, expression));
    }
  });

  it('ppc-1 (R4 and renkei-consent), whatever policy and policyRule look like', () => {
    const expression = 'policy.exists() or policyRule.exists()';
    const rule = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'OPTIN' }] };
    const shapes: Json[] = [
      { policyRule: rule }, { policy: [{ uri: 'http://example.jp/policy' }] }, { policy: [{ authority: 'http://example.jp' }], policyRule: rule },
      { policy: [{ extension: absent.extension }] }, { policyRule: { text: '同意' } }, {},
    ];
    for (const shape of shapes) {
      const c = consent();
      delete c.policy;
      delete c.policyRule;
      Object.assign(c, shape);
      const violated = violatedByFhirPath(c, expression);
      const { meta: _profiles, ...plain } = c;
      const r4Fails = validateResource(plain).some((i) => i.severity === 'error' && i.diagnostics.startsWith('ppc-1'));
      expect(r4Fails, `R4 ${JSON.stringify(shape)}`).toBe(violated);
      expect(errors(c, 'renkei-consent').some((i) => i.diagnostics.startsWith('ppc-1')), `profile ${JSON.stringify(shape)}`).toBe(violated);
    }
    expect(violatedByFhirPath(consent(), expression)).toBe(false);
  });
});
