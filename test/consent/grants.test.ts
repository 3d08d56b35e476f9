import type { Consent, ConsentProvision } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { grantsOf } from '../../src/consent/grants.js';

const IRCP = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'IRCP' }] };
const actor = (org: string, role = IRCP) => ({ role, reference: { reference: `Organization/${org}` } });
const cls = (...codes: string[]) => codes.map((code) => ({ system: 'http://hl7.org/fhir/resource-types', code }));
const consentWith = (provision: ConsentProvision, status: Consent['status'] = 'active'): Consent => ({
  resourceType: 'Consent', status, scope: {}, category: [], patient: { reference: 'Patient/p1' }, provision,
});
const rows = (provision: ConsentProvision, status?: Consent['status']) => grantsOf(consentWith(provision, status), 'c1', 'clinic');
const brief = (provision: ConsentProvision) =>
  rows(provision).map((g) => `${g.permit ? '+' : '-'}${g.depth} ${g.grantee} ${g.resource_type} ${g.purpose}${g.codes ? ` ${g.codes.join('&')}` : ''}`);

describe('flattening a Consent into grants', () => {
  it('grants nothing unless active, about a Patient, with a provision', () => {
    expect(rows({ type: 'permit' }, 'inactive')).toEqual([]);
    expect(rows({ type: 'permit' }, 'proposed')).toEqual([]);
    expect(grantsOf({ ...consentWith({ type: 'permit' }), patient: { reference: 'Group/g' } }, 'c1', 'clinic')).toEqual([]);
    expect(rows({ type: 'permit' })).toEqual([expect.objectContaining({
      consent_id: 'c1', owner: 'clinic', patient_id: 'p1', grantee: '*', resource_type: '*', purpose: '*', permit: true, depth: 0,
      conditional: false, provision: 'Consent.provision',
    })]);
  });

  it('lets nested provisions inherit what they leave out and narrow what they state', () => {
    expect(brief({
      type: 'permit', actor: [actor('a'), actor('b')], class: cls('Observation', 'Condition'),
      provision: [
        { type: 'deny', actor: [actor('b')] },
        { type: 'deny', class: cls('Observation', 'MedicationRequest'), purpose: [{ code: 'HPAYMT' }] },
        { type: 'deny', actor: [actor('c')] }, // c was never permitted: the exception applies to no one
      ],
    })).toEqual([
      '+0 a Observation *', '+0 a Condition *', '+0 b Observation *', '+0 b Condition *',
      '-1 b Observation *', '-1 b Condition *',
      '-1 a Observation HPAYMT', '-1 b Observation HPAYMT',
    ]);
  });

  it('only grants to actors in a recipient role', () => {
    const custodian = { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ParticipationType', code: 'CST' }] };
    expect(brief({ type: 'permit', actor: [actor('a', custodian), actor('b')] })).toEqual(['+0 b * *']);
    expect(brief({ type: 'permit', actor: [actor('a', custodian)] })).toEqual([]);
  });

  it('combines codes so that data matches a parent code and a nested code', () => {
    const code = (c: string) => ({ coding: [{ system: 'http://loinc.org', code: c }] });
    expect(brief({ type: 'permit', code: [code('1'), code('2')], provision: [{ type: 'deny', code: [code('2')] }] })).toEqual([
      '+0 * * * http://loinc.org|1', '+0 * * * http://loinc.org|2',
      '-1 * * * http://loinc.org|1&http://loinc.org|2', '-1 * * * http://loinc.org|2',
    ]);
  });

  it('cuts periods and dataPeriods to the parent, and drops a provision that cannot overlap', () => {
    const [root, child] = rows({
      type: 'permit', period: { start: '2026-01-01', end: '2026-12-31' }, dataPeriod: { start: '2025-04-01' },
      provision: [
        { type: 'deny', period: { start: '2026-06-01', end: '2027-12-31' }, dataPeriod: { end: '2025-09-30' } },
        { type: 'deny', period: { start: '2027-01-01' } },
      ],
    });
    expect(root).toMatchObject({ period_start: '2025-12-31T15:00:00.000Z', period_end: '2026-12-31T15:00:00.000Z', data_start: '2025-03-31T15:00:00.000Z', data_end: null, conditional: true });
    expect(child).toMatchObject({ period_start: '2026-05-31T15:00:00.000Z', period_end: '2026-12-31T15:00:00.000Z', data_start: '2025-03-31T15:00:00.000Z', data_end: '2025-09-30T15:00:00.000Z' });
    expect(rows({ type: 'permit', period: { start: '2026-01-01', end: '2026-12-31' }, provision: [{ type: 'deny', period: { start: '2027-01-01' } }] })).toHaveLength(1);
  });

  it('keeps only provisions about looking at data, and security labels as conditions', () => {
    const action = (code: string) => [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentaction', code }] }];
    expect(rows({ type: 'permit', action: action('collect') })).toEqual([]);
    expect(rows({ type: 'permit', action: action('access') })).toHaveLength(1);
    const [labelled] = rows({ type: 'deny', securityLabel: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality', code: 'R' }] });
    expect(labelled).toMatchObject({ permit: false, labels: ['http://terminology.hl7.org/CodeSystem/v3-Confidentiality|R'], conditional: true });
  });
});
