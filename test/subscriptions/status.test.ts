import type { Subscription } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { medicationRequest } from '../support/resources.js';
import { stackName } from '../support/stack.js';
import type { ReceivedRequest } from './receiver.js';
import {
  adminDeliveries, criteriaSubscription, eventually, statusOf, subscribe, subscriptionSuite, topicSubscription, waitForStatus,
} from './subscriptions.js';

const kindOf = (r: ReceivedRequest) => (r.body.startsWith('{"resourceType":"Bundle"') ? statusOf(JSON.parse(r.body)).type.valueCode : 'resource');
const statusIn = (r: ReceivedRequest) => statusOf(JSON.parse(r.body));

describe(`subscription status: retries, error, recovery and $status (${stackName})`, () => {
  const t = subscriptionSuite({ env: { RENKEI_DELIVERY_ATTEMPTS: '6', RENKEI_SUBSCRIPTION_ERROR_AFTER: '3' }, clinic: 'st-clinic', patient: 'ST-1' });

  const versionsOf = async (id: string) => {
    const history = await t.clinic.get(`Subscription/${id}/_history`);
    return (history.body.entry as { resource: Subscription }[]).map((e) => e.resource.status).reverse();
  };
  const settledAs = (subscriptionId: string, status: string) =>
    eventually(async () => (await adminDeliveries(t.stack, `subscription=${subscriptionId}&status=${status}&kind=event`)).deliveries[0], `a ${status} event`);

  it('stays active, with no new Subscription version, while a notification is retried and then delivered', async () => {
    t.receiver.answerWith((_req, i) => (i < 2 ? 503 : 200));
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=ST-RX-1`));
    await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'ST-RX-1'));
    const delivered = await settledAs(sub.id!, 'delivered');
    expect(delivered.attempts).toBe(3);
    expect(t.receiver.requests.map((r) => r.status)).toEqual([503, 503, 200]);
    const now = (await t.clinic.get<Subscription>(`Subscription/${sub.id}`)).body;
    expect(now.status).toBe('active');
    expect(now.error).toBeUndefined();
    expect(now.meta!.versionId).toBe(sub.meta!.versionId);
    expect(await versionsOf(sub.id!)).toEqual(['requested', 'active']);
  });

  it('goes to error after failures in a row, keeps sending heartbeats with the error, and a delivered heartbeat makes it active again', async () => {
    t.receiver.answerWith((req) => (kindOf(req) === 'handshake' ? 200 : 503));
    const sub = await subscribe(t.clinic, topicSubscription(t.receiver.url, 'medication-change', { heartbeat: 1, filters: [`patient=Patient/${t.patientId}`] }));
    await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'ST-RX-2'));
    const failing = await waitForStatus(t.clinic, sub.id!, 'error');
    expect(failing.error).toContain('HTTP 503');

    // The event becomes a dead letter; heartbeats go on, telling the endpoint the subscription is in error.
    const dead = await settledAs(sub.id!, 'dead');
    expect(dead.attempts).toBe(6);
    await t.receiver.waitUntil(() => t.receiver.requests.some((r) => kindOf(r) === 'heartbeat' && statusIn(r).status.valueCode === 'error'));
    const heartbeat = statusIn(t.receiver.requests.find((r) => kindOf(r) === 'heartbeat' && statusIn(r).status.valueCode === 'error')!);
    expect(heartbeat.error.valueCodeableConcept).toMatchObject({
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscription-error', code: 'error-response' }], text: 'HTTP 503',
    });
    expect(heartbeat['events-since-subscription-start'].valueString).toBe('1');

    const status = statusOf({ entry: [(await t.clinic.get(`Subscription/${sub.id}/$status`)).body.entry[0]] });
    expect([status.type.valueCode, status.status.valueCode, status['events-since-subscription-start'].valueString]).toEqual(['query-status', 'error', '1']);
    expect(status.error.valueCodeableConcept.coding[0].code).toBe('error-response');
    expect(status.error.valueCodeableConcept.text).toBe('HTTP 503');

    t.receiver.answerWith(() => 200);
    await waitForStatus(t.clinic, sub.id!, 'active');
    const recovered = (await t.clinic.get(`Subscription/${sub.id}/$status`)).body.entry[0];
    expect(statusOf({ entry: [recovered] }).error).toBeUndefined();
    // One version per change of status, not one per failed attempt.
    expect(await versionsOf(sub.id!)).toEqual(['requested', 'active', 'error', 'active']);
    expect(t.receiver.applied.map(kindOf)).toContain('heartbeat');
  });

  it('reports no-response for an endpoint that does not answer in time', async () => {
    t.receiver.answerWith((req) => (kindOf(req) === 'handshake' ? 200 : new Promise((r) => setTimeout(() => r(200), 2500))));
    const sub = await subscribe(t.clinic, {
      ...topicSubscription(t.receiver.url, 'careplan-change', { filters: [`patient=Patient/${t.patientId}`] }),
      channel: {
        ...topicSubscription(t.receiver.url, 'careplan-change').channel,
        extension: [{ url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-timeout', valueUnsignedInt: 1 }],
      },
    } as Subscription);
    await t.clinic.post('CarePlan', { resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: { reference: `Patient/${t.patientId}` } });
    await waitForStatus(t.clinic, sub.id!, 'error');
    const status = statusOf({ entry: [(await t.clinic.get(`Subscription/${sub.id}/$status`)).body.entry[0]] });
    expect(status.error.valueCodeableConcept.coding[0].code).toBe('no-response');
    expect(status.error.valueCodeableConcept.text).toContain('no complete answer within 1000 ms');
  });
});
