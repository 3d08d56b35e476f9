import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, patient, PATIENT_ID_SYSTEM } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`FHIR CRUD and versioning (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'clinic-a');
  });
  afterAll(() => stack?.stop());

  it('serves an honest CapabilityStatement without authentication', async () => {
    const res = await fetch(`${stack.url}/fhir/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    const cs = (await res.json()) as any;
    expect(cs.resourceType).toBe('CapabilityStatement');
    expect(cs.fhirVersion).toBe('4.0.1');
    const patientCap = cs.rest[0].resource.find((r: { type: string }) => r.type === 'Patient');
    expect(patientCap.searchParam.map((p: { name: string }) => p.name)).toEqual(expect.arrayContaining(['identifier', 'name', 'birthdate']));
    expect(cs.rest[0].interaction.map((i: { code: string }) => i.code)).toEqual(expect.arrayContaining(['transaction', 'batch']));
  });

  it('creates, reads, updates, vreads and deletes with versions', async () => {
    const created = await clinic.post('Patient', patient('P-1'));
    expect(created.status).toBe(201);
    const id = created.body.id;
    expect(created.body.meta.versionId).toBe('1');
    expect(created.headers.get('etag')).toBe('W/"1"');
    expect(created.headers.get('location')).toMatch(new RegExp(`/fhir/Patient/${id}/_history/1$`));
    expect(created.body.meta.tag).toContainEqual({ system: 'http://renkei.jp/fhir/CodeSystem/data-owner', code: 'Organization/clinic-a' });

    const read = await clinic.get(`Patient/${id}`);
    expect(read.status).toBe(200);
    expect(read.body.name[0].family).toBe('山田');
    expect(read.headers.get('last-modified')).toBeTruthy();

    const updated = await clinic.put(`Patient/${id}`, { ...read.body, gender: 'female' }, { 'if-match': 'W/"1"' });
    expect(updated.status).toBe(200);
    expect(updated.body.meta.versionId).toBe('2');

    const stale = await clinic.put(`Patient/${id}`, { ...read.body, gender: 'other' }, { 'if-match': 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.resourceType).toBe('OperationOutcome');

    const v1 = await clinic.get(`Patient/${id}/_history/1`);
    expect(v1.body.gender).toBe('male');
    const v2 = await clinic.get(`Patient/${id}/_history/2`);
    expect(v2.body.gender).toBe('female');

    const history = await clinic.get(`Patient/${id}/_history`);
    expect(history.body.type).toBe('history');
    expect(history.body.total).toBe(2);
    expect(history.body.entry.map((e: any) => e.resource.meta.versionId)).toEqual(['2', '1']);

    const deleted = await clinic.delete(`Patient/${id}`);
    expect(deleted.status).toBe(204);
    expect((await clinic.get(`Patient/${id}`)).status).toBe(410);
    const afterDelete = await clinic.get(`Patient/${id}/_history`);
    expect(afterDelete.body.total).toBe(3);
    expect(afterDelete.body.entry[0].request.method).toBe('DELETE');
    expect(afterDelete.body.entry[0].resource).toBeUndefined();
  });

  it('lets a client-chosen id be created by PUT and refuses a mismatched id', async () => {
    const put = await clinic.put('Patient/chosen-1', { ...patient('P-2'), id: 'chosen-1' });
    expect(put.status).toBe(201);
    const mismatch = await clinic.put('Patient/chosen-1', { ...patient('P-2'), id: 'other' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.issue[0].expression).toEqual(['id']);
  });

  it('ignores a forged owner tag and stamps the real owner', async () => {
    const forged = patient('P-3', {
      meta: { tag: [{ system: 'http://renkei.jp/fhir/CodeSystem/data-owner', code: 'Organization/someone-else' }] },
    });
    const created = await clinic.post('Patient', forged);
    expect(created.body.meta.tag).toEqual([{ system: 'http://renkei.jp/fhir/CodeSystem/data-owner', code: 'Organization/clinic-a' }]);
  });

  it('conditional create returns the existing match and creates only once', async () => {
    const ifNoneExist = `identifier=${PATIENT_ID_SYSTEM}|COND-1`;
    const first = await clinic.post('Patient', patient('COND-1'), { 'if-none-exist': ifNoneExist });
    expect(first.status).toBe(201);
    const second = await clinic.post('Patient', patient('COND-1'), { 'if-none-exist': ifNoneExist });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    const all = await clinic.get(`Patient?identifier=${encodeURIComponent(`${PATIENT_ID_SYSTEM}|COND-1`)}`);
    expect(all.body.total).toBe(1);
  });

  it('concurrent conditional creates make exactly one resource', async () => {
    const ifNoneExist = `identifier=${PATIENT_ID_SYSTEM}|RACE-1`;
    const results = await Promise.all(
      Array.from({ length: 8 }, () => clinic.post('Patient', patient('RACE-1'), { 'if-none-exist': ifNoneExist })),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(1);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
  });

  it('conditional update creates, then updates the single match', async () => {
    const query = `Patient?identifier=${encodeURIComponent(`${PATIENT_ID_SYSTEM}|CU-1`)}`;
    const created = await clinic.put(query, patient('CU-1'));
    expect(created.status).toBe(201);
    const updated = await clinic.put(query, patient('CU-1', { gender: 'female' }));
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');
  });

  it('conditional update with several matches answers 412', async () => {
    await clinic.post('Patient', patient('DUP', { birthDate: '1901-01-01' }));
    await clinic.post('Patient', patient('DUP', { birthDate: '1901-01-01' }));
    const res = await clinic.put('Patient?birthdate=1901-01-01', patient('DUP'));
    expect(res.status).toBe(412);
  });

  it('conditional delete removes the single match', async () => {
    const created = await clinic.post('Patient', patient('DEL-1'));
    const res = await clinic.delete(`Patient?identifier=${encodeURIComponent(`${PATIENT_ID_SYSTEM}|DEL-1`)}`);
    expect(res.status).toBe(204);
    expect((await clinic.get(`Patient/${created.body.id}`)).status).toBe(410);
  });

  it('honours Prefer: return=minimal and return=OperationOutcome', async () => {
    const minimal = await clinic.post('Patient', patient('PREF-1'), { prefer: 'return=minimal' });
    expect(minimal.status).toBe(201);
    expect(minimal.body).toBeUndefined();
    expect(minimal.headers.get('location')).toContain('/fhir/Patient/');
    const outcome = await clinic.post('Patient', patient('PREF-2'), { prefer: 'return=OperationOutcome' });
    expect(outcome.body.resourceType).toBe('OperationOutcome');
  });

  it('keeps Japanese text exactly as sent', async () => {
    const text = '半角ｶﾀｶﾅと全角３３０ｍｇ、〜と－と①';
    const created = await clinic.post('Observation', { ...bodyTemperature('x', 36.5, '2026-11-20T07:30:00+09:00'), note: [{ text }] });
    expect(created.status).toBe(201);
    const read = await clinic.get(`Observation/${created.body.id}`);
    expect(read.body.note[0].text).toBe(text);
  });

  it('answers gzip when asked', async () => {
    for (let i = 0; i < 5; i++) await clinic.post('Patient', patient(`GZ-${i}`));
    const res = await clinic.get('Patient?_count=50', { 'accept-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-encoding')).toBe('gzip');
  });

  it('keeps directory data readable by clients and writable by the administrator only', async () => {
    const admin = adminClient(stack);
    const org = await clinic.get('Organization/clinic-a');
    expect(org.status).toBe(200);
    const write = await clinic.put('Organization/clinic-a', { ...org.body, name: '乗っ取り' });
    expect(write.status).toBe(403);
    const adminWrite = await admin.put('Organization/clinic-a', { ...org.body, name: 'みどりクリニック' });
    expect(adminWrite.status).toBe(200);
  });
});
