import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, consent, medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

/**
 * Every access point answers a hidden resource exactly as a missing one, and shows another owner's data
 * only as far as its Consent opens it (here: the clinic's MedicationRequests and Patient to the facility).
 */
describe(`consent enforcement at every access point (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let facility: FhirClient;
  let patientId: string;
  let obsId: string;
  const meds: string[] = [];
  let ownMed: string;
  const MISSING = '00000000-0000-4000-8000-000000000000';

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'ef-clinic');
    facility = await organizationClient(stack, 'ef-tokuyo');
    patientId = (await clinic.post('Patient', patient('EF-1'))).body.id;
    obsId = (await clinic.post('Observation', { ...bodyTemperature(patientId, 37.9, '2026-11-20T08:00:00+09:00'),
      identifier: [{ system: 'urn:ef', value: 'OBS-1' }] })).body.id;
    for (let i = 0; i < 3; i++) meds.push((await clinic.post('MedicationRequest', medicationRequest(patientId, `EF-RX-${i}`))).body.id);
    // The facility's own record about the clinic's patient sits among the clinic's in every page.
    ownMed = (await facility.post('MedicationRequest', medicationRequest(patientId, 'EF-FAC-1'))).body.id;
    const made = await clinic.post('Consent', consent(patientId, 'ef-clinic', { actors: ['ef-tokuyo'], classes: ['MedicationRequest', 'Patient'] }));
    expect(made.status).toBe(201);
  });
  afterAll(() => stack?.stop());

  const same = (a: { status: number; body: any }, b: { status: number; body: any }) => {
    expect(a.status).toBe(b.status);
    expect(a.body.issue?.map((i: any) => i.code)).toEqual(b.body.issue?.map((i: any) => i.code));
  };

  it('read, vread and instance history: hidden answers like missing', async () => {
    same(await facility.get(`Observation/${obsId}`), await facility.get(`Observation/${MISSING}`));
    expect((await facility.get(`Observation/${obsId}`)).status).toBe(404);
    same(await facility.get(`Observation/${obsId}/_history/1`), await facility.get(`Observation/${MISSING}/_history/1`));
    const hidden = await facility.get(`Observation/${obsId}/_history`);
    const missing = await facility.get(`Observation/${MISSING}/_history`);
    expect([hidden.status, hidden.body.total]).toEqual([missing.status, missing.body.total]);
    expect((await facility.get(`MedicationRequest/${meds[0]}/_history/1`)).status).toBe(200);
  });

  it('type and system history count only what the caller may see', async () => {
    expect((await facility.get('Observation/_history')).body.total).toBe(0);
    expect((await facility.get('MedicationRequest/_history')).body.total).toBe(4);
    const system = await facility.get('_history?_count=100');
    const types = new Set(system.body.entry.map((e: any) => e.resource?.resourceType));
    expect(types.has('Observation')).toBe(false);
    expect(types.has('Consent')).toBe(false);
  });

  it('search pages are full and totals count only visible rows', async () => {
    const seen: string[] = [];
    for (let offset = 0; offset < 4; offset++) {
      const page = await facility.get(`MedicationRequest?patient=${patientId}&_count=1&_offset=${offset}&_total=accurate`);
      expect(page.body.total).toBe(4);
      expect(page.body.entry).toHaveLength(1);
      seen.push(page.body.entry[0].resource.id);
    }
    expect(seen.sort()).toEqual([...meds, ownMed].sort());
    expect((await facility.get(`Observation?patient=${patientId}&_total=accurate`)).body.total).toBe(0);
    expect((await facility.get('Observation?_summary=count')).body.total).toBe(0);
  });

  it('_include, _revinclude and chains stay within the Consent', async () => {
    const withPatient = await facility.get(`MedicationRequest?_id=${meds[0]}&_include=MedicationRequest:subject`);
    expect(withPatient.body.entry.map((e: any) => e.resource.resourceType)).toEqual(['MedicationRequest', 'Patient']);
    const rev = await facility.get(`Patient?_id=${patientId}&_revinclude=Observation:subject&_revinclude=MedicationRequest:subject`);
    expect(rev.body.entry.filter((e: any) => e.search.mode === 'include').map((e: any) => e.resource.resourceType).sort())
      .toEqual(['MedicationRequest', 'MedicationRequest', 'MedicationRequest', 'MedicationRequest']);
    expect((await facility.get('Observation?subject:Patient.identifier=EF-1')).body.total).toBe(0);
    expect((await facility.get('MedicationRequest?subject:Patient.identifier=EF-1')).body.total).toBe(4);
  });

  it('Patient/$everything shows the compartment as far as the Consent opens it', async () => {
    const all = await facility.get(`Patient/${patientId}/$everything`);
    expect(all.body.total).toBe(5);
    expect(new Set(all.body.entry.map((e: any) => e.resource.resourceType))).toEqual(new Set(['Patient', 'MedicationRequest']));
  });

  it('batch and transaction reads are filtered like direct ones', async () => {
    const bundle = (type: string) => ({
      resourceType: 'Bundle', type,
      entry: [
        { request: { method: 'GET', url: `MedicationRequest/${meds[0]}` } },
        { request: { method: 'GET', url: `Observation/${obsId}` } },
        { request: { method: 'GET', url: `Observation?patient=${patientId}&_total=accurate` } },
      ],
    });
    const batch = await facility.post('', bundle('batch'));
    expect(batch.body.entry.map((e: any) => e.response.status)).toEqual(['200', '404', '200']);
    expect(batch.body.entry[2].resource.total).toBe(0);
    const transaction = await facility.post('', bundle('transaction'));
    expect(transaction.status).toBe(404);
  });

  it('conditional create, update and delete never see a hidden match', async () => {
    const created = await facility.post('Observation', bodyTemperature(patientId, 36.5, '2026-11-21T08:00:00+09:00'), { 'if-none-exist': 'identifier=urn:ef|OBS-1' });
    expect(created.status).toBe(201);
    const updated = await facility.put('Observation?identifier=urn:ef|OBS-1', { ...bodyTemperature(patientId, 36.6, '2026-11-21T09:00:00+09:00'), identifier: [{ system: 'urn:ef', value: 'OBS-1' }] });
    expect(updated.status).toBe(201);
    expect(updated.body.id).not.toBe(obsId);
    expect((await facility.delete(`Observation?_id=${obsId}`)).status).toBe(204);
    const original = await clinic.get(`Observation/${obsId}`);
    expect([original.status, original.body.meta.versionId, original.body.valueQuantity.value]).toEqual([200, '1', 37.9]);
  });

  it('writes: hidden answers like missing on delete; shared data is read-only to the grantee', async () => {
    same(await facility.delete(`Observation/${obsId}`), await facility.delete(`Observation/${MISSING}`));
    expect((await facility.delete(`MedicationRequest/${meds[1]}`)).status).toBe(403);
    const current = (await facility.get(`MedicationRequest/${meds[1]}`)).body;
    expect((await facility.put(`MedicationRequest/${meds[1]}`, { ...current, status: 'stopped' })).status).toBe(403);
    expect((await clinic.get(`MedicationRequest/${meds[1]}`)).body.status).toBe('active');
  });

  it('$validate on an instance: hidden answers like missing; shared data cannot be updated', async () => {
    const body = bodyTemperature(patientId, 36.0, '2026-11-22T08:00:00+09:00');
    same(await facility.post(`Observation/${obsId}/$validate`, { ...body, id: obsId }), await facility.post(`Observation/${MISSING}/$validate`, { ...body, id: MISSING }));
    expect((await facility.post(`Observation/${obsId}/$validate`, { ...body, id: obsId })).status).toBe(404);
    const med = (await facility.get(`MedicationRequest/${meds[2]}`)).body;
    const update = await facility.post(`MedicationRequest/${meds[2]}/$validate?mode=update`, med);
    expect(update.status).toBe(200);
    expect(update.body.issue.map((i: any) => i.code)).toContain('forbidden');
    const own = (await facility.get(`MedicationRequest/${ownMed}`)).body;
    const fine = await facility.post(`MedicationRequest/${ownMed}/$validate?mode=update`, own);
    expect(fine.body.issue.filter((i: any) => i.severity === 'error')).toEqual([]);
  });
});
