import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`history (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let other: FhirClient;
  let patientId: string;
  let between: string;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'hist-a');
    other = await organizationClient(stack, 'hist-b');
    const created = await clinic.post('Patient', patient('H-1'));
    patientId = created.body.id;
    await clinic.put(`Patient/${patientId}`, { ...created.body, gender: 'female' });
    await new Promise((r) => setTimeout(r, 20));
    between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    await clinic.post('Observation', bodyTemperature(patientId, 36.8, '2026-11-20T08:00:00+09:00'));
    await clinic.post('Observation', bodyTemperature(patientId, 37.2, '2026-11-21T08:00:00+09:00'));
    await other.post('Patient', patient('H-OTHER'));
  });
  afterAll(() => stack?.stop());

  const refs = (bundle: any) => bundle.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.meta.versionId}`);

  it('type history lists every version of the type, newest first', async () => {
    const res = await clinic.get('Patient/_history');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'history', total: 2 });
    expect(refs(res.body)).toEqual(['Patient/2', 'Patient/1']);
    expect(res.body.entry[0].request).toMatchObject({ method: 'PUT', url: `Patient/${patientId}` });
    expect(res.body.entry[1].request).toMatchObject({ method: 'POST', url: 'Patient' });
  });

  it('system history honours _since and _count with a next link', async () => {
    const since = await clinic.get(`_history?_since=${encodeURIComponent(between)}`);
    expect(since.body.total).toBe(2);
    expect(refs(since.body)).toEqual(['Observation/1', 'Observation/1']);
    // Its own four versions and the shared directory (the two Organizations).
    const seen: string[] = [];
    let path: string | undefined = '_history?_count=2';
    while (path) {
      const page: any = (await clinic.get(path)).body;
      expect(page.total).toBe(6);
      expect(page.entry.length).toBeLessThanOrEqual(2);
      seen.push(...page.entry.map((e: any) => `${e.resource.resourceType}/${e.resource.id}/${e.resource.meta.versionId}`));
      const next = page.link.find((l: any) => l.relation === 'next')?.url as string | undefined;
      path = next && next.slice(next.indexOf('/fhir/') + 6);
    }
    expect(new Set(seen).size).toBe(6);
    expect(seen.filter((r) => r.startsWith('Organization/')).sort()).toEqual(['Organization/hist-a/1', 'Organization/hist-b/1']);
  });

  it("never shows another organization's versions", async () => {
    expect((await other.get(`Patient/${patientId}/_history`)).body.total).toBe(0);
    expect((await other.get('Patient/_history')).body.total).toBe(1);
    expect((await other.get(`Patient/${patientId}/_history/1`)).status).toBe(404);
    expect((await adminClient(stack).get('Patient/_history')).body.total).toBe(3);
  });

  it('refuses a malformed _since', async () => {
    const res = await clinic.get('_history?_since=yesterday');
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });
});
