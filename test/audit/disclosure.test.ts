import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { consent, medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

const basisOf = (event: any) => event.entity.filter((e: any) => e.role.code === '13').map((e: any) => e.what.reference);
const subtypes = (event: any) => event.subtype.map((s: any) => s.code);

describe(`disclosures in the audit trail and the patient's access log (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let facility: FhirClient;
  let patientId: string;
  let consentId: string;
  const meds: string[] = [];

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'dl-clinic');
    facility = await organizationClient(stack, 'dl-tokuyo');
    patientId = (await clinic.post('Patient', patient('DL-1'))).body.id;
    for (let i = 0; i < 2; i++) meds.push((await clinic.post('MedicationRequest', medicationRequest(patientId, `DL-RX-${i}`))).body.id);
    consentId = (await clinic.post('Consent', consent(patientId, 'dl-clinic', { actors: ['dl-tokuyo'], classes: ['MedicationRequest'], purposes: ['TREAT'] }))).body.id;
    expect((await facility.get(`MedicationRequest?patient=${patientId}`)).body.total).toBe(2);
    await facility.get(`MedicationRequest/${meds[0]}/_history`);
  });
  afterAll(() => stack?.stop());

  it("records each search that showed another owner's data as a disclosure the owner can find, with its Consent", async () => {
    const trail = await clinic.get(`AuditEvent?patient=${patientId}&subtype=disclose`);
    expect(trail.status).toBe(200);
    const events = trail.body.entry.map((e: any) => e.resource);
    expect(events.length).toBe(2); // the search and the history
    for (const event of events) {
      expect(subtypes(event)).toEqual(['disclose']);
      expect(event.agent.map((a: any) => a.who.reference).filter(Boolean)).toEqual(['Organization/dl-tokuyo']);
      expect(event.purposeOfEvent[0].coding[0].code).toBe('TREAT');
      expect(basisOf(event)).toEqual([`Consent/${consentId}`]);
    }
    const shown = events.flatMap((e: any) => e.entity.filter((x: any) => x.role.code === '4').map((x: any) => x.what.reference));
    expect(shown).toEqual(expect.arrayContaining(meds.map((id) => `MedicationRequest/${id}`)));
  });

  it("keeps the owner's own entries from the grantee", async () => {
    await clinic.get(`Patient/${patientId}`);
    const seen = await facility.get(`AuditEvent?patient=${patientId}&_count=100`);
    const agents = seen.body.entry.flatMap((e: any) => e.resource.agent.map((a: any) => a.who.reference).filter(Boolean));
    expect(new Set(agents)).toEqual(new Set(['Organization/dl-tokuyo']));
  });

  it("exports the patient's access log as a Bundle and as CSV, for the custodian only", async () => {
    const log = await clinic.get(`Patient/${patientId}/$access-log`);
    expect(log.status).toBe(200);
    expect(log.body).toMatchObject({ resourceType: 'Bundle', type: 'collection' });
    const events = log.body.entry.map((e: any) => e.resource);
    expect(events.every((e: any) => e.resourceType === 'AuditEvent')).toBe(true);
    const recorded = events.map((e: any) => e.recorded);
    expect(recorded).toEqual([...recorded].sort());
    expect(events.some((e: any) => subtypes(e).includes('disclose') && basisOf(e).includes(`Consent/${consentId}`))).toBe(true);
    const csv = await clinic.get(`Patient/${patientId}/$access-log?_format=csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = String(csv.body).replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toContain('根拠 basis');
    expect(lines.some((l) => l.includes('disclose') && l.includes('Organization/dl-tokuyo') && l.includes(`Consent/${consentId}`))).toBe(true);
    expect((await facility.get(`Patient/${patientId}/$access-log`)).status).toBe(404);
  });

  it('lets nobody change or remove an AuditEvent, directly or in a Bundle', async () => {
    const id = (await clinic.get(`AuditEvent?patient=${patientId}&_count=1`)).body.entry[0].resource.id;
    const event = (await clinic.get(`AuditEvent/${id}`)).body;
    expect((await clinic.put(`AuditEvent/${id}`, { ...event, outcome: '8' })).status).toBe(405);
    expect((await clinic.delete(`AuditEvent/${id}`)).status).toBe(405);
    expect((await clinic.request('PATCH', `AuditEvent/${id}`, [])).status).toBe(405);
    for (const method of ['PUT', 'DELETE', 'POST']) {
      const entry = { request: { method, url: method === 'POST' ? 'AuditEvent' : `AuditEvent/${id}` }, ...(method !== 'DELETE' ? { resource: event } : {}) };
      const res = await clinic.post('', { resourceType: 'Bundle', type: 'transaction', entry: [entry] });
      expect(res.status).toBe(400);
    }
    expect((await clinic.get(`AuditEvent/${id}`)).body).toEqual(event);
  });
});
