import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, organizationClient, type FhirClient, type FhirResponse } from '../support/fhir-client.js';
import { patient } from '../support/resources.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';

/** Input no store can hold (U+0000) or no operation expects (a string where a list belongs): 400, nothing written. */
describe(`hostile input is a 400 OperationOutcome and changes nothing (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let patientId: string;
  let subscriptionId: string;

  beforeAll(async () => {
    stack = await startTestStack();
    clinic = await organizationClient(stack, 'clinic-hostile');
    patientId = (await clinic.post('Patient', patient('HOSTILE-1'))).body.id;
    subscriptionId = (await clinic.post('Subscription', {
      resourceType: 'Subscription', status: 'off', reason: 'gap filling', criteria: 'Patient',
      channel: { type: 'rest-hook', endpoint: 'https://network.example.jp/hook' },
    })).body.id;
  });
  afterAll(() => stack?.stop());

  const refused = (res: FhirResponse, what: string, diagnostics = /./) => {
    expect(res.status, what).toBe(400);
    expect(res.body?.resourceType, what).toBe('OperationOutcome');
    expect(res.body.issue[0].diagnostics, what).toMatch(diagnostics);
  };
  const patientCount = async () => (await clinic.get('Patient?_summary=count')).body.total as number;

  it('refuses a NUL character (%00) in a path, a search value or an If-None-Exist, before the store sees it', async () => {
    for (const path of [
      'Patient/%00', 'Patient?name=%00', 'Patient?identifier=urn:x|%00', 'Observation?patient=Patient/%00', 'Consent?actor=%00',
      'AuditEvent?entity=%00', 'Patient/%00/_history', 'Subscription/%00/$status', 'Subscription/$status?id=%00', `Subscription/${subscriptionId}/$events?eventsSinceNumber=%00`,
    ]) refused(await clinic.get(path), path, /NUL/);
    for (const path of ['/admin/deliveries?subscription=%00', '/admin/clients/%00', '/admin/messages?control_id=%00'])
      refused(await adminClient(stack).get(path), path, /NUL/);
    const before = await patientCount();
    refused(await clinic.post('Patient', patient('HOSTILE-2'), { 'if-none-exist': 'identifier=%00' }), 'If-None-Exist', /NUL/);
    expect(await patientCount()).toBe(before);
  });

  it('refuses U+0000 in a JSON body or a form, wherever it is; an escaped backslash before u0000 is only text', async () => {
    const before = await patientCount();
    const withNul = patient('HOSTILE-3', { name: [{ text: '山田\u0000太郎' }] });
    refused(await clinic.post('Patient', withNul), 'create', /NUL/);
    refused(await clinic.put(`Patient/${patientId}`, { ...withNul, id: patientId }), 'update', /NUL/);
    refused(await clinic.post('', {
      resourceType: 'Bundle', type: 'transaction',
      entry: [{ resource: patient('HOSTILE-4'), request: { method: 'POST', url: 'Patient' } }, { resource: withNul, request: { method: 'POST', url: 'Patient' } }],
    }), 'transaction', /NUL/);
    refused(await clinic.post('', { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'GET', url: 'Patient?name=%00' } }] }), 'batch', /NUL/);
    refused(await clinic.post('Patient/_search', 'name=%00', { 'content-type': 'application/x-www-form-urlencoded' }), '_search', /NUL/);
    expect(await patientCount()).toBe(before);
    expect((await clinic.get(`Patient/${patientId}`)).body.meta.versionId).toBe('1');

    const text = await clinic.post('Patient', patient('HOSTILE-5', { name: [{ text: 'C:\\u0000' }] }));
    expect(text.status).toBe(201);
    expect(text.body.name[0].text).toBe('C:\\u0000');
  });

  it('refuses U+0000 on the administration and token endpoints', async () => {
    const client = await fetch(`${stack.url}/admin/clients`, {
      method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ organization: 'Organization/clinic-hostile', name: 'client\u0000' }),
    });
    expect(client.status).toBe(400);
    const token = await fetch(`${stack.url}/oauth2/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=%00&client_secret=x',
    });
    expect(token.status).toBe(400);
  });

  it('refuses an operation body that is not Parameters, or whose parameter is not a list of parameters', async () => {
    for (const body of [{ resourceType: 'Parameters', parameter: 'x' }, { resourceType: 'Parameters', parameter: [null] }, [1], { resourceType: 'Patient' }])
      refused(await clinic.post(`Subscription/${subscriptionId}/$events`, body), `$events ${JSON.stringify(body)}`, /Parameters/);
    refused(await clinic.post('Patient/$validate', { resourceType: 'Parameters', parameter: 'x' }), '$validate', /Parameters/);
    refused(await clinic.post(`Patient/${patientId}/$link`, { resourceType: 'Parameters', parameter: [null] }), '$link', /Parameters/);
    const events = await clinic.post(`Subscription/${subscriptionId}/$events`, { resourceType: 'Parameters', parameter: [{ name: 'eventsSinceNumber', valueString: '1' }] });
    expect(events.status).toBe(200);
  });

  it('refuses a Bundle whose entries are not entries, or whose request fields are not strings', async () => {
    const before = await patientCount();
    const post = { resource: patient('HOSTILE-6'), request: { method: 'POST', url: 'Patient' } };
    for (const [what, entry] of [
      ['entry', 'x'], ['entry[0]', [null]], ['request.url', [{ ...post, request: { method: 'POST', url: 5 } }]],
      ['fullUrl', [{ ...post, fullUrl: 5 }]], ['request.ifNoneExist', [{ ...post, request: { ...post.request, ifNoneExist: 5 } }]],
      ['request.ifMatch', [{ resource: { ...patient('HOSTILE-7'), id: patientId }, request: { method: 'PUT', url: `Patient/${patientId}`, ifMatch: 1 } }]],
    ] as const) {
      for (const type of ['transaction', 'batch'])
        refused(await clinic.post('', { resourceType: 'Bundle', type, entry }), `${type} ${what}`, /entry/);
    }
    expect(await patientCount()).toBe(before);
  });
});
