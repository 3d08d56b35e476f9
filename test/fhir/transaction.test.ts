import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, patient, PATIENT_ID_SYSTEM } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`transaction and batch Bundles (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'clinic-tx');
  });
  afterAll(() => stack?.stop());

  const txBundle = (entries: any[], identifier?: string) => ({
    resourceType: 'Bundle',
    type: 'transaction',
    ...(identifier ? { identifier: { system: 'urn:test:bundle', value: identifier } } : {}),
    entry: entries,
  });

  it('commits every entry and rewrites urn:uuid references', async () => {
    const res = await clinic.post('', txBundle([
      { fullUrl: 'urn:uuid:11111111-1111-4111-8111-111111111111', resource: patient('TX-1'), request: { method: 'POST', url: 'Patient' } },
      {
        resource: bodyTemperature('placeholder', 37.2, '2026-11-20T07:30:00+09:00'),
        request: { method: 'POST', url: 'Observation' },
      },
    ].map((e, i) => (i === 1 ? { ...e, resource: { ...e.resource, subject: { reference: 'urn:uuid:11111111-1111-4111-8111-111111111111' } } } : e))));
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201', '201']);
    const patientId = res.body.entry[0].response.location.split('/')[1];
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${patientId}`);
    const obs = await clinic.get(`Observation?patient=${patientId}`);
    expect(obs.body.total).toBe(1);
  });

  it('rolls back everything when one entry fails', async () => {
    const before = (await clinic.get('Patient?_summary=count')).body.total;
    const res = await clinic.post('', txBundle([
      { resource: patient('TX-OK'), request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Patient', gender: 'not-a-gender' }, request: { method: 'POST', url: 'Patient' } },
    ]));
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toContain('Bundle.entry[1]');
    expect((await clinic.get('Patient?_summary=count')).body.total).toBe(before);
  });

  it('rolls back when an update fails its If-Match', async () => {
    const created = await clinic.post('Patient', patient('TX-IFM'));
    const res = await clinic.post('', txBundle([
      { resource: patient('TX-NEW'), request: { method: 'POST', url: 'Patient' } },
      { resource: { ...created.body, gender: 'female' }, request: { method: 'PUT', url: `Patient/${created.body.id}`, ifMatch: 'W/"9"' } },
    ]));
    expect(res.status).toBe(412);
    expect((await clinic.get(`Patient?identifier=TX-NEW`)).body.total).toBe(0);
  });

  it('resolves conditional creates and conditional references', async () => {
    const bundle = txBundle([
      {
        fullUrl: 'urn:uuid:22222222-2222-4222-8222-222222222222',
        resource: patient('TX-COND'),
        request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${PATIENT_ID_SYSTEM}|TX-COND` },
      },
    ]);
    const first = await clinic.post('', bundle);
    const second = await clinic.post('', bundle);
    expect(first.body.entry[0].response.status).toBe('201');
    expect(second.body.entry[0].response.status).toBe('200');
    const ref = await clinic.post('', txBundle([
      {
        resource: { ...bodyTemperature('x', 36.6, '2026-11-21T07:00:00+09:00'), subject: { reference: `Patient?identifier=${PATIENT_ID_SYSTEM}|TX-COND` } },
        request: { method: 'POST', url: 'Observation' },
      },
    ]));
    expect(ref.status).toBe(200);
    expect(ref.body.entry[0].resource.subject.reference).toBe(first.body.entry[0].response.location.split('/_history')[0]);
  });

  it('applies a Bundle.identifier only once', async () => {
    const bundle = txBundle([{ resource: patient('TX-ONCE'), request: { method: 'POST', url: 'Patient' } }], 'once-1');
    const first = await clinic.post('', bundle);
    const again = await clinic.post('', bundle);
    expect(again.body).toEqual(first.body);
    expect((await clinic.get('Patient?identifier=TX-ONCE')).body.total).toBe(1);
  });

  it('refuses the same resource twice in one transaction', async () => {
    const res = await clinic.post('', txBundle([
      { resource: { ...patient('A'), id: 'dup' }, request: { method: 'PUT', url: 'Patient/dup' } },
      { resource: { ...patient('B'), id: 'dup' }, request: { method: 'PUT', url: 'Patient/dup' } },
    ]));
    expect(res.status).toBe(400);
  });

  it('batch: each entry succeeds or fails on its own', async () => {
    const res = await clinic.post('', {
      resourceType: 'Bundle',
      type: 'batch',
      entry: [
        { resource: patient('B-1'), request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
        { request: { method: 'GET', url: 'Patient?identifier=B-1' } },
      ],
    });
    expect(res.body.type).toBe('batch-response');
    expect(res.body.entry.map((e: any) => e.response.status)).toEqual(['201', '404', '200']);
    expect(res.body.entry[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(res.body.entry[2].resource.total).toBe(1);
  });
});
