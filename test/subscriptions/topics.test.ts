import { describe, expect, it } from 'vitest';
import { organizationClient } from '../support/fhir-client.js';
import { medicationRequest, patient } from '../support/resources.js';
import { stackName } from '../support/stack.js';
import { Receiver } from './receiver.js';
import { changesMatched, statusOf, subscribe, subscriptionSuite, TOPIC, topicSubscription, waitForStatus } from './subscriptions.js';

const types = (receiver: Receiver) => receiver.applied.map((r) => statusOf(receiver.json(r)).type.valueCode);

describe(`topic-based subscriptions, R5 Backport IG (${stackName})`, () => {
  const t = subscriptionSuite({ clinic: 'topic-clinic', patient: 'TOPIC-1' });

  it('handshakes before it is active, then numbers its event notifications (history Bundle, SubscriptionStatus first)', async () => {
    const sub = await subscribe(t.clinic, topicSubscription(t.receiver.url, 'medication-change', { filters: [`patient=Patient/${t.patientId}`] }));
    const handshake = t.receiver.json(t.receiver.applied[0]);
    expect(handshake).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    expect(handshake.entry[0].resource.resourceType).toBe('Parameters');
    const hs = statusOf(handshake);
    expect([hs.type.valueCode, hs.status.valueCode, hs['events-since-subscription-start'].valueString]).toEqual(['handshake', 'requested', '0']);
    expect(hs.subscription.valueReference.reference).toMatch(new RegExp(`Subscription/${sub.id}$`));

    const first = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'TOPIC-RX-1'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.length === 2);
    await t.clinic.put(`MedicationRequest/${first.id}`, { ...first, status: 'stopped' });
    await t.receiver.waitUntil(() => t.receiver.applied.length === 3);
    const events = t.receiver.applied.slice(1).map((r) => statusOf(t.receiver.json(r)));
    expect(events.map((e) => e.type.valueCode)).toEqual(['event-notification', 'event-notification']);
    expect(events.map((e) => e['events-since-subscription-start'].valueString)).toEqual(['1', '2']);
    expect(events.map((e) => e['notification-event'].part.find((p: any) => p.name === 'event-number').valueString)).toEqual(['1', '2']);
    expect(events[0].topic.valueCanonical).toBe(TOPIC('medication-change'));
    expect(events[0]['notification-event'].part.find((p: any) => p.name === 'focus').valueReference.reference).toMatch(new RegExp(`MedicationRequest/${first.id}$`));
    // id-only: the SubscriptionStatus and no resource.
    expect(t.receiver.json(t.receiver.applied[1]).entry).toHaveLength(1);
  });

  it('sends the resource with full-resource content and nothing but the number with empty content', async () => {
    await subscribe(t.clinic, topicSubscription(`${t.receiver.url}/full`, 'careplan-change', { content: 'full-resource' }));
    await subscribe(t.clinic, topicSubscription(`${t.receiver.url}/empty`, 'careplan-change', { content: 'empty' }));
    const plan = (await t.clinic.post('CarePlan', {
      resourceType: 'CarePlan', status: 'active', intent: 'plan', subject: { reference: `Patient/${t.patientId}` }, title: '居宅サービス計画',
    })).body;
    await t.receiver.waitUntil(() => t.receiver.applied.filter((r) => r.body.includes('event-notification')).length === 2);
    const full = t.receiver.json(t.receiver.applied.find((r) => r.path === '/full' && r.body.includes('event-notification'))!);
    expect(full.entry).toHaveLength(2);
    expect(full.entry[1]).toMatchObject({ resource: { resourceType: 'CarePlan', id: plan.id }, request: { method: 'POST', url: 'CarePlan' }, response: { status: '201' } });
    const empty = t.receiver.json(t.receiver.applied.find((r) => r.path === '/empty' && r.body.includes('event-notification'))!);
    expect(empty.entry).toHaveLength(1);
    const status = statusOf(empty);
    expect(status.topic).toBeUndefined();
    expect(status['notification-event'].part.map((p: any) => p.name)).toEqual(['event-number', 'timestamp']);
  });

  it('triggers urgent communications by FHIRPath and admissions by the encounter search criteria', async () => {
    await subscribe(t.clinic, topicSubscription(`${t.receiver.url}/urgent`, 'urgent-communication'));
    await subscribe(t.clinic, topicSubscription(`${t.receiver.url}/adt`, 'patient-admission-discharge'));
    const communication = (priority: string) => ({
      resourceType: 'Communication', status: 'completed', priority, subject: { reference: `Patient/${t.patientId}` },
      payload: [{ contentString: priority === 'urgent' ? '38.5℃、往診を依頼します' : '定期報告' }],
    });
    const routine = (await t.clinic.post('Communication', communication('routine'))).body;
    const urgent = (await t.clinic.post('Communication', communication('urgent'))).body;
    const encounter = (status: string, code: string) => ({
      resourceType: 'Encounter', status, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code },
      subject: { reference: `Patient/${t.patientId}` },
    });
    const outpatient = (await t.clinic.post('Encounter', encounter('in-progress', 'AMB'))).body;
    const admission = (await t.clinic.post('Encounter', encounter('in-progress', 'IMP'))).body;
    await t.receiver.waitUntil(() => t.receiver.applied.filter((r) => r.body.includes('event-notification')).length === 2);
    await changesMatched(t.stack, [routine.id, urgent.id, outpatient.id, admission.id]);
    const focus = (path: string) => t.receiver.applied.filter((r) => r.path === path && r.body.includes('event-notification'))
      .map((r) => statusOf(t.receiver.json(r))['notification-event'].part.find((p: any) => p.name === 'focus').valueReference.reference.split('/').pop());
    expect(focus('/urgent')).toEqual([urgent.id]);
    expect(focus('/adt')).toEqual([admission.id]);
  });

  it('stays in error when the endpoint refuses the handshake', async () => {
    t.receiver.answerWith(() => 503);
    const created = await t.clinic.post('Subscription', topicSubscription(t.receiver.url, 'medication-change'));
    const failed = await waitForStatus(t.clinic, created.body.id, 'error');
    expect(failed.error).toContain('HTTP 503');
    expect(types(t.receiver)).toEqual([]);
    expect(t.receiver.requests.length).toBe(3);
  });

  it('sends heartbeats while there is nothing to tell', async () => {
    await subscribe(t.clinic, topicSubscription(t.receiver.url, 'careplan-change', { heartbeat: 1, filters: ['patient=Patient/nobody'] }));
    await t.receiver.waitUntil(() => types(t.receiver).filter((t) => t === 'heartbeat').length >= 2);
    const heartbeat = statusOf(t.receiver.json(t.receiver.applied.find((r) => r.body.includes('"heartbeat"'))!));
    expect([heartbeat.status.valueCode, heartbeat['events-since-subscription-start'].valueString]).toEqual(['active', '0']);
    expect(heartbeat['notification-event']).toBeUndefined();
  });

  it('answers $status, and $events fills a gap from the event numbers', async () => {
    const gapPatient = (await t.clinic.post('Patient', patient('TOPIC-GAP'))).body.id;
    const sub = await subscribe(t.clinic, topicSubscription(t.receiver.url, 'medication-change', {
      filters: [`MedicationRequest?patient=Patient/${gapPatient}`], content: 'full-resource',
    }));
    const med = (await t.clinic.post('MedicationRequest', medicationRequest(gapPatient, 'TOPIC-RX-GAP'))).body;
    await t.receiver.waitUntil(() => types(t.receiver).includes('event-notification'));
    await t.clinic.put(`MedicationRequest/${med.id}`, { ...med, status: 'on-hold' });
    await t.receiver.waitUntil(() => types(t.receiver).filter((t) => t === 'event-notification').length === 2);

    const status = await t.clinic.get(`Subscription/${sub.id}/$status`);
    expect(status.status).toBe(200);
    expect(status.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    const params = statusOf({ entry: [status.body.entry[0]] });
    expect([params.type.valueCode, params.status.valueCode, params['events-since-subscription-start'].valueString]).toEqual(['query-status', 'active', '2']);
    const all = await t.clinic.get('Subscription/$status?status=active');
    expect(all.body.total).toBeGreaterThanOrEqual(1);

    const gap = await t.clinic.get(`Subscription/${sub.id}/$events?eventsSinceNumber=2&eventsUntilNumber=2`);
    expect(gap.status).toBe(200);
    const gapStatus = statusOf(gap.body);
    expect(gapStatus.type.valueCode).toBe('query-event');
    expect([].concat(gapStatus['notification-event']).length).toBe(1);
    expect(gap.body.entry[1].resource).toMatchObject({ id: med.id, status: 'on-hold', meta: { versionId: '2' } });

    const stranger = await organizationClient(t.stack, 'topic-stranger');
    expect((await stranger.get(`Subscription/${sub.id}/$status`)).status).toBe(404);
    expect((await stranger.get(`Subscription/${sub.id}/$events`)).status).toBe(404);
  });

  it('publishes its topics as Basic SubscriptionTopics and in the CapabilityStatement', async () => {
    await subscribe(t.clinic, topicSubscription(t.receiver.url, 'careplan-change'));
    const topics = await t.clinic.get('Basic?code=http://hl7.org/fhir/fhir-types|SubscriptionTopic');
    const urls = topics.body.entry.map((e: any) => e.resource.extension.find((x: any) => x.url.endsWith('artifact-url')).valueUri).sort();
    const expected = ['careplan-change', 'medication-change', 'patient-admission-discharge', 'urgent-communication'].map(TOPIC);
    expect(urls).toEqual(expected);
    const metadata = await t.clinic.get('metadata');
    const subscription = metadata.body.rest[0].resource.find((r: any) => r.type === 'Subscription');
    expect(subscription.extension.map((e: any) => e.valueCanonical).sort()).toEqual(expected);
    expect(subscription.operation.map((o: any) => o.name)).toEqual(expect.arrayContaining(['status', 'events']));
  });
});
