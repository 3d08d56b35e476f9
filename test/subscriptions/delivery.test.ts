import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { consent, medicationRequest, patient } from '../support/resources.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';
import { Receiver } from './receiver.js';
import {
  adminDeliveries, changesMatched, criteriaSubscription, DELIVERING, eventually, subscribe, waitForStatus, type DeliveryView,
} from './subscriptions.js';

const WIDE = { start: '2020-01-01', end: '2099-12-31' };

describe(`delivery: retries, dead letters, order and consent at send time (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let facility: FhirClient;
  let receiver: Receiver;
  let patientId: string;

  beforeAll(async () => {
    stack = await startTestStack({ ...DELIVERING, RENKEI_DELIVERY_ATTEMPTS: '4', RENKEI_DELIVERY_TIMEOUT_MS: '1500' });
    clinic = await organizationClient(stack, 'dl-clinic');
    facility = await organizationClient(stack, 'dl-tokuyo');
    patientId = (await clinic.post('Patient', patient('DL-1'))).body.id;
  });
  afterAll(() => stack?.stop());
  beforeEach(async () => {
    receiver = await Receiver.start();
  });
  afterEach(() => receiver.close());

  const deliveriesOf = async (subscriptionId: string) => (await adminDeliveries(stack, `subscription=${subscriptionId}`)).deliveries;
  const settledAs = (subscriptionId: string, status: string, n = 1) =>
    eventually(async () => {
      const rows = (await deliveriesOf(subscriptionId)).filter((d) => d.status === status);
      return rows.length >= n ? rows : undefined;
    }, `${n} ${status} deliveries of Subscription/${subscriptionId}`);

  it('retries a failing endpoint and delivers once in effect, every attempt with the same idempotency key', async () => {
    receiver.answerWith((_req, i) => (i < 2 ? 500 : 200));
    const sub = await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}&identifier=DL-RX-1`));
    await clinic.post('MedicationRequest', medicationRequest(patientId, 'DL-RX-1'));
    const [delivered] = await settledAs(sub.id!, 'delivered');
    expect(receiver.requests.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(receiver.requests.map((r) => r.headers['x-renkei-idempotency-key'])).size).toBe(1);
    expect(receiver.applied).toHaveLength(1);
    expect(delivered).toMatchObject({ attempts: 3, lastHttpStatus: 200 });
    await waitForStatus(clinic, sub.id!, 'active');
  });

  it('gives up after the retry limit (dead letter, subscription in error) and delivers on replay', async () => {
    receiver.answerWith(() => 500);
    const sub = await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}&identifier=DL-RX-2`));
    await clinic.post('MedicationRequest', medicationRequest(patientId, 'DL-RX-2'));
    const [dead] = await settledAs(sub.id!, 'dead');
    expect(dead).toMatchObject({ attempts: 4, lastHttpStatus: 500 });
    expect(dead.lastError).toContain('HTTP 500');
    expect((await adminDeliveries(stack, 'status=dead')).deliveries.map((d) => d.id)).toContain(dead.id);
    const failing = await waitForStatus(clinic, sub.id!, 'error');
    expect(failing.error).toContain('HTTP 500');

    receiver.answerWith(() => 200);
    const replay = await fetch(`${stack.url}/admin/deliveries/${dead.id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(replay.status).toBe(202);
    await settledAs(sub.id!, 'delivered');
    expect(receiver.applied).toHaveLength(1);
    expect(new Set(receiver.requests.map((r) => r.headers['x-renkei-idempotency-key'])).size).toBe(1);
    await waitForStatus(clinic, sub.id!, 'active');
    const again = await fetch(`${stack.url}/admin/deliveries/${dead.id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(again.status).toBe(409);
  });

  it('never delivers a later version before an earlier one, even when attempts fail', async () => {
    // Every third request fails: retries interleave with new versions.
    receiver.answerWith((_req, i) => (i % 3 === 1 ? 503 : 200));
    const sub = await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}&identifier=DL-RX-3`));
    let med = (await clinic.post('MedicationRequest', medicationRequest(patientId, 'DL-RX-3'))).body;
    const notes = ['朝食後', '昼食後', '夕食後', '就寝前', '朝夕食後', '毎食後', '頓用', '朝食前', '昼食前', '夕食前', '起床時', '食間'];
    for (const text of notes) med = (await clinic.put(`MedicationRequest/${med.id}`, { ...med, note: [{ text }] })).body;
    await settledAs(sub.id!, 'delivered', notes.length + 1);
    const versions = receiver.applied.map((r) => Number(JSON.parse(r.body).meta.versionId));
    expect(versions).toEqual(Array.from({ length: notes.length + 1 }, (_, i) => i + 1));
    expect(receiver.requests.some((r) => r.status === 503)).toBe(true);
  });

  it("notifies another organization only while the owner's Consent permits, and withholds what was queued when it is revoked", async () => {
    const recorded = await clinic.post('Consent', consent(patientId, 'dl-clinic', { actors: ['dl-tokuyo'], classes: ['MedicationRequest'], period: WIDE }));
    expect(recorded.status).toBe(201);
    const sub = await subscribe(facility, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}&identifier=DL-RX-4`));
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    receiver.answerWith(async (_req, i) => {
      if (i === 0) await held; // the first notification is in flight while the rest wait behind it
      return 200;
    });
    let med = (await clinic.post('MedicationRequest', medicationRequest(patientId, 'DL-RX-4'))).body;
    await receiver.waitUntil(() => receiver.requests.length === 1);
    med = (await clinic.put(`MedicationRequest/${med.id}`, { ...med, status: 'on-hold' })).body;
    const queued = await eventually(async () => (await deliveriesOf(sub.id!)).find((d) => d.resource?.endsWith('/_history/2')), 'the second notification');
    expect(queued.status).toBe('pending');
    expect((await clinic.put(`Consent/${recorded.body.id}`, { ...recorded.body, status: 'inactive' })).status).toBe(200);
    release();
    const [withheld] = await settledAs(sub.id!, 'withheld');
    expect(withheld.resource).toMatch(/_history\/2$/);
    expect(receiver.applied.map((r) => JSON.parse(r.body).meta.versionId)).toEqual(['1']);

    // Without a Consent the facility is not told about the clinic's patient at all.
    const another = (await clinic.post('MedicationRequest', medicationRequest(patientId, 'DL-RX-4'))).body;
    await clinic.put(`MedicationRequest/${med.id}`, { ...med, status: 'stopped' });
    await changesMatched(stack, [med.id, another.id]);
    const rows: DeliveryView[] = await deliveriesOf(sub.id!);
    expect(rows.map((d) => d.status).sort()).toEqual(['delivered', 'withheld']);
  });

  it('does not follow redirects and fails an endpoint that does not answer in time', async () => {
    const target = await Receiver.start();
    try {
      receiver.answerWith((req) => (req.path === '/slow' ? new Promise((r) => setTimeout(() => r(200), 4000)) : 302));
      const moved = await subscribe(clinic, criteriaSubscription(`${receiver.url}/moved-away`, `MedicationRequest?patient=Patient/${patientId}&identifier=DL-RX-5`));
      const slow = await subscribe(clinic, criteriaSubscription(`${receiver.url}/slow`, `MedicationRequest?patient=Patient/${patientId}&identifier=DL-RX-5`, { payload: false }));
      await clinic.post('MedicationRequest', medicationRequest(patientId, 'DL-RX-5'));
      const [redirected] = await settledAs(moved.id!, 'dead');
      expect(redirected.lastError).toContain('redirects are not followed');
      expect(target.requests).toEqual([]);
      const [timedOut] = await settledAs(slow.id!, 'dead');
      expect(timedOut.lastError).toContain('no complete answer within 1500 ms');
    } finally {
      await target.close();
    }
  });
});
