import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, medicationRequest, patient, type ProvisionSpec } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const WIDE = { start: '2020-01-01', end: '2099-12-31' };

describe(`consent-based sharing (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let facility: FhirClient;
  let stranger: FhirClient;
  let patientId: string;
  let medId: string;
  let obsId: string;
  let conditionId: string;
  let consentId: string | undefined;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'cs-clinic');
    facility = await organizationClient(stack, 'cs-tokuyo');
    stranger = await organizationClient(stack, 'cs-rouken');
    patientId = (await clinic.post('Patient', patient('CS-1'))).body.id;
    medId = (await clinic.post('MedicationRequest', medicationRequest(patientId, 'CS-RX-1'))).body.id;
    obsId = (await clinic.post('Observation', bodyTemperature(patientId, 37.1, '2026-11-20T08:00:00+09:00'))).body.id;
    conditionId = (await clinic.post('Condition', {
      resourceType: 'Condition', subject: { reference: `Patient/${patientId}` }, code: { text: '高血圧症' },
    })).body.id;
  });
  afterAll(() => stack?.stop());

  /** Replaces the clinic's Consent for the patient (one at a time keeps each case clear). */
  async function record(provision: ProvisionSpec, status = 'active') {
    const body = consent(patientId, 'cs-clinic', provision, status);
    const res = consentId ? await clinic.put(`Consent/${consentId}`, { ...body, id: consentId }) : await clinic.post('Consent', body);
    expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    consentId = res.body.id;
  }
  beforeEach(async () => {
    if (consentId) await record({ type: 'deny' }, 'inactive');
  });

  const total = async (client: FhirClient, query: string) => (await client.get(query)).body.total;

  it('shares nothing without a Consent: read, search, total, chain and history', async () => {
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
    expect(await total(facility, `MedicationRequest?patient=${patientId}`)).toBe(0);
    expect(await total(facility, 'MedicationRequest?patient.identifier=CS-1')).toBe(0);
    expect((await facility.get(`MedicationRequest/${medId}/_history`)).body.total).toBe(0);
  });

  it('opens the permitted types to the named organization, and nothing more', async () => {
    await record({ actors: ['cs-tokuyo'], classes: ['MedicationRequest', 'Condition'], purposes: ['TREAT'], period: WIDE });
    const med = await facility.get(`MedicationRequest/${medId}`);
    expect(med.status).toBe(200);
    expect(med.body.medicationCodeableConcept.text).toBe('酸化マグネシウム錠３３０ｍｇ');
    expect(await total(facility, `MedicationRequest?patient=${patientId}`)).toBe(1);
    expect(await total(facility, `Condition?patient=${patientId}`)).toBe(1);
    expect((await facility.get(`Observation/${obsId}`)).status).toBe(404);
    expect(await total(facility, `Observation?patient=${patientId}`)).toBe(0);
    expect((await facility.get(`Patient/${patientId}`)).status).toBe(404);
    expect((await stranger.get(`MedicationRequest/${medId}`)).status).toBe(404);
    expect(await total(stranger, `MedicationRequest?patient=${patientId}`)).toBe(0);
    // the clinic sees, in its audit trail, who read its data and under which Consent
    const trail = await clinic.get(`AuditEvent?entity=MedicationRequest/${medId}&agent=Organization/cs-tokuyo`);
    const basis = trail.body.entry.map((e: any) => e.resource.entity.find((x: any) => x.description?.startsWith('decision basis'))?.what.reference);
    expect(basis).toContain(`Consent/${consentId}`);
  });

  it('never lets _include, _revinclude or a chain reach a type the Consent does not open', async () => {
    await record({ actors: ['cs-tokuyo'], classes: ['MedicationRequest'], period: WIDE });
    const included = await facility.get(`MedicationRequest?patient=${patientId}&_include=MedicationRequest:subject`);
    expect(included.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['MedicationRequest']);
    expect(await total(facility, 'MedicationRequest?subject:Patient.identifier=CS-1')).toBe(0);
    await record({ actors: ['cs-tokuyo'], classes: ['MedicationRequest', 'Patient'], period: WIDE });
    const withPatient = await facility.get(`MedicationRequest?patient=${patientId}&_include=MedicationRequest:subject`);
    expect(withPatient.body.entry.map((e: any) => e.resource.resourceType).sort()).toEqual(['MedicationRequest', 'Patient']);
    expect(await total(facility, 'MedicationRequest?subject:Patient.identifier=CS-1')).toBe(1);
    const rev = await facility.get(`Patient?_id=${patientId}&_revinclude=Observation:subject`);
    expect(rev.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['Patient']);
  });

  it('honours the purpose of use', async () => {
    await record({ actors: ['cs-tokuyo'], classes: ['MedicationRequest'], purposes: ['TREAT'], period: WIDE });
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(200);
    expect((await facility.get(`MedicationRequest/${medId}`, { 'x-purpose-of-use': 'HPAYMT' })).status).toBe(404);
  });

  it('lets a nested deny carve an exception out of a permit, and a deeper permit out of that', async () => {
    await record({
      actors: ['cs-tokuyo'], period: WIDE,
      provision: [{ type: 'deny', classes: ['Observation', 'MedicationRequest'], provision: [{ type: 'permit', classes: ['MedicationRequest'] }] }],
    });
    expect((await facility.get(`Condition/${conditionId}`)).status).toBe(200);
    expect((await facility.get(`Observation/${obsId}`)).status).toBe(404);
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(200);
  });

  it('shares only within the provision period', async () => {
    await record({ actors: ['cs-tokuyo'], period: { start: '2020-01-01', end: '2021-01-01' } });
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
    await record({ actors: ['cs-tokuyo'], period: { start: '2098-01-01' } });
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
    await record({ actors: ['cs-tokuyo'], period: { start: '2020-01-01', end: '2099-01-01' }, provision: [{ type: 'deny', period: { start: '2020-01-01', end: '2021-01-01' } }] });
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(200);
  });

  it('stops sharing on the very next request after revocation', async () => {
    await record({ actors: ['cs-tokuyo'], period: WIDE });
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(200);
    await record({ actors: ['cs-tokuyo'], period: WIDE }, 'inactive');
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
    await record({ actors: ['cs-tokuyo'], period: WIDE });
    expect((await clinic.delete(`Consent/${consentId}`)).status).toBe(204);
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
    consentId = undefined;
  });

  it("refuses a Consent recorded by someone who does not hold the patient: it can never open another's data", async () => {
    const forged = await facility.post('Consent', consent(patientId, 'cs-tokuyo', { actors: ['cs-tokuyo'], period: WIDE }));
    expect(forged.status).toBe(422);
    expect(forged.body.issue.map((i: any) => i.expression?.[0])).toContain('Consent.patient');
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
    const resident = (await facility.post('Patient', patient('CS-RES-1'))).body.id;
    const own = await facility.post('Consent', consent(resident, 'cs-tokuyo', { actors: ['cs-clinic'], period: WIDE }));
    expect(own.status).toBe(201);
    expect((await facility.get(`MedicationRequest/${medId}`)).status).toBe(404);
  });

  it('validates Consents with clear outcomes', async () => {
    const noScope = { ...consent(patientId, 'cs-clinic', { actors: ['cs-tokuyo'] }), scope: undefined };
    const missing = await clinic.post('Consent', noScope);
    expect(missing.status).toBe(400); // R4 itself requires Consent.scope
    expect(JSON.stringify(missing.body.issue)).toContain('scope');
    const research = { ...consent(patientId, 'cs-clinic', { actors: ['cs-tokuyo'] }),
      scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'research' }] } };
    const res = await clinic.post('Consent', research);
    expect(res.status).toBe(422);
    expect(res.body.issue[0].expression[0]).toContain('Consent.scope');
    const unknownActor = await clinic.post('Consent', consent(patientId, 'cs-clinic', { actors: ['no-such-org'] }));
    expect(unknownActor.status).toBe(422);
    expect(unknownActor.body.issue[0].expression).toEqual(['Consent.provision.actor[0].reference']);
    const otherRecorder = await clinic.post('Consent', consent(patientId, 'cs-tokuyo', { actors: ['cs-tokuyo'] }));
    expect(otherRecorder.status).toBe(422);
  });

  it('does not reveal a hidden match to a conditional create', async () => {
    const res = await facility.post('MedicationRequest', medicationRequest(patientId, 'CS-FAC-1'), {
      'if-none-exist': 'identifier=CS-RX-1',
    });
    expect(res.status).toBe(201);
    expect(res.body.meta.tag[0].code).toBe('Organization/cs-tokuyo');
  });

  it('explains a decision with $access: permitted or not, and the provision that decided', async () => {
    await record({ actors: ['cs-tokuyo'], period: WIDE, provision: [{ type: 'deny', classes: ['Observation'] }] });
    const res = await clinic.get(`Patient/${patientId}/$access?actor=Organization/cs-tokuyo`);
    expect(res.status).toBe(200);
    const decisions = Object.fromEntries(res.body.parameter.filter((p: any) => p.name === 'decision').map((d: any) => {
      const part = (name: string) => d.part.find((x: any) => x.name === name);
      return [part('type').valueCode, { permitted: part('permitted').valueBoolean, provision: part('provision')?.valueString }];
    }));
    expect(decisions.MedicationRequest).toEqual({ permitted: true, provision: 'Consent.provision' });
    expect(decisions.Observation).toEqual({ permitted: false, provision: 'Consent.provision.provision[0]' });
    const forRouken = await clinic.get(`Patient/${patientId}/$access?actor=Organization/cs-rouken`);
    const denied = forRouken.body.parameter.filter((p: any) => p.name === 'decision');
    expect(denied.every((d: any) => d.part.find((x: any) => x.name === 'permitted').valueBoolean === false)).toBe(true);
    // Someone who cannot see the patient learns nothing, not even that it exists.
    expect((await stranger.get(`Patient/${patientId}/$access?actor=Organization/cs-tokuyo`)).status).toBe(404);
    expect((await clinic.get(`Patient/${patientId}/$access`)).status).toBe(400);
  });

  it('Patient/$everything returns the compartment as far as the Consent opens it', async () => {
    await record({ actors: ['cs-tokuyo'], classes: ['Patient', 'MedicationRequest'], period: WIDE });
    const types = (res: any) => res.body.entry.map((e: any) => e.resource.resourceType).sort();
    const mine = await clinic.get(`Patient/${patientId}/$everything`);
    expect(mine.status).toBe(200);
    expect(types(mine)).toEqual(expect.arrayContaining(['Condition', 'Consent', 'MedicationRequest', 'Observation', 'Patient']));
    const shared = await facility.get(`Patient/${patientId}/$everything`);
    // the clinic's Patient and MedicationRequest, and the facility's own MedicationRequest about the patient
    expect(types(shared)).toEqual(['MedicationRequest', 'MedicationRequest', 'Patient']);
    expect(shared.body.total).toBe(3);
    expect((await stranger.get(`Patient/${patientId}/$everything`)).status).toBe(404);
  });
});
