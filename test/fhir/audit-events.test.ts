import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, organizationClient, type FhirClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe(`AuditEvents of every interaction (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let other: FhirClient;
  let patientId: string;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'audit-a');
    other = await organizationClient(stack, 'audit-b');
    patientId = (await clinic.post('Patient', patient('AU-1'))).body.id;
    await clinic.get(`Patient/${patientId}`);
    await clinic.get('Patient?identifier=AU-1');
    await other.get(`Patient/${patientId}`);
  });
  afterAll(() => stack?.stop());

  const codes = (bundle: any) => bundle.entry.map((e: any) => e.resource.subtype[0].code).sort();

  it('records the write, the read and the search, with who, what and why', async () => {
    const res = await clinic.get(`AuditEvent?entity=Patient/${patientId}`);
    expect(res.status).toBe(200);
    expect(codes(res.body)).toEqual(['create', 'read', 'search-type']); // a search names what it returned
    const create = res.body.entry.find((e: any) => e.resource.subtype[0].code === 'create').resource;
    expect(create.action).toBe('C');
    expect(create.outcome).toBe('0');
    expect(create.purposeOfEvent[0].coding[0].code).toBe('TREAT');
    expect(JSON.stringify(create.agent)).toContain('Organization/audit-a');
    const searches = await clinic.get('AuditEvent?subtype=search-type');
    expect(searches.body.total).toBeGreaterThanOrEqual(1);
  });

  it('records a refused read as a failure, seen by the one who tried', async () => {
    const mine = await other.get(`AuditEvent?entity=Patient/${patientId}`);
    expect(mine.body.entry.map((e: any) => e.resource.outcome)).toEqual(['4']);
  });

  it("does not show one organization the other's audit trail", async () => {
    const seen = await other.get('AuditEvent?subtype=create');
    expect(seen.body.total ?? seen.body.entry?.length ?? 0).toBe(0);
    const all = await adminClient(stack).get(`AuditEvent?entity=Patient/${patientId}`);
    expect(all.body.entry.length).toBe(4);
  });

  it('cannot be changed or removed', async () => {
    const one = (await clinic.get(`AuditEvent?entity=Patient/${patientId}`)).body.entry[0].resource;
    const put = await clinic.put(`AuditEvent/${one.id}`, { ...one, outcome: '8' });
    expect(put.status).toBe(405);
    expect(put.body.resourceType).toBe('OperationOutcome');
    expect((await adminClient(stack).delete(`AuditEvent/${one.id}`)).status).toBe(405);
    expect((await clinic.get(`AuditEvent/${one.id}`)).body.outcome).toBe('0');
  });
});
