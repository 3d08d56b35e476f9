import { describe, expect, it } from 'vitest';
import { consent, medicationRequest } from '../support/resources.js';
import { ADMIN_TOKEN, stackName } from '../support/stack.js';
import { Receiver } from './receiver.js';
import {
  adminDeliveries, changesMatched, criteriaSubscription, type DeliveryView, eventually, subscribe, subscriptionSuite, waitForStatus,
} from './subscriptions.js';

const WIDE = { start: '2020-01-01', end: '2099-12-31' };

describe(`delivery: retries, dead letters, order and consent at send time (${stackName})`, () => {
  const t = subscriptionSuite({ env: { RENKEI_DELIVERY_ATTEMPTS: '4', RENKEI_DELIVERY_TIMEOUT_MS: '1500' }, clinic: 'dl-clinic', facility: 'dl-tokuyo', patient: 'DL-1' });

  const deliveriesOf = async (subscriptionId: string) => (await adminDeliveries(t.stack, `subscription=${subscriptionId}`)).deliveries;
  const settledAs = (subscriptionId: string, status: string, n = 1) =>
    eventually(async () => {
      const rows = (await deliveriesOf(subscriptionId)).filter((d) => d.status === status);
      return rows.length >= n ? rows : undefined;
    }, `${n} ${status} deliveries of Subscription/${subscriptionId}`);

  it('retries a failing endpoint and delivers once in effect, every attempt with the same idempotency key', async () => {
    t.receiver.answerWith((_req, i) => (i < 2 ? 500 : 200));
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=DL-RX-1`));
    await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'DL-RX-1'));
    const [delivered] = await settledAs(sub.id!, 'delivered');
    expect(t.receiver.requests.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(t.receiver.requests.map((r) => r.headers['x-renkei-idempotency-key'])).size).toBe(1);
    expect(t.receiver.applied).toHaveLength(1);
    expect(delivered).toMatchObject({ attempts: 3, lastHttpStatus: 200 });
    await waitForStatus(t.clinic, sub.id!, 'active');
  });

  it('gives up after the retry limit (dead letter, subscription in error) and delivers on replay', async () => {
    t.receiver.answerWith(() => 500);
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=DL-RX-2`));
    await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'DL-RX-2'));
    const [dead] = await settledAs(sub.id!, 'dead');
    expect(dead).toMatchObject({ attempts: 4, lastHttpStatus: 500 });
    expect(dead.lastError).toContain('HTTP 500');
    expect((await adminDeliveries(t.stack, 'status=dead')).deliveries.map((d) => d.id)).toContain(dead.id);
    const failing = await waitForStatus(t.clinic, sub.id!, 'error');
    expect(failing.error).toContain('HTTP 500');

    t.receiver.answerWith(() => 200);
    const replay = await fetch(`${t.stack.url}/admin/deliveries/${dead.id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(replay.status).toBe(202);
    await settledAs(sub.id!, 'delivered');
    expect(t.receiver.applied).toHaveLength(1);
    expect(new Set(t.receiver.requests.map((r) => r.headers['x-renkei-idempotency-key'])).size).toBe(1);
    await waitForStatus(t.clinic, sub.id!, 'active');
    const again = await fetch(`${t.stack.url}/admin/deliveries/${dead.id}/replay`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    expect(again.status).toBe(409);
  });

  it('never delivers a later version before an earlier one, even when attempts fail', async () => {
    // Every third request fails: retries interleave with new versions.
    t.receiver.answerWith((_req, i) => (i % 3 === 1 ? 503 : 200));
    const sub = await subscribe(t.clinic, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=DL-RX-3`));
    let med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'DL-RX-3'))).body;
    const notes = ['朝食後', '昼食後', '夕食後', '就寝前', '朝夕食後', '毎食後', '頓用', '朝食前', '昼食前', '夕食前', '起床時', '食間'];
    for (const text of notes) med = (await t.clinic.put(`MedicationRequest/${med.id}`, { ...med, note: [{ text }] })).body;
    await settledAs(sub.id!, 'delivered', notes.length + 1);
    const versions = t.receiver.applied.map((r) => Number(JSON.parse(r.body).meta.versionId));
    expect(versions).toEqual(Array.from({ length: notes.length + 1 }, (_, i) => i + 1));
    expect(t.receiver.requests.some((r) => r.status === 503)).toBe(true);
  });

  it("notifies another organization only while the owner's Consent permits, and withholds what was queued when it is revoked", async () => {
    const recorded = await t.clinic.post('Consent', consent(t.patientId, 'dl-clinic', { actors: ['dl-tokuyo'], classes: ['MedicationRequest'], period: WIDE }));
    expect(recorded.status).toBe(201);
    const sub = await subscribe(t.facility, criteriaSubscription(t.receiver.url, `MedicationRequest?patient=Patient/${t.patientId}&identifier=DL-RX-4`));
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    t.receiver.answerWith(async (_req, i) => {
      if (i === 0) await held; // the first notification is in flight while the rest wait behind it
      return 200;
    });
    let med = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'DL-RX-4'))).body;
    await t.receiver.waitUntil(() => t.receiver.requests.length === 1);
    med = (await t.clinic.put(`MedicationRequest/${med.id}`, { ...med, status: 'on-hold' })).body;
    const queued = await eventually(async () => (await deliveriesOf(sub.id!)).find((d) => d.resource?.endsWith('/_history/2')), 'the second notification');
    expect(queued.status).toBe('pending');
    expect((await t.clinic.put(`Consent/${recorded.body.id}`, { ...recorded.body, status: 'inactive' })).status).toBe(200);
    release();
    const [withheld] = await settledAs(sub.id!, 'withheld');
    expect(withheld.resource).toMatch(/_history\/2$/);
    expect(t.receiver.applied.map((r) => JSON.parse(r.body).meta.versionId)).toEqual(['1']);

    // Without a Consent the facility is not told about the clinic's patient at all.
    const another = (await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'DL-RX-4'))).body;
    await t.clinic.put(`MedicationRequest/${med.id}`, { ...med, status: 'stopped' });
    await changesMatched(t.stack, [med.id, another.id]);
    const rows: DeliveryView[] = await deliveriesOf(sub.id!);
    expect(rows.map((d) => d.status).sort()).toEqual(['delivered', 'withheld']);
  });

  it('does not follow redirects and fails an endpoint that does not answer in time', async () => {
    const target = await Receiver.start();
    try {
      t.receiver.answerWith((req) => (req.path === '/slow' ? new Promise((r) => setTimeout(() => r(200), 4000)) : 302));
      const moved = await subscribe(t.clinic, criteriaSubscription(`${t.receiver.url}/moved-away`, `MedicationRequest?patient=Patient/${t.patientId}&identifier=DL-RX-5`));
      const slow = await subscribe(t.clinic, criteriaSubscription(`${t.receiver.url}/slow`, `MedicationRequest?patient=Patient/${t.patientId}&identifier=DL-RX-5`, { payload: false }));
      await t.clinic.post('MedicationRequest', medicationRequest(t.patientId, 'DL-RX-5'));
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
