import { describe, expect, it } from 'vitest';
import { verifySignature, type SignedParts } from '../../src/subscriptions/signature.js';
import { bodyTemperature, medicationRequest, patient } from '../support/resources.js';
import { stackName } from '../support/stack.js';
import {
  adminDeliveries, changesMatched, criteriaSubscription, eventually, secretOf, subscribe, subscriptionSuite, waitForStatus,
} from './subscriptions.js';

describe(`R4 criteria-based subscriptions (${stackName})`, () => {
  const t = subscriptionSuite({ clinic: 'crit-clinic', patient: 'CRIT-1' });

  const matched = (resourceId: string) => changesMatched(t.stack, [resourceId]);

  it('activates, then PUTs each matching version to [endpoint]/[type]/[id], signed, keyed and with the channel headers', async () => {
    const sub = await subscribe(t.clinic, criteriaSubscription(`${t.receiver.url}/hook`, `MedicationRequest?patient=Patient/${t.patientId}`, {
      headers: ['Authorization: Bearer network-token'],
    }));
    const secret = secretOf(sub);
    expect(secret.length).toBeGreaterThanOrEqual(16);
    const med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'CRIT-RX-1'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.length === 1);
    const [request] = t.receiver.applied;
    expect(request.method).toBe('PUT');
    expect(request.path).toBe(`/hook/MedicationRequest/${med.id}`);
    expect(request.headers['content-type']).toContain('application/fhir+json');
    expect(JSON.parse(request.body)).toMatchObject({ resourceType: 'MedicationRequest', id: med.id, meta: { versionId: '1' } });
    expect(request.headers.authorization).toBe('Bearer network-token');
    expect(request.headers['x-renkei-idempotency-key']).toBe(`Subscription/${sub.id}/MedicationRequest/${med.id}/_history/1`);
    const parts = signedParts(request);
    const signature = request.headers['x-renkei-signature'] as string;
    expect(verifySignature(secret, parts, signature)).toBe(true);
    expect(verifySignature(secret, { ...parts, body: request.body.replace('active', 'stopped') }, signature)).toBe(false);
    expect(verifySignature(secret, { ...parts, idempotencyKey: `${parts.idempotencyKey}x` }, signature)).toBe(false);
    expect(verifySignature('another-secret-of-enough-length', parts, signature)).toBe(false);
    expect(verifySignature(secret, parts, signature, 300, Date.now() + 600_000), 'a replay ten minutes later').toBe(false);
  });

  it('sends an empty signed POST to the endpoint when the subscription has no payload', async () => {
    const sub = await subscribe(t.clinic, criteriaSubscription(`${t.receiver.url}/ping`, `Observation?patient=Patient/${t.patientId}`, {
      payload: false, secret: 'a-subscriber-chosen-secret',
    }));
    await t.clinic.post('Observation', bodyTemperature(t.patientId, 37.2, '2026-11-20T08:00:00+09:00'));
    await t.receiver.waitUntil(() => t.receiver.applied.length === 1);
    const [request] = t.receiver.applied;
    expect([request.method, request.path, request.body]).toEqual(['POST', '/ping', '']);
    expect(secretOf(sub)).toBe('a-subscriber-chosen-secret');
    const signature = request.headers['x-renkei-signature'] as string;
    expect(verifySignature('a-subscriber-chosen-secret', signedParts(request), signature)).toBe(true);
    // A body-less signature is bound to its notification: it does not verify another one's key.
    await t.clinic.post('Observation', bodyTemperature(t.patientId, 37.4, '2026-11-20T09:00:00+09:00'));
    await t.receiver.waitUntil(() => t.receiver.applied.length === 2);
    const second = t.receiver.applied[1];
    expect(second.headers['x-renkei-idempotency-key']).not.toBe(request.headers['x-renkei-idempotency-key']);
    expect(verifySignature('a-subscriber-chosen-secret', { ...signedParts(second), timestamp: signedParts(request).timestamp }, signature)).toBe(false);
  });

  it('notifies only the changes its criteria match', async () => {
    const other = (await t.clinic.post('Patient', patient('CRIT-2'))).body.id;
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&status=active`));
    const otherPatient = await t.clinic.post('MedicationRequest', medicationRequest(other, 'CRIT-RX-2'));
    const stopped = await t.clinic.post('MedicationRequest', { ...medicationRequest(t.patientId, 'CRIT-RX-3'), status: 'stopped' });
    const observation = await t.clinic.post('Observation', bodyTemperature(t.patientId, 36.8, '2026-11-21T08:00:00+09:00'));
    const wanted = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'CRIT-RX-4'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.length === 1);
    for (const res of [otherPatient, stopped, observation]) await matched(res.body.id);
    expect(t.receiver.requests.map((r) => r.path)).toEqual([`/MedicationRequest/${wanted.id}`]);
    expect((await adminDeliveries(t.stack, `subscription=${sub.id}`)).deliveries.map((d) => d.resource)).toEqual([`MedicationRequest/${wanted.id}/_history/1`]);
  });

  it('tells a subscriber that was notified of a resource about its deletion: DELETE [endpoint]/[type]/[id]', async () => {
    await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=CRIT-RX-5`));
    const med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'CRIT-RX-5'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.length === 1);
    expect((await t.clinic.delete(`MedicationRequest/${med.id}`)).status).toBe(204);
    await t.receiver.waitUntil(() => t.receiver.applied.length === 2);
    expect(t.receiver.applied.map((r) => `${r.method} ${r.path}`)).toEqual([`PUT /MedicationRequest/${med.id}`, `DELETE /MedicationRequest/${med.id}`]);
  });

  it('leaves an AuditEvent of every notification sent, for the subscriber organization', async () => {
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=CRIT-RX-6`));
    const med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'CRIT-RX-6'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.length === 1);
    const audit = await eventually(async () => {
      const res = await t.clinic.get(`AuditEvent?entity=Subscription/${sub.id}&subtype=notification`);
      return res.body.total === 1 ? res.body.entry[0].resource : undefined;
    }, 'the notification AuditEvent');
    expect(audit.type.code).toBe('110106');
    expect(audit.entity.map((e: any) => e.what.reference)).toEqual(
      [`Patient/${t.patientId}`, `MedicationRequest/${med.id}/_history/1`, `Subscription/${sub.id}`]);
    expect(audit.agent.find((a: any) => a.requestor).who.reference).toBe('Organization/crit-clinic');
  });

  it('keeps the secret when the subscription is updated without it, and sends nothing once it is off', async () => {
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=CRIT-RX-7`));
    const { extension: _ext, meta: _meta, ...rest } = sub;
    const off = await t.clinic.put(`Subscription/${sub.id}`, { ...rest, status: 'off' });
    expect(off.status).toBe(200);
    expect(secretOf(off.body)).toBe(secretOf(sub));
    const med = await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'CRIT-RX-7'));
    await matched(med.body.id);
    expect(t.receiver.requests).toEqual([]);
    expect((await adminDeliveries(t.stack, `subscription=${sub.id}`)).total).toBe(0);
  });

  it('refuses what it cannot serve with 422, naming the element', async () => {
    const base = criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}`);
    const cases: [string, unknown][] = [
      ['Subscription.channel.type', { ...base, channel: { ...base.channel, type: 'websocket' } }],
      ['Subscription.criteria', { ...base, criteria: 'MedicationRequest?no-such-parameter=1' }],
      ['Subscription.criteria', { ...base, criteria: 'NotAType?x=1' }],
      // Values the search code refuses: stored, they would fail the matching of every Observation change.
      ['Subscription.criteria', { ...base, criteria: 'Observation?date=not-a-date' }],
      ['Subscription.criteria', { ...base, criteria: 'Observation?value-quantity=abc' }],
      ['Subscription.channel.payload', { ...base, channel: { ...base.channel, payload: 'application/fhir+xml' } }],
      ['Subscription.channel.header[0]', { ...base, channel: { ...base.channel, header: ['X-Renkei-Signature: forged'] } }],
      ['Subscription.channel.endpoint', { ...base, channel: { ...base.channel, endpoint: 'ftp://network.example.jp/x' } }],
      ['Subscription.extension', criteriaSubscription(t.receiver.url, 'Patient', { secret: 'short' })],
    ];
    for (const [expression, body] of cases) {
      const res = await t.clinic.post('Subscription', body);
      expect(res.status, expression).toBe(422);
      expect(res.body.issue.flatMap((i: any) => i.expression ?? []), expression).toContain(expression);
    }
  });

  it('puts a subscription whose endpoint does not resolve in error, with the reason', async () => {
    const created = await t.clinic.post('Subscription', criteriaSubscription('http://webhook.does-not-exist.invalid/hook', 'Patient'));
    const failed = await waitForStatus(t.clinic, created.body.id, 'error');
    expect(failed.error).toContain('Endpoint refused');
  });
});

/** The signed parts of a received notification, as a t.receiver reads them from the request. */
function signedParts(request: { headers: Record<string, string | string[] | undefined>; body: string }): SignedParts {
  return {
    timestamp: String(request.headers['x-renkei-timestamp']),
    idempotencyKey: String(request.headers['x-renkei-idempotency-key']),
    body: request.body,
  };
}
