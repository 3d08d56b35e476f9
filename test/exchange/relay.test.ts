import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliveryJobId } from '../../src/exchange/deliveries.js';
import { Reconciler } from '../../src/exchange/reconciler.js';
import { changeJobId, OutboxRelay } from '../../src/exchange/relay.js';
import { organizationClient, type FhirClient } from '../support/fhir-client.js';
import { bodyTemperature, medicationRequest, patient } from '../support/resources.js';
import { stackName, startTestStack, type TestStack } from '../support/stack.js';
import { Receiver } from '../subscriptions/receiver.js';
import { adminDeliveries, criteriaSubscription, DELIVERING, eventually, subscribe } from '../subscriptions/subscriptions.js';

describe(`outbox relay (${stackName})`, () => {
  let stack: TestStack;
  let clinic: FhirClient;

  beforeAll(async () => {
    // No relay or workers of its own: the test runs the relay by hand.
    stack = await startTestStack({ RENKEI_RELAY: 'off', RENKEI_WORKERS: 'off' });
    clinic = await organizationClient(stack, 'relay-clinic');
  });
  afterAll(() => stack?.stop());

  it('moves each committed change into the queue once: job id outbox-<seq>, a re-run adds nothing', async () => {
    const { db } = stack.gateway.services;
    const { changes } = stack.gateway.services.exchange;
    const sub = await clinic.post('Subscription', criteriaSubscription('https://network.example.jp/hook', 'Observation'));
    await db.query(`INSERT INTO subscription_state (id, owner, version_id, kind, status, resource_types) VALUES ($1, 'relay-clinic', 1, 'criteria', 'active', '{Observation}')`, [sub.body.id]);
    const patientId = (await clinic.post('Patient', patient('RELAY-1'))).body.id;
    const observation = (await clinic.post('Observation', bodyTemperature(patientId, 36.9, '2026-11-20T08:00:00+09:00'))).body;
    const relay = new OutboxRelay(db, changes, 50, stack.gateway.services.exchange.backend.bulkFrom);
    const before = await changes.getJobCounts();
    expect(await relay.relayOnce()).toBeGreaterThanOrEqual(3);
    const { rows } = await db.query<{ seq: number; resource_type: string; matched: boolean }>(
      'SELECT seq, resource_type, matched_at IS NOT NULL AS matched FROM outbox WHERE id = ANY($1::text[]) ORDER BY seq', [[sub.body.id, patientId, observation.id]]);
    const queued = rows.filter((r) => r.resource_type !== 'Patient');
    for (const r of queued) expect((await changes.getJob(changeJobId(Number(r.seq))))?.data).toMatchObject({ seq: Number(r.seq) });
    // Nothing watches Patient: relayed and matched without a job.
    const patientRow = rows.find((r) => r.resource_type === 'Patient')!;
    expect(patientRow.matched).toBe(true);
    expect(await changes.getJob(changeJobId(Number(patientRow.seq)))).toBeUndefined();
    const added = await changes.getJobCounts();
    expect(added.waiting - before.waiting).toBe(queued.length);

    // A claim released after the queue took the jobs (an add that failed part-way): the rows are claimed
    // again and re-added, which adds nothing.
    await db.query('UPDATE outbox SET relayed_at = NULL WHERE seq = ANY($1::bigint[])', [queued.map((r) => r.seq)]);
    expect(await relay.relayOnce()).toBe(queued.length);
    expect((await changes.getJobCounts()).waiting).toBe(added.waiting);
    expect(await relay.relayOnce()).toBe(0);
    // The same through a bulk add, whatever the backend's own threshold.
    await db.query('UPDATE outbox SET relayed_at = NULL WHERE seq = ANY($1::bigint[])', [queued.map((r) => r.seq)]);
    expect(await new OutboxRelay(db, changes, 50, 1).relayOnce()).toBe(queued.length);
    expect((await changes.getJobCounts()).waiting).toBe(added.waiting);
  });

  it('takes a type as watched while a subscription that is not off watches it (requested too), not one that is off', async () => {
    const { db } = stack.gateway.services;
    const { changes } = stack.gateway.services.exchange;
    const relay = new OutboxRelay(db, changes, 50, stack.gateway.services.exchange.backend.bulkFrom);
    await relay.relayOnce();
    const state = `INSERT INTO subscription_state (id, owner, version_id, kind, status, resource_types) VALUES ($1, 'relay-clinic', 1, 'criteria', $2, $3)`;
    await db.query(state, ['relay-watch-off', 'off', '{MedicationRequest,Condition}']);
    await db.query(state, ['relay-watch-requested', 'requested', '{Condition,MedicationRequest}']);
    await db.query(state, ['relay-watch-off-only', 'off', '{Encounter}']);
    const patientId = (await clinic.post('Patient', patient('RELAY-WATCH'))).body.id;
    const written = [
      { type: 'MedicationRequest', id: (await clinic.post('MedicationRequest', medicationRequest(patientId, 'RELAY-WATCH-1'))).body.id, watched: true },
      { type: 'Encounter', id: (await clinic.post('Encounter', { resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${patientId}` } })).body.id, watched: false },
    ];
    await relay.relayOnce();
    for (const w of written) {
      const { rows } = await db.query<{ seq: number; matched: boolean }>(
        'SELECT seq, matched_at IS NOT NULL AS matched FROM outbox WHERE resource_type = $1 AND id = $2', [w.type, w.id]);
      expect(rows[0].matched, w.type).toBe(!w.watched);
      expect(Boolean(await changes.getJob(changeJobId(Number(rows[0].seq)))), w.type).toBe(w.watched);
    }
    await db.query("DELETE FROM subscription_state WHERE id LIKE 'relay-watch-%'");
  });

  it('queues a change whose relay claimed it and died before the queue took it: the reconciler adds it', async () => {
    const { db, exchange } = stack.gateway.services;
    const patientId = (await clinic.post('Patient', patient('RELAY-2'))).body.id;
    const observation = (await clinic.post('Observation', bodyTemperature(patientId, 37.1, '2026-11-20T09:00:00+09:00'))).body;
    // The claim as a relay commits it, a while ago; no job was added.
    const { rows } = await db.query<{ seq: number }>(
      `UPDATE outbox SET relayed_at = now() - interval '1 minute' WHERE id = $1 RETURNING seq`, [observation.id]);
    const seq = Number(rows[0].seq);
    expect(await exchange.changes.getJob(changeJobId(seq))).toBeUndefined();
    const reconciler = new Reconciler(db, exchange.changes, exchange.deliveries, (refs) => exchange.enqueueDeliveries(refs), 1000);
    expect((await reconciler.run()).changes).toBe(1);
    expect((await exchange.changes.getJob(changeJobId(seq)))?.data).toMatchObject({ seq, resourceType: 'Observation', id: observation.id });
  });
});

describe(`reconciliation of the store with the queue (${stackName})`, () => {
  let stack: TestStack;
  let receiver: Receiver;

  beforeAll(async () => {
    // A failed attempt waits a minute before its retry: long enough to lose its job meanwhile.
    stack = await startTestStack({ ...DELIVERING, RENKEI_DELIVERY_BACKOFF_MS: '60000', RENKEI_DELIVERY_BACKOFF_MAX_MS: '60000' });
    receiver = await Receiver.start();
  });
  afterAll(async () => {
    await receiver?.close();
    await stack?.stop();
  });

  it('re-enqueues a pending delivery whose job the queue lost, and it is delivered', async () => {
    const clinic = await organizationClient(stack, 'rec-clinic');
    const patientId = (await clinic.post('Patient', patient('REC-1'))).body.id;
    receiver.answerWith(() => 503);
    const sub = await subscribe(clinic, criteriaSubscription(receiver.url, `MedicationRequest?patient=Patient/${patientId}`));
    await clinic.post('MedicationRequest', medicationRequest(patientId, 'REC-RX-1'));
    const pending = await eventually(async () => (await adminDeliveries(stack, `subscription=${sub.id}`)).deliveries.find((d) => d.attempts > 0), 'a failed attempt');
    const { db, exchange } = stack.gateway.services;
    const { rows } = await db.query<{ generation: number }>('SELECT generation FROM delivery WHERE id = $1', [pending.id]);
    const job = await exchange.deliveries.getJob(deliveryJobId({ id: pending.id, generation: rows[0].generation }));
    await eventually(async () => (await job!.getState()) === 'delayed', 'the retry to be scheduled');
    await job!.remove(); // as if Redis had lost it
    await db.query(`UPDATE delivery SET updated_at = now() - interval '1 minute' WHERE id = $1`, [pending.id]);
    receiver.answerWith(() => 200);
    const reconciler = new Reconciler(db, exchange.changes, exchange.deliveries, (refs) => exchange.enqueueDeliveries(refs), 1000);
    expect(await reconciler.run()).toEqual({ changes: 0, deliveries: 1 });
    await eventually(async () => (await adminDeliveries(stack, `subscription=${sub.id}&status=delivered`)).total === 1, 'the delivery');
    expect(receiver.applied).toHaveLength(1);
  });

  it('sends again, with the same idempotency key, a delivery whose worker finished it but died before its settlement was committed', async () => {
    const clinic = await organizationClient(stack, 'rec-clinic-2');
    const patientId = (await clinic.post('Patient', patient('REC-2'))).body.id;
    receiver.answerWith(() => 200);
    const sub = await subscribe(clinic, criteriaSubscription(`${receiver.url}/handed-over`, `MedicationRequest?patient=Patient/${patientId}`));
    await clinic.post('MedicationRequest', medicationRequest(patientId, 'REC-RX-2'));
    const delivered = await eventually(async () => (await adminDeliveries(stack, `subscription=${sub.id}&status=delivered`)).deliveries[0], 'the delivery');
    // The job is finished; the settlement handed to the ledger never reached the store.
    const { db, exchange } = stack.gateway.services;
    await db.query(`UPDATE delivery SET status = 'pending', delivered_at = NULL, updated_at = now() - interval '1 minute' WHERE id = $1`, [delivered.id]);
    const reconciler = new Reconciler(db, exchange.changes, exchange.deliveries, (refs) => exchange.enqueueDeliveries(refs), 1000);
    expect((await reconciler.run()).deliveries).toBe(1);
    await eventually(async () => (await adminDeliveries(stack, `subscription=${sub.id}&status=delivered`)).total === 1, 'the delivery again');
    const sent = receiver.requests.filter((r) => r.path.startsWith('/handed-over/'));
    expect(sent).toHaveLength(2);
    expect(new Set(sent.map((r) => r.headers['x-renkei-idempotency-key'])).size).toBe(1);
    expect(receiver.applied.filter((r) => r.path.startsWith('/handed-over/'))).toHaveLength(1);
  });
});
