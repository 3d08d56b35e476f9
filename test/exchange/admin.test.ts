import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { medicationRequest, patient } from '../support/resources.js';
import { ADMIN_TOKEN, stackName, startTestStack, type TestStack } from '../support/stack.js';
import { Receiver } from '../subscriptions/receiver.js';
import { adminDeliveries, criteriaSubscription, DELIVERING, eventually, subscribe } from '../subscriptions/subscriptions.js';

describe(`exchange administration and observability (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;
  let receiver: Receiver;
  let subscriptionId: string;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

  beforeAll(async () => {
    stack = await startTestStack(DELIVERING);
    receiver = await Receiver.start();
    clinic = await organizationClient(stack, 'adm-clinic');
    const patientId = (await clinic.post('Patient', patient('ADM-1'))).body.id;
    subscriptionId = (await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}`))).id!;
    for (const order of ['ADM-RX-1', 'ADM-RX-2', 'ADM-RX-3']) await clinic.post('MedicationRequest', medicationRequest(patientId, order));
    await eventually(async () => (await adminDeliveries(stack, 'status=delivered')).total === 3, 'three deliveries');
  });
  afterAll(async () => {
    await receiver?.close();
    await stack?.stop();
  });

  it('lists deliveries by subscription and status, newest first, with paging', async () => {
    const all = await adminDeliveries(stack, `subscription=Subscription/${subscriptionId}`);
    expect(all.total).toBe(3);
    expect(all.deliveries.map((d) => d.eventNumber)).toEqual([3, 2, 1]);
    expect(all.deliveries.every((d) => d.status === 'delivered' && d.kind === 'event' && d.attempts === 1)).toBe(true);
    const page = await adminDeliveries(stack, `subscription=${subscriptionId}&_count=1&_offset=1`);
    expect(page.total).toBe(3);
    expect(page.deliveries.map((d) => d.eventNumber)).toEqual([2]);
    expect((await adminDeliveries(stack, 'status=dead')).total).toBe(0);
    const one = await fetch(`${stack.url}/admin/deliveries/${page.deliveries[0].id}`, { headers: admin });
    expect(await one.json()).toMatchObject({ id: page.deliveries[0].id, subscription: `Subscription/${subscriptionId}` });
  });

  it('counts matching deliveries up to 10,000 and says when there are more', async () => {
    const add = (n: number) => stack.gateway.services.db.query(`INSERT INTO delivery (subscription_id, subscriber, kind, status)
      SELECT $1, 'adm-clinic', 'heartbeat', 'cancelled' FROM generate_series(1, $2)`, [subscriptionId, n]);
    await add(10_000);
    expect(await adminDeliveries(stack, 'status=cancelled&_count=2')).toMatchObject({ total: 10_000 });
    expect((await adminDeliveries(stack, 'status=cancelled&_count=2') as any).totalAtLeast).toBeUndefined();
    await add(1);
    const capped = await adminDeliveries(stack, 'status=cancelled&_count=2');
    expect(capped).toMatchObject({ total: 10_000, totalAtLeast: true });
    expect(capped.deliveries).toHaveLength(2);
    expect((await adminDeliveries(stack, 'status=dead')).total).toBe(0);
  });

  it('answers 400 for a bad filter, 404 for an unknown delivery and 409 for replaying one that is not dead', async () => {
    for (const query of ['status=lost', 'kind=email', '_count=1001', '_count=-1', '_offset=1.5', '_offset=1e21', '_offset=100000000000000000000']) {
      const res = await fetch(`${stack.url}/admin/deliveries?${query}`, { headers: admin });
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as { resourceType: string }).resourceType, query).toBe('OperationOutcome');
    }
    expect((await fetch(`${stack.url}/admin/deliveries/99999`, { headers: admin })).status).toBe(404);
    const [delivered] = (await adminDeliveries(stack)).deliveries;
    expect((await fetch(`${stack.url}/admin/deliveries/${delivered.id}/replay`, { method: 'POST', headers: admin })).status).toBe(409);
  });

  it('keeps deliveries and the queue dashboard to the administrator', async () => {
    const token = await clinic.token();
    for (const path of ['/admin/deliveries', '/admin/queues', '/admin/queues/api/queues']) {
      expect((await fetch(`${stack.url}${path}`)).status, path).toBe(401);
      expect((await fetch(`${stack.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).status, path).toBe(403);
    }
    const page = await fetch(`${stack.url}/admin/queues`, { headers: admin });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const api = await fetch(`${stack.url}/admin/queues/api/queues`, { headers: admin });
    expect(api.status).toBe(200);
    const { queues } = (await api.json()) as { queues: { name: string }[] };
    expect(queues.map((q) => q.name).sort()).toEqual(['changes', 'deliveries']);
  });

  it('reports the queue in /readyz and queue depth, outcomes and latency in /metrics', async () => {
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ store: 'ok', queue: 'ok' });
    const metrics = await (await fetch(`${stack.url}/metrics`)).text();
    expect(metrics).toMatch(/renkei_queue_jobs\{queue="deliveries",state="completed"\} \d+/);
    expect(metrics).toMatch(/renkei_queue_jobs\{queue="changes",state="waiting"\} 0/);
    expect(metrics).toMatch(/renkei_deliveries_total\{kind="event",outcome="delivered"\} [1-9]/);
    expect(metrics).toMatch(/renkei_delivery_latency_seconds_count [1-9]/);
    expect(metrics).toMatch(/renkei_outbox_pending \d+/);
  });
});
