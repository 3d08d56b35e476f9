import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const other = (id: string) => ({ resourceType: 'Parameters', parameter: [{ name: 'other', valueReference: { reference: `Patient/${id}` } }] });

describe(`linking one person's records across institutions (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let facility: FhirClient;
  let clinicPatient: string;
  let resident: string;
  let clinicObs: string;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'lk-clinic');
    facility = await organizationClient(stack, 'lk-tokuyo');
    clinicPatient = (await clinic.post('Patient', patient('LK-C-1'))).body.id;
    await clinic.post('MedicationRequest', medicationRequest(clinicPatient, 'LK-RX-1'));
    clinicObs = (await clinic.post('Observation', bodyTemperature(clinicPatient, 36.6, '2026-11-20T08:00:00+09:00'))).body.id;
    resident = (await facility.post('Patient', patient('LK-F-1', {
      // the facility's record: same person, its own identifier, kana written in half-width
      name: [{ extension: [{ url: 'http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation', valueCode: 'SYL' }], family: 'ﾔﾏﾀﾞ', given: ['ﾀﾛｳ'] }],
    }))).body.id;
    await facility.post('Observation', bodyTemperature(resident, 36.9, '2026-11-21T08:00:00+09:00'));
  });
  afterAll(() => stack?.stop());

  it('cannot link to a record it may not see', async () => {
    expect((await facility.post(`Patient/${resident}/$link`, other(clinicPatient))).status).toBe(404);
  });

  it('refuses a link whose demographics disagree', async () => {
    await clinic.post('Consent', consent(clinicPatient, 'lk-clinic', { actors: ['lk-tokuyo'], classes: ['Patient', 'MedicationRequest'] }));
    const someoneElse = (await facility.post('Patient', patient('LK-F-2', { birthDate: '1936-01-01' }))).body.id;
    const res = await facility.post(`Patient/${someoneElse}/$link`, other(clinicPatient));
    expect(res.status).toBe(422);
    expect(res.body.issue.map((i: any) => i.expression[0])).toEqual(['Patient.birthDate']);
  });

  it('links after the check, and patient= searches follow the link within what the Consent opens', async () => {
    expect((await facility.get(`MedicationRequest?patient=${resident}`)).body.total).toBe(0);
    const linked = await facility.post(`Patient/${resident}/$link`, other(clinicPatient));
    expect(linked.status).toBe(200);
    expect(linked.body.link).toEqual([{ other: { reference: `Patient/${clinicPatient}` }, type: 'seealso' }]);
    expect(linked.body.meta.versionId).toBe('2');
    expect((await facility.get(`MedicationRequest?patient=${resident}`)).body.total).toBe(1);
    const observations = await facility.get(`Observation?patient=Patient/${resident}`);
    expect(observations.body.total).toBe(1); // its own; the clinic's Observation is not in the Consent
    expect(observations.body.entry[0].resource.id).not.toBe(clinicObs);
  });

  it('follows the link from the other side too, and in $everything, each side still deciding by its own Consent', async () => {
    expect((await clinic.get(`Observation?patient=${clinicPatient}`)).body.total).toBe(1); // its own only
    await facility.post('Consent', consent(resident, 'lk-tokuyo', { actors: ['lk-clinic'], classes: ['Observation'] }));
    const both = await clinic.get(`Observation?patient=${clinicPatient}`);
    expect(both.body.total).toBe(2);
    expect((await clinic.get(`Patient/${resident}`)).status).toBe(404); // the facility's Consent opens Observations only
    const everything = await facility.get(`Patient/${resident}/$everything`);
    const types = everything.body.entry.map((e: any) => `${e.resource.resourceType}:${e.resource.meta.tag[0].code.split('/')[1]}`).sort();
    expect(types).toEqual(['Consent:lk-tokuyo', 'MedicationRequest:lk-clinic', 'Observation:lk-tokuyo', 'Patient:lk-clinic', 'Patient:lk-tokuyo']);
  });

  it('keeps every link attempt in the audit trail, refused ones included', async () => {
    const trail = await facility.get(`AuditEvent?entity=Patient/${clinicPatient}&_count=100`);
    const attempts = trail.body.entry.map((e: any) => e.resource)
      .filter((e: any) => e.subtype.some((s: any) => s.code === '$link'))
      .map((e: any) => e.outcome).sort();
    expect(attempts).toEqual(['0', '4', '4']);
  });

  it('only the custodian links its record', async () => {
    const res = await clinic.post(`Patient/${clinicPatient}/$link`, other(resident));
    expect(res.status).toBe(404); // the clinic may not see the facility's resident at all
  });

  it('unlinks, and the searches stop following', async () => {
    const res = await facility.post(`Patient/${resident}/$unlink`, other(clinicPatient));
    expect(res.status).toBe(200);
    expect(res.body.link).toBeUndefined();
    expect((await facility.get(`MedicationRequest?patient=${resident}`)).body.total).toBe(0);
    expect((await facility.get(`Patient/${resident}/_history`)).body.total).toBe(3);
  });
});
