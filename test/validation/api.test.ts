import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromRoot } from '../../src/paths.js';
import { generated } from '../../src/validation/generated.js';
import { gatewayProfileFor, hasErrors, knownProfiles, validateResource } from '../../src/validation/index.js';

const BASE = 'http://renkei.jp/fhir/StructureDefinition/';
const patient = () => ({
  resourceType: 'Patient',
  identifier: [{ system: 'urn:oid:1.2.392.100495.20.3.51.11312345670', value: '00012345' }],
  name: [{ text: '山田　太郎', family: '山田', given: ['太郎'] }],
  gender: 'female',
  birthDate: '1931-02-03',
});

describe('validateResource', () => {
  it('rejects what is not a resource', () => {
    expect(validateResource('Patient')).toMatchObject([{ severity: 'error', code: 'structure' }]);
    expect(validateResource([])).toMatchObject([{ severity: 'error', code: 'structure' }]);
    expect(validateResource({ id: 'x' })).toMatchObject([{ severity: 'error', code: 'required', expression: ['resourceType'] }]);
  });

  it('rejects resource types that are not R4, Medplum\'s own included', () => {
    for (const type of ['Resident', 'Project', 'SubscriptionStatus', 'constructor', 'toString']) {
      expect(validateResource({ resourceType: type })).toMatchObject([{ severity: 'error', code: 'not-supported' }]);
    }
  });

  it('accepts Japanese text with ideographic spaces in strings, codes and markdown', () => {
    const p = { ...patient(), maritalStatus: { coding: [{ system: 'urn:example:jp', code: '既婚　同居' }] } };
    const doc = { resourceType: 'Communication', status: 'completed', payload: [{ contentString: '　全角スペースで始まる文\u3000' }], note: [{ text: '**注意**　転倒リスク' }] };
    expect(validateResource(p)).toEqual([]);
    expect(validateResource(doc)).toEqual([]);
  });

  it('keeps Medplum\'s Meta extensions out of R4', () => {
    expect(validateResource({ ...patient(), meta: { project: 'p1' } })).toMatchObject([{ code: 'structure', expression: ['Patient.meta.project'] }]);
  });

  it('checks a claimed gateway profile', () => {
    const p = { ...patient(), meta: { profile: [`${BASE}renkei-patient`] } };
    expect(validateResource(p)).toEqual([]);
    delete (p as Record<string, unknown>).birthDate;
    expect(validateResource(p)).toMatchObject([{ severity: 'error', code: 'required', expression: ['Patient.birthDate'] }]);
  });

  it('ignores an unknown claimed profile with information only', () => {
    const p = { ...patient(), meta: { profile: ['http://jpfhir.jp/fhir/core/StructureDefinition/JP_Patient'] } };
    const issues = validateResource(p);
    expect(issues).toMatchObject([{ severity: 'information', expression: ['Patient.meta.profile'] }]);
    expect(hasErrors(issues)).toBe(false);
  });

  it('reports a null profile claim with no _profile beside it, and checks the claims that are there', () => {
    const issues = validateResource({ ...patient(), meta: { profile: [null, `${BASE}renkei-patient`] }, gender: undefined });
    expect(issues.filter((i) => i.severity === 'error').map((i) => i.expression?.[0])).toEqual(expect.arrayContaining(['Patient.meta.profile[0]']));
    expect(issues.some((i) => i.severity === 'error' && /gender/.test(i.expression?.[0] ?? ''))).toBe(true);
  });

  it('checks options.profiles, and refuses an unknown one', () => {
    const p = patient();
    expect(validateResource(p, { profiles: [`${BASE}renkei-patient`] })).toEqual([]);
    expect(hasErrors(validateResource({ ...p, gender: undefined }, { profiles: [`${BASE}renkei-patient`] }))).toBe(true);
    expect(() => validateResource(p, { profiles: [`${BASE}renkei-resident`] })).toThrow(/Unknown profile/);
  });

  it('refuses a profile of another resource type', () => {
    const issues = validateResource({ ...patient(), meta: { profile: [`${BASE}renkei-consent`] } });
    expect(issues).toMatchObject([{ severity: 'error', code: 'structure', expression: ['Patient.meta.profile'] }]);
  });

  it('reports a violated base invariant once even when a profile restates it', () => {
    const consent = JSON.parse(readFileSync(fromRoot('test/validation/fixtures/valid/Consent-sharing.json'), 'utf8'));
    delete consent.policyRule;
    expect(validateResource(consent).filter((i) => i.diagnostics.startsWith('ppc-1'))).toHaveLength(1);
  });
});

describe('profiles', () => {
  it('lists the gateway profiles', () => {
    expect(knownProfiles()).toEqual(
      ['careplan', 'communication', 'consent', 'medicationrequest', 'organization', 'patient', 'vitalsigns'].map((n) => `${BASE}renkei-${n}`),
    );
  });

  it('names the profile of the gateway\'s mapped output', () => {
    expect(gatewayProfileFor('Patient')).toBe(`${BASE}renkei-patient`);
    expect(gatewayProfileFor('MedicationRequest')).toBe(`${BASE}renkei-medicationrequest`);
    expect(gatewayProfileFor('Consent')).toBe(`${BASE}renkei-consent`);
    expect(gatewayProfileFor('AuditEvent')).toBeUndefined();
    expect(gatewayProfileFor('constructor')).toBeUndefined();
  });

  it('every file in profiles/ is itself a valid R4 resource', () => {
    const dir = fromRoot('profiles');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
      const issues = validateResource(JSON.parse(readFileSync(path.join(dir, file), 'utf8')));
      expect(issues.filter((i) => i.severity === 'error'), file).toEqual([]);
    }
  });
});

describe('generated validators', () => {
  it('load through the V8 code cache made at build time', () => {
    expect(generated.codeCacheUsed).toBe(true);
    expect(generated.model.resourceTypes).toHaveLength(146);
  });
});
