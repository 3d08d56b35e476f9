import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grantScopes, parseScopes, permits } from '../../src/auth/scopes.js';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';

describe('SMART system scopes', () => {
  it('reads v1 and v2 forms and ignores what it does not support', () => {
    const scopes = parseScopes('system/Patient.read system/Observation.cu system/*.rs user/*.read system/Condition.rs?category=x launch');
    expect(scopes.map((s) => s.text)).toEqual(['system/Patient.read', 'system/Observation.cu', 'system/*.rs']);
    expect(permits(scopes, 'Patient', 'read')).toBe(true);
    expect(permits(scopes, 'Patient', 'search')).toBe(true);
    expect(permits(scopes, 'Patient', 'create')).toBe(false);
    expect(permits(scopes, 'Observation', 'update')).toBe(true);
    expect(permits(scopes, 'Observation', 'delete')).toBe(false);
    expect(permits(scopes, 'Consent', 'search')).toBe(true);
    expect(permits(parseScopes('system/*.write'), 'Consent', 'delete')).toBe(true);
    expect(permits(parseScopes('system/*.write'), 'Consent', 'read')).toBe(false);
  });

  it('grants the registered scopes when none are requested, and never more than registered', () => {
    const allowed = parseScopes('system/Patient.read system/Observation.*');
    expect(grantScopes(allowed, undefined).map((s) => s.text)).toEqual(['system/Patient.read', 'system/Observation.*']);
    expect(grantScopes(allowed, 'system/Patient.rs system/Patient.cruds system/*.read').map((s) => s.text)).toEqual(['system/Patient.rs']);
  });
});

describe(`scopes enforced over HTTP (${stackName})`, () => {
  let stack: TestStack;
  let reader: FhirClient;
  let observationWriter: FhirClient;

  beforeAll(async () => {
    stack = await startTestStack();
    reader = await organizationClient(stack, 'scope-a', 'system/Patient.rs');
    observationWriter = await organizationClient(stack, 'scope-b', 'system/Observation.c system/Patient.cr');
  });
  afterAll(() => stack?.stop());

  it('allows exactly the granted interactions per resource type', async () => {
    expect((await reader.get('Patient')).status).toBe(200);
    const create = await reader.post('Patient', patient('SC-1'));
    expect(create.status).toBe(403);
    expect(create.body.resourceType).toBe('OperationOutcome');
    expect((await reader.get('Observation')).status).toBe(403);

    const created = await observationWriter.post('Patient', patient('SC-2'));
    expect(created.status).toBe(201);
    expect((await observationWriter.get(`Patient/${created.body.id}`)).status).toBe(200);
    expect((await observationWriter.get('Patient')).status).toBe(403);
    expect((await observationWriter.put(`Patient/${created.body.id}`, created.body)).status).toBe(403);
    expect((await observationWriter.delete(`Patient/${created.body.id}`)).status).toBe(403);
  });

  it('checks every entry of a transaction against the scopes', async () => {
    const res = await reader.post('', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [{ resource: patient('SC-3'), request: { method: 'POST', url: 'Patient' } }],
    });
    expect(res.status).toBe(403);
    expect((await reader.get('Patient?identifier=SC-3')).body.total ?? 0).toBe(0);
  });
});
