import type { Subscription } from '@medplum/fhirtypes';
import { describe, expect, it } from 'vitest';
import { adminClient } from '../support/fhir-client.js';
import { consent, medicationRequest } from '../support/resources.js';
import { stackName } from '../support/stack.js';
import {
  adminDeliveries, changesMatched, criteriaSubscription, eventually, subscribe, subscriptionSuite, topicSubscription,
} from './subscriptions.js';

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition';
const PURPOSE_EXTENSION = 'http://renkei.jp/fhir/StructureDefinition/subscription-purpose-of-use';
const WIDE = { start: '2020-01-01', end: '2099-12-31' };

const withMaxCount = (subscription: Subscription, maxCount: number): Subscription => ({
  ...subscription,
  channel: { ...subscription.channel, extension: [{ url: `${BACKPORT}/backport-max-count`, valueUnsignedInt: maxCount }] },
});
const diagnostics = (body: any) => (body.issue as { diagnostics?: string }[]).map((i) => i.diagnostics).join(' ');

describe(`subscription rules: owner, purpose of use, topic filters, max-count (${stackName})`, () => {
  const t = subscriptionSuite({ clinic: 'ru-clinic', facility: 'ru-care', patient: 'RU-1' });

  it("refuses a Subscription written by the administrator: it would belong to no organization's client", async () => {
    const created = await adminClient(t.stack).post('Subscription', criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}`));
    expect(created.status).toBe(422);
    expect(created.body.resourceType).toBe('OperationOutcome');
    expect(diagnostics(created.body)).toContain("must belong to an organization's client");
    const put = await adminClient(t.stack).put('Subscription/by-admin', { ...criteriaSubscription(t.receiver.url, 'MedicationRequest'), id: 'by-admin' });
    expect(put.status).toBe(422);
  });

  it('refuses filters the topic does not offer', async () => {
    const unknown = await t.clinic.post('Subscription', topicSubscription(t.receiver.url, 'medication-change', { filters: ['identifier=RX-1'] }));
    expect(unknown.status).toBe(422);
    expect(diagnostics(unknown.body)).toContain('offers no filter identifier on MedicationRequest');
    const typed = await t.clinic.post('Subscription', topicSubscription(t.receiver.url, 'medication-change', { filters: [`MedicationRequest?patient=Patient/${t.patientId}&status=active`] }));
    expect(typed.status).toBe(422);
    // recipient is offered on Communication only: untyped it would apply to CommunicationRequest too.
    const untyped = await t.clinic.post('Subscription', topicSubscription(t.receiver.url, 'urgent-communication', { filters: ['recipient=Organization/ru-care'] }));
    expect(untyped.status).toBe(422);
    const offered = await t.clinic.post('Subscription', topicSubscription(t.receiver.url, 'urgent-communication', {
      filters: ['Communication?recipient=Organization/ru-care', `patient:Patient=Patient/${t.patientId}`],
    }));
    expect(offered.status).toBe(201);
  });

  it('caps the events of a Bundle at backport-max-count and refuses a count below 1', async () => {
    const zero = await t.clinic.post('Subscription', withMaxCount(topicSubscription(t.receiver.url, 'careplan-change'), 0));
    expect(zero.status).toBe(422);
    const sub = await subscribe(t.clinic, withMaxCount(topicSubscription(t.receiver.url, 'careplan-change', {
      filters: [`patient=Patient/${t.patientId}`], content: 'full-resource',
    }), 2));
    for (const title of ['一', '二', '三']) {
      await t.clinic.post('CarePlan', { resourceType: 'CarePlan', status: 'active', intent: 'plan', title, subject: { reference: `Patient/${t.patientId}` } });
    }
    await t.receiver.waitUntil(() => t.receiver.applied.filter((r) => r.body.includes('event-notification')).length === 3);
    const numbers = (bundle: any) => (bundle.entry[0].resource.parameter as any[]).filter((p) => p.name === 'notification-event')
      .map((e: any) => e.part.find((p: any) => p.name === 'event-number').valueString);
    const latest = (await t.clinic.get(`Subscription/${sub.id}/$events`)).body;
    expect(numbers(latest)).toEqual(['2', '3']);
    expect(latest.entry).toHaveLength(3);
    const asked = (await t.clinic.get(`Subscription/${sub.id}/$events?eventsSinceNumber=1&eventsUntilNumber=3`)).body;
    expect(numbers(asked)).toEqual(['1', '2']);
  });

  it('matches and re-checks at send time for the purpose of use the Subscription was written for', async () => {
    const permit = await t.clinic.post('Consent', consent(t.patientId, 'ru-clinic', {
      actors: ['ru-care'], classes: ['MedicationRequest'], purposes: ['CAREMGT'], period: WIDE,
    }));
    expect(permit.status).toBe(201);
    const criteria = `MedicationRequest?patient=Patient/${t.patientId}&identifier=RU-RX-1`;
    const created = await t.facility.post('Subscription', criteriaSubscription(`${t.receiver.url}/caremgt`, criteria), { 'x-purpose-of-use': 'CAREMGT' });
    expect(created.status).toBe(201);
    expect(created.body.extension).toContainEqual({ url: PURPOSE_EXTENSION, valueCode: 'CAREMGT' });
    const treat = await subscribe(t.facility, criteriaSubscription(`${t.receiver.url}/treat`, criteria));
    expect(treat.extension).toContainEqual({ url: PURPOSE_EXTENSION, valueCode: 'TREAT' });
    await eventually(async () => (await t.facility.get<Subscription>(`Subscription/${created.body.id}`)).body.status === 'active', 'activation');

    const med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'RU-RX-1'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.length === 1);
    await changesMatched(t.stack, [med.id]);
    expect(t.receiver.applied.map((r) => r.path)).toEqual([`/caremgt/MedicationRequest/${med.id}`]);
    expect((await adminDeliveries(t.stack, `subscription=${treat.id}`)).total).toBe(0);
    const audit = await eventually(async () => {
      const res = await t.clinic.get(`AuditEvent?entity=Subscription/${created.body.id}&subtype=notification`);
      return res.body.total === 1 ? res.body.entry[0].resource : undefined;
    }, 'the notification AuditEvent');
    expect(audit.purposeOfEvent).toEqual([{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'CAREMGT' }] }]);

    // The declared purpose must be the request's own, and never break-glass.
    const mismatch = await t.facility.post('Subscription', {
      ...criteriaSubscription(t.receiver.url, criteria), extension: [{ url: PURPOSE_EXTENSION, valueCode: 'CAREMGT' }],
    });
    expect(mismatch.status).toBe(422);
    const emergency = await t.facility.post('Subscription', criteriaSubscription(t.receiver.url, criteria), {
      'x-purpose-of-use': 'ETREAT', 'x-break-glass-reason': encodeURIComponent('急変'),
    });
    expect(emergency.status).toBe(422);
  });
});
