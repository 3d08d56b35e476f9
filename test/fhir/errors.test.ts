import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`error answers are OperationOutcomes (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack({ RENKEI_MAX_BODY: '64kb' });
    clinic = await organizationClient(stack, 'clinic-e');
  });
  afterAll(() => stack?.stop());

  const expectOutcome = (res: { status: number; body: any; headers: Headers }, status: number) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toContain('application/fhir+json');
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics).toBeTruthy();
  };

  it('401 without a token or with a bad one', async () => {
    const res = await fetch(`${stack.url}/fhir/Patient`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as any).resourceType).toBe('OperationOutcome');
    const bad = await fetch(`${stack.url}/fhir/Patient`, { headers: { authorization: 'Bearer nonsense' } });
    expect(bad.status).toBe(401);
  });

  it('404 for unknown ids, types and routes; 410 for deleted', async () => {
    expectOutcome(await clinic.get('Patient/unknown'), 404);
    expectOutcome(await clinic.get('Spaceship/1'), 404);
    expectOutcome(await clinic.get('/nowhere'), 404);
    const created = await clinic.post('Patient', patient('E-1'));
    await clinic.delete(`Patient/${created.body.id}`);
    expectOutcome(await clinic.get(`Patient/${created.body.id}`), 410);
  });

  it('400 for malformed JSON, a wrong resourceType, an invalid id and bad search values', async () => {
    expectOutcome(await clinic.post('Patient', '{"resourceType": "Patient",'), 400);
    expectOutcome(await clinic.post('Patient', { resourceType: 'Observation' }), 400);
    expectOutcome(await clinic.post('Patient', [1, 2]), 400);
    expectOutcome(await clinic.get('Patient/not$valid'), 400);
    expectOutcome(await clinic.get('Patient?birthdate=yesterday'), 400);
    expectOutcome(await clinic.get('Patient?_count=many'), 400);
    expectOutcome(await clinic.put('Patient/x1', patient('E-2', { id: 'x1' }), { 'if-match': 'banana' }), 400);
  });

  it('400/422 for invalid resources, naming the path', async () => {
    const res = await clinic.post('Patient', { resourceType: 'Patient', gender: 'unknown-value', birthDate: 'soon' });
    expect([400, 422]).toContain(res.status);
    const expressions = res.body.issue.flatMap((i: any) => i.expression ?? []);
    expect(expressions.join(' ')).toMatch(/Patient\.(gender|birthDate)/);
  });

  it('413 for a body over the limit', async () => {
    const huge = patient('E-3', { address: [{ text: 'あ'.repeat(100_000) }] });
    expectOutcome(await clinic.post('Patient', huge), 413);
  });

  it('415 for a body that is not JSON and 406 for XML', async () => {
    expectOutcome(await clinic.post('Patient', '<Patient/>', { 'content-type': 'application/fhir+xml' }), 415);
    expectOutcome(await clinic.get('Patient', { accept: 'application/fhir+xml' }), 406);
  });

  it('412 on an If-Match for a version that is not current', async () => {
    const created = await clinic.post('Patient', patient('E-4'));
    expectOutcome(await clinic.put(`Patient/${created.body.id}`, created.body, { 'if-match': 'W/"7"' }), 412);
  });

  it('405-like refusals are still OperationOutcomes: unsupported operations', async () => {
    expectOutcome(await clinic.post('Patient/$everything-else', {}), 404);
  });
});
